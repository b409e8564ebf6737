"""Measure the themes against BERTopic's defaults on the same embeddings.

`python -m pipeline.themes_eval [--corpus DIR] [--seeds 5]` prints coverage (share of passages in a theme),
themes, outliers, NPMI coherence of each theme's keywords over the passages, and the mean adjusted Rand index
between the runs of every two seeds, for evidens's themes and for BERTopic with its default UMAP, HDBSCAN and
vectorizer (only UMAP's random_state set, so that a seed means something)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipeline.corpus import load_efforts
from pipeline.defaults import DEFAULT_CACHE, DEFAULT_CORPUS
from pipeline.embed import CachedEmbedder, get_embedder
from pipeline.themes import coverage, find_themes, mean_pairwise_ari, npmi_coherence, word_sets


def bertopic_run(texts: list[str], vectors: np.ndarray, seed: int) -> tuple[np.ndarray, list[list[str]]]:
    from bertopic import BERTopic
    from umap import UMAP

    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    model = BERTopic(umap_model=umap)  # everything else BERTopic's default
    labels, _ = model.fit_transform(texts, vectors)
    keywords = [[w for w, _ in model.get_topic(t)][:10] for t in sorted(set(labels)) if t >= 0]
    return np.array(labels), keywords


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    efforts = load_efforts(args.corpus)
    embedder = CachedEmbedder(get_embedder("e5-offline"), args.cache)
    runs = [find_themes(efforts, embedder) for _ in range(args.seeds)]  # the seed moves nothing in the themes
    model = runs[0]
    texts = [u.text for u in model.units]
    documents = word_sets(texts)
    rows = {
        "evidens (PCA + Ward, silhouette k, keyphrases)": (
            [r.labels for r in runs],
            [np.mean([npmi_coherence(t.keywords, documents) for t in r.themes]) for r in runs],
            [len(r.themes) for r in runs],
        )
    }
    labelings, coherences, counts = [], [], []
    for seed in range(args.seeds):
        labels, keywords = bertopic_run(texts, model.vectors, seed)
        labelings.append(labels)
        coherences.append(
            np.mean([npmi_coherence(k, documents) for k in keywords]) if keywords else float("nan")
        )
        counts.append(len(keywords))
    rows["BERTopic defaults (UMAP + HDBSCAN + CountVectorizer)"] = (labelings, coherences, counts)
    print(
        f"{len(texts)} passages from {len({u.sentence.effort_id for u in model.units})} efforts, {args.seeds} seeds\n"
    )
    print("| method | themes | coverage | outliers | NPMI coherence | ARI between seeds |")
    print("|---|---|---|---|---|---|")
    for name, (labels, coherence, count) in rows.items():
        cover = [coverage(x) for x in labels]
        print(
            f"| {name} | {np.mean(count):.1f} ({min(count)}-{max(count)}) | {np.mean(cover):.2f} | "
            f"{np.mean([(x < 0).sum() for x in labels]):.0f} | {np.mean(coherence):.3f} | {mean_pairwise_ari(labels):.2f} |"
        )


if __name__ == "__main__":
    main()
