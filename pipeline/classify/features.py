"""Features per answered criterion, from its evidence. Only the canonical criterion is ever used: the item's
answer-level wording ("Mindst 9 ud af 10 ...") never reaches a feature.

Columns are grouped by prefix so that an ablation can drop a whole group:
  sim__      dense/lexical similarities of the top sentences, the documented probability
  section__  the section of the best evidence (one-hot)
  lex__      lexical overlap of the criterion with the best sentence and the whole page
  cue__      frequency, quantity and negation cues in the evidence, and whether the criterion asks for them
  test__     test kind
  crit__     the criterion's own embedding (reduced inside the model), so one model serves all criteria
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.evidence import CriterionScores, RankingSettings
from pipeline.ingest.wording import canonical_criterion
from pipeline.records import SECTION_NAMES, Effort

FEATURE_GROUPS = ("sim", "section", "lex", "cue", "test", "crit")
TOP_K = 3

_FREQUENCY = re.compile(
    r"\bhver(?:\s+(?:\d+\.|anden|uge|måned|dag|samtale))?\b|\bugentlig|\bmånedlig|\bdaglig|"
    r"\b(?:gang|gange)\s+(?:om|pr\.?|i)\s+(?:ugen|måneden|dagen|året)|\bom\s+(?:ugen|måneden)\b|\bhyppig",
    re.IGNORECASE,
)
_QUANTITY = re.compile(
    r"\b\d+\s*(?:pct\.?|%|timer|dage|uger|minutter|måneder|borgere|samtaler)|\bmax\.?\s*\d+|\bmindst\s+(?:en|én|\d+)|"
    r"\binden\s+for\s+\d+|\b\d+\s+pr\.?\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:ikke|ingen|intet|aldrig|hverken|uden)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-zæøå]{4,}")


@dataclass(frozen=True)
class AnswerUnit:
    """One answered item: what the model predicts, and what it is compared with."""

    effort_id: str
    test_kind: str
    criterion_id: str
    item: str
    self_assessed: str | None

    @property
    def query(self) -> str:
        return canonical_criterion(self.item)


def answer_units(efforts: Sequence[Effort]) -> list[AnswerUnit]:
    return [
        AnswerUnit(effort.effort_id, test.kind, answer.criterion_id, answer.item, answer.answer)
        for effort in efforts
        for test in effort.tests
        for answer in test.answers
    ]


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _top(values: np.ndarray, n: int) -> list[float]:
    ordered = sorted(values.tolist(), reverse=True)[:n]
    return ordered + [ordered[-1] if ordered else 0.0] * (n - len(ordered))


def unit_features(unit: AnswerUnit, scores: CriterionScores, settings: RankingSettings) -> dict[str, float]:
    """The feature row of one answered item."""
    order = scores.ranked(settings.alpha, TOP_K)
    evidence = [scores.candidates[i].text for i in order]
    best = scores.candidates[order[0]] if len(order) else None
    query_words = _words(scores.query)
    page_words = set().union(*(_words(s.text) for s in scores.candidates)) if scores.candidates else set()
    evidence_text = " ".join(evidence)
    row: dict[str, float] = {}
    for n, value in enumerate(_top(scores.dense, TOP_K), start=1):
        row[f"sim__dense_top{n}"] = value
    for n, value in enumerate(_top(scores.lexical, TOP_K), start=1):
        row[f"sim__lexical_top{n}"] = value
    row["sim__dense_margin"] = float(scores.dense.max() - scores.dense.mean()) if len(scores.dense) else 0.0
    row["sim__documented"] = settings.documented_probability(
        float(scores.dense.max(initial=0.0)), float(scores.lexical.max(initial=0.0))
    )
    for section in SECTION_NAMES:
        row[f"section__{section}"] = float(best is not None and best.section == section)
    row["lex__best_overlap"] = (
        len(query_words & _words(best.text)) / max(len(query_words), 1) if best else 0.0
    )
    row["lex__page_coverage"] = len(query_words & page_words) / max(len(query_words), 1)
    asks_frequency, asks_quantity = (
        bool(_FREQUENCY.search(scores.query)),
        bool(_QUANTITY.search(scores.query)),
    )
    has_frequency, has_quantity = (
        bool(_FREQUENCY.search(evidence_text)),
        bool(_QUANTITY.search(evidence_text)),
    )
    row["cue__evidence_frequency"] = float(has_frequency)
    row["cue__evidence_quantity"] = float(has_quantity)
    row["cue__evidence_negation"] = len(_NEGATION.findall(evidence_text)) / max(len(evidence), 1)
    row["cue__asks_frequency"] = float(asks_frequency)
    row["cue__asks_quantity"] = float(asks_quantity)
    row["cue__frequency_answered"] = float(asks_frequency and has_frequency)
    row["cue__quantity_answered"] = float(asks_quantity and has_quantity)
    row["test__good_practice"] = float(unit.test_kind == "good_practice_test")
    for n, value in enumerate(scores.query_vector):
        row[f"crit__{n}"] = float(value)
    return row


def feature_table(
    units: Sequence[AnswerUnit], scores: dict[tuple[str, str], CriterionScores], settings: RankingSettings
) -> pd.DataFrame:
    """One row per unit, columns grouped by prefix (see FEATURE_GROUPS)."""
    rows = [unit_features(u, scores[(u.effort_id, u.criterion_id)], settings) for u in units]
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


def columns_of(frame: pd.DataFrame, groups: Sequence[str]) -> list[str]:
    return [c for c in frame.columns if c.split("__", 1)[0] in groups]
