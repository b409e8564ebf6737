"""The criteria catalogue: one id per criterion, whatever answer level, test or page it is phrased on.

Every item is compared by its core requirement (`pipeline.ingest.alignment`): normalised text, answer-level
wording and the test's frames removed at every answer level, so that "Jobcenteret har en fast praksis, der
sikrer at mindst 9 ud af 10 jobkonsulenter, orienterer sig ..." and "Færre end 7 ud af 10 jobkonsulenter
orienterer sig ..." have one core. Equal cores are one criterion. Otherwise a new item joins the known
criterion whose core is most similar (lexical and dense, measurable parts agreeing) when the similarity reaches
alignment.MERGE_THRESHOLD, and never a criterion already answered in the same test. A reviewer's pins
(labels/criteria_pins.csv: two items and `same` or `different`) override the similarity both ways.
`evidens criteria` lists the catalogue, its merges and its near-misses.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from pipeline.embed import Embedder, get_embedder
from pipeline.errors import EvidensError
from pipeline.ingest.alignment import MERGE_THRESHOLD, core_of, similarity
from pipeline.ingest.wording import canonical_criterion, criterion_key
from pipeline.records import AnswerRecord, Effort, SelfAssessment
from pipeline.tables import read_csv, read_csv_lines, write_csv

PINS_FILE = "criteria_pins.csv"
PIN_COLUMNS = ("item_a", "item_b", "decision", "note")
PIN_DECISIONS = ("same", "different")
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

    @property
    def wordings(self) -> list[str]:
        """Its phrasings in a fixed order, or its canonical text for a criterion recorded without any."""
        return sorted(self.phrasings or {self.canonical_text})

    @property
    def core_keys(self) -> set[str]:
        """The core keys of every phrasing, and of the canonical text."""
        return {core_of(self.canonical_text).key} | {core_of(p).key for p in self.phrasings}


@dataclass(frozen=True)
class Pin:
    """A reviewer's decision on two items: the same criterion, or different ones."""

    key_a: str
    key_b: str
    same: bool
    where: str = field(default="", compare=False)  # "FILE: line N", for messages
    items: tuple[str, str] = field(default=("", ""), compare=False)  # as the reviewer wrote them

    def concerns(self, key: str, keys: set[str]) -> bool:
        return (self.key_a == key and self.key_b in keys) or (self.key_b == key and self.key_a in keys)


def load_pins(path: Path) -> list[Pin]:
    """The pins of a labels folder's criteria_pins.csv (none when the file is absent); a bad row is an error
    naming the file and line."""
    if not path.exists():
        return []
    pins = []
    for line, row in read_csv_lines(path, PIN_COLUMNS):
        decision = row["decision"].strip().lower()
        if decision not in PIN_DECISIONS or not row["item_a"].strip() or not row["item_b"].strip():
            raise EvidensError(
                f"{path}:{line}: expected two items and a decision of {' or '.join(PIN_DECISIONS)}, "
                f"got decision {row['decision']!r}"
            )
        pins.append(
            Pin(
                core_of(row["item_a"]).key,
                core_of(row["item_b"]).key,
                decision == "same",
                where=f"{path}: line {line}",
                items=(row["item_a"], row["item_b"]),
            )
        )
    return pins


