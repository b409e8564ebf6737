"""One scoring path and one writer: efforts in, predictions and the flags read off them out, and the three
files analysts get (predictions.csv, flags.csv, report.html).

- `score` runs a fitted model on pages (batch, evaluate-pages): criterion ids assigned, predictions, flags;
- `score_out_of_fold` reads the labelled corpus's out-of-fold predictions from a leave-one-out evaluation
  (flag, run): every page predicted by a model fitted without it;
- `write_outputs` writes the three files from a `Scored`; `write_analyst_report` renders a report from
  predictions and flags held at once (batch gathers its report page by page instead, in a ReportContent, and
  streams it with the same `write_report`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.outputs.flags import all_flags
from pipeline.outputs.review import Key, Verdict
from pipeline.records import FLAG_COLUMNS, PREDICTION_COLUMNS, Effort, Flag, Prediction
from pipeline.tables import write_table


@dataclass
class Scored:
    efforts: list[Effort]
    predictions: list[Prediction]
    flags: list[Flag]


def score(model, efforts: Sequence[Effort]) -> Scored:
    """A fitted EvidensModel on pages it may never have seen; the efforts come back with criterion ids."""
    efforts = model.with_criteria(list(efforts))
    predictions = model.predict(efforts)
    return Scored(efforts, predictions, all_flags(efforts, predictions))


def score_out_of_fold(evaluation, efforts: Sequence[Effort]) -> Scored:
    """The out-of-fold predictions of a leave-one-effort-out evaluation, and their flags."""
    predictions = evaluation.predictions()
    return Scored(list(efforts), predictions, all_flags(efforts, predictions))


def write_analyst_report(
    path: Path,
    efforts: Sequence[Effort],
    predictions: Sequence[Prediction],
    flags: Sequence[Flag],
    verdicts: Mapping[Key, Verdict] | None = None,
    **extras,
) -> None:
    """report.html from predictions and flags, with the current imported `verdicts` on their rows; `extras`
    (figures, themes, notes, lang) as `render_report` takes. The report's identity is its output folder's, so
    the analyst's decisions survive a rebuild of that folder and stay out of every other report."""
    from pipeline.outputs.report import ReportContent, write_report
    from pipeline.outputs.report.rows import report_rows

    rows = report_rows(predictions, flags, efforts)
    with ReportContent.of(efforts, rows, flags, verdicts) as content:
        write_report(path, content, **extras)


def write_outputs(out: Path, scored: Scored, **extras) -> list[Path]:
    """predictions.csv, flags.csv and report.html in `out`, each written atomically; returns their paths."""
    paths = [out / "predictions.csv", out / "flags.csv", out / "report.html"]
    write_table(paths[0], [p.row() for p in scored.predictions], PREDICTION_COLUMNS)
    write_table(paths[1], [f.model_dump() for f in scored.flags], FLAG_COLUMNS)
    write_analyst_report(paths[2], scored.efforts, scored.predictions, scored.flags, **extras)
    return paths
