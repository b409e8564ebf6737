"""Whether two criteria items mean the same criterion: compare their core requirements.

An item is reduced to its core requirement (`core_requirement`: normalised text, answer-level wording and the
test's frames removed at every answer level). Equal cores (up to case and punctuation) are one criterion.
Otherwise two cores are compared on what they require:
- `lexical`: the Dice overlap of their content lemmas (the actor, the action, the object as words);
- `dense`: the e5 cosine of the two cores;
- their measurable parts: two cores that both state a frequency, time limit or duration and state different
  ones are different criteria, however alike their words ("hver 2. uge" against "inden for de første 2 uger").
`similarity` is the mean of lexical and dense; MERGE_THRESHOLD was chosen on the gold pairs of
tests/gold/criteria_pairs.csv and the within-test pairs of the corpus (`python -m pipeline.ingest.alignment`,
docs/criteria_alignment.txt).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from pathlib import Path

import numpy as np

from pipeline.ingest.wording import core_requirement, criterion_key
from pipeline.textnorm import content_lemmas

MERGE_THRESHOLD = 0.85
GOLD_PAIRS = Path(__file__).resolve().parents[2] / "tests" / "gold" / "criteria_pairs.csv"
GENERATED_PAIRS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "criteria_pairs_generated.csv"


@dataclass(frozen=True)
class Core:
    """One item's core requirement, ready to compare."""

    text: str
    key: str
    lemmas: frozenset[str]
    parts: frozenset[tuple[str, float]]  # (kind, normalised value) of each measurable part


@cache
def core_of(item: str) -> Core:
    from pipeline.requirements import requirement_of

    text = core_requirement(item)
    requirement = requirement_of(text)
    return Core(
        text=text,
        key=criterion_key(text),
        lemmas=frozenset(content_lemmas(text)),
        parts=frozenset((q.kind, round(q.value, 3)) for q in requirement.measurable),
    )


def lexical_similarity(a: Core, b: Core) -> float:
    """Dice overlap of the two cores' content lemmas."""
    if not a.lemmas or not b.lemmas:
        return 0.0
    return 2 * len(a.lemmas & b.lemmas) / (len(a.lemmas) + len(b.lemmas))


def parts_conflict(a: Core, b: Core) -> bool:
    """Both state measurable parts, and not the same ones."""
    return bool(a.parts) and bool(b.parts) and a.parts != b.parts


def similarity(a: Core, b: Core, dense: float) -> float:
    """How alike two cores are, 0..1: 1 for equal cores, 0 where their measurable parts conflict, else the
    mean of the lexical and the dense similarity."""
    if a.key == b.key:
        return 1.0
    if parts_conflict(a, b):
        return 0.0
    return (lexical_similarity(a, b) + dense) / 2


def pair_scores(pairs: list[tuple[str, str]], embedder) -> list[float]:
    """similarity() of each (item, item) pair, the dense part from `embedder` (role query)."""
    cores = [(core_of(a), core_of(b)) for a, b in pairs]
    texts = list(dict.fromkeys(c.text for pair in cores for c in pair))
    vectors = dict(zip(texts, embedder.embed(texts, "query"), strict=True))
    return [similarity(a, b, float(vectors[a.text] @ vectors[b.text])) for a, b in cores]


def merge_precision_recall(scores: list[float], same: list[bool], threshold: float) -> tuple[float, float]:
    """Precision and recall of merging at `threshold` (1.0 where nothing is merged, or nothing is the same)."""
    from sklearn.metrics import precision_score, recall_score

    merged = np.array(scores) >= threshold
    return (
        float(precision_score(same, merged, zero_division=1.0)),
        float(recall_score(same, merged, zero_division=1.0)),
    )


def main(argv: list[str]) -> None:
    """Print the gold pairs' scores, and precision and recall of merges across thresholds:
    `python -m pipeline.ingest.alignment [CORPUS_DIR]` (default: corpus/)."""
    from pipeline.corpus import load_efforts
    from pipeline.defaults import DEFAULT_CORPUS
    from pipeline.embed import get_embedder
    from pipeline.tables import read_csv

    efforts = load_efforts(Path(argv[0]) if argv else DEFAULT_CORPUS)
    within = [
        (a, b)
        for effort in efforts
        for test in effort.tests
        for a, b in combinations(sorted({answer.item for answer in test.answers}), 2)
    ]
    gold = read_csv(GOLD_PAIRS, ("relation", "item_a", "item_b", "source"))
    generated = read_csv(GENERATED_PAIRS, ("relation", "item_a", "item_b", "origin"))
    embedder = get_embedder("e5-offline")
    sets = {
        "real: gold pairs (cross-test and cross-page, tests/gold/criteria_pairs.csv)": [
            (r["item_a"], r["item_b"], r["relation"] == "same") for r in gold
        ],
        "real: distinct items of one test (different by construction)": [(a, b, False) for a, b in within],
        "generated rewordings (tests/fixtures/criteria_pairs_generated.csv)": [
            (r["item_a"], r["item_b"], r["relation"] == "same") for r in generated
        ],
    }
    scored = {
        name: (pair_scores([(a, b) for a, b, _ in rows], embedder), rows) for name, rows in sets.items()
    }
    for name, (scores, rows) in scored.items():
        same = [s for s, (_, _, t) in zip(scores, rows, strict=True) if t]
        different = [s for s, (_, _, t) in zip(scores, rows, strict=True) if not t]
        print(f"\n{name}: {len(same)} same, {len(different)} different")
        if same:
            print(f"  same: lowest {min(same):.3f}")
        if different:
            print(f"  different: highest {max(different):.3f}")
        for score, (a, b, truth) in sorted(zip(scores, rows, strict=True), reverse=True)[:8]:
            print(
                f"  {score:.3f} {'same' if truth else 'diff'}  {core_of(a).text[:60]!r} ~ {core_of(b).text[:60]!r}"
            )
    real = [
        (s, t)
        for name, (scores, rows) in scored.items()
        if name.startswith("real")
        for s, (_, _, t) in zip(scores, rows, strict=True)
    ]
    every = [(s, t) for scores, rows in scored.values() for s, (_, _, t) in zip(scores, rows, strict=True)]
    print(
        "\n| threshold | merges: precision, real pairs | recall, real pairs | precision, all | recall, all |"
    )
    print("|---|---|---|---|---|")
    for threshold in (0.7, 0.75, 0.8, 0.82, MERGE_THRESHOLD, 0.9, 0.95):
        p_real, r_real = merge_precision_recall([s for s, _ in real], [t for _, t in real], threshold)
        p_all, r_all = merge_precision_recall([s for s, _ in every], [t for _, t in every], threshold)
        mark = " (in use)" if threshold == MERGE_THRESHOLD else ""
        print(f"| {threshold}{mark} | {p_real:.2f} | {r_real:.2f} | {p_all:.2f} | {r_all:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