class CriteriaCatalogue:
    """Known criteria, and the matching that gives every answer on an effort its criterion_id."""

    def __init__(
        self,
        criteria: list[Criterion] | None = None,
        embedder: Embedder | None = None,
        threshold: float = MERGE_THRESHOLD,
        pins: list[Pin] | None = None,
    ):
        self.criteria: dict[str, Criterion] = {c.criterion_id: c for c in criteria or []}
        self.threshold = threshold
        self.pins = list(pins or [])
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

    def similarity(self, item: str, criterion: Criterion) -> float:
        """How alike an item is to a known criterion: the best over the criterion's phrasings."""
        core = core_of(item)
        others = [core_of(p) for p in criterion.wordings]
        vectors = self._vectors_of([core.text, *(o.text for o in others)])
        return max(
            similarity(core, o, float(v @ vectors[0])) for o, v in zip(others, vectors[1:], strict=True)
        )

    def _match(self, item: str, taken: set[str]) -> str | None:
        """The known criterion that item means, or None: an equal core, then a reviewer's pin, then the most
        similar criterion at or above the threshold."""
        key = core_of(item).key
        keys = {c.criterion_id: c.core_keys for c in self.criteria.values() if c.criterion_id not in taken}
        candidates = [self.criteria[criterion_id] for criterion_id in keys]
        for criterion in candidates:
            if key in keys[criterion.criterion_id]:
                return criterion.criterion_id
        for criterion in candidates:
            if any(pin.same and pin.concerns(key, keys[criterion.criterion_id]) for pin in self.pins):
                return criterion.criterion_id
        candidates = [
            c
            for c in candidates
            if not any(not pin.same and pin.concerns(key, keys[c.criterion_id]) for pin in self.pins)
        ]
        if not candidates:
            return None
        scores = [self.similarity(item, c) for c in candidates]
        best = int(np.argmax(scores))
        return candidates[best].criterion_id if scores[best] >= self.threshold else None

    def idle_pins(self) -> list[str]:
        """One line per pin naming an item that no criterion of the catalogue has as a phrasing (or core): a pin
        that does nothing, most likely a misspelt item; the file and line of each named."""
        known = set().union(*(c.core_keys for c in self.criteria.values()))
        return [
            f"{pin.where}: item {item!r} is in no criterion of the catalogue, so the pin does nothing "
            "(copy the item's wording from `evidens criteria`)"
            for pin in self.pins
            for key, item in zip((pin.key_a, pin.key_b), pin.items, strict=True)
            if key not in known
        ]

    def near_misses(self, margin: float = 0.15) -> list[tuple[float, Criterion, Criterion]]:
        """Pairs of distinct criteria never answered in one test, with a similarity within `margin` below the
        threshold (or above it, kept apart by a pin), most similar first: what a reviewer should look at."""
        found = []
        for a, b in combinations(sorted(self.criteria.values(), key=lambda c: c.criterion_id), 2):
            if a.tests & b.tests and a.target_groups & b.target_groups:
                continue  # answered in one test: different by construction
            score = max(self.similarity(p, b) for p in a.wordings)
            if score >= self.threshold - margin:
                found.append((score, a, b))
        return sorted(found, key=lambda f: (-f[0], f[1].criterion_id, f[2].criterion_id))

    def assign(self, efforts: list[Effort]) -> None:
        """Set criterion_id on every answer of every effort (in place) and record where each criterion appears."""
        answers = [
            (effort.effort_id, test_index, test, answer)
            for effort in efforts
            for test_index, test in enumerate(effort.tests)
            for answer in test.answers
        ]
        # Sorted by core and wording, so that the same set of pages gives the same ids in any input order.
        answers.sort(key=lambda a: (core_of(a[3].item).key, criterion_key(a[3].item), a[0], a[1]))
        used_in_test: dict[tuple[str, int], set[str]] = defaultdict(set)
        for effort_id, test_index, test, answer in answers:
            canonical = canonical_criterion(answer.item)
            taken = used_in_test[(effort_id, test_index)]
            criterion_id = self._match(answer.item, taken)
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


def merged_criteria(catalogue: CriteriaCatalogue) -> list[Criterion]:
    """Criteria that join phrasings with different cores: the merges a reviewer may want to check."""
    return [
        c
        for c in sorted(catalogue.criteria.values(), key=lambda c: c.criterion_id)
        if len({core_of(p).key for p in c.phrasings}) > 1
    ]


NEAR_MISS_COLUMNS = ("similarity", "criterion_a", "criterion_b", "item_a", "item_b")


def near_miss_rows(catalogue: CriteriaCatalogue, margin: float) -> list[dict[str, str]]:
    """The near-misses as rows a reviewer can turn into pins (item_a, item_b are real phrasings)."""
    return [
        {
            "similarity": f"{score:.3f}",
            "criterion_a": a.criterion_id,
            "criterion_b": b.criterion_id,
            "item_a": a.wordings[0],
            "item_b": b.wordings[0],
        }
        for score, a, b in catalogue.near_misses(margin)
    ]
