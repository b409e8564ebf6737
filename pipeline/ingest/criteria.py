"""The criteria catalogue: one id per criterion, whatever answer level or page it is phrased on.

Matching has two steps. Items whose canonical text (answer-level wording removed) is the same up to case and
punctuation are one criterion. Otherwise a new canonical text joins the most similar known criterion when the
cosine similarity of their e5 embeddings reaches SAME_CRITERION_THRESHOLD, and never joins a criterion that is
already answered in the same test: the items of one test are distinct criteria by construction.

SAME_CRITERION_THRESHOLD is the midpoint between the highest similarity of two distinct items of one test
(0.965 on the corpus: items of one test are different criteria by construction) and the lowest similarity of
the same-criterion rewordings in tests/fixtures/criteria_pairs_generated.csv (0.987). The margin is narrow on
e5-small; `python -m pipeline.ingest.criteria` prints the measurement again (docs/criteria_threshold.md).
"""

from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from pipeline.embed import Embedder, get_embedder
from pipeline.ingest.wording import canonical_criterion, criterion_key
from pipeline.io import read_jsonl
from pipeline.records import AnswerRecord, Effort, SelfAssessment
from pipeline.tables import read_csv, write_csv

SAME_CRITERION_THRESHOLD = 0.976
CRITERIA_COLUMNS = ("criterion_id", "canonical_text", "tests", "target_groups", "phrasings")
ANSWERS_COLUMNS = ("effort_id", "test_kind", "criterion_id", "item", "answer")
_LIST_SEPARATOR = " | "


def criterion_id_for(canonical_text: str) -> str:
    return "crit-" + hashlib.sha1(criterion_key(canonical_text).encode()).hexdigest()[:8]


@dataclass
class Criterion:
    criterion_id: str
    canonical_text: str
    tests: set[str] = field(default_factory=set)
    target_groups: set[str] = field(default_factory=set)
    phrasings: set[str] = field(default_factory=set)

    def record(self, test: SelfAssessment, answer: AnswerRecord) -> None:
        """Note that this criterion is answered in `test`, in the words of `answer`."""
        self.tests.add(test.kind)
        if test.target_group:
            self.target_groups.add(test.target_group)
        self.phrasings.add(answer.item)


class CriteriaCatalogue:
    """Known criteria, and the matching that gives every answer on an effort its criterion_id."""

    def __init__(
        self,
        criteria: list[Criterion] | None = None,
        embedder: Embedder | None = None,
        threshold: float = SAME_CRITERION_THRESHOLD,
    ):
        self.criteria: dict[str, Criterion] = {c.criterion_id: c for c in criteria or []}
        self.threshold = threshold
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def _vectors_of(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self.embedder.embed(missing, "query"), strict=True))
        return np.stack([self._vectors[t] for t in texts])

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder("e5-offline")
        return self._embedder

    def _match(self, canonical_text: str, taken: set[str]) -> str | None:
        """The known criterion that canonical_text means, or None."""
        key = criterion_key(canonical_text)
        for criterion in self.criteria.values():
            if criterion_key(criterion.canonical_text) == key:
                return criterion.criterion_id
        candidates = [c for c in self.criteria.values() if c.criterion_id not in taken]
        if not candidates:
            return None
        vectors = self._vectors_of([canonical_text, *(c.canonical_text for c in candidates)])
        similarity = vectors[1:] @ vectors[0]
        best = int(np.argmax(similarity))
        return candidates[best].criterion_id if similarity[best] >= self.threshold else None

    def assign(self, efforts: list[Effort]) -> None:
        """Set criterion_id on every answer of every effort (in place) and record where each criterion appears."""
        answers = [
            (effort.effort_id, test_index, test, answer)
            for effort in efforts
            for test_index, test in enumerate(effort.tests)
            for answer in test.answers
        ]
        # Sorted by canonical text, so that the same set of pages gives the same ids in any input order.
        answers.sort(key=lambda a: (criterion_key(canonical_criterion(a[3].item)), a[0], a[1]))
        used_in_test: dict[tuple[str, int], set[str]] = defaultdict(set)
        for effort_id, test_index, test, answer in answers:
            canonical = canonical_criterion(answer.item)
            taken = used_in_test[(effort_id, test_index)]
            criterion_id = self._match(canonical, taken)
            if criterion_id is None or criterion_id in taken:
                criterion_id = criterion_id_for(canonical)
                while criterion_id in taken:  # same canonical text twice in one test: keep them apart
                    criterion_id = criterion_id_for(canonical + criterion_id)
                self.criteria.setdefault(criterion_id, Criterion(criterion_id, canonical))
            taken.add(criterion_id)
            answer.criterion_id = criterion_id
            self.criteria[criterion_id].record(test, answer)

    @classmethod
    def from_efforts(cls, efforts: list[Effort], **kwargs) -> CriteriaCatalogue:
        """The criteria that the efforts' answers already carry (ids assigned), without matching anew."""
        catalogue = cls(**kwargs)
        for effort in efforts:
            for test in effort.tests:
                for answer in test.answers:
                    catalogue.criteria.setdefault(
                        answer.criterion_id, Criterion(answer.criterion_id, canonical_criterion(answer.item))
                    ).record(test, answer)
        return catalogue

    @classmethod
    def load(cls, path: Path, **kwargs) -> CriteriaCatalogue:
        if not path.exists():
            return cls(**kwargs)
        rows = read_csv(path, CRITERIA_COLUMNS)
        criteria = [
            Criterion(
                row["criterion_id"],
                row["canonical_text"],
                *({v for v in row[column].split(_LIST_SEPARATOR) if v} for column in CRITERIA_COLUMNS[2:]),
            )
            for row in rows
        ]
        return cls(criteria, **kwargs)

    def save(self, path: Path) -> None:
        rows = [
            {
                "criterion_id": c.criterion_id,
                "canonical_text": c.canonical_text,
                **{
                    column: _LIST_SEPARATOR.join(sorted(getattr(c, column)))
                    for column in CRITERIA_COLUMNS[2:]
                },
            }
            for c in sorted(self.criteria.values(), key=lambda c: c.criterion_id)
        ]
        write_csv(path, rows, CRITERIA_COLUMNS)


