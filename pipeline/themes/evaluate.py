"""Measure the themes: units (sentences or short passages), and against BERTopic's defaults on the same embeddings.

`python -m pipeline.themes.evaluate [--corpus DIR] [--seeds 5]` prints two tables.

Units: evidens's themes over single sentences and over passages of up to 2 and 3 consecutive sentences, with
the NPMI of their keywords over one reference that does not depend on the units: 10-word windows over the
sections' practice text.

Methods: on the chosen units, evidens and BERTopic with its default UMAP, HDBSCAN and vectorizer (only UMAP's
random_state set, so that a seed means something), over every seed: themes, coverage (share of passages in a
theme), outliers, the mean adjusted Rand index between the runs of every two seeds, and the NPMI coherence of
each theme's keywords counted three ways: over the passages as documents; over 10-word windows inside them
(gensim's c_npmi reference); and held out, evidens's keywords chosen from the even-numbered passages only and
every method's keywords counted over the odd-numbered ones, because evidens chooses keywords that its themes'
passages use together and counting over the same passages would flatter it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.corpus import load_efforts
from pipeline.defaults import DEFAULT_CACHE, DEFAULT_CORPUS
from pipeline.embed import CachedEmbedder, get_embedder
from pipeline.records import Effort
from pipeline.themes.model import (
    Cooccurrence,
    ThemeModel,
    coverage,
    find_themes,
    keyphrases,
    keyword_stop_words,
    mean_pairwise_ari,
    npmi_coherence,
    place_words,
    sliding_windows,
    theme_units,
    word_sets,
)

PASSAGE_LENGTHS = (1, 2, 3)


def mean_coherence(keywords: Sequence[Sequence[str]], reference: Cooccurrence) -> float:
    return float(np.mean([npmi_coherence(k, reference) for k in keywords])) if keywords else float("nan")


def bertopic_run(
    texts: list[str], vectors: np.ndarray, seed: int
) -> tuple[np.ndarray, list[list[str]], list[list[str]]]:
    """BERTopic's themes, each theme's 10 default keywords, and its first 10 words that are no stop word."""
    from bertopic import BERTopic
    from umap import UMAP

    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    # everything else BERTopic's default; 30 words listed so that 10 remain without stop words (the ranking,
    # and so the first 10, does not depend on how many are listed)
    model = BERTopic(umap_model=umap, top_n_words=30)
    labels, _ = model.fit_transform(texts, vectors)
    words = [[w for w, _ in model.get_topic(t)] for t in sorted(set(labels)) if t >= 0]
    stops = keyword_stop_words()
    content = [[w for w in topic if w not in stops and len(w) > 2][:10] for topic in words]
    return np.array(labels), [topic[:10] for topic in words], content


def held_out_keywords(model: ThemeModel) -> list[list[str]]:
    """evidens's keywords chosen from the even-numbered passages of each theme only."""
    even = np.arange(len(model.units)) % 2 == 0
    units = [u for u, keep in zip(model.units, even, strict=True) if keep]
    phrases = keyphrases([u.text for u in units], model.labels[even], place_words(model.units))
    return list(phrases.values())


def units_table(efforts: Sequence[Effort], models: dict[int, ThemeModel]) -> list[str]:
    """One row per passage length (`models`: the themes fitted on passages of that many sentences)."""
    whole_runs = [u.text for u in theme_units(efforts, sys.maxsize)]
    reference = Cooccurrence(sliding_windows(whole_runs))
    lines = [
        "| units | passages | themes | coverage | NPMI over 10-word windows of the sections |",
        "|---|---|---|---|---|",
    ]
    for length, model in models.items():
        name = "sentences" if length == 1 else f"passages of up to {length} sentences"
        lines.append(
            f"| {name} | {len(model.units)} | {len(model.themes)} | {coverage(model.labels):.2f} | "
            f"{mean_coherence([t.keywords for t in model.themes], reference):.3f} |"
        )
    return lines


def methods_table(model: ThemeModel, seeds: int) -> list[str]:
    texts = [u.text for u in model.units]
    references = {
        "passages": Cooccurrence(word_sets(texts)),
        "windows": Cooccurrence(sliding_windows(texts)),
        "held out": Cooccurrence(word_sets(texts[1::2])),
    }
    ours = [t.keywords for t in model.themes]
    keywords = {"passages": ours, "windows": ours, "held out": held_out_keywords(model)}
    runs = {  # per method: labels, then per reference the coherence, for every seed
        "evidens (PCA + Ward, silhouette k, keyphrases)": (
            [model.labels] * seeds,  # deterministic: the seed moves nothing in the themes
            {r: [mean_coherence(keywords[r], reference)] * seeds for r, reference in references.items()},
        )
    }
    labelings = []
    coherences = {name: {r: [] for r in references} for name in ("defaults", "content")}
    for seed in range(seeds):
        labels, *topic_words = bertopic_run(texts, model.vectors, seed)
        labelings.append(labels)
        for name, words in zip(coherences, topic_words, strict=True):
            for r, reference in references.items():
                coherences[name][r].append(mean_coherence(words, reference))
    runs["BERTopic defaults (UMAP + HDBSCAN + CountVectorizer)"] = (labelings, coherences["defaults"])
    runs["the same BERTopic runs, stop words left out of the keywords"] = (labelings, coherences["content"])
    lines = [
        "| method | themes | coverage | outliers | NPMI (passages) | NPMI (10-word windows) | NPMI (held out) "
        "| ARI between seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (labels, coherence) in runs.items():
        counts = [len(set(x.tolist()) - {-1}) for x in labels]
        lines.append(
            f"| {name} | {np.mean(counts):.1f} ({min(counts)}-{max(counts)}) | "
            f"{np.mean([coverage(x) for x in labels]):.2f} | {np.mean([(x < 0).sum() for x in labels]):.0f} | "
            + " | ".join(f"{np.mean(coherence[r]):.3f}" for r in references)
            + f" | {mean_pairwise_ari(labels):.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    efforts = load_efforts(args.corpus)
    embedder = CachedEmbedder(get_embedder("e5-offline"), args.cache)
    models = {n: find_themes(efforts, embedder, sentences_per_passage=n) for n in PASSAGE_LENGTHS}
    print("\n".join(units_table(efforts, models)) + "\n")
    model = models[1]  # sentences, the default units
    print(
        f"{len(model.units)} passages (sentences) from {len({u.sentence.effort_id for u in model.units})} "
        f"efforts, {args.seeds} seeds\n"
    )
    print("\n".join(methods_table(model, args.seeds)))


if __name__ == "__main__":
    main()
