"""Stated or silent: P(the page states the practice a criterion asks for), and the hand-labelled gold it is
learnt from.

Every criterion and every page of this domain share a topic (job consultants, citizens, conversations,
companies), so a whole-sentence similarity measures the topic, not the practice. `StatedDetector` calibrates
the late-interaction score of `pipeline.evidence.late_interaction` (the weakest phrase matches of the criterion
among the page's windows) with a balanced logistic regression, fitted inside `EvidensModel.fit` on the
statement gold pairs (`labels/statement_gold.csv`) of the training records only. The candidates it was chosen
among are measured in `pipeline.judgement.stated_eval`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pipeline.defaults import DEFAULT_LABELS
from pipeline.errors import EvidensError
from pipeline.evidence.late_interaction import DETECTOR_SCORES
from pipeline.labels import STATEMENT_GOLD_FILE as STATEMENT_GOLD_NAME
from pipeline.tables import csv_records

STATEMENT_GOLD_FILE = DEFAULT_LABELS / STATEMENT_GOLD_NAME
STATEMENT_LABELS = ("silent", "partly", "states")  # ordered: silent < partly < states
GOLD_COLUMNS = (
    "record_id",
    "source_file",
    "municipality",
    "criterion_id",
    "label",
    "quote",
    "note",
    "annotator",
)


# -- the statement gold ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatementLabel:
    record_id: str
    source_file: str
    criterion_id: str
    label: str
    quotes: tuple[str, ...]
    municipality: str = ""

    @property
    def stated(self) -> bool:
        return self.label != "silent"


def load_statement_gold(path: Path = STATEMENT_GOLD_FILE) -> list[StatementLabel]:
    """The hand-labelled pairs; a malformed row is an EvidensError naming the file, the line and what was
    expected. Leading lines starting with '#' are the file's header."""
    table = csv_records(path, comments=True)  # the one CSV reader: file and line named on any fault
    missing = [c for c in GOLD_COLUMNS if c not in table.header]
    if missing:
        raise EvidensError(f"{path}: line {table.header_line}: missing column(s) {', '.join(missing)}")
    labels, seen = [], set()
    for line, cells in table.records:
        if len(cells) != len(table.header):
            raise EvidensError(
                f"{path}: line {line}: expected {len(table.header)} fields, found {len(cells)}"
            )
        row = dict(zip(table.header, cells, strict=True))
        label, quote = row["label"].strip(), row["quote"].strip()
        if label not in STATEMENT_LABELS:
            raise EvidensError(
                f"{path}: line {line}: label {label!r}, expected one of {', '.join(STATEMENT_LABELS)}"
            )
        if not row["record_id"].strip() or not row["criterion_id"].startswith("crit-"):
            raise EvidensError(f"{path}: line {line}: expected a record_id and a criterion_id crit-...")
        if (label == "silent") == bool(quote):
            raise EvidensError(
                f"{path}: line {line}: a {label} pair must {'not ' * (label == 'silent')}quote"
            )
        key = (row["record_id"], row["criterion_id"])
        if key in seen:
            raise EvidensError(f"{path}: line {line}: pair {key[0]} / {key[1]} labelled twice")
        seen.add(key)
        quotes = tuple(q.strip() for q in quote.split(" || ") if q.strip())
        labels.append(
            StatementLabel(
                row["record_id"], row["source_file"], row["criterion_id"], label, quotes, row["municipality"]
            )
        )
    return labels


# -- the detector ---------------------------------------------------------------------------------------------
class StatedDetector(BaseEstimator):
    """P(stated) from a page's centred scores: a balanced logistic regression over `scores`, so that 0.5 is
    where missing a stated practice and flagging a silent one cost alike. `fit(X, y)`: X rows from
    `PageScores.row(criterion_id, scores)`, y True where the gold says states or partly."""

    def __init__(self, scores: Sequence[str] = DETECTOR_SCORES, C: float = 1.0):
        self.scores = scores
        self.C = C

    def fit(self, X, y) -> StatedDetector:
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=bool)
        if y.all() or not y.any():
            raise ValueError("the statement gold of the training records needs stated and silent pairs")
        self.scaler_ = StandardScaler().fit(X)
        self.model_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=1000)
        self.model_.fit(self.scaler_.transform(X), y)
        self.n_pairs_ = len(y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float).reshape(-1, len(self.scores))
        return self.model_.predict_proba(self.scaler_.transform(X))[:, 1]
