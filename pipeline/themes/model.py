"""Good-practice themes across municipalities.

Units are the sentences of practice text (at least MIN_UNIT_WORDS words; boilerplate such as "Størrelse: px",
page numbers, download lines or figure captions left out) of every source: the description, experiences,
organisation and advice sections of effort pages, each municipality's part of a theme page, and the sections of
a report. Each unit keeps its municipality, effort, section and source kind. Passages of a few consecutive
sentences can be asked for; sentences themed better on the corpus (`python -m pipeline.themes.evaluate`).

Themes: the units' e5 embeddings (from the cache) are centred (e5's vectors share a large common direction
that carries no theme) and reduced with PCA, then clustered with Ward's agglomerative clustering, the number of
themes being the one with the best silhouette between MIN_THEMES and about the square root of the units. Every
step is deterministic, so the themes do not depend on the seed (the seed only moves the explorer's map).
Clusters smaller than min_theme_size() are outliers (theme -1). BERTopic's defaults (UMAP + HDBSCAN) were
measured on the same embeddings and are not used: see `python -m pipeline.themes.evaluate` and the README.

Keywords are Danish keyphrases: word 1-3-grams made only of known content words (no stop word, no fragment),
scored by class-based TF-IDF (BERTopic's c-TF-IDF) and chosen with maximal marginal relevance, so that they
neither repeat one another nor read as unrelated words; multi-word phrases first, the first two the label.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import PurePath

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import adjusted_rand_score, silhouette_score

from pipeline.embed import Embedder
from pipeline.evidence.segment import segment_efforts
from pipeline.records import Effort, Sentence, Theme
from pipeline.textnorm import is_known_word, lemma, normalise_text, stop_words

THEME_SECTIONS = ("description", "experiences", "organisation", "advice")
MIN_UNIT_WORDS = 6  # "Hold fokus.", "Vejle Kommune" carry no theme of their own
MIN_THEMES = 5
REDUCED_DIMENSIONS = 50
KEYPHRASES = 8
REPRESENTATIVES = 3
NPMI_WINDOW = 10  # words, as gensim's c_npmi
MMR_DIVERSITY = 0.5
# weight of "the theme's passages use these words together" (in-theme NPMI) when keyphrases are chosen
COHERENCE_WEIGHT = 0.5
BOILERPLATE = re.compile(
    r"størrelse\s*:|\d+\s*px\b|^\s*side\s+\d+|^\s*\d+\s*$|\bdownload|hent\s+(?:pdf|fil)|læs\s+mere|"
    r"https?://|www\.|\.pdf\b|^\s*kilde\s*:|©|"
    r"\b(?:figur|tabel)\s+\d+(?:[-.]\d+)*\s*:",  # a caption, with the chart's residue after it
    re.IGNORECASE,
)
# A whole word, not the first half of a suspended compound ("sundheds- og beskæftigelsesområdet")
_WORD = re.compile(r"\b[a-zæøåé]+\b(?!-(?:\s|$))")
# Function words of NLTK's Danish list that spaCy's lacks, auxiliaries' participles, abbreviations, numerals
# and dump residue
EXTRA_STOP_WORDS = frozenset(
    [
        "sin",
        "sit",
        "sine",
        "vor",
        "mod",
        "hos",
        "ad",
        "thi",
        "når",
        "både",
        "hvert",
        "hvilket",
        "heraf",
        "inden",
        "står",
        "går",
        "hinanden",
        "haft",
        "blevet",
        "dvs",
        "osv",
        "jf",
        "hhv",
        "mht",
        "pga",
        "inkl",
        "pct",
        "ca",
        "fx",
        "bl",
        "mv",
        "evt",
        "nr",
        "ift",
        "vis",
        "grad",
        "text",
        "all",
        "tre",
        "fire",
        "fem",
        "seks",
        "syv",
        "otte",
        "ni",
        "ti",
        "får",
        "fået",
        "kan",
        "kunne",
        "samt",
    ]
)


@dataclass(frozen=True)
class Unit:
    """One passage of practice text, traceable to its source."""

    sentence: Sentence
    municipality: str
    kind: str

    @property
    def text(self) -> str:
        return self.sentence.text


def is_boilerplate(text: str) -> bool:
    return bool(BOILERPLATE.search(text))


def theme_units(efforts: Sequence[Effort], sentences_per_passage: int = 1) -> list[Unit]:
    """The practice passages of every effort, theme-page part and report, in corpus order: single sentences,
    or up to `sentences_per_passage` consecutive sentences of one section (a heading or boilerplate line ends
    a passage). Sentences theme better on this corpus (`python -m pipeline.themes.evaluate`), so they are the
    default."""
    by_id = {e.effort_id: e for e in efforts}
    runs: list[list[Sentence]] = []
    for sentence in segment_efforts(efforts, THEME_SECTIONS):
        keep = not sentence.is_heading and not is_boilerplate(sentence.text)
        current = runs[-1] if runs else []
        continues = (
            bool(current)
            and (current[-1].effort_id, current[-1].section) == (sentence.effort_id, sentence.section)
            and current[-1].index == sentence.index - 1
            and len(current) < sentences_per_passage
        )
        if keep and continues:
            current.append(sentence)
        elif keep:
            runs.append([sentence])
    units = []
    for run in runs:
        effort = by_id[run[0].effort_id]
        passage = _passage(effort, run)
        if len(passage.text.split()) < MIN_UNIT_WORDS:
            continue
        units.append(Unit(passage, source_name(effort), effort.kind))
    return units


def source_name(effort: Effort) -> str:
    """Who a passage speaks for: the municipality, or for a report (which speaks for several) its file."""
    if effort.municipality:
        return effort.municipality
    return f"report {PurePath(effort.source).stem}" if effort.kind == "report" else effort.effort_id


def _passage(effort: Effort, run: list[Sentence]) -> Sentence:
    """Consecutive sentences of one section as one record: the section's text from the first to the last."""
    if len(run) == 1:
        return run[0]
    first, last = run[0], run[-1]
    text = getattr(effort.sections, first.section)[first.start : last.end]
    return first.model_copy(update={"text": text, "end": last.end})


