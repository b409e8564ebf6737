"""Good-practice themes across municipalities.

Sentences of the advice, experiences and organisation sections of every effort (theme-page parts included,
headings excluded) are embedded with our embedder and clustered with scikit-learn's agglomerative clustering
(cosine, average linkage). Every sentence gets a theme: on a corpus of a few hundred sentences a
density-based clusterer such as BERTopic's default HDBSCAN leaves most of them as outliers. The number of themes
is the one with the best silhouette over a range. Each theme is labelled by class-based TF-IDF (BERTopic's
c-TF-IDF) over Danish lemmas without stop words, and backed by its closest passages of the evaluation report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import silhouette_score

from pipeline.embed import Embedder
from pipeline.records import Effort, Sentence, Theme
from pipeline.segment import segment_efforts

THEME_SECTIONS = ("advice", "experiences", "organisation")
KEYWORDS = 6
REPRESENTATIVES = 3
REPORT_PASSAGES = 3
MIN_THEMES, MAX_THEMES = 3, 15
MIN_SENTENCE_WORDS = 4  # fragments such as "Hold fokus." carry no theme of their own


@cache
def _lemmatizer():
    import spacy
    from spacy.lang.da.stop_words import STOP_WORDS

    nlp = spacy.blank("da")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp, STOP_WORDS


def lemmas(text: str) -> list[str]:
    """Danish lemmas of the content words of a text (lower-cased: the lookup table is)."""
    nlp, stop_words = _lemmatizer()
    return [
        t.lemma_
        for t in nlp(text.lower())
        if t.is_alpha and len(t.text) > 2 and t.text not in stop_words and t.lemma_ not in stop_words
    ]


def theme_sentences(efforts: Sequence[Effort]) -> list[Sentence]:
    """The sentences themes are built from: THEME_SECTIONS of efforts and theme-page parts, no headings."""
    chosen = [e for e in efforts if e.kind in ("effort_page", "theme_page_part")]
    return [
        s
        for s in segment_efforts(chosen, THEME_SECTIONS)
        if not s.is_heading and len(s.text.split()) >= MIN_SENTENCE_WORDS
    ]


def choose_number_of_themes(vectors: np.ndarray, seed: int) -> tuple[int, dict[int, float]]:
    """The k in MIN_THEMES..MAX_THEMES with the highest cosine silhouette, and every k's silhouette."""
    upper = min(MAX_THEMES, len(vectors) - 1)
    scores = {}
    for k in range(MIN_THEMES, upper + 1):
        labels = _cluster(vectors, k)
        scores[k] = float(silhouette_score(vectors, labels, metric="cosine", random_state=seed))
    return max(scores, key=lambda k: (scores[k], -k)), scores


def _cluster(vectors: np.ndarray, k: int) -> np.ndarray:
    return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(vectors)


def class_tfidf_keywords(documents: Sequence[str], n: int = KEYWORDS) -> list[list[str]]:
    """c-TF-IDF: term frequency within each theme's joined lemmas, times log(1 + average words per theme /
    the term's frequency over all themes)."""
    vectorizer = CountVectorizer(analyzer=lambda text: lemmas(text))
    counts = vectorizer.fit_transform(documents).toarray().astype(float)
    vocabulary = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + counts.sum() / len(documents) / np.maximum(counts.sum(axis=0), 1))
    weights = tf * idf
    return [
        [str(vocabulary[i]) for i in np.argsort(-row, kind="stable")[:n] if row[i] > 0] for row in weights
    ]


@dataclass
class ThemeModel:
    themes: list[Theme]
    sentences: list[Sentence]
    labels: np.ndarray
    vectors: np.ndarray
    silhouettes: dict[int, float]


