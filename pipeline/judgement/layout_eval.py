"""How the late interaction cuts pages and criteria, and what a cheaper cut would cost the detector.

    python -m pipeline.judgement.layout_eval [--corpus corpus] [--labels labels] [--cache PATH] [--out FILE]

The evidence stage embeds a page twice over: its sentences (the dense ranking) and its windows (the stated
detector), so its cost is bounded below by the windows' e5 tokens (e5's time is proportional to tokens:
benchmarks/bench_evidence.py, section 5). For each cut of the page into windows and of the criteria into phrases:
1. the detector under leave-one-source-out on the statement gold (worst fold AUC, mean, pooled: the shipped
   detector's calibration, `pipeline.judgement.stated_eval`), beside the e5 tokens of the windows as a share of
   the sentences' tokens, and of the catalogue's phrases;
2. the cut that would take the sentences out of the stage: the dense ranking read from the shipped windows (each
   sentence's best window, or its windows pooled into one vector) instead of the sentence's own embedding, on
   the evidence gold (hit@1, hit@3, MRR of the fused ranking), beside the shipped ranking.
Embeddings go through the project's cache, so a second run costs seconds. Figures: docs/layout_eval.txt.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from itertools import pairwise
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from pipeline.corpus import load_efforts
from pipeline.defaults import DEFAULT_CACHE, DEFAULT_CORPUS, DEFAULT_LABELS
from pipeline.embed import Embedder
from pipeline.embed.e5_offline import token_count
from pipeline.evidence import evaluate as evidence_eval
from pipeline.evidence.late_interaction import (
    PHRASE_WORDS,
    PhraseCut,
    Vocabulary,
    WindowCut,
    load_vocabulary,
    phrases,
    role_word,
    windows,
    words_of,
)
from pipeline.evidence.retrieval import FUSED, CriterionScores, dense_embedder, fit_lexical
from pipeline.evidence.segment import segment_efforts
from pipeline.ingest.criteria import CriteriaCatalogue
from pipeline.ingest.wording import core_requirement
from pipeline.io import atomic_write_text
from pipeline.judgement import stated_eval
from pipeline.judgement.stated import load_statement_gold
from pipeline.records import Sentence
from pipeline.textnorm import normalise_text


def even_windows(
    sentences: Sequence[Sentence], vocabulary: Vocabulary, size: int = 8, count=round
) -> tuple[list[str], list[int]]:
    """Each sentence in `count(words / size)` windows of (nearly) equal length, none overlapping."""
    texts, owners = [], []
    for position, sentence in enumerate(sentences):
        words = [role_word(w, vocabulary) for w in words_of(sentence.text)]
        if not words:
            continue
        k = max(1, count(len(words) / size))
        bounds = [round(i * len(words) / k) for i in range(k + 1)]
        for start, end in pairwise(bounds):
            texts.append(" ".join(words[start:end]))
            owners.append(position)
    return texts, owners


def remainder_windows(
    sentences: Sequence[Sentence], vocabulary: Vocabulary, size: int = 8
) -> tuple[list[str], list[int]]:
    """Windows of `size` words side by side, the sentence's remaining words a window of their own (joined to the
    one before when under half a window)."""
    texts, owners = [], []
    for position, sentence in enumerate(sentences):
        words = [role_word(w, vocabulary) for w in words_of(sentence.text)]
        if not words:
            continue
        starts = list(range(0, len(words), size))
        if len(starts) > 1 and len(words) - starts[-1] < size // 2:
            starts.pop()
        for start, end in zip(starts, [*starts[1:], len(words)], strict=True):
            texts.append(" ".join(words[start:end]))
            owners.append(position)
    return texts, owners


def side_by_side_phrases(text: str, vocabulary: Vocabulary, size: int = PHRASE_WORDS) -> list[str]:
    """The shipped phrases without their overlap: pieces of `size` words side by side, the last ending with the
    criterion."""
    from pipeline.requirements import content_words

    words = list(dict.fromkeys(role_word(w, vocabulary) for w in content_words(normalise_text(text))))
    if len(words) <= size:
        return [" ".join(words)] if words else []
    starts = list(range(0, len(words) - size + 1, size))
    if starts[-1] + size < len(words):
        starts.append(len(words) - size)
    return list(dict.fromkeys(" ".join(words[i : i + size]) for i in starts))


LAYOUTS: dict[str, tuple[WindowCut, PhraseCut]] = {
    "shipped: windows of 8 words side by side, the last ending with the sentence; phrases of 4 overlapping by 2": (
        windows,
        phrases,
    ),
    "windows of 8, the remainder a window of its own": (remainder_windows, phrases),
    "windows of about 8, even split (round(words / 8) windows)": (even_windows, phrases),
    "windows of at most 8, even split (ceil(words / 8) windows)": (
        partial(even_windows, count=math.ceil),
        phrases,
    ),
    "windows of about 7, even split": (partial(even_windows, size=7), phrases),
    "windows of 10 side by side": (partial(windows, size=10), phrases),
    "windows of 12 side by side": (partial(windows, size=12), phrases),
    "shipped windows, phrases of 4 side by side": (windows, side_by_side_phrases),
}


def layout_table(corpus: Path, labels: Path, cache: Path) -> list[str]:
    """Per cut: the shipped detector's leave-one-source-out AUCs and the e5 tokens of its windows and phrases."""
    gold = load_statement_gold(labels / "statement_gold.csv")
    vocabulary = load_vocabulary()
    body = [s for s in segment_efforts(load_efforts(corpus)) if not s.is_heading]
    catalogue = CriteriaCatalogue.load(labels / "criteria.csv")
    criteria = [core_requirement(c.canonical_text) for c in catalogue.criteria.values()]
    sentence_tokens = token_count([normalise_text(s.text) for s in body], "passage")
    by_effort: dict[str, list[Sentence]] = {}
    for sentence in body:
        by_effort.setdefault(sentence.effort_id, []).append(sentence)
    lines = [
        f"1. {len(gold)} statement-gold pairs, leave-one-source-out; {len(body)} sentences of the corpus's "
        f"{len(by_effort)} records = {sentence_tokens} e5 tokens; {len(criteria)} criteria",
        "",
        "| cut | worst fold AUC | mean fold AUC | pooled AUC | windows | window tokens / sentence tokens "
        "| phrases | phrase tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (cut_windows, cut_phrases) in LAYOUTS.items():
        scores = stated_eval.page_scores(
            corpus, labels, "e5-offline", cache, cut_windows=cut_windows, cut_phrases=cut_phrases
        )
        [result] = stated_eval.evaluate(
            stated_eval.pairs_of(gold, scores), {name: stated_eval.CANDIDATES[stated_eval.SHIPPED]}
        )
        window_texts = [t for page in by_effort.values() for t in cut_windows(page, vocabulary)[0]]
        phrase_texts = list(dict.fromkeys(p for c in criteria for p in cut_phrases(c, vocabulary)))
        lines.append(
            f"| {name} | {result.worst:.2f} | {result.mean:.2f} | {result.pooled:.2f} | {len(window_texts)} | "
            f"{token_count(window_texts, 'passage') / sentence_tokens:.2f} | {len(phrase_texts)} | "
            f"{token_count(phrase_texts, 'query')} |"
        )
    return lines


def window_readings(
    scores: CriterionScores, embedder: Embedder, vocabulary: Vocabulary
) -> dict[str, np.ndarray]:
    """Each candidate sentence's dense score read from its shipped windows: the best window, and the windows
    pooled into one vector (weighted by their words, as e5 pools a long text's pieces)."""
    texts, owners = windows(scores.candidates, vocabulary)
    vectors, owner = embedder.embed(texts, "passage"), np.array(owners)
    best = np.full(len(scores.candidates), -1.0)
    np.maximum.at(best, owner, vectors @ scores.query_vector)
    pooled = np.zeros((len(scores.candidates), vectors.shape[1]))
    np.add.at(pooled, owner, vectors * np.array([[len(t.split())] for t in texts]))
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True) + 1e-12
    return {"best window": best, "windows pooled": pooled @ scores.query_vector}