def min_theme_size(n_units: int) -> int:
    """Clusters below this size are outliers: 1% of the units, at least 5."""
    return max(5, round(0.01 * n_units))


def reduce(vectors: np.ndarray) -> np.ndarray:
    """Centred, PCA-reduced, unit-length vectors (deterministic: full SVD)."""
    centred = vectors - vectors.mean(axis=0)
    dimensions = min(REDUCED_DIMENSIONS, len(vectors) - 1, vectors.shape[1])
    reduced = PCA(n_components=dimensions, svd_solver="full").fit_transform(centred)
    return reduced / np.clip(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12, None)


def cluster(reduced: np.ndarray) -> tuple[np.ndarray, dict[int, float]]:
    """Ward clusters with the silhouette-best k, tiny clusters as -1, ids by size; and every k's silhouette."""
    upper = max(MIN_THEMES, min(int(math.sqrt(len(reduced))), len(reduced) - 1))
    silhouettes, labelings = {}, {}
    for k in range(MIN_THEMES, upper + 1):
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(reduced)
        labelings[k] = labels
        silhouettes[k] = float(silhouette_score(reduced, labels, metric="cosine"))
    best = max(silhouettes, key=lambda k: (silhouettes[k], -k))
    return relabel(labelings[best], min_theme_size(len(reduced))), silhouettes


