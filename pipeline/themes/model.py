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

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score

from pipeline.defaults import DEFAULT_LABELS
from pipeline.embed import Embedder
from pipeline.evidence.segment import segment_efforts
from pipeline.records import Effort, Sentence, Theme
from pipeline.textnorm import lemma, normalise_text, stop_words
from pipeline.themes.vocabulary import is_danish_word, is_english_only, name_forms, share_a_word, tokens

if TYPE_CHECKING:
    from pipeline.themes.pins import PinReport

log = logging.getLogger("evidens.themes")
THEME_SECTIONS = ("description", "experiences", "organisation", "advice")
MIN_UNIT_WORDS = 6  # "Hold fokus.", "Vejle Kommune" carry no theme of their own
MIN_THEMES = 5
REDUCED_DIMENSIONS = 50
KEYPHRASES = 8
REPRESENTATIVES = 3
NPMI_WINDOW = 10  # words, as gensim's c_npmi
MMR_DIVERSITY = 0.5
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


# Front matter and tables of contents: "Til Styrelsen for ... Dato Maj 2018 DELRAPPORT 3 ... INDHOLD 1. INDLEDNING"
FRONT_MATTER = re.compile(
    r"\bINDHOLD\b|\bindholdsfortegnelse\b|\bDato\s*:?\s*(?:\d{1,2}\.?\s*)?(?:jan|feb|mar|apr|maj|jun|jul|aug|sep|okt|"
    r"nov|dec)[a-z]*\.?\s+\d{4}|^\s*til\s+styrelsen\b|(?:\b\d+(?:\.\d+)*\.?\s+[A-ZÆØÅ]{3,}\b.*){2}",
)
# A run of words in capitals (a heading, a figure's boxes: "ALL INCLUSIVE (...) VK/MENTOR & KS"): this many
# words of two letters or more in capitals make a passage boilerplate; acronyms in a sentence are fewer
CAPITAL_WORDS = 4
_CAPITAL_WORD = re.compile(r"\b[A-ZÆØÅ]{2,}\b")


def is_boilerplate(text: str) -> bool:
    """Page furniture, captions, front matter, tables of contents, headings in capitals."""
    return bool(
        BOILERPLATE.search(text)
        or FRONT_MATTER.search(text)
        or len(_CAPITAL_WORD.findall(text)) >= CAPITAL_WORDS
    )


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


@dataclass(frozen=True)
class KeywordMethod:
    """How a theme's keywords are chosen from its candidate phrases (the candidates are measured by
    `python -m pipeline.themes.evaluate`, held out)."""

    name: str
    # a phrase's weight in a theme counts the theme's passages that hold it (True) or its occurrences (False)
    passage_frequency: bool = True
    min_passages: int = 2  # a keyword is in at least this many of the theme's passages
    coherence_weight: float = 0.0  # weight of the in-theme NPMI term in MMR (0: none)
    phrases_first: bool = True  # multi-word phrases take the first half of the keywords
    # where the NPMI term counts co-occurrence: the theme's passages, or all the passages keywords are chosen
    # from (more data: pairs that generalise)
    coherence_scope: str = "theme"
    min_joint: int = (
        1  # a pair seen together fewer times than this counts as never seen (-1) in the NPMI term
    )


