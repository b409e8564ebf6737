#!/usr/bin/env bash
# Set up evidens on a machine that has only Python >= 3.11: a .venv with the package and its test tools.
# torch goes first, pinned to the CPU build (2.13.0): installed later as a dependency of sentence-transformers,
# pip would pull a CUDA build of several GB. On a machine without a local CPU wheel, add
# `--index-url https://download.pytorch.org/whl/cpu` to the torch line.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
