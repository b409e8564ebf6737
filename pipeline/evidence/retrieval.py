"""Evidence: for every (effort, criterion of its tests), the page sentences that bear on the criterion.

Five rankings of the page's sentences are fused by reciprocal rank fusion (RRF, Cormack et al. 2009: score =
sum of 1 / (60 + rank); no weights to tune):
- `dense`: e5 cosine of the sentence to the criterion's core requirement (answer-level wording and test frames
  removed);
- `lexical`: cosine of character 3-5-gram TF-IDF vectors (IDF fitted on the corpus), the baseline;
- `bm25`: BM25 (the `bm25s` library) with the criterion's requirement parts as the query: the words as
  character 4-grams (Danish compounds: "borgersamtaler" shares "samt", "amta", ... with "samtaler"), plus one tag
  per actor and per kind of measurable part (frequency, time limit, duration, share) that `pipeline.requirements`
  finds, so "hver 14. dag" answers "hver 2. uge". Each page is its own BM25 collection: an effort scores the
  same alone (batch) as among others;
- `bm25_context`: the same BM25 over each sentence in its context (`context_texts`: the section's title, the
  lead-in heading above it, the sentence before and the one after), so that a sentence that continues or
  introduces the practice the criterion asks for is found with it.
- `late_interaction`: the stated detector's reading (pipeline.judgement.stated): per sentence, the weakest phrase matches
  of the criterion within that sentence's windows, minus the sentence's mean over the page's criteria, so that
  a generic sentence that matches every criterion a little is down-weighted.
`dense_context` (e5 over the same contexts) is scored for the evaluation only: fused in, it lowered the figures
on the gold set (docs/evidence_eval.txt).

Whether the page documents the criterion at all is a one-feature logistic model of the best dense score (the
best lexical score for an embedder without its own calibration), fitted on the gold set with balanced class
weights (pipeline/evidence/evidence_calibration.json, made by `python -m pipeline.evidence.evaluate --write-calibration`).
`documented` is its probability >= 0.5: with balanced weights, that is the point where missing a documented
criterion and flagging an undocumented one cost the same, whatever the share of documented criteria.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pipeline.defaults import STATED_THRESHOLD
from pipeline.embed import DEFAULT_CACHE, CachedEmbedder, Embedder, get_embedder
from pipeline.embed.tfidf import TfidfEmbedder
from pipeline.ingest.wording import core_requirement
from pipeline.records import SECTION_TITLES, Effort, Evidence, Sentence
from pipeline.textnorm import normalise_text

CALIBRATION_FILE = Path(__file__).with_name("evidence_calibration.json")
DEFAULT_K = 5
LEXICAL_ONLY = "lexical-only"  # calibration used for embedders that have none of their own
# The constant of reciprocal rank fusion, as in its paper; it damps the weight of the very top ranks.
RRF_K = 60
FUSED = ("dense", "lexical", "bm25", "bm25_context", "late_interaction")
GRAM = 4


def criterion_queries(effort: Effort) -> list[tuple[str, str]]:
    """(criterion_id, core requirement) of each criterion answered on the effort, once, in page order: the query
    never carries the answer-level wording or the test's frames."""
    queries: dict[str, str] = {}
    for test in effort.tests:
        for answer in test.answers:
            queries.setdefault(answer.criterion_id, core_requirement(answer.item))
    return list(queries.items())


def word_grams(text: str, n: int = GRAM) -> list[str]:
    """The normalised text's words as character n-grams, each word padded with "#" at both ends."""
    grams = []
    for word in re.findall(r"[a-zæøå0-9]+", normalise_text(text).lower()):
        padded = f"#{word}#"
        grams += [padded[i : i + n] for i in range(max(len(padded) - n + 1, 1))]
    return grams


def part_tokens(text: str) -> list[str]:
    """A text as requirement parts: its words as character n-grams, one tag per actor and per kind of measurable
    part."""
    from pipeline.requirements import actors_in, extract_quantities

    return [
        *word_grams(text),
        *(f"actor:{actor}" for actor in actors_in(text)),
        *(f"part:{q.kind}" for q in extract_quantities(text)),
    ]


@dataclass(frozen=True)
class Context:
    """Where a sentence stands: the heading above it ("section title: lead-in") and its neighbours in the
    section, as positions among the effort's non-heading sentences."""

    heading: str
    before: int | None
    after: int | None


