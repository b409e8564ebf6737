"""What a report shows, gathered one page at a time, so that the report of a large batch is written without
holding its pages: each triage row goes to a temporary spool file as it comes and is read back, most suspicious
first, while the report is streamed out. Kept in memory are only the sort key of each row and what the tables
and counts above and below the rows need per effort (its heading, its answers' scores, its quoted sections)."""

from __future__ import annotations

import pickle
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Self

from pipeline.outputs.flags import recomputed_score
from pipeline.outputs.report.rows import EffortSummary, ReportRow, section_texts, with_verdicts
from pipeline.outputs.review import Key, Verdict
from pipeline.records import ANSWER_ORDER, SCORE_POINTS, Effort, Flag

RowOrder = tuple[float, int]  # (-confidence, arrival): most suspicious first, then in the order added


class _Heading(NamedTuple):
    """What an effort's summary line takes from the effort itself."""

    effort_id: str
    municipality: str
    title: str
    published: float | None
    source_url: str | None
    retrieved_at: str | None


class _Answer(NamedTuple):
    """What an effort's summary line takes from one of its rows."""

    order: RowOrder
    self_assessed: str
    expected_points: float
    flagged: bool


def _expected_points(row: ReportRow) -> float:
    """The score the model's probabilities give the answer (0-5, the page's own points)."""
    return (
        row.p_ja * SCORE_POINTS["Ja"]
        + row.p_delvist * SCORE_POINTS["Delvist"]
        + row.p_nej * SCORE_POINTS["Nej"]
    )


class ReportContent:
    """The rows, summaries, counts and section texts of one report, added page by page (`add`) and read once
    by the renderer (`render_report`). Adding the pages one by one gives the report that adding them at once
    gives. A context manager: leaving it removes the spool file."""

    def __init__(self, verdicts: Mapping[Key, Verdict] | None = None, spool_dir: Path | None = None):
        self.verdicts = verdicts or {}
        # on disk beside the outputs: a /tmp in memory (tmpfs) would keep the rows in RAM after all
        self._spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (closed on leaving the content)
        self._rows: list[tuple[RowOrder, int]] = []  # (order, offset in the spool) of every row
        self._headings: list[_Heading] = []
        self._answers: dict[str, list[_Answer]] = defaultdict(list)
        self._score_flags: dict[str, list[str]] = defaultdict(list)
        self.flag_counts: Counter[str] = Counter()
        self.sections: dict[str, dict[str, str]] = {}
        self.imported: dict[str, dict[str, str]] = {}
        self.counts = {"answers": 0, "flagged": 0, "decided": 0}  # decided: rows with an imported verdict
        self._decided_flags = 0  # flagged rows with an imported verdict
        self._upheld = 0  # of those, the ones whose verdict says the text does not support the claim
        self.reasons: set[str] = set()
        self.municipalities: set[str] = set()
        self.test_kinds: set[str] = set()

    @classmethod
    def of(
        cls,
        efforts: Sequence[Effort],
        rows: Sequence[ReportRow],
        flags: Sequence[Flag],
        verdicts: Mapping[Key, Verdict] | None = None,
    ) -> Self:
        """The content of a report on these efforts, rows and flags, added at once."""
        content = cls(verdicts)
        content.add(efforts, rows, flags)
        return content

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._spool.close()

    def add(self, efforts: Sequence[Effort], rows: Sequence[ReportRow], flags: Sequence[Flag]) -> None:
        """One page's efforts (those the report shows), its rows (`report_rows`) and its flags."""
        self._headings.extend(
            _Heading(
                e.effort_id, e.municipality or "", e.title, e.headline_score, e.source_url, e.retrieved_at
            )
            for e in efforts
        )
        for flag in flags:
            self.flag_counts[flag.reason] += 1
            if flag.reason == "score_mismatch":
                self._score_flags[flag.effort_id].append(flag.explanation)
        for effort_id, texts in section_texts(efforts, rows).items():
            self.sections.setdefault(effort_id, {}).update(texts)
        for row in with_verdicts(rows, self.verdicts):
            self._add_row(row)

    def _add_row(self, row: ReportRow) -> None:
        order = (-row.confidence, len(self._rows))
        self._rows.append((order, self._spool.tell()))
        pickle.dump(row, self._spool, pickle.HIGHEST_PROTOCOL)
        self._answers[row.effort_id].append(
            _Answer(order, row.self_assessed, _expected_points(row), bool(row.reasons))
        )
        self.counts["answers"] += 1
        self.counts["flagged"] += bool(row.reasons)
        self.reasons.update(row.reasons)
        self.test_kinds.add(row.test_kind)
        if row.municipality:
            self.municipalities.add(row.municipality)
        if row.imported:
            self.counts["decided"] += 1
            self.imported[row.key] = row.imported
            if row.reasons:
                self._decided_flags += 1
                verdict = self.verdicts[row.effort_id, row.criterion_id]
                self._upheld += not verdict.supports_claim(row.self_assessed)

    @property
    def verdicts_note(self) -> dict[str, int]:
        """How many flagged answers the imported verdicts decide, and uphold."""
        return {"decided": self._decided_flags, "flagged": self.counts["flagged"], "upheld": self._upheld}

    def rows(self) -> Iterator[ReportRow]:
        """Every row, most suspicious first (the most confident flag on it), then in the order added; read back
        from the spool one at a time."""
        for _, offset in sorted(self._rows):
            self._spool.seek(offset)
            yield pickle.load(self._spool)

    def summaries(self) -> list[EffortSummary]:
        """One summary per effort with answers, the most flagged first."""
        summaries = []
        for heading in self._headings:  # an effort read from two pages has two lines, as before
            answers = sorted(self._answers.get(heading.effort_id, ()))  # in the order the rows are shown
            if not answers:
                continue
            claimed = [a.self_assessed for a in answers if a.self_assessed in ANSWER_ORDER]
            summaries.append(
                EffortSummary(
                    effort_id=heading.effort_id,
                    municipality=heading.municipality,
                    title=heading.title,
                    answers=len(answers),
                    flagged=sum(a.flagged for a in answers),
                    claimed=recomputed_score(claimed),
                    supported=round(sum(a.expected_points for a in answers) / len(answers), 1),
                    published=heading.published,
                    score_flags=self._score_flags[heading.effort_id],
                    source_url=heading.source_url,
                    retrieved_at=heading.retrieved_at,
                )
            )
        return sorted(summaries, key=lambda s: (-s.flagged / s.answers, s.effort_id))
