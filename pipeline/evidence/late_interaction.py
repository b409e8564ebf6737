"""Late interaction: a criterion read at the grain of a practice, on one page.

The criterion's content words are cut into short phrases (PHRASE_WORDS words), the page into windows
(WINDOW_WORDS words, inside a sentence), role names mapped to one role in both (vocabulary.csv: so that
"arbejdsmarkedsrådgiver" is a "jobkonsulent"); each phrase takes its best dense match among the windows
(ColBERT-style late interaction over e5 vectors), and the WEAKEST_PHRASES weakest of those matches are averaged:
every part of the practice must be on the page. A window maps back to its whole sentence (`sentence_match`), so
the same reading ranks evidence. `score_page` also gives, for comparison, the rarity-weighted coverage of the
criterion's practice terms (roles and generic words never count), the best whole-sentence cosine and the best
BM25 score over the requirement's parts. `pipeline.judgement.stated` calibrates the late-interaction score into
P(stated).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from pipeline.embed import Embedder
from pipeline.records import Sentence
from pipeline.tables import read_csv
from pipeline.textnorm import normalise_text

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.csv")
PHRASE_WORDS = 4
WINDOW_WORDS = 8
WEAKEST_PHRASES = 2
SCORES = ("late_interaction", "term_coverage", "sentence_cosine", "requirement_bm25")
DETECTOR_SCORES = ("late_interaction",)  # chosen by worst-fold AUC: docs/stated_eval.txt
_WORD = re.compile(r"[0-9a-zæøåéü]+(?:[-/][0-9a-zæøåéü]+)*", re.I)


@dataclass(frozen=True)
class Vocabulary:
    """Role names mapped to one role, and generic words: neither states a practice on its own."""

    canonical: Mapping[str, str] = field(default_factory=dict)  # term -> canonical word
    ignored: frozenset[str] = frozenset()  # canonical words that never count as a practice term
    roles: frozenset[str] = frozenset()  # canonical words that name a role

    def normalise(self, word: str) -> str:
        for term in sorted(self.canonical, key=len, reverse=True):
            if word.startswith(term):
                return self.canonical[term]
        return word


@cache
def load_vocabulary(path: Path = VOCABULARY_FILE) -> Vocabulary:
    rows = read_csv(path, ("term", "canonical", "kind"), comments=True)
    return Vocabulary(
        {r["term"]: r["canonical"] for r in rows},
        frozenset(r["canonical"] for r in rows),
        frozenset(r["canonical"] for r in rows if r["kind"] == "role"),
    )


NO_VOCABULARY = Vocabulary()


def words_of(text: str) -> list[str]:
    return _WORD.findall(normalise_text(text).lower())


def practice_terms(text: str, vocabulary: Vocabulary) -> list[str]:
    """The criterion's practice terms: content words as six-letter stems, roles and generic words left out."""
    from pipeline.requirements import content_words

    terms = []
    for word in content_words(normalise_text(text)):
        canonical = vocabulary.normalise(word)
        if canonical not in vocabulary.ignored:
            terms.append(canonical[:6])
    return list(dict.fromkeys(terms))


