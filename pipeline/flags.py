"""Flags: self-assessments that the page's own text does not support, each with a reason and a confidence.

- model_disagrees: confident learning (cleanlab's find_label_issues) over predicted probabilities that never
  come from a model that saw the effort; confidence is the expected ordinal distance between the self-assessed
  answer and the prediction, so Ja against a likely Nej ranks above Ja against a likely Delvist.
- unsupported_claim: Ja or Delvist on a criterion the page does not document; confidence 1 - P(documented).
- wording_mismatch: the answer disagrees with the item's own answer-level wording; confidence 1.
- cross_test_contradiction: one criterion answered differently in two tests (or target groups) of an effort;
  confidence is the ordinal distance between the two answers (1 for Ja/Nej, 0.5 for neighbours).
- score_mismatch: the published test score differs from the one recomputed by SCORE_RULE; confidence grows
  with the difference, 1 at half a point.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from pipeline.classify.features import AnswerUnit
from pipeline.classify.train import TrainingData, build_features
from pipeline.ingest.wording import answer_level_in_wording
from pipeline.records import ANSWER_ORDER, SCORE_POINTS, Effort, Flag

SCORE_RULE = "mean of the answers with Ja = 5, Delvist = 2.5, Nej = 0, rounded half up to one decimal"
SCORE_TOLERANCE = 0.05  # the published score has one decimal


def _rank(label: str) -> int:
    return ANSWER_ORDER.index(label)


def _predicted(probabilities: np.ndarray) -> str:
    return ANSWER_ORDER[int(np.argmax(probabilities))]


def expected_ordinal_distance(label: str, probabilities: np.ndarray) -> float:
    """E|rank(y) - rank(label)| under the probabilities, scaled to [0, 1]."""
    distances = np.abs(np.arange(len(ANSWER_ORDER)) - _rank(label)) / (len(ANSWER_ORDER) - 1)
    return float(probabilities @ distances)


def model_disagreements(
    units: Sequence[AnswerUnit],
    probabilities: np.ndarray,
    evidence: Sequence[str],
    confident_learning: bool = True,
    trusted: np.ndarray | None = None,
) -> list[Flag]:
    """Self-assessed answers the model contradicts, ranked by ordinal distance.

    With confident_learning, cleanlab's find_label_issues decides over the whole set (per-class thresholds
    learnt from it); a page scored on its own (batch) has too few answers for that, so there the rule is
    that the predicted answer differs from the claimed one. Only `trusted` answers (scored by a model that never
    saw their effort; all by default) are judged."""
    from cleanlab.filter import find_label_issues

    trusted = np.ones(len(units), bool) if trusted is None else trusted
    labelled = [i for i, u in enumerate(units) if u.self_assessed and trusted[i]]
    if len(labelled) < 2:
        return []
    labels = np.array([_rank(units[i].self_assessed) for i in labelled])
    if confident_learning:
        issues = find_label_issues(labels, probabilities[labelled], filter_by="prune_by_noise_rate", n_jobs=1)
    else:
        issues = np.argmax(probabilities[labelled], axis=1) != labels
    flags = []
    for position in np.flatnonzero(issues):
        index = labelled[position]
        unit = units[index]
        distance = expected_ordinal_distance(unit.self_assessed, probabilities[index])
        flags.append(_flag(unit, "model_disagrees", distance, probabilities[index], evidence[index]))
    return flags


def unsupported_claims(
    units: Sequence[AnswerUnit], documented: np.ndarray, probabilities: np.ndarray, evidence: Sequence[str]
) -> list[Flag]:
    return [
        _flag(unit, "unsupported_claim", 1.0 - float(p_documented), probabilities[i], evidence[i])
        for i, (unit, p_documented) in enumerate(zip(units, documented, strict=True))
        if unit.self_assessed in ("Ja", "Delvist") and p_documented < 0.5
    ]


def wording_mismatches(
    units: Sequence[AnswerUnit], probabilities: np.ndarray, evidence: Sequence[str]
) -> list[Flag]:
    flags = []
    for i, unit in enumerate(units):
        level = answer_level_in_wording(unit.item)
        if unit.self_assessed and level is not None and level != unit.self_assessed:
            flags.append(_flag(unit, "wording_mismatch", 1.0, probabilities[i], evidence[i]))
    return flags


def cross_test_contradictions(
    units: Sequence[AnswerUnit], probabilities: np.ndarray, evidence: Sequence[str]
) -> list[Flag]:
    """Each answer of a criterion that the same effort answers differently elsewhere."""
    by_criterion: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, unit in enumerate(units):
        if unit.self_assessed:
            by_criterion[(unit.effort_id, unit.criterion_id)].append(i)
    flags = []
    for indices in by_criterion.values():
        answers = {units[i].self_assessed for i in indices}
        if len(answers) < 2:
            continue
        spread = (max(map(_rank, answers)) - min(map(_rank, answers))) / (len(ANSWER_ORDER) - 1)
        flags += [
            _flag(units[i], "cross_test_contradiction", spread, probabilities[i], evidence[i])
            for i in indices
        ]
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
            evidence="",
        )
        for row in score_checks(efforts)
        if abs(float(row["difference"])) >= SCORE_TOLERANCE
    ]


def _flag(unit: AnswerUnit, reason: str, confidence: float, probabilities: np.ndarray, evidence: str) -> Flag:
    return Flag(
        effort_id=unit.effort_id,
        criterion_id=unit.criterion_id,
        test_kind=unit.test_kind,
        item=unit.item,
        reason=reason,
        confidence=round(float(np.clip(confidence, 0.0, 1.0)), 3),
        self_assessed=unit.self_assessed or "",
        predicted=_predicted(probabilities),
        evidence=evidence,
    )


def all_flags(
    efforts: Sequence[Effort],
    data: TrainingData,
    probabilities: np.ndarray,
    confident_learning: bool = True,
    trusted: np.ndarray | None = None,
) -> list[Flag]:
    """Every flag of every effort, most confident first within each effort. `probabilities` (columns in
    ANSWER_ORDER) are the model's for data.units; only `trusted` rows may raise model_disagrees."""
    units = data.units
    evidence = [data.evidence(u) for u in units]
    flags = [
        *model_disagreements(units, probabilities, evidence, confident_learning, trusted),
        *unsupported_claims(units, data.documented, probabilities, evidence),
        *wording_mismatches(units, probabilities, evidence),
        *cross_test_contradictions(units, probabilities, evidence),
        *score_mismatches(efforts),
    ]
    order = {e.effort_id: i for i, e in enumerate(efforts)}
    return sorted(
        flags, key=lambda f: (order.get(f.effort_id, len(order)), -f.confidence, f.reason, f.criterion_id)
    )