KEYWORD_METHODS = {
    m.name: m
    for m in (
        KeywordMethod("c-TF-IDF + in-theme NPMI, phrases first (before)", False, 1, 0.5, True),
        KeywordMethod("c-TF-IDF, phrases first", False, 1, 0.0, True),
        KeywordMethod("c-TF-IDF, min 2 passages, phrases first", False, 2, 0.0, True),
        KeywordMethod("passage-frequency c-TF-IDF, min 2 passages, phrases first", True, 2, 0.0, True),
        KeywordMethod("passage-frequency c-TF-IDF, min 2 passages, words by score", True, 2, 0.0, False),
        KeywordMethod("passage-frequency c-TF-IDF, min 3 passages, words by score", True, 3, 0.0, False),
        KeywordMethod("passage-frequency c-TF-IDF + in-theme NPMI, min 2 passages", True, 2, 0.5, False),
        KeywordMethod(
            "passage-frequency c-TF-IDF + corpus NPMI, min 2 passages", True, 2, 0.5, False, "corpus"
        ),
        KeywordMethod(
            "passage-frequency c-TF-IDF + corpus NPMI (weight 1), min 2", True, 2, 1.0, False, "corpus"
        ),
        KeywordMethod("c-TF-IDF + corpus NPMI, phrases first", False, 1, 0.5, True, "corpus"),
        KeywordMethod(
            "c-TF-IDF + corpus NPMI of pairs seen twice, phrases first", False, 1, 0.5, True, "corpus", 2
        ),
        KeywordMethod(
            "passage-frequency c-TF-IDF + corpus NPMI of pairs seen twice", True, 2, 1.0, False, "corpus", 2
        ),
    )
}
KEYWORDS = KEYWORD_METHODS["passage-frequency c-TF-IDF + corpus NPMI of pairs seen twice"]


def _candidate_phrases(text: str, vocabulary: frozenset[str], unwanted: frozenset[str]) -> list[str]:
    """Lower-case word 1-3-grams made only of content words (in the vocabulary, longer than two letters, not
    unwanted) that no punctuation, digit, hyphenated compound or other word interrupts."""
    words = [t.lower() for t in tokens(text)]
    good = [w.isalpha() and len(w) > 2 and w not in unwanted and w in vocabulary for w in words]
    phrases = []
    for n in (1, 2, 3):
        for i in range(len(words) - n + 1):
            if all(good[i : i + n]):
                phrases.append(" ".join(words[i : i + n]))
    return phrases


def content_vocabulary(texts: Sequence[str], names: dict[str, str] | None = None) -> frozenset[str]:
    """Words that may be keywords: Danish words (vocabulary.is_danish_word, no English-only word) and names as
    the sources write them (vocabulary.name_forms)."""
    names = name_forms(texts) if names is None else names
    seen = {t.lower() for text in texts for t in tokens(text) if t.isalpha()}
    return frozenset(w for w in seen if (is_danish_word(w) or w in names) and not is_english_only(w))


def _lemmas_of(phrase: str) -> set[str]:
    return {lemma(w) for w in phrase.lower().split()}


@dataclass
class PhraseTable:
    """Candidate phrases per theme: occurrences, passages holding them, weights, and how the sources write
    them."""

    themes: list[int]
    phrases: list[str]  # lower case
    counts: np.ndarray  # themes x phrases: occurrences
    passages: np.ndarray  # themes x phrases: the theme's passages that hold the phrase
    names: dict[str, str]

    @classmethod
    def build(
        cls, texts: Sequence[str], labels: np.ndarray, excluded: frozenset[str] = frozenset()
    ) -> PhraseTable:
        themes = sorted({int(x) for x in labels if x >= 0})
        names = name_forms(texts)
        vocabulary = content_vocabulary(texts, names)
        unwanted = keyword_stop_words() | excluded
        per_unit = [_candidate_phrases(t, vocabulary, unwanted) for t in texts]
        phrases = sorted({p for i, found in enumerate(per_unit) if labels[i] >= 0 for p in found})
        column = {p: j for j, p in enumerate(phrases)}
        row = {t: i for i, t in enumerate(themes)}
        counts = np.zeros((len(themes), len(phrases)))
        passages = np.zeros((len(themes), len(phrases)))
        for found, label in zip(per_unit, labels, strict=True):
            if label < 0:
                continue
            for p, c in Counter(found).items():
                counts[row[int(label)], column[p]] += c
                passages[row[int(label)], column[p]] += 1
        return cls(themes, phrases, counts, passages, names)

    def weights(self, passage_frequency: bool) -> np.ndarray:
        """c-TF-IDF (BERTopic's): a phrase's frequency in the theme, times log(1 + the mean frequency of a
        theme's phrases over the phrase's frequency in all themes); the frequency counts occurrences or
        passages."""
        counts = self.passages if passage_frequency else self.counts
        if not counts.size:
            return counts
        tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        idf = np.log(1 + counts.sum() / len(counts) / np.maximum(counts.sum(axis=0), 1))
        return tf * idf

    def spread(self, phrase: str) -> int:
        """In how many themes' passages the phrase occurs."""
        j = self._column().get(phrase.lower())
        return 0 if j is None else int((self.counts[:, j] > 0).sum())

    def _column(self) -> dict[str, int]:
        if not hasattr(self, "_columns"):
            self._columns = {p: j for j, p in enumerate(self.phrases)}
        return self._columns

    def is_template(self, phrase: str) -> bool:
        """A phrase that says what any theme's passages say ("kommune arbejder", "borgerens forløb"): in the
        passages of template_threshold() themes or more, or made only of frame words, words in the passages
        of a third of the themes or more."""
        n = len(self.themes)
        if self.spread(phrase) >= template_threshold(n):
            return True
        return all(self.spread(w) * 3 >= n for w in phrase.lower().split())

    def display(self, phrase: str) -> str:
        """The phrase as the sources write its names (CUBB, JobFirst), other words in lower case."""
        return " ".join(self.names.get(w, w) for w in phrase.split())