def sentence_contexts(sentences: Sequence[Sentence]) -> list[Context]:
    """The context of each non-heading sentence of one effort (page order, sections one after another)."""
    contexts: list[Context] = []
    for section in dict.fromkeys(s.section for s in sentences):
        title = SECTION_TITLES.get(section, section)
        lines = [s for s in sentences if s.section == section]
        first = len(contexts)
        last = first + sum(not s.is_heading for s in lines) - 1
        lead_in = ""
        for sentence in lines:
            if sentence.is_heading:
                lead_in = sentence.text
                continue
            here = len(contexts)
            contexts.append(
                Context(
                    heading=f"{title}: {lead_in}" if lead_in else f"{title}:",
                    before=here - 1 if here > first else None,
                    after=here + 1 if here < last else None,
                )
            )
    return contexts


def in_context(
    contexts: Sequence[Context], parts: Sequence[list], heading_parts: dict[str, list]
) -> list[list]:
    """Each sentence's parts (texts, tokens) in its context: heading, sentence before, sentence, sentence after."""
    return [
        heading_parts[c.heading]
        + (parts[c.before] if c.before is not None else [])
        + parts[i]
        + (parts[c.after] if c.after is not None else [])
        for i, c in enumerate(contexts)
    ]


def context_texts(sentences: Sequence[Sentence]) -> list[str]:
    """Each non-heading sentence of one effort in its context, as one text."""
    contexts = sentence_contexts(sentences)
    body = [[s.text] for s in sentences if not s.is_heading]
    joined = in_context(contexts, body, {c.heading: [c.heading] for c in contexts})
    return [normalise_text(" ".join(parts)) for parts in joined]


def bm25_scores(documents: Sequence[list[str]], queries: Sequence[list[str]]) -> np.ndarray:
    """BM25 score of every document for every query (rows: queries), the documents being one collection."""
    import bm25s

    scores = np.zeros((len(queries), len(documents)))
    if not any(documents):
        return scores
    index = bm25s.BM25()
    index.index([list(d) for d in documents], show_progress=False)
    for row, query in enumerate(queries):
        if query:
            scores[row] = index.get_scores(list(query))
    return scores


def reciprocal_rank_fusion(rankings: Sequence[np.ndarray]) -> np.ndarray:
    """RRF score of every candidate from several score vectors over the same candidates (ties share a rank)."""
    fused = np.zeros(len(rankings[0]) if rankings else 0)
    for scores in rankings:
        ranks = np.searchsorted(np.sort(-scores), -scores, side="left") + 1
        fused += 1.0 / (RRF_K + ranks)
    return fused


@dataclass
class CriterionScores:
    """Similarities of one criterion to every candidate sentence of one effort, one array per component."""

    effort_id: str
    criterion_id: str
    query: str
    candidates: list[Sentence]
    dense: np.ndarray
    bm25: np.ndarray
    bm25_context: np.ndarray
    lexical: np.ndarray
    query_vector: np.ndarray  # the criterion's dense embedding: lets a model take the criterion as input
    late_interaction: (
        np.ndarray
    )  # the stated detector's phrase match per sentence, generic sentences down-weighted
    late_interaction_raw: np.ndarray  # the same before the down-weighting (the evaluation)
    dense_context: np.ndarray | None = None  # scored only when asked (the evaluation)

    def fused(self, components: Sequence[str] = FUSED) -> np.ndarray:
        return reciprocal_rank_fusion([getattr(self, c) for c in components])

    def ranked(self, n: int | None = None, components: Sequence[str] = FUSED) -> np.ndarray:
        """Indices of the candidates, best fused score first (ties in page order), the first n of them."""
        return np.argsort(-self.fused(components), kind="stable")[:n]

    def sentence_cosine_probability(self, settings: RankingSettings) -> float:
        """P(the page documents, i.e. states, the criterion) from its best dense and lexical scores."""
        return settings.probability(float(self.dense.max(initial=0.0)), float(self.lexical.max(initial=0.0)))


def fit_lexical(sentences: Sequence[Sentence]) -> TfidfEmbedder:
    """The lexical half, its IDF fitted on the corpus's sentences."""
    return TfidfEmbedder().fit([s.text for s in sentences if not s.is_heading] or [""])


