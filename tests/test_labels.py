"""The label version: what the model learns from moves it, nothing else does."""

from __future__ import annotations

import shutil

from conftest import REPO

from pipeline.labels import label_version


def test_the_label_version_moves_with_answers_verdicts_and_gold_only(tmp_path):
    labels = tmp_path / "labels"
    shutil.copytree(REPO / "labels", labels)
    before = label_version(labels)
    (labels / "support.csv").write_text("edited\n", encoding="utf-8")
    (labels / "theme_pins.csv").write_text("theme,label\n1,renamed\n", encoding="utf-8")
    assert label_version(labels) == before  # files that steer outputs only
    for name in ("answers.csv", "statement_gold.csv"):
        path = labels / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert label_version(labels) != before, name
        path.write_bytes(original)
    (labels / "verdicts.csv").write_text("effort_id\n", encoding="utf-8")
    assert label_version(labels) != before