def keyphrases(
    texts: Sequence[str],
    labels: np.ndarray,
    excluded: frozenset[str] = frozenset(),
    n: int = KEYPHRASES,
    method: KeywordMethod = KEYWORDS,
    table: PhraseTable | None = None,
) -> dict[int, list[str]]:
    """Each theme's keyphrases: c-TF-IDF over candidate phrases in at least `method.min_passages` of the
    theme's passages, then MMR, which trades a phrase's weight against its shared lemmas with the phrases
    already picked (so that "borgerne" and "borgernes" are not both chosen) and, with a coherence weight, adds
    how much the theme's passages use its words together with theirs (NPMI within the theme). With
    `phrases_first`, multi-word phrases (seen at least twice) take the first half."""
    table = table or PhraseTable.build(texts, labels, excluded)
    if not table.themes:
        return {}
    weights = table.weights(method.passage_frequency)
    unit_words = word_sets(texts) if method.coherence_weight else []
    corpus = Cooccurrence(unit_words)
    chosen: dict[int, list[str]] = {}
    for row, theme in enumerate(table.themes):
        scores = weights[row]
        enough = table.passages[row] >= method.min_passages
        order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
        # phrases in enough of the theme's passages first; the others only to fill n
        ranked = ([i for i in order if enough[i]] + [i for i in order if not enough[i]])[: 20 * n]
        together = None
        if unit_words and method.coherence_scope == "corpus":
            together = corpus
        elif unit_words:
            together = Cooccurrence([unit_words[i] for i in np.flatnonzero(labels == theme)])
        mmr = _PhraseMMR(
            {i: table.phrases[i] for i in ranked}, scores, together, method.coherence_weight, method.min_joint
        )
        picked: list[int] = []
        if method.phrases_first:
            multiword = [i for i in ranked if " " in table.phrases[i] and table.counts[row, i] >= 2]
            picked = mmr.extend(multiword, [], n // 2)
        picked = mmr.extend([i for i in ranked if i not in picked], picked, n)
        chosen[theme] = [table.display(table.phrases[i]) for i in picked]
    return chosen


LABEL_WORDS = (2, 4)  # a label phrase has this many words
LABEL_PHRASES = 2
# Words that say how much, how well or who reports it, not what is done: no label phrase holds one
LABEL_UNWANTED = frozenset(
    [
        "gerne",
        "netop",
        "undervejs",
        "bedst",
        "bedre",
        "ofte",
        "særligt",
        "særlig",
        "helt",
        "altid",
        "typisk",
        "allerede",
        "desuden",
        "endvidere",
        "ifølge",
        "beretter",
        "fortæller",
        "oplever",
        "nævner",
        "vurderer",
        "viser",
        "angiver",
        "store",
        "stor",
    ]
)


def template_threshold(n_themes: int) -> int:
    """A phrase in the passages of this many themes or more is a template ("kommune arbejder"), not a theme's
    own practice."""
    return max(3, math.ceil(n_themes / 5))


def theme_labels(table: PhraseTable, method: KeywordMethod = KEYWORDS) -> dict[int, list[str]]:
    """Each theme's label: one or two phrases of 2-4 words, best weight first, that no other theme's label
    holds (themes in id order, the largest first), that are no template (PhraseTable.is_template) and hold no
    LABEL_UNWANTED word, in at least two
    of the theme's passages where the theme has such, the second sharing no word with the first (same_word) and neither
    nested in the other."""
    weights = table.weights(method.passage_frequency)
    taken: set[str] = set()
    labels = {}
    for row, theme in enumerate(table.themes):
        scores = weights[row]
        usable = [
            j
            for j in np.argsort(-scores, kind="stable")
            if scores[j] > 0
            and LABEL_WORDS[0] <= len(table.phrases[j].split()) <= LABEL_WORDS[1]
            and table.phrases[j] not in taken
            and not table.is_template(table.phrases[j])
            and not set(table.phrases[j].split()) & LABEL_UNWANTED
        ]
        seen_twice = [j for j in usable if table.passages[row, j] >= 2]
        pool = seen_twice or usable
        picked: list[int] = []
        for j in pool:
            if len(picked) == LABEL_PHRASES:
                break
            if not any(share_a_word(table.phrases[j], table.phrases[k]) for k in picked):
                picked.append(j)
        taken.update(table.phrases[j] for j in picked)
        labels[theme] = [table.display(table.phrases[j]) for j in picked]
    return labels


class _PhraseMMR:
    """Maximal marginal relevance over candidate phrases (by index): relevance is the phrase's score over the
    best, less MMR_DIVERSITY times its largest lemma overlap (Jaccard) with a picked phrase, plus the coherence
    weight times the mean NPMI of its words with the picked phrases' other words within the theme."""

    def __init__(
        self,
        phrases: dict[int, str],
        scores: np.ndarray,
        together: Cooccurrence | None,
        coherence_weight: float = 0.0,
        min_joint: int = 1,
    ):
        self.words = {i: phrase.split() for i, phrase in phrases.items()}
        self.lemmas = {i: _lemmas_of(phrase) for i, phrase in phrases.items()}
        self.scores = scores
        self.together = together
        self.coherence_weight = coherence_weight
        self.min_joint = min_joint

    def relevance(self, i: int, picked: list[int], top: float) -> float:
        overlap = max(
            (len(self.lemmas[i] & self.lemmas[j]) / len(self.lemmas[i] | self.lemmas[j]) for j in picked),
            default=0.0,
        )
        coherence = 0.0
        if self.together is not None and self.coherence_weight:
            pairs = [(a, b) for j in picked for a in self.words[i] for b in self.words[j] if a != b]
            scores = [self.together.npmi(a, b, self.min_joint) for a, b in pairs]
            coherence = float(np.mean(scores)) if scores else 0.0
        return (
            (1 - MMR_DIVERSITY) * self.scores[i] / top
            - MMR_DIVERSITY * overlap
            + self.coherence_weight * coherence
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
        self._joint: dict[tuple[str, str], int] = {}

    def count(self, word: str) -> int:
        if word not in self._counts:
            self._counts[word] = sum(word in d for d in self.documents)
        return self._counts[word]

    def joint(self, a: str, b: str) -> int:
        key = (a, b) if a <= b else (b, a)
        if key not in self._joint:
            self._joint[key] = sum(a in d and b in d for d in self.documents)
        return self._joint[key]

    def npmi(self, a: str, b: str, min_joint: int = 1) -> float:
        """Normalised PMI of a and b over the documents; -1 for a pair seen together fewer than `min_joint`
        times (never, by default)."""
        joint = self.joint(a, b)
        if joint < max(1, min_joint):
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
    # per theme, the units (indexes) shown as its representative passages: diverse, by MMR
    representatives: dict[int, list[int]] = field(default_factory=dict)
    # per theme, the sentence ids of the passages nearest its centre: what a pin names it by
    anchors: dict[int, list[str]] = field(default_factory=dict)
    # Ward's tree over the theme centroids (scipy linkage matrix: merged a, merged b, distance, size)
    hierarchy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    # per theme, the label checks it fails (pipeline.themes.checks)
    checks: dict[int, list[str]] = field(default_factory=dict)
    pinned: dict[int, str] = field(default_factory=dict)  # theme -> the researcher's label
    pins: PinReport | None = None

    def coherence(self) -> float:
        """Mean NPMI coherence of the themes' keywords over the units."""
        documents = Cooccurrence(word_sets([u.text for u in self.units]))
        return (
            float(np.mean([npmi_coherence(t.keywords, documents) for t in self.themes]))
            if self.themes
            else 0.0
        )

    def check_counts(self) -> dict[str, int]:
        from pipeline.themes.checks import check_counts

        return check_counts(self.checks)

    def quality(self) -> dict[str, float]:
        """The figures a fit is judged by: themes, coverage, outliers, NPMI coherence, and per label check the
        themes that fail it (check_<name>); with pins, those kept and those that no longer match."""
        figures: dict[str, float] = {
            "themes": len(self.themes),
            "coverage": coverage(self.labels),
            "outliers": int((self.labels < 0).sum()),
            "npmi_coherence": self.coherence(),
        }
        figures.update({f"check_{name}": count for name, count in self.check_counts().items()})
        if self.pins is not None:
            figures["pins_matched"] = len(self.pins.statuses) - len(self.pins.unmatched)
            figures["pins_unmatched"] = len(self.pins.unmatched)
        return figures

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
        # the floor is the farthest member's similarity; a product taken in another order differs in its last
        # bits, so that member itself sits on the line: compare with a rounding margin
        return np.where(similarity.max(axis=1) >= self.floor - FLOOR_MARGIN, nearest, -1)


FLOOR_MARGIN = 1e-6


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


REPRESENTATIVE_DIVERSITY = 0.5  # MMR: weight of "unlike the passages already shown"
NEAR_COPY = 0.9  # cosine (centred, reduced space) at or above which two passages are near-copies
ANCHORS = 5


def representatives(
    reduced: np.ndarray, members: np.ndarray, texts: Sequence[str], k: int = REPRESENTATIVES
) -> list[int]:
    """`k` passages of a theme that show it and differ from one another: maximal marginal relevance over the
    (centred, reduced, unit-length) embeddings, the first the one nearest the theme's centre, each next the
    best of closeness to the centre less REPRESENTATIVE_DIVERSITY times its likeness to those shown; no
    near-copy (NEAR_COPY) and no repeated text."""
    vectors = reduced[members]
    centre = vectors.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    closeness = vectors @ centre
    order = [int(i) for i in np.argsort(-closeness, kind="stable")]
    chosen = [order[0]]
    seen = {" ".join(texts[members[order[0]]].lower().split())}
    while len(chosen) < min(k, len(order)):
        best, best_score = None, -np.inf
        for i in order:
            if i in chosen or " ".join(texts[members[i]].lower().split()) in seen:
                continue
            likeness = max(float(vectors[i] @ vectors[j]) for j in chosen)
            if likeness >= NEAR_COPY:
                continue
            score = (1 - REPRESENTATIVE_DIVERSITY) * closeness[i] - REPRESENTATIVE_DIVERSITY * likeness
            if score > best_score:
                best, best_score = i, score
        if best is None:
            break
        chosen.append(best)
        seen.add(" ".join(texts[members[best]].lower().split()))
    return [int(members[i]) for i in chosen]


@dataclass
class _Built:
    themes: list[Theme]
    table: PhraseTable
    representatives: dict[int, list[int]]
    anchors: dict[int, list[str]]


def build_themes(
    units: Sequence[Unit],
    vectors: np.ndarray,
    labels: np.ndarray,
    pinned: dict[int, str] | None = None,
    reduced: np.ndarray | None = None,
    method: KeywordMethod = KEYWORDS,
) -> _Built:
    texts = [u.text for u in units]
    reduced = reduce(vectors) if reduced is None else reduced
    table = PhraseTable.build(texts, labels, place_words(units))
    phrases = keyphrases(texts, labels, method=method, table=table)
    names = theme_labels(table, method)
    pinned = pinned or {}
    themes, shown, anchors = [], {}, {}
    for theme_id in sorted(phrases):
        members = np.flatnonzero(labels == theme_id)
        closest = members[np.argsort(-(reduced[members] @ reduced[members].mean(axis=0)), kind="stable")]
        shown[theme_id] = representatives(reduced, members, texts)
        anchors[theme_id] = [units[i].sentence.sentence_id for i in closest[:ANCHORS]]
        label = pinned.get(theme_id) or " · ".join(names[theme_id]) or " · ".join(phrases[theme_id][:2])
        themes.append(
            Theme(
                theme_id=theme_id,
                label=label,
                keywords=phrases[theme_id],
                representative_sentences=[texts[i] for i in shown[theme_id]],
                **_membership(units, members),
            )
        )
    return _Built(themes, table, shown, anchors)


def theme_hierarchy(reduced: np.ndarray, labels: np.ndarray, n_themes: int) -> np.ndarray:
    """Ward's tree over the themes: scipy's linkage of the theme centroids in the reduced space."""
    from scipy.cluster.hierarchy import linkage

    if n_themes < 2:
        return np.zeros((0, 4))
    centres = np.stack([reduced[labels == t].mean(axis=0) for t in range(n_themes)])
    return linkage(centres, method="ward")


def find_themes(
    efforts: Sequence[Effort],
    embedder: Embedder,
    sentences_per_passage: int = 1,
    pins: Path | None = DEFAULT_LABELS / "theme_pins.csv",
    method: KeywordMethod = KEYWORDS,
) -> ThemeModel:
    """Themes over the efforts' practice passages; with `pins` (labels/theme_pins.csv), the researcher's
    merges and labels applied and every pin's fate reported (model.pins)."""
    from pipeline.themes.checks import check_themes
    from pipeline.themes.pins import apply_pins, read_pins

    units = theme_units(efforts, sentences_per_passage)
    if len(units) <= MIN_THEMES * 2:
        raise ValueError(f"only {len(units)} passages of practice text: too few for themes")
    vectors = embedder.embed([u.text for u in units], "passage")
    reduced = reduce(vectors)
    labels, silhouettes = cluster(reduced)
    pinned: dict[int, str] = {}
    report = None
    if pins is not None and pins.exists():
        ids = [u.sentence.sentence_id for u in units]
        labels, pinned, report = apply_pins(read_pins(pins), ids, labels, min_theme_size(len(units)), pins)
        for status in report.unmatched:
            log.warning("theme pin %r (%s): %s", status.pin.label, pins, status.status)
    built = build_themes(units, vectors, labels, pinned, reduced, method)
    themes = built.themes
    centroids, floor = _centroids(vectors, labels, len(themes)) if themes else (np.zeros((0, 0)), 0.0)
    model = ThemeModel(themes, units, labels, vectors, silhouettes, centroids, floor)
    model.representatives, model.anchors = built.representatives, built.anchors
    model.hierarchy = theme_hierarchy(reduced, labels, len(themes))
    model.pinned, model.pins = pinned, report
    boilerplate = Counter(
        int(x) for u, x in zip(units, labels, strict=True) if x >= 0 and is_boilerplate(u.text)
    )
    model.checks = check_themes(
        themes,
        built.table.names,
        built.table.is_template,
        dict(boilerplate),
        frozenset(pinned),
    )
    return model


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