def score_criteria(
    efforts: Sequence[Effort],
    sentences: Sequence[Sentence],
    embedder: Embedder,
    lexical: TfidfEmbedder,
    with_context: bool = False,
) -> list[CriterionScores]:
    """Embed each candidate sentence (and, with_context, each one in its context) and each query once; score
    every criterion against its own page."""
    by_effort: dict[str, list[Sentence]] = {}
    for sentence in sentences:
        by_effort.setdefault(sentence.effort_id, []).append(sentence)
    work = [(e, q) for e in efforts for q in criterion_queries(e)]
    if not work:
        return []
    candidates = {
        e.effort_id: [s for s in by_effort.get(e.effort_id, []) if not s.is_heading] for e in efforts
    }
    flat = [s for e in efforts for s in candidates[e.effort_id]]
    passages = [normalise_text(s.text) for s in flat]
    queries = list(dict.fromkeys(text for _, (_, text) in work))
    dense_p, lexical_p = embedder.embed(passages, "passage"), lexical.embed(passages, "passage")
    if with_context:
        contexts = [text for e in efforts for text in context_texts(by_effort.get(e.effort_id, []))]
        dense_c = embedder.embed(contexts, "passage")
    dense_q, lexical_q = embedder.embed(queries, "query"), lexical.embed(queries, "query")
    query_row = {text: i for i, text in enumerate(queries)}
    query_parts = [part_tokens(q) for q in queries]
    offsets, position, bm25, bm25_context = {}, 0, {}, {}
    for effort in efforts:
        count = len(candidates[effort.effort_id])
        offsets[effort.effort_id] = slice(position, position + count)
        position += count
        documents = [part_tokens(s.text) for s in candidates[effort.effort_id]]
        bm25[effort.effort_id] = bm25_scores(documents, query_parts)
        # the context's tokens from its parts' tokens: each sentence is tokenised once
        where = sentence_contexts(by_effort.get(effort.effort_id, []))
        headings = {c.heading: part_tokens(c.heading) for c in where}
        bm25_context[effort.effort_id] = bm25_scores(in_context(where, documents, headings), query_parts)
    late = {
        effort.effort_id: late_interaction(effort, by_effort.get(effort.effort_id, []), embedder)
        for effort in efforts
    }
    scores = []
    for effort, (criterion_id, query) in work:
        rows, row = offsets[effort.effort_id], query_row[query]
        scores.append(
            CriterionScores(
                effort_id=effort.effort_id,
                criterion_id=criterion_id,
                query=query,
                candidates=candidates[effort.effort_id],
                dense=dense_p[rows] @ dense_q[row],
                bm25=bm25[effort.effort_id][row],
                bm25_context=bm25_context[effort.effort_id][row],
                lexical=lexical_p[rows] @ lexical_q[row],
                query_vector=dense_q[row],
                late_interaction=late[effort.effort_id][criterion_id][0],
                late_interaction_raw=late[effort.effort_id][criterion_id][1],
                dense_context=dense_c[rows] @ dense_q[row] if with_context else None,
            )
        )
    return scores


