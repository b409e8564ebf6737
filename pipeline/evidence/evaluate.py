"""Evaluate evidence retrieval against the gold set, and fit the documented model.

`python -m pipeline.evidence.evaluate [--corpus DIR] [--write-calibration]` prints the README's tables: hit@1, hit@3,
MRR and nDCG, each with a 95% bootstrap interval over criteria, for every ranking component on its own, for the
fused ranking, and per kind of criterion (the test it belongs to; whether it has a measurable part)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, ndcg_score, roc_auc_score

from pipeline.corpus import load_efforts
from pipeline.defaults import DEFAULT_CACHE, DEFAULT_CORPUS
from pipeline.evidence.retrieval import (
    CALIBRATION_FILE,
    FUSED,
    LEXICAL_ONLY,
    CriterionScores,
    dense_embedder,
    fit_lexical,
    score_criteria,
)
from pipeline.evidence.segment import segment_efforts
from pipeline.io import atomic_write_text
from pipeline.stats import mean_with_interval, with_interval

GOLD_FILE = Path(__file__).resolve().parents[2] / "tests" / "gold" / "evidence_gold.json"
CALIBRATED_EMBEDDERS = ("e5-offline", "tfidf")
RANK_METRICS = ("hit@1", "hit@3", "MRR", "nDCG@10")
#: The rankings compared: name -> the components fused (one component: that ranking alone).
RANKINGS: dict[str, tuple[str, ...]] = {
    "lexical baseline (character TF-IDF)": ("lexical",),
    "dense (e5), sentence": ("dense",),
    "dense (e5), sentence in context": ("dense_context",),
    "BM25 on requirement parts": ("bm25",),
    "BM25 on requirement parts, sentence in context": ("bm25_context",),
    "RRF: dense + BM25": ("dense", "bm25"),
    "RRF: dense + lexical + BM25": ("dense", "lexical", "bm25"),
    "RRF: dense + lexical + BM25 + dense in context": ("dense", "lexical", "bm25", "dense_context"),
    "RRF: dense + lexical + BM25 + both in context": (
        "dense",
        "lexical",
        "bm25",
        "dense_context",
        "bm25_context",
    ),
    "RRF: dense + lexical + BM25 + BM25 in context (shipped before the stated detector)": (
        "dense",
        "lexical",
        "bm25",
        "bm25_context",
    ),
    "late interaction (the stated detector's phrases), sentence": ("late_interaction_raw",),
    "late interaction, generic sentences down-weighted": ("late_interaction",),
    "RRF: the four + late interaction": ("dense", "lexical", "bm25", "bm25_context", "late_interaction_raw"),
    "**RRF: the four + late interaction, generic sentences down-weighted (shipped)**": FUSED,
    "RRF: dense + BM25 + late interaction, generic down-weighted": ("dense", "bm25", "late_interaction"),
}


@dataclass(frozen=True)
class GoldCriterion:
    effort_id: str
    criterion_id: str
    relevant: frozenset[tuple[str, int]]  # (section, index)
    test_kind: str = ""


def load_gold(efforts_by_municipality: dict, path: Path = GOLD_FILE) -> list[GoldCriterion]:
    rows = json.loads(path.read_text(encoding="utf-8"))["criteria"]
    gold = []
    for row in rows:
        effort = efforts_by_municipality[row["municipality"]]
        kinds = {a.criterion_id: t.kind for t in effort.tests for a in t.answers}
        gold.append(
            GoldCriterion(
                effort.effort_id,
                row["criterion_id"],
                frozenset((r["section"], r["index"]) for r in row["relevant"]),
                kinds.get(row["criterion_id"], ""),
            )
        )
    return gold


def relevance(item: CriterionScores, gold: GoldCriterion) -> np.ndarray:
    return np.array([(s.section, s.index) in gold.relevant for s in item.candidates], dtype=float)


def criterion_metrics(
    item: CriterionScores, gold: GoldCriterion, components: Sequence[str]
) -> dict[str, float]:
    """hit@1, hit@3, reciprocal rank and nDCG@10 of one criterion under one ranking."""
    relevant = relevance(item, gold)
    order = item.ranked(None, components)
    hits = np.flatnonzero(relevant[order])
    first = int(hits[0]) + 1 if len(hits) else None
    # nDCG of the fused order: scores that sort as the ranking does (ties broken in page order)
    ranking_scores = np.empty(len(order))
    ranking_scores[order] = np.arange(len(order), 0, -1)
    return {
        "hit@1": float(first == 1),
        "hit@3": float(first is not None and first <= 3),
        "MRR": 1 / first if first else 0.0,
        "nDCG@10": float(ndcg_score([relevant], [ranking_scores], k=10))
        if len(order) > 1
        else float(first == 1),
    }


def random_criterion_metrics(item: CriterionScores, gold: GoldCriterion) -> dict[str, float]:
    """Expected metrics of a uniformly random order (hit@k and MRR exact by the first-hit law; nDCG by the
    expected gain at each rank, m/n, over the ideal DCG)."""
    n, m = len(item.candidates), len(gold.relevant)
    miss = [1.0]  # P(first r candidates all irrelevant)
    for r in range(1, n + 1):
        miss.append(miss[-1] * max(n - m - r + 1, 0) / (n - r + 1))
    first_hit = [miss[r - 1] - miss[r] for r in range(1, n + 1)]
    discounts = 1 / np.log2(np.arange(2, min(n, 10) + 2))
    return {
        "hit@1": first_hit[0],
        "hit@3": sum(first_hit[:3]),
        "MRR": sum(p / r for r, p in enumerate(first_hit, start=1)),
        "nDCG@10": float(discounts.sum() * m / n / discounts[: min(m, 10)].sum()),
    }


def summarise(per_criterion: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over criteria, with its 95% bootstrap interval (criteria resampled)."""
    summary: dict[str, float] = {"n": len(per_criterion)}
    for name in RANK_METRICS:
        mean, low, high = mean_with_interval([m[name] for m in per_criterion])
        summary[name], summary[f"{name}_low"], summary[f"{name}_high"] = mean, low, high
    return summary


