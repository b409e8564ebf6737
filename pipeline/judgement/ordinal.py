"""The Ja/Delvist/Nej classifier: a scikit-learn estimator that respects the answer order.

`OrdinalLogisticClassifier` follows Frank & Hall (2001): one logistic model per threshold of the ordered labels
(P(y > Nej), P(y > Delvist)), combined into class probabilities. With `ordinal=False` it is a plain
multinomial logistic regression, for the ablation. `classes_` is in the given `label_order` (Nej, Delvist, Ja
for evidens), never in scikit-learn's alphabetical order, and `probability_columns` names the columns of
`predict_proba`.

`pipeline.judgement.heads` wraps it as the `ordinal` head of `EvidensModel`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

RANDOM_STATE = 0


class OrdinalLogisticClassifier(ClassifierMixin, BaseEstimator):
    """Ordinal logistic classifier; label_order=None orders labels as np.unique does."""

    def __init__(self, label_order: Sequence | None = None, ordinal: bool = True, C: float = 1.0):
        self.label_order = label_order
        self.ordinal = ordinal
        self.C = C

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y)
        weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        check_classification_targets(y)
        self.classes_ = np.asarray(self.label_order) if self.label_order is not None else np.unique(y)
        if unknown := set(np.unique(y)) - set(self.classes_):
            raise ValueError(f"labels {sorted(unknown)} are not in label_order {list(self.classes_)}")
        ranks = self._ranks(y)
        if self.ordinal:
            self.estimators_ = [
                self._binary(X, ranks >= threshold, weights) for threshold in range(1, len(self.classes_))
            ]
        else:
            self.estimators_ = [self._multinomial(X, ranks, weights)]
        return self

    def _ranks(self, y) -> np.ndarray:
        position = {label: i for i, label in enumerate(self.classes_)}
        return np.array([position[label] for label in y])

    def _binary(self, X, target: np.ndarray, weights: np.ndarray):
        if target.all() or not target.any():  # a threshold no training label crosses: a smoothed constant
            return float((weights[target].sum() + 0.5) / (weights.sum() + 1))
        model = LogisticRegression(C=self.C, max_iter=1000, random_state=RANDOM_STATE)
        return model.fit(X, target, sample_weight=weights)

    def _multinomial(self, X, ranks: np.ndarray, weights: np.ndarray):
        seen = np.unique(ranks)
        if len(seen) == 1:
            return int(seen[0])
        model = LogisticRegression(C=self.C, max_iter=1000, random_state=RANDOM_STATE)
        return model.fit(X, ranks, sample_weight=weights)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        n, k = X.shape[0], len(self.classes_)
        if k == 1:
            return np.ones((n, 1))
        if not self.ordinal:
            model = self.estimators_[0]
            probabilities = np.zeros((n, k))
            if isinstance(model, int):
                probabilities[:, model] = 1.0
            else:
                probabilities[:, model.classes_] = model.predict_proba(X)
            return probabilities
        above = np.column_stack(
            [np.full(n, m) if isinstance(m, float) else m.predict_proba(X)[:, 1] for m in self.estimators_]
        )
        above = np.minimum.accumulate(above, axis=1)  # P(y > j) cannot grow with j
        cumulative = np.column_stack([np.ones(n), above, np.zeros(n)])
        return np.clip(cumulative[:, :-1] - cumulative[:, 1:], 0.0, 1.0)

    def predict(self, X) -> np.ndarray:
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    @property
    def probability_columns(self) -> list[str]:
        return [f"p_{str(label).lower()}" for label in self.classes_]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # tiny data by design; checks should not demand high accuracy
        return tags