def find_themes(efforts: Sequence[Effort], embedder: Embedder, seed: int = 0) -> ThemeModel:
    sentences = theme_sentences(efforts)
    if len(sentences) <= MIN_THEMES:
        raise ValueError(
            f"only {len(sentences)} sentences in {', '.join(THEME_SECTIONS)}: too few for themes"
        )
    vectors = embedder.embed([s.text for s in sentences], "passage")
    k, silhouettes = choose_number_of_themes(vectors, seed)
    labels = _relabel_by_size(_cluster(vectors, k))
    effort_by_id = {e.effort_id: e for e in efforts}
    report = [e for e in efforts if e.kind == "report"]
    report_sentences = [s for s in segment_efforts(report, ["description"]) if not s.is_heading]
    report_vectors = (
        embedder.embed([s.text for s in report_sentences], "passage") if report_sentences else None
    )
    documents = [
        " ".join(s.text for s, label in zip(sentences, labels, strict=True) if label == t) for t in range(k)
    ]
    keywords = class_tfidf_keywords(documents)
    themes = []
    for theme_id in range(k):
        members = np.flatnonzero(labels == theme_id)
        centroid = vectors[members].mean(axis=0)
        centroid /= np.linalg.norm(centroid) or 1.0
        closest = members[np.argsort(-(vectors[members] @ centroid), kind="stable")]
        passages = []
        if report_vectors is not None:
            similarity = report_vectors @ centroid
            for i in np.argsort(-similarity, kind="stable")[:REPORT_PASSAGES]:
                passages.append((report_sentences[i].text, round(float(similarity[i]), 4)))
        member_efforts = sorted({sentences[i].effort_id for i in members})
        themes.append(
            Theme(
                theme_id=theme_id,
                label=" · ".join(keywords[theme_id][:3]),
                keywords=keywords[theme_id],
                size=len(members),
                representative_sentences=[sentences[i].text for i in closest[:REPRESENTATIVES]],
                municipalities=sorted({effort_by_id[e].municipality or e for e in member_efforts}),
                effort_ids=member_efforts,
                sentence_ids=[sentences[i].sentence_id for i in members],
                report_passages=passages,
            )
        )
    return ThemeModel(themes, sentences, labels, vectors, silhouettes)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Theme 0 is the largest; ties by first appearance, so ids are stable for the same clustering."""
    sizes = Counter(labels.tolist())
    order = sorted(sizes, key=lambda label: (-sizes[label], int(np.flatnonzero(labels == label)[0])))
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping[label] for label in labels])


def write_theme_outputs(model: ThemeModel, efforts: Sequence[Effort], out: Path, seed: int = 0) -> list[Path]:
    """themes.json, themes.csv, the 2-D map and the themes-by-municipality chart, each written atomically."""
    import json

    from pipeline.io import atomic_path, atomic_write_text
    from pipeline.tables import write_table

    atomic_write_text(
        out / "themes.json",
        json.dumps(
            {"silhouette_by_k": model.silhouettes, "themes": [t.model_dump() for t in model.themes]},
            ensure_ascii=False,
            indent=1,
        ),
    )
    municipality = {e.effort_id: e.municipality or e.effort_id for e in efforts}
    rows = [
        {
            "theme_id": int(label),
            "theme_label": model.themes[int(label)].label,
            "municipality": municipality[s.effort_id],
            "effort_id": s.effort_id,
            "section": s.section,
            "sentence": s.text,
        }
        for s, label in zip(model.sentences, model.labels, strict=True)
    ]
    write_table(
        out / "themes.csv",
        rows,
        ["theme_id", "theme_label", "municipality", "effort_id", "section", "sentence"],
    )
    with atomic_path(out / "themes_map.png") as path:
        _map_png(model, path, seed)
    with atomic_path(out / "themes_by_municipality.png") as path:
        _by_municipality_png(model, municipality, path)
    return [
        out / name for name in ("themes.json", "themes.csv", "themes_map.png", "themes_by_municipality.png")
    ]


def _map_png(model: ThemeModel, path: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    points = PCA(n_components=2, random_state=seed).fit_transform(model.vectors)
    figure, axis = plt.subplots(figsize=(8, 6))
    colours = plt.get_cmap("tab20")
    for theme in model.themes:
        members = model.labels == theme.theme_id
        axis.scatter(
            points[members, 0],
            points[members, 1],
            s=28,
            color=colours(theme.theme_id % 20),
            label=f"{theme.theme_id}: {theme.label}",
        )
    axis.set_title("Sentences of advice, experiences and organisation (PCA of e5 embeddings)", fontsize=10)
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)


def _by_municipality_png(model: ThemeModel, municipality: dict[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({municipality[s.effort_id] for s in model.sentences})
    counts = np.zeros((len(model.themes), len(names)), dtype=int)
    for sentence, label in zip(model.sentences, model.labels, strict=True):
        counts[int(label), names.index(municipality[sentence.effort_id])] += 1
    figure, axis = plt.subplots(figsize=(1.0 + 0.8 * len(names), 1.0 + 0.45 * len(model.themes)))
    axis.imshow(counts, cmap="Greens", aspect="auto")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(model.themes)), [f"{t.theme_id}: {t.label}" for t in model.themes], fontsize=8)
    for (i, j), value in np.ndenumerate(counts):
        if value:
            axis.text(j, i, str(value), ha="center", va="center", fontsize=8)
    axis.set_title("Theme sentences per municipality", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
