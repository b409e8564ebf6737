"""Leave-one-effort-out evaluation of the classifier, its ablations and the baselines, under the same folds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, log_loss
from sklearn.model_selection import LeaveOneGroupOut

from pipeline.classify.features import FEATURE_GROUPS, AnswerUnit
from pipeline.classify.model import make_model
from pipeline.records import ANSWER_ORDER

# A predictor is fitted on the training rows and returns probabilities (columns in ANSWER_ORDER) for the test rows.
Predictor = Callable[
    [pd.DataFrame, np.ndarray, Sequence[AnswerUnit], pd.DataFrame, Sequence[AnswerUnit]], np.ndarray
]
PRIOR_STRENGTH = 2.0  # pseudo-answers of the global prior added to each criterion's own answers


def _smoothed_frequencies(labels: Sequence[str]) -> np.ndarray:
    counts = Counter(labels)
    return np.array([(counts[label] + 1) / (len(labels) + len(ANSWER_ORDER)) for label in ANSWER_ORDER])


def majority_baseline(X_train, y_train, units_train, X_test, units_test) -> np.ndarray:
    """The training answer frequencies (Laplace-smoothed) for every row: predicts the majority class."""
    return np.tile(_smoothed_frequencies(list(y_train)), (len(X_test), 1))


def criterion_prior_baseline(X_train, y_train, units_train, X_test, units_test) -> np.ndarray:
    """Each criterion's own training answers, shrunk towards the global prior; the prior where unseen."""
    prior = _smoothed_frequencies(list(y_train))
    seen: dict[str, list[str]] = {}
    for unit, label in zip(units_train, y_train, strict=True):
        seen.setdefault(unit.criterion_id, []).append(label)
    rows = []
    for unit in units_test:
        own = seen.get(unit.criterion_id, [])
        counts = np.array([own.count(label) for label in ANSWER_ORDER], dtype=float)
        rows.append((counts + PRIOR_STRENGTH * prior) / (len(own) + PRIOR_STRENGTH))
    return np.array(rows)


def zero_shot_baseline(X_train, y_train, units_train, X_test, units_test) -> np.ndarray:
    """No training: the documented probability p read as two ordered steps, Nej (1-p)^2, Delvist 2p(1-p), Ja p^2."""
    p = X_test["sim__documented"].to_numpy()
    return np.column_stack([(1 - p) ** 2, 2 * p * (1 - p), p**2])


def model_predictor(groups: Sequence[str] = FEATURE_GROUPS, ordinal: bool = True) -> Predictor:
    def predict(X_train, y_train, units_train, X_test, units_test) -> np.ndarray:
        model = clone(make_model(list(X_train.columns), groups=groups, ordinal=ordinal)).fit(X_train, y_train)
        return model.predict_proba(X_test)

    return predict


def _log_loss(y_true: Sequence[str], probabilities: np.ndarray) -> float:
    """Log-loss with columns in ANSWER_ORDER. scikit-learn reads the columns in sorted label order (Delvist, Ja,
    Nej) whatever `labels` says, so they are reordered; clipped and renormalised so a zero costs finitely."""
    alphabetical = sorted(ANSWER_ORDER)
    columns = np.clip(probabilities[:, [ANSWER_ORDER.index(label) for label in alphabetical]], 1e-6, 1.0)
    return float(log_loss(y_true, columns / columns.sum(axis=1, keepdims=True), labels=alphabetical))


def classification_metrics(y_true: Sequence[str], probabilities: np.ndarray) -> dict[str, float]:
    labels = list(ANSWER_ORDER)
    predicted = np.array(labels)[np.argmax(probabilities, axis=1)]
    per_class = f1_score(y_true, predicted, labels=labels, average=None, zero_division=0)
    metrics = {
        "accuracy": float(np.mean(predicted == np.asarray(y_true))),
        "macro_f1": float(f1_score(y_true, predicted, labels=labels, average="macro", zero_division=0)),
        "qwk": float(cohen_kappa_score(y_true, predicted, labels=labels, weights="quadratic")),
        "log_loss": _log_loss(y_true, probabilities),
    }
    metrics.update({f"f1_{label.lower()}": float(v) for label, v in zip(labels, per_class, strict=True)})
    return {k: (0.0 if np.isnan(v) else v) for k, v in metrics.items()}


@dataclass
class Evaluation:
    """Out-of-fold probabilities and metrics of every predictor, and the folds they were made on."""

    folds: list[tuple[list[str], list[str]]]  # (efforts trained on, efforts scored) per fold
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, np.ndarray] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.metrics).T


def predictors() -> dict[str, Predictor]:
    """The model, its ablations and the baselines, in the order of the README table."""
    table: dict[str, Predictor] = {
        "model (all features, ordinal)": model_predictor(),
        "model, multinomial instead of ordinal": model_predictor(ordinal=False),
    }
    for group in FEATURE_GROUPS:
        table[f"model without {group}__"] = model_predictor([g for g in FEATURE_GROUPS if g != group])
    table["baseline: majority class"] = majority_baseline
    table["baseline: per-criterion prior"] = criterion_prior_baseline
    table["baseline: zero-shot (documented flag)"] = zero_shot_baseline
    return table


def leave_one_effort_out(
    units: Sequence[AnswerUnit], X: pd.DataFrame, chosen: dict[str, Predictor] | None = None
) -> Evaluation:
    """Every predictor under the same folds: each effort is scored by predictors that never saw it."""
    y = np.array([u.self_assessed for u in units])
    groups = np.array([u.effort_id for u in units])
    splits = list(LeaveOneGroupOut().split(X, y, groups))
    evaluation = Evaluation(folds=[(sorted(set(groups[tr])), sorted(set(groups[te]))) for tr, te in splits])
    for name, predict in (chosen or predictors()).items():
        out_of_fold = np.zeros((len(units), len(ANSWER_ORDER)))
        for train, test in splits:
            out_of_fold[test] = predict(
                X.iloc[train], y[train], [units[i] for i in train], X.iloc[test], [units[i] for i in test]
            )
        evaluation.probabilities[name] = out_of_fold
        evaluation.metrics[name] = classification_metrics(y, out_of_fold)
        predicted = np.array(ANSWER_ORDER)[np.argmax(out_of_fold, axis=1)]
        evaluation.confusion[name] = confusion_matrix(y, predicted, labels=list(ANSWER_ORDER))
    return evaluation
