"""Assemble what the report shows from one run's predictions and flags: the triage rows (one per answer, most
suspicious first), the quoted sections' texts, the honest figures, and the theme outputs embedded as data (the
summary per effort is gathered with the rows, in content.py)."""

from __future__ import annotations

import base64
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.ingest.wording import core_requirement
from pipeline.outputs.review import VERDICT_COLUMNS, Verdict
from pipeline.records import Effort, Flag, Prediction
from pipeline.requirements import content_words
from pipeline.stats import with_interval
from pipeline.textnorm import dehyphenate

_WORD = re.compile(r"[A-Za-zÆØÅæøåÉé]+")
MATCH_PREFIX = 6  # words match on their first six letters, as the evidence stage's lexical features do

Segments = list[tuple[str, bool]]  # (text, whether it matches a word of the criterion)


@dataclass
class ReportRow:
    """One answered criterion of one effort as the triage table shows it."""

    effort_id: str
    criterion_id: str
    test_kind: str
    item: str
    self_assessed: str
    predicted: str
    p_ja: float
    p_delvist: float
    p_nej: float
    evidence: list[tuple[str, Segments]]  # (section, the sentence cut into matching and other text)
    reasons: list[str] = field(default_factory=list)
    p_stated: float = 0.0
    stated: str = ""  # states, partly or silent; a silent criterion shows "not stated", never an answer
    comparison: str = ""
    basis: str = ""
    municipality: str = ""
    confidence: float = 0.0  # the most confident flag on this answer; 0 where none
    explanation: str = ""  # the flags' reasons in words, most confident first
    in_sample: bool = False  # predicted by a model fitted on this page's answers
    imported: dict[str, str] | None = None  # the current imported verdict (VERDICT_COLUMNS); None where none

    @property
    def p_predicted(self) -> float:
        """The model's probability of the answer it predicts."""
        return {"Ja": self.p_ja, "Delvist": self.p_delvist, "Nej": self.p_nej}[self.predicted]

    @property
    def key(self) -> str:
        """What a verdict is about (the export's effort_id and criterion_id)."""
        return f"{self.effort_id}|{self.criterion_id}"


@dataclass
class EffortSummary:
    """One line of the report's table of contents."""

    effort_id: str
    municipality: str
    title: str
    answers: int
    flagged: int
    claimed: float | None  # the score the self-assessed answers give (0-5, the page's own rule)
    supported: float | None  # the score the predicted probabilities give (expected points, 0-5)
    published: float | None
    score_flags: list[str]
    source_url: str | None = None  # the live page (an http(s) URL, pipeline.records.http_url)
    retrieved_at: str | None = None


@dataclass
class ThemesView:
    themes: list[dict]
    images: list[tuple[str, str]]  # (caption, base64 PNG)


THEME_IMAGES = (
    ("themes_map.png", "The practice sentences in two dimensions, coloured by theme"),
    ("themes_by_municipality.png", "Themes by municipality"),
)


def highlighted(sentence: str, item: str) -> Segments:
    """The sentence cut into runs of text, each marked whether its words match the criterion's content words."""
    wanted = {w[:MATCH_PREFIX] for w in content_words(core_requirement(item))}
    segments: Segments = []
    position = 0
    for word in _WORD.finditer(sentence):
        if len(word[0]) >= 4 and word[0].lower()[:MATCH_PREFIX] in wanted:
            if word.start() > position:
                segments.append((sentence[position : word.start()], False))
            segments.append((word[0], True))
            position = word.end()
    if position < len(sentence):
        segments.append((sentence[position:], False))
    return segments


def report_rows(
    predictions: Sequence[Prediction], flags: Sequence[Flag], efforts: Sequence[Effort] = ()
) -> list[ReportRow]:
    """One row per prediction, most suspicious first (the most confident flag on it), then in page order."""
    on_answer: dict[tuple[str, str, str], list[Flag]] = defaultdict(list)
    for flag in flags:
        if flag.criterion_id:
            on_answer[(flag.effort_id, flag.criterion_id, flag.test_kind)].append(flag)
    municipality = {e.effort_id: e.municipality or "" for e in efforts}
    rows = []
    for prediction in predictions:
        raised = sorted(
            on_answer.get((prediction.effort_id, prediction.criterion_id, prediction.test_kind), []),
            key=lambda f: -f.confidence,
        )
        rows.append(
            ReportRow(
                **prediction.model_dump(exclude={"evidence", "basis_sentence", "quotes"}),
                evidence=[
                    (quote.section, highlighted(quote.text, prediction.item)) for quote in prediction.quotes
                ],
                reasons=sorted({f.reason for f in raised}),
                municipality=municipality.get(prediction.effort_id, ""),
                confidence=raised[0].confidence if raised else 0.0,
                explanation="; ".join(dict.fromkeys(f.explanation for f in raised if f.explanation)),
            )
        )
    return sorted(rows, key=lambda r: -r.confidence)  # stable: page order among equals


def with_verdicts(rows: Sequence[ReportRow], verdicts: Mapping[tuple[str, str], Verdict]) -> list[ReportRow]:
    """The rows with the current imported verdict on each (`current_verdicts`), as the export wrote it."""
    for row in rows:
        verdict = verdicts.get((row.effort_id, row.criterion_id))
        row.imported = None if verdict is None else {c: getattr(verdict, c) for c in VERDICT_COLUMNS}
    return list(rows)


def section_texts(efforts: Sequence[Effort], rows: Sequence[ReportRow]) -> dict[str, dict[str, str]]:
    """effort_id -> section -> its text (hyphenation joined, as in the quotes), for the sections the rows quote:
    the report shows a quote in its section."""
    quoted = {(row.effort_id, section) for row in rows for section, _ in row.evidence}
    texts: dict[str, dict[str, str]] = defaultdict(dict)
    for effort in efforts:
        for section, text in effort.sections.model_dump().items():
            if (effort.effort_id, section) in quoted and text:
                texts[effort.effort_id][section] = dehyphenate(text)
    return dict(texts)


def honest_figures(metrics: Mapping[str, Mapping[str, float]], model_name: str) -> list[tuple[str, str, str]]:
    """(predictor, macro-F1 [95% CI], QWK [95% CI]) for the model and every baseline, model first."""
    names = [model_name, *(n for n in metrics if n.startswith("baseline"))]
    return [
        (name, with_interval(metrics[name], "macro_f1"), with_interval(metrics[name], "qwk"))
        for name in names
        if name in metrics
    ]


def themes_view(folder: Path) -> ThemesView | None:
    """The theme outputs that `evidens themes` wrote in `folder`, read in to be embedded; None where absent."""
    path = folder / "themes.json"
    if not path.exists():
        return None
    themes = json.loads(path.read_text(encoding="utf-8"))["themes"]
    images = [
        (caption, base64.b64encode((folder / name).read_bytes()).decode("ascii"))
        for name, caption in THEME_IMAGES
        if (folder / name).exists()
    ]
    return ThemesView(themes=themes, images=images)
