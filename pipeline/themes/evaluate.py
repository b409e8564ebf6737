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
    KEYWORD_METHODS,
    KEYWORDS,
    Cooccurrence,
    KeywordMethod,
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
    texts: list[str], vectors: np.ndarray, seed: int, chooses: np.ndarray
) -> tuple[np.ndarray, list[list[str]], list[list[str]]]:
    """BERTopic's themes over all passages, with its defaults except the stop-word list (ours, in its
    CountVectorizer) and the language (Danish: its English preprocessing strips æ, ø and å); each theme's 10
    keywords chosen on all passages, and chosen again (update_topics) on the passages `chooses` marks only."""
    from bertopic import BERTopic
    from sklearn.feature_extraction.text import CountVectorizer
    from umap import UMAP

    def vectorizer() -> CountVectorizer:
        return CountVectorizer(stop_words=sorted(keyword_stop_words()))

    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    model = BERTopic(umap_model=umap, vectorizer_model=vectorizer(), language="danish")
    labels, _ = model.fit_transform(texts, vectors)
    labels = np.array(labels)
    topics = sorted(t for t in set(labels.tolist()) if t >= 0)
    same_data = [[w for w, _ in model.get_topic(t)][:10] for t in topics]
    half = [t for t, keep in zip(texts, chooses, strict=True) if keep]
    model.update_topics(half, topics=labels[chooses].tolist(), vectorizer_model=vectorizer())
    held_out = [[w for w, _ in (model.get_topic(t) or [])][:10] for t in topics]
    return labels, same_data, held_out


def held_out_keywords(model: ThemeModel, method: KeywordMethod = KEYWORDS) -> list[list[str]]:
    """evidens's keywords chosen from the even-numbered passages of each theme only."""
    even = np.arange(len(model.units)) % 2 == 0
    units = [u for u, keep in zip(model.units, even, strict=True) if keep]
    phrases = keyphrases([u.text for u in units], model.labels[even], place_words(model.units), method=method)
    return list(phrases.values())


def _references(model: ThemeModel) -> dict[str, Cooccurrence]:
    texts = [u.text for u in model.units]
    return {
        "passages": Cooccurrence(word_sets(texts)),
        "windows": Cooccurrence(sliding_windows(texts)),
        "held out": Cooccurrence(word_sets(texts[1::2])),
    }


def candidates_table(model: ThemeModel, references: dict[str, Cooccurrence]) -> list[str]:
    """Every keyword method on the same themes: NPMI with keywords chosen on all passages (counted over the
    passages and over 10-word windows) and held out (chosen on the even-numbered, counted on the odd)."""
    texts = [u.text for u in model.units]
    lines = [
        "| keyword method | NPMI (passages) | NPMI (10-word windows) | NPMI (held out) |",
        "|---|---|---|---|",
    ]
    for name, method in KEYWORD_METHODS.items():
        ours = list(keyphrases(texts, model.labels, place_words(model.units), method=method).values())
        held = held_out_keywords(model, method)
        chosen = " (chosen)" if method == KEYWORDS else ""
        lines.append(
            f"| {name}{chosen} | {mean_coherence(ours, references['passages']):.3f} | "
            f"{mean_coherence(ours, references['windows']):.3f} | "
            f"{mean_coherence(held, references['held out']):.3f} |"
        )
    return lines


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


def methods_table(model: ThemeModel, seeds: int, references: dict[str, Cooccurrence]) -> list[str]:
    texts = [u.text for u in model.units]
    ours = [t.keywords for t in model.themes]
    keywords = {"passages": ours, "windows": ours, "held out": held_out_keywords(model)}
    runs = {  # per method: labels, then per reference the coherence, for every seed
        "evidens (PCA + Ward, silhouette k, keyphrases)": (
            [model.labels] * seeds,  # deterministic: the seed moves nothing in the themes
            {r: [mean_coherence(keywords[r], reference)] * seeds for r, reference in references.items()},
        )
    }
    even = np.arange(len(texts)) % 2 == 0
    labelings = []
    coherence: dict[str, list[float]] = {r: [] for r in references}
    for seed in range(seeds):
        labels, same_data, held_out = bertopic_run(texts, model.vectors, seed, even)
        labelings.append(labels)
        for r, reference in references.items():
            coherence[r].append(mean_coherence(held_out if r == "held out" else same_data, reference))
    runs["BERTopic defaults, our stop words (UMAP + HDBSCAN + c-TF-IDF)"] = (labelings, coherence)
    lines = [
        "| method | themes | coverage | outliers | NPMI (passages) | NPMI (10-word windows) | NPMI (held out) "
        "| ARI between seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (labels, figures) in runs.items():
        counts = [len(set(x.tolist()) - {-1}) for x in labels]
        lines.append(
            f"| {name} | {np.mean(counts):.1f} ({min(counts)}-{max(counts)}) | "
            f"{np.mean([coverage(x) for x in labels]):.2f} | {np.mean([(x < 0).sum() for x in labels]):.0f} | "
            + " | ".join(f"{np.mean(figures[r]):.3f}" for r in references)
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
    models = {n: find_themes(efforts, embedder, n, pins=None) for n in PASSAGE_LENGTHS}
    print("\n".join(units_table(efforts, models)) + "\n")
    model = models[1]  # sentences, the default units
    print(
        f"{len(model.units)} passages (sentences) from {len({u.sentence.effort_id for u in model.units})} "
        f"efforts, {args.seeds} seeds\n"
    )
    references = _references(model)
    print("\n".join(methods_table(model, args.seeds, references)) + "\n")
    print("\n".join(candidates_table(model, references)))


if __name__ == "__main__":
    main()
