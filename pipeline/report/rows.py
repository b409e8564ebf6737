"""Assemble the report's rows from the model's predictions and the flags raised on them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pipeline.records import Flag, Prediction
from pipeline.report.html import ReportRow

THEME_OUTPUTS = (
    ("themes (table)", "themes.csv"),
    ("theme map", "themes_map.png"),
    ("themes by municipality", "themes_by_municipality.png"),
)
_EVIDENCE_PART = re.compile(r"^\[(?P<section>[a-z]+)\] (?P<sentence>.*)$", re.S)


def evidence_parts(evidence: str) -> list[tuple[str, str]]:
    """ "[section] sentence | [section] sentence" (a Prediction's evidence) -> [(section, sentence), ...]."""
    parts = []
    for part in evidence.split(" | ") if evidence else []:
        match = _EVIDENCE_PART.match(part)
        parts.append((match["section"], match["sentence"]) if match else ("", part))
    return parts


def report_rows(predictions: Sequence[Prediction], flags: Sequence[Flag]) -> list[ReportRow]:
    reasons: dict[tuple[str, str, str], list[str]] = {}
    for flag in flags:
        reasons.setdefault((flag.effort_id, flag.criterion_id, flag.test_kind), []).append(flag.reason)
    return [
        ReportRow(
            **prediction.model_dump(exclude={"evidence", "basis_sentence"}),
            evidence=evidence_parts(prediction.evidence),
            reasons=sorted(
                set(reasons.get((prediction.effort_id, prediction.criterion_id, prediction.test_kind), []))
            ),
        )
        for prediction in predictions
    ]


def report_links(folder: Path) -> list[tuple[str, str]]:
    """Links to the theme outputs written beside the report, where they exist."""
    return [(label, name) for label, name in THEME_OUTPUTS if (folder / name).exists()]
