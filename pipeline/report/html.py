"""Render report.html: an overview with a plot, then one sortable, filterable table per effort.

Jinja2 autoescapes every value, so scraped text such as `<script>` or `"><img onerror=...>` shows literally;
nothing is ever marked safe except the template's own markup and the plot's base64 PNG. No network at view
time: styles and the small sorting/filtering script are inline."""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline.io import atomic_write_text
from pipeline.records import SCORE_POINTS, Effort, Flag

MAX_POINT_LABELS = 15


@dataclass
class ReportRow:
    """One criterion of one effort as the report shows it."""

    effort_id: str
    criterion_id: str
    test_kind: str
    item: str
    self_assessed: str
    predicted: str
    p_ja: float
    p_delvist: float
    p_nej: float
    evidence: list[tuple[str, str]]  # (section, sentence)
    reasons: list[str] = field(default_factory=list)
    p_stated: float = 0.0
    comparison: str = ""
    basis: str = ""


def claimed_vs_predicted_png(efforts: Sequence[Effort], rows: Sequence[ReportRow]) -> str:
    """One point per effort: the mean claimed answer against the mean predicted one, on the page's 0-5 score
    scale (Ja 5, Delvist 2.5, Nej 0). Points below the diagonal claim more than the text supports. The figure
    has a fixed size, so it reads the same for two efforts or two hundred. Base64 PNG."""
    points = []
    for effort in efforts:
        mine = [r for r in rows if r.effort_id == effort.effort_id and r.self_assessed in SCORE_POINTS]
        if mine:
            claimed = sum(SCORE_POINTS[r.self_assessed] for r in mine) / len(mine)
            predicted = sum(SCORE_POINTS[r.predicted] for r in mine) / len(mine)
            points.append((claimed, predicted, effort.municipality or effort.effort_id))
    figure, axis = plt.subplots(figsize=(5.2, 4.6))
    axis.plot([0, 5], [0, 5], color="#9aa3b2", linewidth=1, linestyle="--", label="predicted = claimed")
    axis.scatter([p[0] for p in points], [p[1] for p in points], s=36, color="#1f77b4", zorder=3)
    if len(points) <= MAX_POINT_LABELS:
        for claimed, predicted, name in points:
            axis.annotate(name, (claimed, predicted), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axis.set_xlim(0, 5.2)
    axis.set_ylim(0, 5.2)
    axis.set_xlabel("claimed (mean of self-assessed answers)")
    axis.set_ylabel("predicted (mean of predicted answers)")
    axis.set_title(f"Claimed against predicted, {len(points)} efforts", fontsize=10)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_report(
    efforts: Sequence[Effort],
    rows: Sequence[ReportRow],
    flags: Sequence[Flag],
    links: Sequence[tuple[str, str]] = (),
    notes: Sequence[str] = (),
) -> str:
    environment = Environment(
        loader=PackageLoader("pipeline.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
    )
    by_effort = {e.effort_id: [r for r in rows if r.effort_id == e.effort_id] for e in efforts}
    score_flags = [f for f in flags if f.reason == "score_mismatch"]
    return environment.get_template("report.html.j2").render(
        efforts=[e for e in efforts if by_effort[e.effort_id]],
        rows_by_effort=by_effort,
        score_flags=score_flags,
        flag_counts=Counter(f.reason for f in flags),
        n_criteria=len({r.criterion_id for r in rows}),
        plot_png=claimed_vs_predicted_png(efforts, rows) if rows else "",
        links=links,
        notes=notes,
    )


def write_report(path: Path, *args, **kwargs) -> None:
    atomic_write_text(path, render_report(*args, **kwargs))
