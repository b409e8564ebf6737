"""Flags: self-assessments that the page's own text does not support, each with a reason, a confidence and the
basis in words. They are read off the model's predictions (one set per run), never computed apart from them.

- unsupported_claim: Ja or Delvist on a criterion the page does not state (P(stated) below the evidence
  detector's STATED_THRESHOLD, 0.5);
  confidence 1 - P(stated).
- model_disagrees: only where the page states the criterion, and either the requirement comparison supports
  a lower answer than the claim (a figure the page gives falls short of the one asked, or the page gives none),
  or the model gives the claimed answer at most DISAGREEMENT_PROBABILITY (either direction: understated
  answers too). Confidence: for the comparison, the answer gap (0.5 a step) times P(stated), times
  NO_FIGURE_DISCOUNT where the page gives no figure at all; for the model, the expected ordinal distance.
  Never raised on an in-sample prediction (a page the model's head was fitted on).
- wording_mismatch: the answer disagrees with the item's own answer-level wording; confidence 1.
- cross_test_contradiction: one criterion answered differently in two tests (or target groups) of an effort;
  confidence is the ordinal distance between the two answers (1 for Ja/Nej, 0.5 for neighbours).
- score_mismatch: the published test score differs from the one recomputed by SCORE_RULE; confidence grows
  with the difference, 1 at half a point.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from pipeline.defaults import STATED_THRESHOLD
from pipeline.ingest.wording import answer_level_in_wording
from pipeline.records import ANSWER_ORDER, SCORE_POINTS, Effort, Flag, Prediction
from pipeline.requirements import NO_FIGURE

SCORE_RULE = "mean of the answers with Ja = 5, Delvist = 2.5, Nej = 0, rounded half up to one decimal"
SCORE_TOLERANCE = 0.05  # the published score has one decimal
DISAGREEMENT_PROBABILITY = 0.15  # the model gives the claimed answer at most this: it points elsewhere
NO_FIGURE_DISCOUNT = 0.6  # a figure the page leaves out is weaker evidence than one that falls short
SUPPORTED_BY_COMPARISON = {"meets": "Ja", "partly": "Delvist", "falls short": "Nej"}


def _rank(label: str) -> int:
    return ANSWER_ORDER.index(label)


def _probabilities(prediction: Prediction) -> np.ndarray:
    return np.array([prediction.p_nej, prediction.p_delvist, prediction.p_ja])


def expected_ordinal_distance(label: str, probabilities: np.ndarray) -> float:
    """E|rank(y) - rank(label)| under the probabilities (columns in ANSWER_ORDER), scaled to [0, 1]."""
    distances = np.abs(np.arange(len(ANSWER_ORDER)) - _rank(label)) / (len(ANSWER_ORDER) - 1)
    return float(probabilities @ distances)


def _flag(prediction: Prediction, reason: str, confidence: float, explanation: str) -> Flag:
    return Flag(
        effort_id=prediction.effort_id,
        criterion_id=prediction.criterion_id,
        test_kind=prediction.test_kind,
        item=prediction.item,
        reason=reason,
        confidence=round(float(np.clip(confidence, 0.0, 1.0)), 3),
        self_assessed=prediction.self_assessed,
        predicted=prediction.predicted,
        basis=prediction.basis,
        explanation=explanation,
        evidence=prediction.evidence,
    )


def unsupported_claims(predictions: Sequence[Prediction]) -> list[Flag]:
    return [
        _flag(
            p,
            "unsupported_claim",
            1.0 - p.p_stated,
            f"claims {p.self_assessed}, but the page does not state this (P(stated) {p.p_stated:.2f})",
        )
        for p in predictions
        if p.self_assessed in ("Ja", "Delvist") and p.p_stated < STATED_THRESHOLD
    ]


_ROUTINE = re.compile(
    r"\b(altid|hver\s+(?:\w+\s+)?\w*samtale\w*|alle\s+\w*samtaler|ved\s+hver|hver\s+gang)\b", re.I
)


def states_as_routine(prediction: Prediction) -> bool:
    """The page states the practice as routine: the comparison meets, or the sentence it read says it happens
    always or at every conversation."""
    return prediction.comparison == "meets" or bool(_ROUTINE.search(prediction.basis_sentence))


def disagreement(prediction: Prediction) -> tuple[float, str]:
    """How strongly the page (comparison) or the model points away from the claim, and why in words;
    (0, "") where it does not. A Nej claim is contradicted only where the page states the practice as
    routine: a silent page, or a practice stated in part, is no evidence that it is done."""
    claim = prediction.self_assessed
    if claim not in ANSWER_ORDER or prediction.p_stated < STATED_THRESHOLD:
        return 0.0, ""
    if claim == "Nej":
        if not states_as_routine(prediction):
            return 0.0, ""
        return prediction.p_stated, (
            f"claims Nej, but the page states the practice as routine ({prediction.basis_sentence or prediction.basis})"
        )
    confidence, explanation = 0.0, ""
    supported = SUPPORTED_BY_COMPARISON.get(prediction.comparison)
    if supported is not None and _rank(claim) > _rank(supported):
        gap = (_rank(claim) - _rank(supported)) / (len(ANSWER_ORDER) - 1)
        no_figure = NO_FIGURE in prediction.basis and prediction.comparison != "falls short"
        confidence = gap * prediction.p_stated * (NO_FIGURE_DISCOUNT if no_figure else 1.0)
        explanation = (
            f"claims {claim}; the requirement against the page supports {supported} ({prediction.basis})"
        )
    probabilities = _probabilities(prediction)
    p_claim = probabilities[_rank(claim)]
    if p_claim <= DISAGREEMENT_PROBABILITY:
        distance = expected_ordinal_distance(claim, probabilities)
        if distance > confidence:
            confidence = distance
            explanation = (
                f"claims {claim}; the model gives that {p_claim:.2f} and predicts {prediction.predicted}"
            )
    return confidence, explanation


def model_disagreements(predictions: Sequence[Prediction]) -> list[Flag]:
    """Stated criteria whose claim the requirement comparison or the model contradicts (see module doc)."""
    flags = []
    for prediction in predictions:
        confidence, explanation = (0.0, "") if prediction.in_sample else disagreement(prediction)
        if confidence > 0:
            flags.append(_flag(prediction, "model_disagrees", confidence, explanation))
    return flags


def wording_mismatches(predictions: Sequence[Prediction]) -> list[Flag]:
    flags = []
    for prediction in predictions:
        level = answer_level_in_wording(prediction.item)
        if prediction.self_assessed and level is not None and level != prediction.self_assessed:
            explanation = (
                f"the item's own wording means {level}, the answer given is {prediction.self_assessed}"
            )
            flags.append(_flag(prediction, "wording_mismatch", 1.0, explanation))
    return flags


def cross_test_contradictions(predictions: Sequence[Prediction]) -> list[Flag]:
    """Each answer of a criterion that the same effort answers differently elsewhere."""
    by_criterion: dict[tuple[str, str], list[Prediction]] = defaultdict(list)
    for prediction in predictions:
        if prediction.self_assessed:
            by_criterion[(prediction.effort_id, prediction.criterion_id)].append(prediction)
    flags = []
    for group in by_criterion.values():
        answers = {p.self_assessed for p in group}
        if len(answers) < 2:
            continue
        spread = (max(map(_rank, answers)) - min(map(_rank, answers))) / (len(ANSWER_ORDER) - 1)
        explanation = "answered " + " and ".join(f"{p.self_assessed} ({p.test_kind})" for p in group)
        flags += [_flag(p, "cross_test_contradiction", spread, explanation) for p in group]
    return flags


def recomputed_score(answers: Sequence[str]) -> float | None:
    if not answers:
        return None
    mean = Decimal(str(sum(SCORE_POINTS[a] for a in answers) / len(answers)))
    return float(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def score_checks(efforts: Sequence[Effort]) -> list[dict[str, object]]:
    """Published against recomputed score for every test that publishes one."""
    rows = []
    for effort in efforts:
        for test in effort.tests:
            recomputed = recomputed_score([a.answer for a in test.answers])
            if test.score is None or recomputed is None:
                continue
            rows.append(
                {
                    "effort_id": effort.effort_id,
                    "test_kind": test.kind,
                    "published": test.score,
                    "recomputed": recomputed,
                    "unrounded": round(
                        sum(SCORE_POINTS[a.answer] for a in test.answers) / len(test.answers), 3
                    ),
                    "difference": round(test.score - recomputed, 3),
                }
            )
    return rows


def score_mismatches(efforts: Sequence[Effort]) -> list[Flag]:
    return [
        Flag(
            effort_id=str(row["effort_id"]),
            criterion_id="",
            test_kind=str(row["test_kind"]),
            item=f"published score {row['published']}, recomputed {row['recomputed']} ({SCORE_RULE})",
            reason="score_mismatch",
            confidence=round(min(1.0, abs(float(row["difference"])) / 0.5), 3),
            self_assessed=str(row["published"]),
            predicted=str(row["recomputed"]),
            explanation=f"the page publishes {row['published']}; its own answers give {row['recomputed']}",
        )
        for row in score_checks(efforts)
        if abs(float(row["difference"])) >= SCORE_TOLERANCE
    ]


@dataclass(frozen=True)
class FlagCheck:
    """One reason a self-assessment is flagged: its code (the CSV's `reason`), the reason in plain words (the
    report, the docs), and the function that finds its flags among a run's efforts and predictions."""

    reason: str
    words: str
    find: Callable[[Sequence[Effort], Sequence[Prediction]], list[Flag]]