def dense_from_windows_table(corpus: Path, cache: Path) -> list[str]:
    """The evidence figures with the dense ranking read from the windows instead of the sentence's embedding."""
    efforts = [e for e in load_efforts(corpus) if e.tests]
    sentences = list(segment_efforts(efforts))
    pairs = evidence_eval.gold_pairs("e5-offline", efforts, sentences, cache)
    embedder = dense_embedder("e5-offline", fit_lexical(sentences), cache)
    vocabulary = load_vocabulary()
    variants: dict[str, list[CriterionScores]] = {
        "the sentence's own embedding (shipped)": [s for s, _ in pairs]
    }
    for scores, _ in pairs:
        for name, reading in window_readings(scores, embedder, vocabulary).items():
            variants.setdefault(name, []).append(replace(scores, dense=reading))
    documented = [bool(gold.relevant) for _, gold in pairs]
    with_evidence = [i for i, gold in enumerate(documented) if gold]
    lines = [
        "",
        f"2. the dense ranking read from the windows, evidence gold ({len(with_evidence)} criteria with evidence; "
        f"AUC: the best dense score as a documented signal over all {len(pairs)} criteria)",
        "",
        "| dense reading | alone: hit@1 / hit@3 / MRR | fused: hit@1 / hit@3 / MRR | AUC of the best score |",
        "|---|---|---|---|",
    ]
    for name, scored in variants.items():
        cells = []
        for components in (("dense",), FUSED):
            summary = evidence_eval.summarise(
                [evidence_eval.criterion_metrics(scored[i], pairs[i][1], components) for i in with_evidence]
            )
            cells.append(" / ".join(f"{summary[m]:.2f}" for m in ("hit@1", "hit@3", "MRR")))
        auc = roc_auc_score(documented, [float(s.dense.max()) for s in scored])
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {auc:.2f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    text = "\n".join(
        [
            *layout_table(args.corpus, args.labels, args.cache),
            *dense_from_windows_table(args.corpus, args.cache),
        ]
    )
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