def late_interaction(
    effort: Effort, sentences: Sequence[Sentence], embedder: Embedder
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per criterion of the effort, each non-heading sentence's late-interaction match (the stated detector's
    weakest phrase matches, within that sentence's windows), down-weighted and raw. A sentence that matches most
    of the page's criteria is generic ("Jobformidleren, som får ansvaret for den virksomhedsrettede indsats"):
    its mean match over the page's criteria is taken off."""
    from pipeline.evidence.late_interaction import score_page

    criteria = dict(criterion_queries(effort))
    match = score_page(effort.effort_id, sentences, criteria, embedder).sentence_match
    specific = match - match.mean(axis=0, keepdims=True) if len(match) else match
    return {cid: (specific[i], match[i]) for i, cid in enumerate(criteria)}


@dataclass(frozen=True)
class RankingSettings:
    """The documented model of one embedder."""

    intercept: float
    slope: float
    feature: Literal["dense", "lexical"]

    def probability(self, top_dense: float, top_lexical: float) -> float:
        top = top_dense if self.feature == "dense" else top_lexical
        return 1 / (1 + math.exp(-(self.intercept + self.slope * top)))


def load_ranking_settings(embedder_name: str, path: Path = CALIBRATION_FILE) -> tuple[RankingSettings, bool]:
    """Settings fitted for this embedder, or the lexical-only ones (and False) for an uncalibrated embedder."""
    table = json.loads(path.read_text(encoding="utf-8"))
    if embedder_name in table:
        return RankingSettings(**table[embedder_name]), True
    return RankingSettings(**table[LEXICAL_ONLY]), False


def rank_evidence(
    scores: Sequence[CriterionScores], p_stated: Mapping[tuple[str, str], float], k: int = DEFAULT_K
) -> list[Evidence]:
    """Top k sentences per criterion with their scores, and P(stated) of the criterion (effort_id,
    criterion_id -> probability) beside them."""
    evidence = []
    for item in scores:
        if not item.candidates:
            continue
        fused = item.fused()
        probability = p_stated[(item.effort_id, item.criterion_id)]
        for rank, index in enumerate(item.ranked(k), start=1):
            sentence = item.candidates[index]
            evidence.append(
                Evidence(
                    effort_id=item.effort_id,
                    criterion_id=item.criterion_id,
                    rank=rank,
                    score=round(float(fused[index]), 6),
                    stated=probability >= STATED_THRESHOLD,
                    p_stated=round(probability, 6),
                    section=sentence.section,
                    sentence=sentence.text,
                    sentence_index=sentence.index,
                    dense_score=round(float(item.dense[index]), 6),
                    lexical_score=round(float(item.lexical[index]), 6),
                )
            )
    return evidence


def dense_embedder(name: str, lexical: TfidfEmbedder, cache: Path | None = None) -> Embedder:
    """The registered embedder `name`, ready to score: the character TF-IDF (`tfidf`) is the lexical embedder
    already fitted on the corpus, and one whose vectors may be cached is wrapped in the on-disk cache. Another
    embedder that needs fitting is refused by name, never swapped for another one."""
    embedder: Embedder = get_embedder(name)
    if embedder.needs_fit:
        if not isinstance(embedder, TfidfEmbedder):
            raise ValueError(
                f"embedder {name!r} needs fitting on the corpus, which the evidence stage does only for tfidf"
            )
        return lexical
    return CachedEmbedder(embedder, cache or DEFAULT_CACHE) if embedder.cacheable else embedder


def evidence_scores(
    efforts: Sequence[Effort],
    embedder_name: str,
    cache: Path | None = None,
    effort_ids: Sequence[str] | None = None,
    lexical: TfidfEmbedder | None = None,
) -> tuple[list[CriterionScores], RankingSettings, TfidfEmbedder]:
    """Segment, embed (cached) and score every criterion of every assessed effort (or of effort_ids).

    Without `lexical`, its IDF is fitted on the sentences of every effort with a self-assessment, whichever of
    them were asked for, so the scores of one effort do not depend on the selection. A trained model passes
    the one fitted on its training corpus: then each effort is scored on its own, the same whether it comes
    alone (batch), with others (predict) or in a Spark partition. Returns the lexical embedder used."""
    from pipeline.evidence.segment import segment_efforts

    assessed = [e for e in efforts if e.tests]
    wanted = [e for e in assessed if effort_ids is None or e.effort_id in effort_ids]
    sentences = list(segment_efforts(assessed if lexical is None else wanted))
    lexical = lexical or fit_lexical(sentences)
    settings, _ = load_ranking_settings(embedder_name)
    embedder = dense_embedder(embedder_name, lexical, cache)
    return score_criteria(wanted, sentences, embedder, lexical), settings, lexical


def find_evidence(
    efforts: Sequence[Effort],
    embedder_name: str,
    k: int = DEFAULT_K,
    cache: Path | None = None,
    effort_ids: Sequence[str] | None = None,
    p_stated: Mapping[tuple[str, str], float] | None = None,
) -> list[Evidence]:
    """The evidence stage end to end: the top k sentences per criterion, beside P(stated) from `p_stated` (the
    stated detector's, pipeline.judgement.stated_eval.stated_probabilities) or, without it, the one-feature
    sentence-cosine estimate of the shipped calibration."""
    scores, settings, _ = evidence_scores(efforts, embedder_name, cache, effort_ids)
    if p_stated is None:
        p_stated = {(s.effort_id, s.criterion_id): s.sentence_cosine_probability(settings) for s in scores}
    return rank_evidence(scores, p_stated, k)
