"""Evaluate evidence retrieval against the gold set, and fit the ranking settings (hybrid weight, documented model).

`python -m pipeline.evidence_eval [--corpus DIR] [--write-calibration]` prints the README's tables."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from pipeline.corpus import load_efforts
from pipeline.defaults import DEFAULT_CACHE, DEFAULT_CORPUS
from pipeline.embed import CachedEmbedder, get_embedder
from pipeline.evidence import CALIBRATION_FILE, LEXICAL_ONLY, CriterionScores, fit_lexical, score_criteria
from pipeline.segment import segment_efforts

GOLD_FILE = Path(__file__).resolve().parents[1] / "tests" / "gold" / "evidence_gold.json"
ALPHAS = tuple(round(a, 1) for a in np.linspace(0, 1, 11))
CALIBRATED_EMBEDDERS = ("e5-offline", "tfidf")


@dataclass(frozen=True)
class GoldCriterion:
    effort_id: str
    criterion_id: str
    relevant: frozenset[tuple[str, int]]  # (section, index)


def load_gold(efforts_by_municipality: dict, path: Path = GOLD_FILE) -> list[GoldCriterion]:
    rows = json.loads(path.read_text(encoding="utf-8"))["criteria"]
    return [
        GoldCriterion(
            efforts_by_municipality[row["municipality"]].effort_id,
            row["criterion_id"],
            frozenset((r["section"], r["index"]) for r in row["relevant"]),
        )
        for row in rows
    ]


def first_relevant_rank(item: CriterionScores, relevant: frozenset, alpha: float) -> int | None:
    order = item.ranked(alpha)
    for rank, index in enumerate(order, start=1):
        sentence = item.candidates[index]
        if (sentence.section, sentence.index) in relevant:
            return rank
    return None


def rank_metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """hit@1, hit@3 and MRR from the rank of each criterion's first relevant sentence (None: never found)."""
    return {
        "n": len(ranks),
        "hit@1": float(np.mean([r == 1 for r in ranks])),
        "hit@3": float(np.mean([r is not None and r <= 3 for r in ranks])),
        "MRR": float(np.mean([1 / r if r else 0.0 for r in ranks])),
    }


def retrieval_metrics(
    pairs: Sequence[tuple[CriterionScores, GoldCriterion]], alpha: float
) -> dict[str, float]:
    """hit@1, hit@3 and MRR over the criteria that have gold evidence."""
    return rank_metrics([first_relevant_rank(s, g.relevant, alpha) for s, g in pairs if g.relevant])


def random_ranking_metrics(pairs: Sequence[tuple[CriterionScores, GoldCriterion]]) -> dict[str, float]:
    """Expected metrics of a uniformly random ordering (exact, by the hypergeometric first-hit law)."""
    hits1, hits3, mrr = [], [], []
    for scores, gold in pairs:
        if not gold.relevant:
            continue
        n, m = len(scores.candidates), len(gold.relevant)
        miss = [1.0]  # P(first r candidates all irrelevant)
        for r in range(1, n + 1):
            miss.append(miss[-1] * max(n - m - r + 1, 0) / (n - r + 1))
        first_hit = [miss[r - 1] - miss[r] for r in range(1, n + 1)]
        hits1.append(first_hit[0])
        hits3.append(sum(first_hit[:3]))
        mrr.append(sum(p / r for r, p in enumerate(first_hit, start=1)))
    return {
        "n": len(hits1),
        "hit@1": float(np.mean(hits1)),
        "hit@3": float(np.mean(hits3)),
        "MRR": float(np.mean(mrr)),
    }


def best_alpha(pairs: Sequence[tuple[CriterionScores, GoldCriterion]]) -> float:
    """The alpha with the highest MRR (ties: the smaller alpha, i.e. the more lexical)."""
    return max(ALPHAS, key=lambda a: (retrieval_metrics(pairs, a)["MRR"], -a))


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


@dataclass
class EmbedderReport:
    name: str
    rows: list[tuple[str, dict[str, float]]]
    alpha: float
    documented: dict[str, float]
    settings: dict[str, float]


