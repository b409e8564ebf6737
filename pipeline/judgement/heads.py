"""Heads: the swappable last stage of `EvidensModel`, from judgement features to Ja/Delvist/Nej probabilities.

A head is a scikit-learn classifier over the columns of `JUDGEMENT_FEATURES` whose `predict_proba` columns are
in ANSWER_ORDER (Nej, Delvist, Ja) and whose `fit` takes `sample_weight`: the model passes balanced weights,
so that a head learns P(answer | features) as if every answer were equally common, and the model then applies
the prior it is asked for. A head that ignores the answers says so with `uses_answers = False`. Adding a head is a function registered here under a name; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from pipeline.judgement.features import JUDGEMENT_FEATURES
from pipeline.judgement.ordinal import RANDOM_STATE, OrdinalLogisticClassifier
from pipeline.records import ANSWER_ORDER

HEAD_C = 0.3  # strong regularisation: a few dozen answers per fit


class _OrderedLogistic(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression whose probability columns are in ANSWER_ORDER, whatever it was fitted
    on (a class missing from the training answers gets probability 0)."""

    def __init__(self, C: float = HEAD_C):
        self.C = C

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.asarray(ANSWER_ORDER)
        self.model_ = LogisticRegression(C=self.C, max_iter=2000, random_state=RANDOM_STATE)
        self.model_.fit(X, y, sample_weight=sample_weight)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        out = np.zeros((len(X), len(ANSWER_ORDER)))
        columns = [ANSWER_ORDER.index(label) for label in self.model_.classes_]
        out[:, columns] = self.model_.predict_proba(X)
        return out

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class RequirementRuleHead(ClassifierMixin, BaseEstimator):
    """No fitting: the requirement comparison read as an answer (meets → Ja, partly → Delvist, falls short →
    Nej; not stated → Delvist, i.e. "unknown, in the middle"). It scores the comparison on its own."""

    uses_answers = False  # a page it was "trained" on is judged as fairly as any other

    RULES: ClassVar[dict[str, tuple[float, float, float]]] = {  # rows in ANSWER_ORDER: Nej, Delvist, Ja
        "outcome_meets": (0.1, 0.25, 0.65),
        "outcome_partly": (0.15, 0.6, 0.25),
        "outcome_falls_short": (0.6, 0.3, 0.1),
        "outcome_not_stated": (0.3, 0.4, 0.3),
    }

    def fit(self, X, y=None, sample_weight=None):
        self.classes_ = np.asarray(ANSWER_ORDER)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = np.asarray(X, dtype=float)
        probabilities = np.zeros((len(X), len(ANSWER_ORDER)))
        for name, row in self.RULES.items():
            probabilities += np.outer(X[:, JUDGEMENT_FEATURES.index(name)], row)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def logistic_head() -> Pipeline:
    """Scaled features, multinomial logistic regression."""
    return Pipeline([("scale", StandardScaler()), ("classifier", _OrderedLogistic())])


def ordinal_head() -> Pipeline:
    """Scaled features, ordinal logistic regression (Frank & Hall): respects Nej < Delvist < Ja."""
    return Pipeline(
        [("scale", StandardScaler()), ("classifier", OrdinalLogisticClassifier(ANSWER_ORDER, C=HEAD_C))]
    )


def rules_head() -> RequirementRuleHead:
    return RequirementRuleHead()


HEADS: dict[str, Callable[[], BaseEstimator]] = {
    "logistic": logistic_head,
    "ordinal": ordinal_head,
    "rules": rules_head,
}
DEFAULT_HEAD = "rules"  # fitted heads learn each page's answer mix on two pages: see the README's evaluation


def make_head(name: str) -> BaseEstimator:
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r} (expected one of {', '.join(HEADS)})")
    return HEADS[name]()


def fit_head(head: BaseEstimator, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> BaseEstimator:
    """Fit a head (a bare classifier or a Pipeline ending in one) with per-answer weights."""
    if isinstance(head, Pipeline):
        return head.fit(X, y, **{f"{head.steps[-1][0]}__sample_weight": sample_weight})
    return head.fit(X, y, sample_weight=sample_weight)