def relabel(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Theme 0 the largest (ties: first appearance), clusters under min_size and -1 stay -1."""
    sizes = Counter(int(x) for x in labels if x >= 0)
    kept = [c for c in sizes if sizes[c] >= min_size]
    order = sorted(kept, key=lambda c: (-sizes[c], int(np.flatnonzero(labels == c)[0])))
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping.get(int(x), -1) for x in labels])


# -- keyphrases --------------------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return _WORD.findall(normalise_text(text).lower())


def keyword_stop_words() -> frozenset[str]:
    """Words that are never keywords: spaCy's Danish stop words and EXTRA_STOP_WORDS."""
    return stop_words() | EXTRA_STOP_WORDS


def _candidate_phrases(text: str, vocabulary: frozenset[str], unwanted: frozenset[str]) -> list[str]:
    """Word 1-3-grams made only of content words: in the vocabulary, longer than two letters, not unwanted."""
    words = _words(text)
    good = [len(w) > 2 and w not in unwanted and w in vocabulary for w in words]
    phrases = []
    for n in (1, 2, 3):
        for i in range(len(words) - n + 1):
            if all(good[i : i + n]):
                phrases.append(" ".join(words[i : i + n]))
    return phrases


def content_vocabulary(unit_words: Sequence[set[str]]) -> frozenset[str]:
    """Words that are real words: in the Danish lexicon, or in two units or more (names: JobFirst, IGU)."""
    document_frequency = Counter(w for words in unit_words for w in words)
    return frozenset(w for w, df in document_frequency.items() if df >= 2 or is_known_word(w))


def _lemmas_of(phrase: str) -> set[str]:
    return {lemma(w) for w in phrase.split()}


def keyphrases(
    texts: Sequence[str], labels: np.ndarray, excluded: frozenset[str] = frozenset(), n: int = KEYPHRASES
) -> dict[int, list[str]]:
    """Each theme's keyphrases: c-TF-IDF over candidate phrases, then MMR, multi-word phrases (seen at least
    twice) first. MMR trades a phrase's c-TF-IDF against its shared lemmas with the phrases already picked (so
    that "borgerne" and "borgernes" are not both chosen), plus how much the theme's passages use its words
    together with theirs (NPMI within the theme): keywords that a theme's passages use together read as one
    subject, distinctive words that never meet read as a list."""
    themes = sorted({int(x) for x in labels if x >= 0})
    if not themes:
        return {}
    unit_words = word_sets(texts)
    vocabulary, unwanted = content_vocabulary(unit_words), keyword_stop_words() | excluded
    documents = [" \n ".join(t for t, x in zip(texts, labels, strict=True) if x == theme) for theme in themes]
    vectorizer = CountVectorizer(analyzer=lambda doc: _candidate_phrases(doc, vocabulary, unwanted))
    counts = vectorizer.fit_transform(documents).toarray().astype(float)
    phrases = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + counts.sum() / len(documents) / np.maximum(counts.sum(axis=0), 1))
    weights = tf * idf
    chosen: dict[int, list[str]] = {}
    for row, theme in enumerate(themes):
        scores = weights[row]
        ranked = [i for i in np.argsort(-scores, kind="stable")[: 20 * n] if scores[i] > 0]
        multiword = [i for i in ranked if " " in phrases[i] and counts[row, i] >= 2]
        together = Cooccurrence([unit_words[i] for i in np.flatnonzero(labels == theme)])
        mmr = _PhraseMMR({i: str(phrases[i]) for i in ranked}, scores, together)
        picked = mmr.extend(multiword, [], n // 2)
        picked = mmr.extend([i for i in ranked if i not in picked], picked, n)
        chosen[theme] = [str(phrases[i]) for i in picked]
    return chosen


class _PhraseMMR:
    """Maximal marginal relevance over candidate phrases (by index): relevance is the phrase's score over the
    best, less MMR_DIVERSITY times its largest lemma overlap (Jaccard) with a picked phrase, plus
    COHERENCE_WEIGHT times the mean NPMI of its words with the picked phrases' other words."""

    def __init__(self, phrases: dict[int, str], scores: np.ndarray, together: Cooccurrence):
        self.words = {i: phrase.split() for i, phrase in phrases.items()}
        self.lemmas = {i: _lemmas_of(phrase) for i, phrase in phrases.items()}
        self.scores = scores
        self.together = together

    def relevance(self, i: int, picked: list[int], top: float) -> float:
        overlap = max(
            (len(self.lemmas[i] & self.lemmas[j]) / len(self.lemmas[i] | self.lemmas[j]) for j in picked),
            default=0.0,
        )
        pairs = [(a, b) for j in picked for a in self.words[i] for b in self.words[j] if a != b]
        coherence = float(np.mean([self.together.npmi(a, b) for a, b in pairs])) if pairs else 0.0
        return (
            (1 - MMR_DIVERSITY) * self.scores[i] / top
            - MMR_DIVERSITY * overlap
            + COHERENCE_WEIGHT * coherence
        )

    def nested(self, i: int, picked: list[int]) -> bool:
        """Whether phrase i is inside a picked phrase or holds one ("fysiske rammer", "fælles fysiske rammer")."""
        return any(self.lemmas[i] <= self.lemmas[j] or self.lemmas[j] <= self.lemmas[i] for j in picked)

    def extend(self, pool: list[int], picked: list[int], wanted: int) -> list[int]:
        """`picked` with phrases from `pool` added, best relevance first, until `wanted`; no phrase nested in
        another."""
        top = max((self.scores[i] for i in pool), default=1.0) or 1.0
        picked = list(picked)
        pool = [i for i in pool if not self.nested(i, picked)]
        while pool and len(picked) < wanted:
            best = max(pool, key=lambda i: self.relevance(i, picked, top))
            picked.append(best)
            pool = [i for i in pool if not self.nested(i, picked)]
        return picked


# -- quality -----------------------------------------------------------------------------------------------
def word_sets(texts: Sequence[str]) -> list[set[str]]:
    """Each text's words: the documents NPMI counts co-occurrence in."""
    return [set(_words(t)) for t in texts]


def sliding_windows(texts: Sequence[str], size: int = NPMI_WINDOW) -> list[set[str]]:
    """The words of every `size`-word window inside each text (a shorter text is one window): the boolean
    sliding-window reference of gensim's c_npmi."""
    windows = []
    for text in texts:
        words = _words(text)
        windows.extend(set(words[i : i + size]) for i in range(max(1, len(words) - size + 1)))
    return windows


class Cooccurrence:
    """How often words, and pairs of words, occur in the same document (a set of words)."""

    def __init__(self, documents: Sequence[set[str]]):
        self.documents = documents
        self._counts: dict[str, int] = {}

    def count(self, word: str) -> int:
        if word not in self._counts:
            self._counts[word] = sum(word in d for d in self.documents)
        return self._counts[word]

    def npmi(self, a: str, b: str) -> float:
        """Normalised PMI of a and b over the documents; -1 for a pair never seen together."""
        joint = sum(a in d and b in d for d in self.documents)
        if not joint:
            return -1.0
        n = len(self.documents)
        p_ab = joint / n
        if p_ab == 1:
            return 1.0
        return math.log(p_ab / (self.count(a) / n * self.count(b) / n)) / -math.log(p_ab)


def npmi_coherence(
    keywords: Sequence[str], documents: Sequence[set[str]] | Cooccurrence, top: int = 10
) -> float:
    """Mean normalised PMI of the pairs of a theme's keyword words over the documents (`word_sets` of the
    units; a pair never seen together scores -1). The words are taken from the keyphrases in order, each once."""
    words = list(dict.fromkeys(w for phrase in keywords for w in phrase.lower().split()))[:top]
    counts = documents if isinstance(documents, Cooccurrence) else Cooccurrence(documents)
    scores = [counts.npmi(a, b) for a, b in combinations(words, 2)]
    return float(np.mean(scores)) if scores else float("nan")


def coverage(labels: np.ndarray) -> float:
    return float(np.mean(labels >= 0)) if len(labels) else 0.0


def mean_pairwise_ari(labelings: Sequence[np.ndarray]) -> float:
    return float(np.mean([adjusted_rand_score(a, b) for a, b in combinations(labelings, 2)]))


# -- the model ---------------------------------------------------------------------------------------------
@dataclass
class ThemeModel:
    themes: list[Theme]
    units: list[Unit]
    labels: np.ndarray
    vectors: np.ndarray  # the units' embeddings as the embedder gave them
    silhouettes: dict[int, float]
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # per theme, in embedding space
    # the lowest member-to-centroid cosine of any theme: below it, a new unit is an outlier
    floor: float = 0.0

    def coherence(self) -> float:
        """Mean NPMI coherence of the themes' keywords over the units."""
        documents = Cooccurrence(word_sets([u.text for u in self.units]))
        return (
            float(np.mean([npmi_coherence(t.keywords, documents) for t in self.themes]))
            if self.themes
            else 0.0
        )

    def quality(self) -> dict[str, float]:
        """The figures a fit is judged by: themes, coverage, outliers, NPMI coherence."""
        return {
            "themes": len(self.themes),
            "coverage": coverage(self.labels),
            "outliers": int((self.labels < 0).sum()),
            "npmi_coherence": self.coherence(),
        }

    def assignments(self) -> dict[str, int]:
        """Each unit's theme, by sentence id (-1: outlier)."""
        return {u.sentence.sentence_id: int(x) for u, x in zip(self.units, self.labels, strict=True)}

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Existing themes for new units, without re-clustering: the theme of the nearest centroid, or -1 below
        the floor."""
        if not len(self.centroids) or not len(vectors):
            return np.full(len(vectors), -1)
        similarity = vectors @ self.centroids.T
        nearest = similarity.argmax(axis=1)
        return np.where(similarity.max(axis=1) >= self.floor, nearest, -1)


def _centroids(vectors: np.ndarray, labels: np.ndarray, n_themes: int) -> tuple[np.ndarray, float]:
    centroids = np.stack([vectors[labels == t].mean(axis=0) for t in range(n_themes)])
    centroids /= np.clip(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12, None)
    member = [float((vectors[labels == t] @ centroids[t]).min()) for t in range(n_themes)]
    return centroids, min(member)


def _membership(units: Sequence[Unit], members: np.ndarray) -> dict:
    """The Theme fields that follow from which units it holds."""
    return {
        "size": len(members),
        "municipalities": sorted({units[i].municipality for i in members}),
        "effort_ids": sorted({units[i].sentence.effort_id for i in members}),
        "sentence_ids": [units[i].sentence.sentence_id for i in members],
    }


def place_words(units: Sequence[Unit]) -> frozenset[str]:
    """The words of the units' municipality names and their genitives ("Vejles"): they say where, not what,
    so they are no keywords."""
    names = {w for u in units if u.kind != "report" for w in _words(u.municipality)}
    return frozenset(names | {f"{w}s" for w in names})


def build_themes(units: Sequence[Unit], vectors: np.ndarray, labels: np.ndarray) -> list[Theme]:
    texts = [u.text for u in units]
    phrases = keyphrases(texts, labels, place_words(units))
    themes = []
    for theme_id in sorted(phrases):
        members = np.flatnonzero(labels == theme_id)
        centroid = vectors[members].mean(axis=0)
        closest = members[np.argsort(-(vectors[members] @ centroid), kind="stable")]
        multiword = [p for p in phrases[theme_id] if " " in p] or phrases[theme_id]
        themes.append(
            Theme(
                theme_id=theme_id,
                label=" · ".join(multiword[:2]),
                keywords=phrases[theme_id],
                representative_sentences=[texts[i] for i in closest[:REPRESENTATIVES]],
                **_membership(units, members),
            )
        )
    return themes


def find_themes(efforts: Sequence[Effort], embedder: Embedder, sentences_per_passage: int = 1) -> ThemeModel:
    units = theme_units(efforts, sentences_per_passage)
    if len(units) <= MIN_THEMES * 2:
        raise ValueError(f"only {len(units)} passages of practice text: too few for themes")
    vectors = embedder.embed([u.text for u in units], "passage")
    labels, silhouettes = cluster(reduce(vectors))
    themes = build_themes(units, vectors, labels)
    centroids, floor = _centroids(vectors, labels, len(themes)) if themes else (np.zeros((0, 0)), 0.0)
    return ThemeModel(themes, units, labels, vectors, silhouettes, centroids, floor)


def assign_themes(
    efforts: Sequence[Effort], embedder: Embedder, centroids: np.ndarray, floor: float, fitted: Sequence[dict]
) -> ThemeModel:
    """`transform`: the passages of `efforts` assigned to themes fitted before, the themes themselves kept."""
    units = theme_units(efforts)
    vectors = embedder.embed([u.text for u in units], "passage")
    model = ThemeModel([], units, np.zeros(0), vectors, {}, centroids, floor)
    model.labels = model.transform(vectors)
    model.themes = [
        Theme(**{**t, **_membership(units, np.flatnonzero(model.labels == t["theme_id"]))}) for t in fitted
    ]
    return model


def theme_drift(previous: dict[str, int], current: dict[str, int]) -> dict:
    """How the themes moved between two runs over the passages both hold (keyed by sentence id): the adjusted
    Rand index, and for every previous theme the current theme that took most of its passages, with the share."""
    shared = sorted(set(previous) & set(current))
    if not shared:
        return {"shared_passages": 0, "ari": None, "themes": []}
    before = np.array([previous[s] for s in shared])
    after = np.array([current[s] for s in shared])
    moves = []
    for theme in sorted(set(before.tolist())):
        landed = Counter(after[before == theme].tolist())
        target, count = landed.most_common(1)[0]
        moves.append({"previous": theme, "now": target, "share": round(count / sum(landed.values()), 3)})
    return {
        "shared_passages": len(shared),
        "ari": round(float(adjusted_rand_score(before, after)), 4),
        "themes": moves,
    }