def phrases(text: str, vocabulary: Vocabulary, size: int = PHRASE_WORDS) -> list[str]:
    """The criterion's content words (roles mapped to one role) in consecutive pieces of `size` words,
    overlapping by half; one piece for a short criterion."""
    from pipeline.requirements import content_words

    words = list(dict.fromkeys(role_word(w, vocabulary) for w in content_words(normalise_text(text))))
    if len(words) <= size:
        return [" ".join(words)] if words else []
    step = max(size // 2, 1)
    return list(
        dict.fromkeys(" ".join(words[i : i + size]) for i in range(0, len(words) - size + step, step))
    )


def role_word(word: str, vocabulary: Vocabulary) -> str:
    """A role's name as the one role it is (other words unchanged)."""
    canonical = vocabulary.normalise(word)
    return canonical if canonical in vocabulary.roles else word


def windows(
    sentences: Sequence[Sentence], vocabulary: Vocabulary, size: int = WINDOW_WORDS
) -> tuple[list[str], list[int]]:
    """Windows of `size` words (roles mapped to one role) side by side inside each sentence, the last one ending
    with the sentence, and the index (in `sentences`) of the sentence each comes from: a window's match maps back
    to a whole sentence. Side by side rather than overlapping: half the texts to embed, and the detector was as
    steady (docs/stated_eval.txt)."""
    texts, owners = [], []
    for position, sentence in enumerate(sentences):
        words = [role_word(w, vocabulary) for w in words_of(sentence.text)]
        starts = list(range(0, max(len(words) - size, 0) + 1, size)) if words else []
        if starts and starts[-1] + size < len(words):
            starts.append(len(words) - size)
        for start in starts:
            texts.append(" ".join(words[start : start + size]))
            owners.append(position)
    return texts, owners


WindowCut = Callable[[Sequence[Sentence], Vocabulary], tuple[list[str], list[int]]]  # like `windows`
PhraseCut = Callable[[str, Vocabulary], list[str]]  # like `phrases`


# -- the page's scores for every criterion --------------------------------------------------------------------
@dataclass
class PageScores:
    """Every score of every criterion (rows) on one page, raw and centred on the page, and per sentence the
    late-interaction match each criterion found there (for the evidence)."""

    effort_id: str
    criterion_ids: list[str]
    raw: dict[str, np.ndarray]  # score name -> one value per criterion
    sentence_match: np.ndarray  # criteria x sentences: mean over phrases of the best window in the sentence

    def centred(self, name: str) -> np.ndarray:
        values = self.raw[name]
        return values - values.mean() if len(values) else values

    def row(self, criterion_id: str, names: Sequence[str] = DETECTOR_SCORES) -> list[float]:
        i = self.criterion_ids.index(criterion_id)
        return [float(self.centred(n)[i]) for n in names]


def weakest_parts(best_matches: np.ndarray, n: int = WEAKEST_PHRASES) -> float:
    """The mean of the n weakest phrase matches: a practice is stated when all its parts are, so the part the
    page matches least decides (the mean of all phrases let a page that matches the topic pass)."""
    return float(np.sort(best_matches)[:n].mean())


def term_weights(criteria_texts: Mapping[str, str], vocabulary: Vocabulary) -> dict[str, float]:
    """IDF of each practice term across the catalogue's criteria: a term every criterion uses weighs little."""
    frequency: dict[str, int] = {}
    for text in criteria_texts.values():
        for term in practice_terms(text, vocabulary):
            frequency[term] = frequency.get(term, 0) + 1
    n = len(criteria_texts)
    return {term: math.log((n + 1) / (df + 1)) + 1 for term, df in frequency.items()}


def _coverage(
    terms: Sequence[str], weights: Mapping[str, float], sentence_words: Sequence[set[str]]
) -> np.ndarray:
    """Per sentence (with its neighbours), the weighted share of the terms it contains."""
    if not terms or not sentence_words:
        return np.zeros(len(sentence_words))
    total = sum(weights.get(t, 1.0) for t in terms)
    found = np.array(
        [
            sum(weights.get(t, 1.0) for t in terms if any(w.startswith(t) for w in words))
            for words in sentence_words
        ]
    )
    return found / total


def score_page(
    effort_id: str,
    sentences: Sequence[Sentence],
    criteria_texts: Mapping[str, str],
    embedder: Embedder,
    vocabulary: Vocabulary | None = None,
    weights: Mapping[str, float] | None = None,
    cut_windows: WindowCut = windows,
    cut_phrases: PhraseCut = phrases,
) -> PageScores:
    """Every score of every criterion on one page (its non-heading sentences). `cut_windows` and `cut_phrases`
    are the shipped cuts unless a comparison (python -m pipeline.judgement.layout_eval) passes others."""
    from pipeline.evidence.retrieval import bm25_scores, part_tokens

    vocabulary = load_vocabulary() if vocabulary is None else vocabulary
    weights = term_weights(criteria_texts, vocabulary) if weights is None else weights
    ids = list(criteria_texts)
    body = [s for s in sentences if not s.is_heading]
    n, m = len(ids), len(body)
    raw = {name: np.zeros(n) for name in SCORES}
    match = np.zeros((n, m))
    if not body or not ids:
        return PageScores(effort_id, ids, raw, match)
    window_texts, owners = cut_windows(body, vocabulary)
    owner = np.array(owners)
    texts = [normalise_text(s.text) for s in body]
    window_vectors = embedder.embed(window_texts, "passage")
    sentence_vectors = embedder.embed(texts, "passage")
    criterion_phrases = [cut_phrases(criteria_texts[i], vocabulary) or [criteria_texts[i]] for i in ids]
    flat = list(dict.fromkeys(p for ps in criterion_phrases for p in ps))
    phrase_vectors = dict(zip(flat, embedder.embed(flat, "query"), strict=True))
    query_vectors = embedder.embed([criteria_texts[i] for i in ids], "query")
    sentence_words = [{vocabulary.normalise(w) for w in words_of(t)} for t in texts]
    in_context = [
        sentence_words[i]
        | (sentence_words[i - 1] if i else set())
        | (sentence_words[i + 1] if i + 1 < m else set())
        for i in range(m)
    ]
    bm25 = bm25_scores([part_tokens(t) for t in texts], [part_tokens(criteria_texts[i]) for i in ids])
    for row, criterion_id in enumerate(ids):
        similarities = np.stack([phrase_vectors[p] for p in criterion_phrases[row]]) @ window_vectors.T
        raw["late_interaction"][row] = weakest_parts(similarities.max(axis=1))
        best_in_sentence = np.full((len(similarities), m), -1.0)
        np.maximum.at(best_in_sentence.T, owner, similarities.T)
        match[row] = [weakest_parts(column) for column in best_in_sentence.T]
        terms = practice_terms(criteria_texts[criterion_id], vocabulary)
        raw["term_coverage"][row] = float(_coverage(terms, weights, in_context).max(initial=0.0))
        raw["sentence_cosine"][row] = float((sentence_vectors @ query_vectors[row]).max())
        raw["requirement_bm25"][row] = float(bm25[row].max(initial=0.0))
    return PageScores(effort_id, ids, raw, match)
