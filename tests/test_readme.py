"""The README's two Quick start commands: the test line is what CI runs, the main job runs as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RAW, REPO, outside_references


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_ci_runs_exactly_the_readme_test_line():
    main_job, tests = quick_start_commands()
    assert tests.startswith("bash scripts/setup.sh") and "pytest" in tests
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci_lines
    assert ci_lines.index(".venv/bin/ruff check .") < ci_lines.index(tests)
    assert main_job.startswith("bash scripts/setup.sh && .venv/bin/evidens ")


@pytest.mark.slow
def test_readme_main_job_runs_in_a_fresh_folder(tmp_path):
    """The main job's command after setup (`evidens run`), run where only corpus/raw exists."""
    main_job = quick_start_commands()[0].split("&&", 1)[1].strip()
    shutil.copytree(RAW, tmp_path / "corpus" / "raw")
    command = main_job.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    # as on a fresh machine: no tracking URI inherited (mlflow.set_tracking_uri in other tests exports one)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        command, shell=True, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ingested 10 efforts from 4 files" in done.stderr
    assert (tmp_path / "corpus" / "efforts.jsonl").exists()
    assert (tmp_path / "labels" / "answers.csv").exists()
    assert (tmp_path / "experiments" / "mlflow.db").exists()
    reports = tmp_path / "reports"
    for name in ("predictions.csv", "flags.csv", "report.html", "themes.json", "themes_map.png"):
        assert (reports / name).exists(), name
    assert f"report: {(reports / 'report.html').resolve()}" in done.stderr
    html = (reports / "report.html").read_text(encoding="utf-8")
    assert 'id="themes"' in html and outside_references(html) == []  # themes embedded, nothing linked
