"""From efforts to a fitted model and to predictions: the classifier stage, free of any tracking."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.classify.features import AnswerUnit, answer_units, feature_table
from pipeline.classify.model import make_model
from pipeline.embed.tfidf import TfidfEmbedder
from pipeline.evidence import CriterionScores, RankingSettings, evidence_scores
from pipeline.records import ANSWER_ORDER, Effort, Prediction

EVIDENCE_IN_PREDICTION = 3


@dataclass
class TrainingData:
    units: list[AnswerUnit]
    X: pd.DataFrame
    scores: dict[tuple[str, str], CriterionScores]
    settings: RankingSettings
    lexical: TfidfEmbedder  # its IDF is part of the model: prediction reuses the training corpus's

    @property
    def y(self) -> np.ndarray:
        return np.array([u.self_assessed for u in self.units])

    def evidence(self, unit: AnswerUnit, n: int = EVIDENCE_IN_PREDICTION) -> str:
        """The unit's top n evidence sentences, " | "-separated, each with its section."""
        scores = self.scores[(unit.effort_id, unit.criterion_id)]
        return " | ".join(
            f"[{scores.candidates[i].section}] {scores.candidates[i].text}"
            for i in scores.ranked(self.settings.alpha, n)
        )

    @property
    def documented(self) -> np.ndarray:
        """P(the page documents the criterion) of each unit."""
        return self.X["sim__documented"].to_numpy() if self.units else np.zeros(0)


def build_features(
    efforts: Sequence[Effort],
    embedder_name: str,
    cache: Path | None = None,
    lexical: TfidfEmbedder | None = None,
) -> TrainingData:
    """Units, features and evidence scores of every answered criterion of the efforts. Pass a trained model's
    `lexical` to score efforts independently of each other (see evidence_scores)."""
    scores, settings, lexical = evidence_scores(efforts, embedder_name, cache, lexical=lexical)
    by_key = {(s.effort_id, s.criterion_id): s for s in scores}
    units = answer_units([e for e in efforts if e.tests])
    return TrainingData(units, feature_table(units, by_key, settings), by_key, settings, lexical)


def corpus_hash(efforts: Sequence[Effort]) -> str:
    """Hash of the labelled data a model sees: each effort's content and its answers, order-independent."""
    content = sorted(
        json.dumps([e.content_sha256, [[a.criterion_id, a.answer] for t in e.tests for a in t.answers]])
        for e in efforts
        if e.tests
    )
    return hashlib.sha256("\n".join(content).encode()).hexdigest()


def fit_model(data: TrainingData, groups: Sequence[str] | None = None, ordinal: bool = True):
    kwargs = {"groups": groups} if groups is not None else {}
    return make_model(list(data.X.columns), ordinal=ordinal, **kwargs).fit(data.X, data.y)


def predictions_from(data: TrainingData, probabilities: np.ndarray) -> list[Prediction]:
    """One Prediction per answered criterion from probabilities whose columns are in ANSWER_ORDER."""
    rows = []
    for unit, p in zip(data.units, probabilities, strict=True):
        by_label = dict(zip(ANSWER_ORDER, p, strict=True))
        rows.append(
            Prediction(
                effort_id=unit.effort_id,
                criterion_id=unit.criterion_id,
                test_kind=unit.test_kind,
                item=unit.item,
                p_ja=round(float(by_label["Ja"]), 6),
                p_delvist=round(float(by_label["Delvist"]), 6),
                p_nej=round(float(by_label["Nej"]), 6),
                predicted=ANSWER_ORDER[int(np.argmax(p))],
                self_assessed=unit.self_assessed or "",
                evidence=data.evidence(unit),
            )
        )
    return rows


def prediction_rows(model, data: TrainingData) -> list[Prediction]:
    """The model's predictions for every answered criterion, probabilities named by label."""
    if not data.units:
        return []
    assert list(model.classes_) == list(ANSWER_ORDER), model.classes_  # predictions_from names columns so
    return predictions_from(data, model.predict_proba(data.X))


def predict_efforts(
    model, efforts: Sequence[Effort], embedder_name: str, cache: Path | None = None
) -> list[Prediction]:
    return prediction_rows(model, build_features(efforts, embedder_name, cache))
