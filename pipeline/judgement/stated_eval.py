"""Stated or silent, measured: every candidate detector under leave-one-source-out on the statement gold.

`python -m pipeline.judgement.stated_eval [--out docs/stated_eval.txt]` (needs `evidens ingest corpus/raw` first). A fold
is one source file (Tårnby, Odsherred, the theme page's seven municipalities, the JobFirst report): each
candidate's calibration is fitted on the other sources' gold pairs and scored on the held-out one. Positive =
the gold says states or partly. Reported per candidate: ROC AUC pooled over the out-of-fold probabilities (with
a bootstrap interval over pairs), per fold and per record, accuracy at the shipped threshold and the Brier score.
Candidates are ranked by their worst fold's AUC (steadiness), the mean beside it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

from pipeline.defaults import STATED_THRESHOLD
from pipeline.evidence.late_interaction import (
    DETECTOR_SCORES,
    NO_VOCABULARY,
    PageScores,
    load_vocabulary,
    score_page,
)
from pipeline.io import atomic_write_text
from pipeline.judgement.stated import StatedDetector, StatementLabel, load_statement_gold

CANDIDATES: dict[str, tuple[tuple[str, ...], bool]] = {  # name -> (scores, centred on the page)
    "sentence cosine (today's P(stated) feature)": (("sentence_cosine",), False),
    "late interaction, weakest phrases (shipped)": (DETECTOR_SCORES, False),
    "late interaction, centred on the page": (("late_interaction",), True),
    "term coverage (rarity-weighted)": (("term_coverage",), False),
    "term coverage, centred on the page": (("term_coverage",), True),
    "requirement parts (BM25)": (("requirement_bm25",), False),
    "late interaction + term coverage": (("late_interaction", "term_coverage"), False),
    "all four": (("late_interaction", "term_coverage", "sentence_cosine", "requirement_bm25"), False),
}
SHIPPED = "late interaction, weakest phrases (shipped)"


@dataclass
class Pair:
    label: StatementLabel
    fold: str
    features: dict[tuple[str, bool], float]


def fold_of(source_file: str) -> str:
    return Path(source_file).stem


def page_scores(
    corpus: Path, labels: Path, embedder_name: str, cache: Path | None, vocabulary=None, **cuts
) -> dict[str, PageScores]:
    """Every criterion of the catalogue scored on every record of the corpus (`cuts`: `score_page`'s
    cut_windows and cut_phrases, for a comparison)."""
    from pipeline.corpus import load_efforts
    from pipeline.evidence.retrieval import dense_embedder, fit_lexical
    from pipeline.evidence.segment import segment_efforts
    from pipeline.ingest.criteria import CriteriaCatalogue
    from pipeline.ingest.wording import core_requirement

    efforts = load_efforts(corpus)
    catalogue = CriteriaCatalogue.load(labels / "criteria.csv")
    texts = {cid: core_requirement(c.canonical_text) for cid, c in sorted(catalogue.criteria.items())}
    sentences = list(segment_efforts(efforts))
    embedder = dense_embedder(embedder_name, fit_lexical(sentences), cache)
    by_effort: dict[str, list] = {}
    for s in sentences:
        by_effort.setdefault(s.effort_id, []).append(s)
    return {
        e.effort_id: score_page(
            e.effort_id, by_effort.get(e.effort_id, []), texts, embedder, vocabulary, **cuts
        )
        for e in efforts
    }


def pairs_of(gold: Sequence[StatementLabel], scores: dict[str, PageScores]) -> list[Pair]:
    pairs = []
    for label in gold:
        page = scores[label.record_id]
        i = page.criterion_ids.index(label.criterion_id)
        features = {}
        for name in page.raw:
            features[(name, False)] = float(page.raw[name][i])
            features[(name, True)] = float(page.centred(name)[i])
        pairs.append(Pair(label, fold_of(label.source_file), features))
    return pairs


def out_of_fold(pairs: Sequence[Pair], names: Sequence[str], centred: bool) -> np.ndarray:
    """P(stated) of every pair from a detector fitted on the other folds' pairs."""
    X = np.array([[p.features[(n, centred)] for n in names] for p in pairs])
    y = np.array([p.label.stated for p in pairs])
    folds = np.array([p.fold for p in pairs])
    probability = np.zeros(len(pairs))
    for fold in dict.fromkeys(folds):
        held = folds == fold
        detector = StatedDetector(scores=tuple(names)).fit(X[~held], y[~held])
        probability[held] = detector.predict_proba(X[held])
    return probability