def retrieval_table(
    pairs: Sequence[tuple[CriterionScores, GoldCriterion]],
    keep: Callable[[GoldCriterion], bool] = lambda g: True,
) -> dict[str, dict[str, float]]:
    """Every ranking's summary over the gold criteria with evidence that `keep` selects, random first."""
    chosen = [(s, g) for s, g in pairs if g.relevant and keep(g)]
    table = {"random order (expected, exact)": summarise([random_criterion_metrics(s, g) for s, g in chosen])}
    for name, components in RANKINGS.items():
        table[name] = summarise([criterion_metrics(s, g, components) for s, g in chosen])
    return table


def markdown(table: dict[str, dict[str, float]]) -> str:
    lines = [f"| ranking (n = {next(iter(table.values()))['n']}) | {' | '.join(RANK_METRICS)} |"]
    lines.append("|---" * (len(RANK_METRICS) + 1) + "|")
    for name, m in table.items():
        cells = [with_interval(m, k) for k in RANK_METRICS]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def documented_features(
    pairs: Sequence[tuple[CriterionScores, GoldCriterion]], feature: str
) -> tuple[np.ndarray, np.ndarray]:
    """The best score of each criterion on its page (one column), and whether gold has evidence for it."""
    x = np.array([[getattr(s, feature).max()] for s, _ in pairs])
    y = np.array([bool(g.relevant) for _, g in pairs])
    return x, y