def answers_rows(efforts: list[Effort]) -> list[dict[str, str]]:
    return [
        {
            "effort_id": effort.effort_id,
            "test_kind": test.kind,
            "criterion_id": answer.criterion_id,
            "item": answer.item,
            "answer": answer.answer,
        }
        for effort in efforts
        for test in effort.tests
        for answer in test.answers
    ]


def save_answers(efforts: list[Effort], path: Path) -> None:
    write_csv(path, answers_rows(efforts), ANSWERS_COLUMNS)


def within_test_similarities(efforts: list[Effort], embedder: Embedder) -> list[tuple[float, str, str]]:
    """Cosine similarity of every pair of distinct canonical criteria answered in one test, highest first.

    These pairs are different criteria by construction, so the highest of them bounds the threshold below."""
    pairs = []
    for effort in efforts:
        for test in effort.tests:
            texts = sorted({canonical_criterion(a.item) for a in test.answers})
            vectors = embedder.embed(texts, "query")
            for (i, a), (j, b) in combinations(enumerate(texts), 2):
                pairs.append((float(vectors[i] @ vectors[j]), a, b))
    return sorted(pairs, reverse=True)


def pair_similarities(pairs: list[tuple[str, str]], embedder: Embedder) -> list[float]:
    """Cosine similarity of the canonical forms of each (item, item) pair."""
    left = embedder.embed([canonical_criterion(a) for a, _ in pairs], "query")
    right = embedder.embed([canonical_criterion(b) for _, b in pairs], "query")
    return [float(x) for x in np.sum(left * right, axis=1)]


def main(argv: list[str]) -> None:
    """Print the evidence for SAME_CRITERION_THRESHOLD: `python -m pipeline.ingest.criteria [efforts.jsonl]`."""
    efforts_path = Path(argv[0] if argv else "corpus/efforts.jsonl")
    pairs_path = Path(__file__).parents[2] / "tests" / "fixtures" / "criteria_pairs_generated.csv"
    efforts = [Effort.model_validate(row) for row in read_jsonl(efforts_path)]
    embedder = get_embedder("e5-offline")
    negatives = within_test_similarities(efforts, embedder)
    print(f"distinct criteria within one test (real, {len(negatives)} pairs): highest similarities")
    for score, a, b in negatives[:5]:
        print(f"  {score:.3f}  {a[:70]!r}\n         {b[:70]!r}")
    labelled = read_csv(pairs_path)
    for relation in ("same", "different"):
        chosen = [row for row in labelled if row["relation"] == relation]
        scores = pair_similarities([(row["item_a"], row["item_b"]) for row in chosen], embedder)
        print(f"{relation}-criterion pairs (generated fixtures, {len(chosen)}): min {min(scores):.3f}, "
              f"max {max(scores):.3f}")  # fmt: skip
    print(f"threshold in use: {SAME_CRITERION_THRESHOLD}")


if __name__ == "__main__":
    main(sys.argv[1:])
