"""Assemble the report's rows from the classifier stage's data, probabilities and flags."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.classify.train import TrainingData, predictions_from
from pipeline.records import Flag
from pipeline.report.html import ReportRow

EVIDENCE_SHOWN = 3
THEME_OUTPUTS = (
    ("themes (table)", "themes.csv"),
    ("theme map", "themes_map.png"),
    ("themes by municipality", "themes_by_municipality.png"),
)


def report_rows(data: TrainingData, probabilities: np.ndarray, flags: Sequence[Flag]) -> list[ReportRow]:
    reasons: dict[tuple[str, str, str], list[str]] = {}
    for flag in flags:
        reasons.setdefault((flag.effort_id, flag.criterion_id, flag.test_kind), []).append(flag.reason)
    rows = []
    for unit, prediction in zip(data.units, predictions_from(data, probabilities), strict=True):
        scores = data.scores[(unit.effort_id, unit.criterion_id)]
        order = scores.ranked(data.settings.alpha, EVIDENCE_SHOWN)
        rows.append(
            ReportRow(
                **prediction.model_dump(exclude={"evidence"}),
                evidence=[(scores.candidates[i].section, scores.candidates[i].text) for i in order],
                reasons=sorted(set(reasons.get((unit.effort_id, unit.criterion_id, unit.test_kind), []))),
            )
        )
    return rows


def report_links(folder: Path) -> list[tuple[str, str]]:
    """Links to the theme outputs written beside the report, where they exist."""
    return [(label, name) for label, name in THEME_OUTPUTS if (folder / name).exists()]