def evaluate_embedder(
    name: str, efforts, sentences, gold: list[GoldCriterion], cache: Path
) -> EmbedderReport:
    lexical = fit_lexical(sentences)
    embedder = lexical if name == "tfidf" else CachedEmbedder(get_embedder(name), cache)
    labelled = [e for e in efforts if e.tests]
    scores = {
        (s.effort_id, s.criterion_id): s for s in score_criteria(labelled, sentences, embedder, lexical)
    }
    pairs = [(scores[(g.effort_id, g.criterion_id)], g) for g in gold]
    pages = sorted({g.effort_id for g in gold})
    alpha = best_alpha(pairs)
    held_out_ranks: list[tuple[CriterionScores, GoldCriterion]] = []
    held_out_alphas = []
    for page in pages:
        tune = [p for p in pairs if p[1].effort_id != page]
        held_out_alphas.append(best_alpha(tune))
        held_out_ranks.append((held_out_alphas[-1], [p for p in pairs if p[1].effort_id == page]))
    held_out = _pooled(held_out_ranks)
    rows = [
        ("random ranking (expected)", random_ranking_metrics(pairs)),
        ("lexical only (tfidf, alpha=0)", retrieval_metrics(pairs, 0.0)),
    ]
    if name != "tfidf":
        rows += [
            (f"dense only ({name}, alpha=1)", retrieval_metrics(pairs, 1.0)),
            (f"hybrid, alpha={alpha} tuned on both pages (in-sample)", retrieval_metrics(pairs, alpha)),
            (
                f"hybrid, alpha tuned on the other page (held out; alphas {[float(a) for a in held_out_alphas]})",
                held_out,
            ),
        ]
    feature = "lexical" if name == "tfidf" else "dense"
    x, y = documented_features(pairs, feature)
    predictions, probabilities = np.zeros(len(y), bool), np.zeros(len(y))
    for page in pages:
        test = np.array([g.effort_id == page for _, g in pairs])
        model = fit_documented(x[~test], y[~test])
        probabilities[test] = model.predict_proba(x[test])[:, 1]
        predictions[test] = probabilities[test] >= 0.5
    documented = {
        "n": len(y),
        "documented (gold)": int(y.sum()),
        "accuracy, page held out": float(np.mean(predictions == y)),
        "balanced accuracy, page held out": float(balanced_accuracy_score(y, predictions)),
        "AUC, page held out": float(roc_auc_score(y, probabilities)),
        "AUC of the raw score": float(roc_auc_score(y, x[:, 0])),
        "majority baseline accuracy": float(max(y.mean(), 1 - y.mean())),
    }
    full = fit_documented(x, y)
    settings = {
        "alpha": alpha if name != "tfidf" else 0.0,
        "intercept": float(full.intercept_[0]),
        "slope": float(full.coef_[0][0]),
        "feature": feature,
    }
    return EmbedderReport(name, rows, alpha, documented, settings)


def _pooled(groups) -> dict[str, float]:
    """Metrics over several pages, each ranked with its own alpha, pooled over criteria."""
    return rank_metrics(
        [first_relevant_rank(s, g.relevant, a) for a, pairs in groups for s, g in pairs if g.relevant]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--embedders", nargs="+", default=list(CALIBRATED_EMBEDDERS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--write-calibration", action="store_true")
    args = parser.parse_args()
    efforts = [e for e in load_efforts(args.corpus) if e.tests]
    sentences = list(segment_efforts(efforts))  # the same sentences find_evidence fits its IDF on
    gold = load_gold({e.municipality: e for e in efforts if e.kind == "effort_page"})
    table: dict[str, dict[str, float]] = {}
    for name in args.embedders:
        report = evaluate_embedder(name, efforts, sentences, gold, args.cache)
        table[name] = report.settings
        print(f"\n### {name}: evidence retrieval (gold: {report.rows[0][1]['n']} criteria with evidence)\n")
        print("| ranking | hit@1 | hit@3 | MRR |\n|---|---|---|---|")
        for label, m in report.rows:
            print(f"| {label} | {m['hit@1']:.2f} | {m['hit@3']:.2f} | {m['MRR']:.2f} |")
        d = report.documented
        print(
            f"\ndocumented flag ({d['n']} criteria, {d['documented (gold)']} documented in gold): "
            f"with the page held out accuracy {d['accuracy, page held out']:.2f}, balanced accuracy "
            f"{d['balanced accuracy, page held out']:.2f}, AUC {d['AUC, page held out']:.2f}; AUC of the raw best "
            f"score {d['AUC of the raw score']:.2f}; majority baseline accuracy {d['majority baseline accuracy']:.2f}"
        )
    if args.write_calibration:
        if "tfidf" not in table:
            parser.error(
                "--write-calibration needs tfidf among --embedders (it gives the lexical-only settings)"
            )
        # embedders without their own calibration: tfidf's documented model, an even hybrid
        table[LEXICAL_ONLY] = {**table["tfidf"], "alpha": 0.5}
        CALIBRATION_FILE.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