#: Every flag check, by reason. A new check is one function and one `register_flag_check` call.
FLAG_CHECKS: dict[str, FlagCheck] = {}


def register_flag_check(
    reason: str, words: str
) -> Callable[[Callable[[Sequence[Effort], Sequence[Prediction]], list[Flag]]], FlagCheck]:
    def decorator(find: Callable[[Sequence[Effort], Sequence[Prediction]], list[Flag]]) -> FlagCheck:
        FLAG_CHECKS[reason] = FlagCheck(reason, words, find)
        return FLAG_CHECKS[reason]

    return decorator


@register_flag_check("model_disagrees", "the page's figures or the model point to another answer")
def _model_disagrees(efforts: Sequence[Effort], predictions: Sequence[Prediction]) -> list[Flag]:
    return model_disagreements(predictions)


@register_flag_check("unsupported_claim", "claims a practice the page does not state")
def _unsupported_claim(efforts: Sequence[Effort], predictions: Sequence[Prediction]) -> list[Flag]:
    return unsupported_claims(predictions)


@register_flag_check("wording_mismatch", "the answer contradicts the item's own wording")
def _wording_mismatch(efforts: Sequence[Effort], predictions: Sequence[Prediction]) -> list[Flag]:
    return wording_mismatches(predictions)


@register_flag_check("cross_test_contradiction", "one criterion answered differently in two tests")
def _cross_test_contradiction(efforts: Sequence[Effort], predictions: Sequence[Prediction]) -> list[Flag]:
    return cross_test_contradictions(predictions)


@register_flag_check("score_mismatch", "the published score differs from the page's own answers")
def _score_mismatch(efforts: Sequence[Effort], predictions: Sequence[Prediction]) -> list[Flag]:
    return score_mismatches(efforts)


def all_flags(efforts: Sequence[Effort], predictions: Sequence[Prediction]) -> list[Flag]:
    """Every registered check's flags, most confident first within each effort. In-sample predictions never
    raise model_disagrees."""
    flags = [flag for check in FLAG_CHECKS.values() for flag in check.find(efforts, predictions)]
    order = {e.effort_id: i for i, e in enumerate(efforts)}
    return sorted(
        flags, key=lambda f: (order.get(f.effort_id, len(order)), -f.confidence, f.reason, f.criterion_id)
    )
