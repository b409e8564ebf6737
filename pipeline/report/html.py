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
from pipeline.records import ANSWER_ORDER, Effort, Flag


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


def claimed_vs_predicted_png(efforts: Sequence[Effort], rows: Sequence[ReportRow]) -> str:
    """Grouped bars per effort: how many answers were claimed and predicted at each level. Base64 PNG."""
    labelled = [e for e in efforts if any(r.effort_id == e.effort_id for r in rows)]
    figure, axes = plt.subplots(
        1, max(len(labelled), 1), figsize=(4.2 * max(len(labelled), 1), 3.2), squeeze=False
    )
    for axis, effort in zip(axes[0], labelled, strict=False):
        mine = [r for r in rows if r.effort_id == effort.effort_id]
        claimed = Counter(r.self_assessed for r in mine)
        predicted = Counter(r.predicted for r in mine)
        positions = range(len(ANSWER_ORDER))
        axis.bar(
            [p - 0.2 for p in positions], [claimed[a] for a in ANSWER_ORDER], width=0.4, label="self-assessed"
        )
        axis.bar(
            [p + 0.2 for p in positions], [predicted[a] for a in ANSWER_ORDER], width=0.4, label="predicted"
        )
        axis.set_xticks(list(positions), ANSWER_ORDER)
        axis.set_title(effort.municipality or effort.effort_id, fontsize=10)
        axis.set_ylabel("answers")
    axes[0][0].legend(fontsize=8)
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