def fit_documented(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    # One feature spanning ~0.1 of cosine: regularisation would squash every probability towards 0.5.
    return LogisticRegression(C=1e4, class_weight="balanced").fit(x, y)


def documented_report(
    pairs: Sequence[tuple[CriterionScores, GoldCriterion]], feature: str
) -> tuple[dict[str, float], dict[str, float | str]]:
    """The documented flag with each page held out in turn, and the settings fitted on both pages."""
    x, y = documented_features(pairs, feature)
    pages = sorted({g.effort_id for _, g in pairs})
    predictions, probabilities = np.zeros(len(y), bool), np.zeros(len(y))
    for page in pages:
        test = np.array([g.effort_id == page for _, g in pairs])
        model = fit_documented(x[~test], y[~test])
        probabilities[test] = model.predict_proba(x[test])[:, 1]
        predictions[test] = probabilities[test] >= 0.5
    report = {
        "n": len(y),
        "documented (gold)": int(y.sum()),
        "accuracy, page held out": float(np.mean(predictions == y)),
        "balanced accuracy, page held out": float(balanced_accuracy_score(y, predictions)),
        "AUC, page held out": float(roc_auc_score(y, probabilities)),
        "AUC of the raw score": float(roc_auc_score(y, x[:, 0])),
        "majority baseline accuracy": float(max(y.mean(), 1 - y.mean())),
    }
    full = fit_documented(x, y)
    settings = {"intercept": float(full.intercept_[0]), "slope": float(full.coef_[0][0]), "feature": feature}
    return report, settings


def gold_pairs(name: str, efforts, sentences, cache: Path) -> list[tuple[CriterionScores, GoldCriterion]]:
    """Every gold criterion with its scores under embedder `name`."""
    lexical = fit_lexical(sentences)
    embedder = dense_embedder(name, lexical, cache)
    labelled = [e for e in efforts if e.tests]
    scores = {
        (s.effort_id, s.criterion_id): s
        for s in score_criteria(labelled, sentences, embedder, lexical, with_context=True)
    }
    gold = load_gold({e.municipality: e for e in labelled if e.kind == "effort_page"})
    return [(scores[(g.effort_id, g.criterion_id)], g) for g in gold]


def _has_measurable_part(scores: CriterionScores) -> bool:
    from pipeline.requirements import requirement_of

    return bool(requirement_of(scores.query).measurable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--embedders", nargs="+", default=list(CALIBRATED_EMBEDDERS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--write-calibration", action="store_true")
    args = parser.parse_args()
    efforts = [e for e in load_efforts(args.corpus) if e.tests]
    sentences = list(segment_efforts(efforts))  # the same sentences find_evidence fits its IDF on
    table: dict[str, dict] = {}
    for name in args.embedders:
        pairs = gold_pairs(name, efforts, sentences, args.cache)
        feature = "lexical" if name == "tfidf" else "dense"
        documented, table[name] = documented_report(pairs, feature)
        if name != "tfidf":
            measurable = frozenset(g.criterion_id for s, g in pairs if _has_measurable_part(s))
            groups = {
                "all criteria with gold evidence": lambda g: True,
                "Evidenstest": lambda g: g.test_kind == "evidence_test",
                "God praksis test": lambda g: g.test_kind == "good_practice_test",
                "with a measurable part (frequency, time limit, duration)": lambda g, m=measurable: (
                    g.criterion_id in m
                ),
                "without one": lambda g, m=measurable: g.criterion_id not in m,
            }
            for title, keep in groups.items():
                print(f"\n### {name}: {title}\n\n{markdown(retrieval_table(pairs, keep))}")
        d = documented
        print(
            f"\n{name}: documented flag ({d['n']} criteria, {d['documented (gold)']} documented in gold): "
            f"with the page held out accuracy {d['accuracy, page held out']:.2f}, balanced accuracy "
            f"{d['balanced accuracy, page held out']:.2f}, AUC {d['AUC, page held out']:.2f}; AUC of the raw best "
            f"score {d['AUC of the raw score']:.2f}; majority baseline accuracy {d['majority baseline accuracy']:.2f}"
        )
    if args.write_calibration:
        if "tfidf" not in table:
            parser.error(
                "--write-calibration needs tfidf among --embedders (it gives the lexical-only settings)"
            )
        table[LEXICAL_ONLY] = table["tfidf"]  # embedders without their own calibration: tfidf's model
        atomic_write_text(CALIBRATION_FILE, json.dumps(table, indent=1) + "\n")
        print(f"\nwrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