def stated_probabilities(
    corpus: Path, labels: Path, embedder_name: str, cache: Path | None
) -> dict[tuple[str, str], float]:
    """P(stated) of every catalogue criterion on every record of the corpus, from the shipped detector: out of
    source for the gold's pairs (fitted on the other source files' gold), fitted on all of the gold elsewhere."""
    gold = load_statement_gold(labels / "statement_gold.csv")
    scores = page_scores(corpus, labels, embedder_name, cache)
    pairs = pairs_of(gold, scores)
    known = dict(
        zip(
            ((p.label.record_id, p.label.criterion_id) for p in pairs),
            out_of_fold(pairs, DETECTOR_SCORES, False),
            strict=True,
        )
    )
    detector = StatedDetector().fit(
        [[p.features[(n, False)] for n in DETECTOR_SCORES] for p in pairs], [p.label.stated for p in pairs]
    )
    for record_id, page in scores.items():
        for criterion_id in page.criterion_ids:
            key = (record_id, criterion_id)
            if key not in known:
                known[key] = float(
                    detector.predict_proba(
                        [[page.raw[n][page.criterion_ids.index(criterion_id)] for n in DETECTOR_SCORES]]
                    )[0]
                )
    return {key: float(value) for key, value in known.items()}


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def bootstrap_auc(y: np.ndarray, p: np.ndarray, seed: int = 0, n: int = 1000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            values.append(roc_auc_score(y[i], p[i]))
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


@dataclass
class Result:
    name: str
    pooled: float
    interval: tuple[float, float]
    per_fold: dict[str, float]
    per_record: dict[str, float]
    accuracy: float
    brier: float
    stated_right: dict[str, tuple[int, int]]

    @property
    def worst(self) -> float:
        return min(self.per_fold.values())

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_fold.values())))


def evaluate(pairs: Sequence[Pair], candidates=CANDIDATES) -> list[Result]:
    y = np.array([p.label.stated for p in pairs])
    folds = np.array([p.fold for p in pairs])
    records = np.array([p.label.record_id for p in pairs])
    results = []
    for name, (names, centred) in candidates.items():
        p = out_of_fold(pairs, names, centred)
        right = (p >= STATED_THRESHOLD) == y
        results.append(
            Result(
                name=name,
                pooled=_auc(y, p),
                interval=bootstrap_auc(y, p),
                per_fold={f: _auc(y[folds == f], p[folds == f]) for f in dict.fromkeys(folds)},
                per_record={r: _auc(y[records == r], p[records == r]) for r in dict.fromkeys(records)},
                accuracy=float(right.mean()),
                brier=float(brier_score_loss(y, p)),
                stated_right={
                    f: (int(right[folds == f].sum()), int((folds == f).sum())) for f in dict.fromkeys(folds)
                },
            )
        )
    return sorted(results, key=lambda r: (-r.worst, -r.mean))


def table(results: Sequence[Result], pairs: Sequence[Pair]) -> str:
    folds = list(results[0].per_fold)
    y = np.array([p.label.stated for p in pairs])
    lines = [
        f"{len(pairs)} gold pairs ({int(y.sum())} states or partly, {int((~y).sum())} silent), "
        f"{len(folds)} folds (one per source file), threshold {STATED_THRESHOLD}; ranked by the worst fold's AUC",
        "",
        "| candidate | worst fold AUC | mean fold AUC | pooled AUC [95% CI] | "
        + " | ".join(f"AUC {f}" for f in folds)
        + " | accuracy | Brier |",
        "|---|---|---|---|" + "---|" * len(folds) + "---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.worst:.2f} | {r.mean:.2f} | {r.pooled:.2f} [{r.interval[0]:.2f}, {r.interval[1]:.2f}] | "
            + " | ".join(f"{r.per_fold[f]:.2f}" for f in folds)
            + f" | {r.accuracy:.2f} | {r.brier:.3f} |"
        )
    shipped = next(r for r in results if r.name == SHIPPED)
    lines += ["", f"shipped detector per record (AUC; right at {STATED_THRESHOLD} / pairs per fold):"]
    lines += [f"  {record}: {auc:.2f}" for record, auc in shipped.per_record.items()]
    lines += [f"  {fold}: {a} of {b} right" for fold, (a, b) in shipped.stated_right.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    from pipeline.defaults import DEFAULT_CACHE, DEFAULT_CORPUS, DEFAULT_EMBEDDER, DEFAULT_LABELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    gold = load_statement_gold(args.labels / "statement_gold.csv")
    pairs = pairs_of(gold, page_scores(args.corpus, args.labels, args.embedder, args.cache))
    text = table(evaluate(pairs), pairs)
    without = evaluate(
        pairs_of(gold, page_scores(args.corpus, args.labels, args.embedder, args.cache, NO_VOCABULARY)),
        {SHIPPED: CANDIDATES[SHIPPED]},
    )[0]
    with_vocabulary = load_vocabulary()
    text += (
        f"\n\nwithout the role/generic vocabulary ({len(with_vocabulary.canonical)} terms, pipeline/evidence/vocabulary.csv): "
        f"shipped pooled AUC {without.pooled:.2f}, worst fold {without.worst:.2f}, mean {without.mean:.2f}"
    )
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