def flag_corpus(
    efforts: Sequence[Effort], embedder_name: str, cache=None, model=None, trained_on: Sequence[str] = ()
):
    """Flags for the labelled efforts of a corpus. The probabilities behind them never come from a model that
    saw the effort: leave-one-effort-out for the corpus's own efforts, and `model` (fitted elsewhere; its
    training pages' content hashes in trained_on) only for efforts it was not trained on.
    Returns (flags, training data, probabilities)."""
    from pipeline.classify.evaluate import leave_one_effort_out, model_predictor

    data = build_features(efforts, embedder_name, cache)
    probabilities = np.full((len(data.units), len(ANSWER_ORDER)), 1 / len(ANSWER_ORDER))
    trusted = np.zeros(len(data.units), bool)  # no model that never saw the effort has judged it yet
    if len({u.effort_id for u in data.units}) >= 2:
        probabilities = leave_one_effort_out(data.units, data.X, {"model": model_predictor()}).probabilities[
            "model"
        ]
        trusted[:] = True
    if model is not None and len(data.units):
        content, seen = {e.effort_id: e.content_sha256 for e in efforts}, set(trained_on)
        unseen = np.array([content[u.effort_id] not in seen for u in data.units])
        if unseen.any():
            probabilities[unseen] = model.predict_proba(data.X[unseen])
            trusted |= unseen
    flags = all_flags(efforts, data, probabilities, trusted=trusted)
    return flags, data, probabilities
