"""The version of the labels a model learns from: a hash of the label files that change what it learns.

Those are the self-assessed answers (answers.csv), the analysts' verdicts (verdicts.csv, the second target) and
the statement gold (statement_gold.csv, the stated detector). Files that only steer outputs (criteria pins, the
support set, theme pins) are not in it, so editing them never registers a new classifier."""

from __future__ import annotations

import hashlib
from pathlib import Path

ANSWERS_FILE = "answers.csv"
VERDICTS_FILE = "verdicts.csv"
STATEMENT_GOLD_FILE = "statement_gold.csv"  # hand-kept: '#' lines between its rows are comments
LEARNT_FROM = {
    ANSWERS_FILE: "answer",
    VERDICTS_FILE: "verdict",
    STATEMENT_GOLD_FILE: "label",
}  # -> its target


def label_version(labels: Path) -> str:
    """12 hex digits over the learnt-from files as they are (a missing file counts as absent)."""
    digest = hashlib.sha256()
    for name in LEARNT_FROM:
        path = labels / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
