"""Render report.html, the analyst's triage report: honest figures first, then one table of every answer
across all efforts (most suspicious first, sortable, filterable, with decisions kept in the browser and
exported as CSV), a summary per effort that serves as the table of contents, and the themes, embedded.

Jinja2 autoescapes every value, so scraped text such as `<script>` or `"><img onerror=...>` shows literally;
nothing is ever marked safe except the template's own markup and base64 PNGs. The file is self-contained:
no network and no file beside it at view time; styles and the script are inline, and the script never writes
text into the page as HTML. The only outside links are the efforts' source pages, opened on a click, and only
http(s) URLs (`pipeline.records.http_url`).

The browser keeps the analyst's decisions in local storage, which every `file://` page shares; so they are
stored under the report's identity (`report_identity`: its output folder), and a report shows, counts and
exports only the decisions on its own rows."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from babel.support import Translations
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline.io import atomic_path
from pipeline.outputs.changes import FlagChanges
from pipeline.outputs.flags import FLAG_CHECKS
from pipeline.outputs.report.content import ReportContent
from pipeline.outputs.report.i18n import DEFAULT_LANGUAGE, decimal, translations
from pipeline.outputs.report.rows import EffortSummary, ThemesView
from pipeline.outputs.review import VERDICT_COLUMNS
from pipeline.records import ANSWER_ORDER
from pipeline.tables import ESCAPE, FORMULA_STARTS

MAX_POINT_LABELS = 15
MAX_CHANGES_SHOWN = 200  # of each kind (new, changed, resolved) in the report; changes.json has them all


def claimed_vs_supported_png(summaries: Sequence[EffortSummary], words: Translations) -> str:
    """One point per effort: the score its self-assessed answers give against the score the model's
    probabilities give, both on the page's 0-5 scale, labelled in the report's language (`words`). Points below
    the diagonal claim more than the text supports. The figure has a fixed size, so it reads the same for two
    efforts or two hundred. Base64 PNG."""
    points = [
        (s.claimed, s.supported, s.municipality or s.effort_id)
        for s in summaries
        if s.claimed is not None and s.supported is not None
    ]
    figure, axis = plt.subplots(figsize=(5.2, 4.6))
    axis.plot(
        [0, 5],
        [0, 5],
        color="#9aa3b2",
        linewidth=1,
        linestyle="--",
        label=words.gettext("supported = claimed"),
    )
    axis.scatter([p[0] for p in points], [p[1] for p in points], s=36, color="#1f77b4", zorder=3)
    if len(points) <= MAX_POINT_LABELS:
        for claimed, predicted, name in points:
            # "$" would start matplotlib's mathtext in a scraped name
            axis.annotate(
                name.replace("$", r"\$"),
                (claimed, predicted),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=8,
            )
    axis.set_xlim(0, 5.2)
    axis.set_ylim(0, 5.2)
    axis.set_xlabel(words.gettext("claimed score (the self-assessed answers)"))
    axis.set_ylabel(words.gettext("supported score (the model's expected points)"))
    axis.set_title(
        words.gettext("Claimed against supported score, %(efforts)s efforts") % {"efforts": len(points)},
        fontsize=10,
    )
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def report_identity(folder: Path) -> str:
    """The identity the report's decisions are stored under in the browser: a hash of the output folder's
    resolved path, so a rebuild of the same folder (a batch OUT, a corpus's reports) keeps the analyst's
    decisions and a report of another folder never sees them. A hash, so the page does not show the path."""
    return hashlib.sha256(str(Path(folder).resolve()).encode("utf-8")).hexdigest()[:16]


def render_report(
    content: ReportContent,
    figures: Sequence[tuple[str, str, str]] = (),
    themes: ThemesView | None = None,
    notes: Sequence[str] = (),
    changes: FlagChanges | None = None,
    *,
    report_id: str,
    lang: str = DEFAULT_LANGUAGE,
) -> Iterator[str]:
    """The report's HTML in `lang` (i18n.LANGUAGES), in chunks as the template yields them: the rows are read
    from `content` one at a time, never all held. `figures` are (predictor, macro-F1 [CI], QWK [CI]) rows for the
    note at the top; `changes`, a batch run's flags against the previous run's; `report_id` (`report_identity`)
    keys the decisions in the browser."""
    environment = Environment(
        loader=PackageLoader("pipeline.outputs.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        extensions=["jinja2.ext.i18n"],
    )
    words = translations(lang)
    environment.install_gettext_translations(words, newstyle=True)
    environment.filters["decimal"] = lambda value, digits=2: decimal(value, lang, digits)
    summaries = content.summaries()
    return environment.get_template("report.html.j2").generate(
        lang=lang,
        rows=content.rows(),
        counts=content.counts,
        summaries=summaries,
        sections=content.sections,
        imported=content.imported,
        verdicts_note=content.verdicts_note,
        reason_words={reason: words.gettext(check.words) for reason, check in FLAG_CHECKS.items()},
        flag_counts=content.flag_counts,
        reasons=sorted(content.reasons),
        municipalities=sorted(content.municipalities),
        test_kinds=sorted(content.test_kinds),
        answer_order=ANSWER_ORDER,
        verdict_columns=VERDICT_COLUMNS,
        formula_starts=FORMULA_STARTS,
        escape=ESCAPE,
        plot_png=claimed_vs_supported_png(summaries, words) if summaries else "",
        figures=figures,
        themes=themes,
        notes=notes,
        changes=changes,
        changes_shown=MAX_CHANGES_SHOWN,
        report_id=report_id,
    )


def write_report(path: Path, content: ReportContent, *args, report_id: str | None = None, **kwargs) -> None:
    """Stream the report into `path` (atomically, chunk by chunk); its identity is that of the folder it is
    written to unless given."""
    identity = report_id if report_id is not None else report_identity(path.parent)
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        handle.writelines(render_report(content, *args, report_id=identity, **kwargs))
