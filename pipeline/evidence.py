"""Evidence: for every (effort, criterion of its tests), the page sentences that bear on the criterion.

Ranking is a hybrid: alpha * dense cosine + (1 - alpha) * character n-gram TF-IDF cosine, with the canonical
criterion (answer-level wording removed) as the query. Whether the page documents the criterion at all is a
one-feature logistic model of the best dense score (the best lexical score for an embedder without its own
calibration), fitted on the gold set with balanced class weights (pipeline/evidence_calibration.json, made by
`python -m pipeline.evidence_eval --write-calibration`). `documented` is its probability >= 0.5: with balanced
weights, that is the point where missing a documented criterion and flagging an undocumented one cost the same,
whatever the share of documented criteria on the pages it was fitted on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pipeline.embed import DEFAULT_CACHE, CachedEmbedder, Embedder, get_embedder
from pipeline.embed.tfidf import TfidfEmbedder
from pipeline.ingest.wording import core_requirement
from pipeline.records import Effort, Evidence, Sentence

CALIBRATION_FILE = Path(__file__).with_name("evidence_calibration.json")
DEFAULT_K = 5
DOCUMENTED_THRESHOLD = 0.5
LEXICAL_ONLY = "lexical-only"  # calibration used for embedders that have none of their own


def criterion_queries(effort: Effort) -> list[tuple[str, str]]:
    """(criterion_id, core requirement) of each criterion answered on the effort, once, in page order: the query
    never carries the answer-level wording or the test's frames."""
    queries: dict[str, str] = {}
    for test in effort.tests:
        for answer in test.answers:
            queries.setdefault(answer.criterion_id, core_requirement(answer.item))
    return list(queries.items())


@dataclass
class CriterionScores:
    """Similarities of one criterion to every candidate sentence of one effort."""

    effort_id: str
    criterion_id: str
    query: str
    candidates: list[Sentence]
    dense: np.ndarray
    lexical: np.ndarray
    query_vector: np.ndarray  # the criterion's dense embedding: lets a model take the criterion as input

    def hybrid(self, alpha: float) -> np.ndarray:
        return alpha * self.dense + (1 - alpha) * self.lexical

    def ranked(self, alpha: float, n: int | None = None) -> np.ndarray:
        """Indices of the candidates, best hybrid score first (ties in page order), the first n of them."""
        return np.argsort(-self.hybrid(alpha), kind="stable")[:n]

    def documented_probability(self, settings: RankingSettings) -> float:
        """P(the page documents, i.e. states, the criterion) from its best dense and lexical scores."""
        return settings.documented_probability(
            float(self.dense.max(initial=0.0)), float(self.lexical.max(initial=0.0))
        )


def fit_lexical(sentences: Sequence[Sentence]) -> TfidfEmbedder:
    """The lexical half, its IDF fitted on the corpus's sentences."""
    return TfidfEmbedder().fit([s.text for s in sentences if not s.is_heading] or [""])


def score_criteria(
    efforts: Sequence[Effort], sentences: Sequence[Sentence], embedder: Embedder, lexical: TfidfEmbedder
) -> list[CriterionScores]:
    """Embed each candidate sentence and each query once; score every criterion against its own page."""
    by_effort: dict[str, list[Sentence]] = {}
    for sentence in sentences:
        if not sentence.is_heading:
            by_effort.setdefault(sentence.effort_id, []).append(sentence)
    work = [(e, q) for e in efforts for q in criterion_queries(e)]
    if not work:
        return []
    candidates = [s for e in efforts for s in by_effort.get(e.effort_id, [])]
    passages = [s.text for s in candidates]
    queries = list(dict.fromkeys(text for _, (_, text) in work))
    dense_p, lexical_p = embedder.embed(passages, "passage"), lexical.embed(passages, "passage")
    dense_q, lexical_q = embedder.embed(queries, "query"), lexical.embed(queries, "query")
    query_row = {text: i for i, text in enumerate(queries)}
    offsets, position = {}, 0
    for effort in efforts:
        count = len(by_effort.get(effort.effort_id, []))
        offsets[effort.effort_id] = slice(position, position + count)
        position += count
    scores = []
    for effort, (criterion_id, query) in work:
        rows, row = offsets[effort.effort_id], query_row[query]
        scores.append(
            CriterionScores(
                effort_id=effort.effort_id,
                criterion_id=criterion_id,
                query=query,
                candidates=by_effort.get(effort.effort_id, []),
                dense=dense_p[rows] @ dense_q[row],
                lexical=lexical_p[rows] @ lexical_q[row],
                query_vector=dense_q[row],
            )
        )
    return scores


@dataclass(frozen=True)
class RankingSettings:
    """The hybrid weight and the documented model of one embedder."""

    alpha: float
    intercept: float
    slope: float
    feature: Literal["dense", "lexical"]

    def documented_probability(self, top_dense: float, top_lexical: float) -> float:
        top = top_dense if self.feature == "dense" else top_lexical
        return 1 / (1 + math.exp(-(self.intercept + self.slope * top)))


def load_ranking_settings(embedder_name: str, path: Path = CALIBRATION_FILE) -> tuple[RankingSettings, bool]:
    """Settings fitted for this embedder, or the lexical-only ones (and False) for an uncalibrated embedder."""
    table = json.loads(path.read_text(encoding="utf-8"))
    if embedder_name in table:
        return RankingSettings(**table[embedder_name]), True
    return RankingSettings(**table[LEXICAL_ONLY]), False


def rank_evidence(
    scores: Sequence[CriterionScores], settings: RankingSettings, k: int = DEFAULT_K
) -> list[Evidence]:
    """Top k sentences per criterion with their scores and the documented flag."""
    evidence = []
    for item in scores:
        if not item.candidates:
            continue
        hybrid = item.hybrid(settings.alpha)
        probability = item.documented_probability(settings)
        for rank, index in enumerate(item.ranked(settings.alpha, k), start=1):
            sentence = item.candidates[index]
            evidence.append(
                Evidence(
                    effort_id=item.effort_id,
                    criterion_id=item.criterion_id,
                    rank=rank,
                    score=round(float(hybrid[index]), 6),
                    documented=probability >= DOCUMENTED_THRESHOLD,
                    documented_score=round(probability, 6),
                    section=sentence.section,
                    sentence=sentence.text,
                    sentence_index=sentence.index,
                    dense_score=round(float(item.dense[index]), 6),
                    lexical_score=round(float(item.lexical[index]), 6),
                )
            )
    return evidence


def dense_embedder(name: str, lexical: TfidfEmbedder, cache: Path | None = None) -> Embedder:
    """The registered embedder `name`, ready to score: one that learns from the corpus is the lexical embedder
    already fitted on it, and one whose vectors may be cached is wrapped in the on-disk cache."""
    embedder: Embedder = get_embedder(name)
    if embedder.needs_fit:
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
    from pipeline.segment import segment_efforts

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
) -> list[Evidence]:
    """The evidence stage end to end: the top k sentences per criterion with the documented flag."""
    scores, settings, _ = evidence_scores(efforts, embedder_name, cache, effort_ids)
    return rank_evidence(scores, settings, k)
