"""The judgement features every head sees, one row per answered criterion: each feature's name beside the
function that computes it, so that the names and their computation cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline.requirements import content_words

if TYPE_CHECKING:
    from pipeline.judgement.model import Judgement


def _practice_coverage(judgement: Judgement) -> float:
    """The share of the requirement's practice words (first six letters) that the page's sentences use."""
    page_words = {w[:6] for s in judgement.scores.candidates for w in content_words(s.text)}
    practice = [w[:6] for w in judgement.requirement.practice]
    return sum(w in page_words for w in practice) / max(len(practice), 1)


FEATURES: dict[str, Callable[[Judgement], float]] = {
    "p_stated": lambda j: j.p_stated,
    "dense_top": lambda j: float(j.scores.dense.max(initial=0.0)),
    "lexical_top": lambda j: float(j.scores.lexical.max(initial=0.0)),
    "practice_coverage": _practice_coverage,
    "asks_measurable": lambda j: float(bool(j.requirement.measurable)),
    "outcome_meets": lambda j: float(j.comparison.outcome == "meets"),
    "outcome_partly": lambda j: float(j.comparison.outcome == "partly"),
    "outcome_falls_short": lambda j: float(j.comparison.outcome == "falls short"),
    "outcome_not_stated": lambda j: float(j.comparison.outcome == "not stated"),
}
JUDGEMENT_FEATURES: tuple[str, ...] = tuple(FEATURES)


def feature_row(judgement: Judgement) -> list[float]:
    """One row in the order of JUDGEMENT_FEATURES."""
    return [feature(judgement) for feature in FEATURES.values()]
