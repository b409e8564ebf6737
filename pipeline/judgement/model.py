"""`EvidensModel`: the one fitted object from pages to Ja/Delvist/Nej, in the manner of SetFit's body and head.

The **body** reads a page: it segments it, embeds its sentences and each criterion's core requirement (the
registered embedder, cached where the embedder allows), ranks the evidence (five rankers fused:
`pipeline.evidence.retrieval`), decides whether the page states the criterion at all (P(stated), the stated
detector of `pipeline.judgement.stated`), and compares what the criterion requires with what the evidence says
(`pipeline.requirements`). The **head** (`pipeline.judgement.heads`, swappable by name) turns those judgement
features (`pipeline.judgement.features`) into P(answer | page), fitted with balanced weights; the model then
applies a prior: uniform ("balanced", the default, so that every answer can be predicted) or one the user gives
for a page; a criterion the page does not state gets `silent_prior`.

Everything that is fitted lives here: the criteria catalogue (matched with the model's own embedder), the
lexical IDF, the stated detector, the head and the training answers' prior. `predict` leaves its input as it
was. The scoring path (`pipeline.outputs.scoring`: batch, flag, run), the MLflow pyfunc (`evidens predict`,
Spark) and the evaluations all call `judge`, `probabilities` or `predict` here.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.class_weight import compute_sample_weight

from pipeline.defaults import DEFAULT_EMBEDDER, SILENT_PRIOR, STATED_THRESHOLD, user_cache
from pipeline.embed.base import Embedder
from pipeline.evidence.late_interaction import PageScores, score_page
from pipeline.evidence.retrieval import (
    CriterionScores,
    RankingSettings,
    criterion_queries,
    dense_embedder,
    fit_lexical,
    load_ranking_settings,
    score_criteria,
)
from pipeline.ingest.criteria import CriteriaCatalogue
from pipeline.ingest.wording import core_requirement
from pipeline.judgement.features import JUDGEMENT_FEATURES, feature_row
from pipeline.judgement.heads import DEFAULT_HEAD, fit_head, make_head
from pipeline.judgement.prior import Prior
from pipeline.judgement.stated import StatedDetector, StatementLabel
from pipeline.records import ANSWER_ORDER, Effort, Prediction, Quote, Sentence
from pipeline.requirements import Comparison, Requirement, compare, requirement_of
from pipeline.textnorm import dehyphenate

EVIDENCE_IN_PREDICTION = 3

TARGETS = ("self-assessed", "text")


@dataclass(frozen=True)
class AnswerUnit:
    """One answered item of one page: what the model predicts, and what it is compared with."""

    effort_id: str
    test_kind: str
    criterion_id: str
    item: str
    self_assessed: str | None


def answer_units(efforts: Sequence[Effort]) -> list[AnswerUnit]:
    return [
        AnswerUnit(effort.effort_id, test.kind, answer.criterion_id, answer.item, answer.answer)
        for effort in efforts
        for test in effort.tests
        for answer in test.answers
    ]


def corpus_hash(efforts: Sequence[Effort]) -> str:
    """Hash of the labelled data a model sees: each effort's content and its answers, order-independent."""
    content = sorted(
        json.dumps([e.content_sha256, [[a.criterion_id, a.answer] for t in e.tests for a in t.answers]])
        for e in efforts
        if e.tests
    )
    return hashlib.sha256("\n".join(content).encode()).hexdigest()


@dataclass
class Judgement:
    """The body's reading of one answered criterion of one page."""

    unit: AnswerUnit
    scores: CriterionScores
    requirement: Requirement
    p_stated: float
    comparison: Comparison
    quotes: list[Quote]  # the top sentences, best first

    @property
    def evidence(self) -> str:
        """The quotes as one CSV cell: "[section] sentence | [section] sentence"."""
        return " | ".join(f"[{q.section}] {q.text}" for q in self.quotes)

    @property
    def stated(self) -> str:
        """silent below the detector's threshold; else states where the requirement is met, partly otherwise."""
        if self.p_stated < STATED_THRESHOLD:
            return "silent"
        return "states" if self.comparison.outcome == "meets" else "partly"

    @property
    def features(self) -> list[float]:
        """One row in the order of JUDGEMENT_FEATURES (pipeline.judgement.features)."""
        return feature_row(self)


class EvidensModel(BaseEstimator):
    """Pages in, one Prediction per answered criterion out. Parameters:

    embedder   registry name of the dense embedder (e5-offline, tfidf, st:<model>, ...)
    head       registry name of the head (pipeline.judgement.heads.HEADS)
    prior      a Prior or its text form: "balanced" (every answer equally likely a priori, the default) or
               "Ja=..,Delvist=..,Nej=.." for all pages
    silent_prior  the answer distribution of a criterion the page does not state: the text says nothing about
               it, so the head cannot; the default "Nej=0.5,Delvist=0.3,Ja=0.2" leans to "not done", a
               balanced or other prior states how far a silent page is trusted. Reported with every figure.
    k          evidence sentences per criterion that the comparison reads and a prediction quotes
    cache      embedding cache (SQLite) for cacheable embedders; None: the user's (pipeline.defaults.user_cache)
    target     what a fitted head learns: "self-assessed" (the pages' answers) or "text" (the answers the text
               supports, from analysts' verdicts: `fit(..., text_answers=...)`; items without one are left out)
    """

    def __init__(
        self,
        embedder: str = DEFAULT_EMBEDDER,
        head: str = DEFAULT_HEAD,
        prior: Prior | str = "balanced",
        silent_prior: Prior | str = SILENT_PRIOR,
        k: int = EVIDENCE_IN_PREDICTION,
        cache: str | None = None,
        target: str = "self-assessed",
    ):
        self.embedder = embedder
        self.head = head
        self.prior = prior
        self.silent_prior = silent_prior
        self.k = k
        self.cache = cache
        self.target = target

    # -- fitting --------------------------------------------------------------------------------------------
    def fit(
        self,
        efforts: Sequence[Effort],
        catalogue: CriteriaCatalogue | None = None,
        text_answers: Mapping[tuple[str, str], str] | None = None,
        statement_gold: Sequence[StatementLabel] = (),
    ) -> EvidensModel:
        """Fit the head on the labelled efforts (those with a self-assessment; criterion ids assigned) and the
        stated detector on the `statement_gold` pairs of any of `efforts` (labelled or not); without such pairs
        P(stated) falls back to the shipped one-feature calibration. `text_answers` maps (effort_id,
        criterion_id) to the answer the text supports (target="text")."""
        from pipeline.evidence.segment import segment_efforts

        self.prior_ = Prior.parse(self.prior)  # fail before any work
        self.silent_prior_ = Prior.parse(self.silent_prior)
        if self.target not in TARGETS:
            raise ValueError(f"target {self.target!r} is not one of {', '.join(TARGETS)}")
        assessed = [e for e in efforts if e.tests]
        if not assessed:
            raise ValueError("no effort with a self-assessment to fit on")
        self.catalogue_ = catalogue or CriteriaCatalogue.from_efforts(assessed)
        self.settings_: RankingSettings = load_ranking_settings(self.embedder)[0]
        self.lexical_ = fit_lexical(list(segment_efforts(assessed)))
        self.stated_ = self._fit_stated(efforts, statement_gold)
        self.statement_gold_hash_ = hashlib.sha256(
            json.dumps(sorted(f"{g.record_id}|{g.criterion_id}|{g.label}" for g in statement_gold)).encode()
        ).hexdigest()[:16]
        judgements = self.judge(assessed)
        if self.target == "text":
            known = dict(text_answers or {})
            judgements = [j for j in judgements if (j.unit.effort_id, j.unit.criterion_id) in known]
            if not judgements:
                raise ValueError(
                    'target "text" needs analysts\' verdicts on these efforts: evidens review import'
                )
            y = np.array([known[(j.unit.effort_id, j.unit.criterion_id)] for j in judgements])
        else:
            y = np.array([j.unit.self_assessed for j in judgements])
        self.train_prior_ = Prior(tuple(float(np.mean(y == label)) for label in ANSWER_ORDER))
        self.trained_on_ = sorted({e.content_sha256 for e in assessed})
        self.n_answers_ = len(y)
        # what the head learnt beyond the pages (corpus_hash): the verdict answers, for the fingerprint
        self.text_answers_hash_ = (
            hashlib.sha256(
                json.dumps(
                    sorted(
                        f"{j.unit.effort_id}|{j.unit.criterion_id}|{label}"
                        for j, label in zip(judgements, y, strict=True)
                    )
                ).encode()
            ).hexdigest()[:16]
            if self.target == "text"
            else ""
        )
        self.train_matrix_, self.train_answers_ = self._matrix(judgements), y
        self.head_ = fit_head(
            make_head(self.head), self.train_matrix_, y, compute_sample_weight("balanced", y)
        )
        return self

    def with_head(self, head: str) -> EvidensModel:
        """This fitted model with another head fitted on the same judgements: the body (catalogue, lexical
        statistics, stated detector) is shared, not fitted again."""
        model = copy.copy(self)
        model.head = head
        y = self.train_answers_
        model.head_ = fit_head(make_head(head), self.train_matrix_, y, compute_sample_weight("balanced", y))
        return model

    # -- the body -----------------------------------------------------------------------------------------------
    def _criteria_texts(self, efforts: Sequence[Effort] = ()) -> dict[str, str]:
        """The core requirement of every catalogue criterion, and of any criterion the efforts answer beyond it:
        the detector scores a page against the whole catalogue."""
        texts = {
            cid: core_requirement(c.canonical_text) for cid, c in sorted(self.catalogue_.criteria.items())
        }
        for effort in efforts:
            for criterion_id, query in criterion_queries(effort):
                texts.setdefault(criterion_id, query)
        return texts

    def _page_scores(self, efforts: Sequence[Effort], sentences: Sequence[Sentence]) -> dict[str, PageScores]:
        by_effort: dict[str, list[Sentence]] = {e.effort_id: [] for e in efforts}
        for sentence in sentences:
            if sentence.effort_id in by_effort:
                by_effort[sentence.effort_id].append(sentence)
        texts = self._criteria_texts(efforts)
        return {
            effort_id: score_page(effort_id, page, texts, self._dense())
            for effort_id, page in by_effort.items()
        }

    def _fit_stated(
        self, efforts: Sequence[Effort], statement_gold: Sequence[StatementLabel]
    ) -> StatedDetector | None:
        """The stated detector, fitted on the gold pairs of the training records only."""
        from pipeline.evidence.segment import segment_efforts

        known = {e.effort_id for e in efforts}
        gold = [
            g for g in statement_gold if g.record_id in known and g.criterion_id in self.catalogue_.criteria
        ]
        if all(g.stated for g in gold) or not any(g.stated for g in gold):  # none, or one class only
            return None
        records = [e for e in efforts if e.effort_id in {g.record_id for g in gold}]
        pages = self._page_scores(records, list(segment_efforts(records)))
        X = [pages[g.record_id].row(g.criterion_id) for g in gold]
        return StatedDetector().fit(X, [g.stated for g in gold])

    def _dense(self) -> Embedder:
        if getattr(self, "_dense_embedder", None) is None:
            cache = Path(self.cache) if self.cache else user_cache()
            self._dense_embedder = dense_embedder(self.embedder, self.lexical_, cache)
        return self._dense_embedder

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_dense_embedder", None)  # rebuilt from its registry name where the model is loaded
        return state

    def __setstate__(self, state: dict) -> None:
        """A model registered before a parameter existed loads with that parameter's default."""
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self"
        }
        super().__setstate__({**defaults, **state})
        if hasattr(self, "head_") and not hasattr(self, "prior_"):  # fitted before fit parsed the priors
            self.prior_, self.silent_prior_ = Prior.parse(self.prior), Prior.parse(self.silent_prior)

    def stated_scores(self, efforts: Sequence[Effort]) -> dict[tuple[str, str], float]:
        """P(stated) of every catalogue criterion (and each page's own) on each page: (effort_id, criterion_id)
        -> probability. A model without a stated detector gives its answered criteria only."""
        from pipeline.evidence.segment import segment_efforts

        detector = getattr(self, "stated_", None)
        if detector is None:
            return {(j.unit.effort_id, j.unit.criterion_id): j.p_stated for j in self.judge(efforts)}
        pages = self._page_scores(efforts, list(segment_efforts(efforts)))
        return {
            (effort_id, criterion_id): float(probability)
            for effort_id, page in pages.items()
            for criterion_id, probability in zip(
                page.criterion_ids,
                detector.predict_proba([page.row(c) for c in page.criterion_ids]),
                strict=True,
            )
        }

    def with_criteria(self, efforts: Sequence[Effort]) -> list[Effort]:
        """The efforts with every answer's criterion id set to the known criterion it means: copies of those that
        lacked one, the others as they are. Neither the input nor the fitted catalogue is changed."""
        missing = {
            id(e): e.model_copy(deep=True)
            for e in efforts
            if any(not a.criterion_id for t in e.tests for a in t.answers)
        }
        if missing:
            known = [copy.deepcopy(c) for c in self.catalogue_.criteria.values()]
            pins = getattr(self.catalogue_, "pins", [])  # a model fitted before pins existed has none
            CriteriaCatalogue(
                known, embedder=self._dense(), threshold=self.catalogue_.threshold, pins=pins
            ).assign(list(missing.values()))
        return [missing.get(id(e), e) for e in efforts]

    def judge(self, efforts: Sequence[Effort]) -> list[Judgement]:
        """The body's reading of every answered criterion of the efforts, each page on its own."""
        from pipeline.evidence.segment import segment_efforts

        assessed = self.with_criteria([e for e in efforts if e.tests])
        sentences = list(segment_efforts(assessed))
        scores = score_criteria(assessed, sentences, self._dense(), self.lexical_)
        by_key = {(s.effort_id, s.criterion_id): s for s in scores}
        detector = getattr(self, "stated_", None)  # a model registered before the detector has none
        pages = self._page_scores(assessed, sentences) if detector is not None else {}
        judgements = []
        for unit in answer_units(assessed):
            item = by_key[(unit.effort_id, unit.criterion_id)]
            order = item.ranked(self.k)
            texts = [item.candidates[i].text for i in order]
            p_stated = (
                float(detector.predict_proba([pages[unit.effort_id].row(unit.criterion_id)])[0])
                if detector is not None
                else item.sentence_cosine_probability(self.settings_)
            )
            requirement = requirement_of(item.query)
            judgements.append(
                Judgement(
                    unit=unit,
                    scores=item,
                    requirement=requirement,
                    p_stated=p_stated,
                    comparison=compare(requirement, texts, p_stated >= STATED_THRESHOLD),
                    quotes=[
                        Quote(section=s.section, index=s.index, text=dehyphenate(s.text))
                        for s in (item.candidates[i] for i in order)
                    ],
                )
            )
        return judgements

    @staticmethod
    def _matrix(judgements: Sequence[Judgement]) -> np.ndarray:
        return np.array([j.features for j in judgements], dtype=float).reshape(-1, len(JUDGEMENT_FEATURES))

    # -- prediction -----------------------------------------------------------------------------------------
    def probabilities(
        self,
        judgements: Sequence[Judgement],
        prior: Prior | None = None,
        priors: Mapping[str, Prior] | None = None,
    ) -> np.ndarray:
        """P(answer) per judgement, columns in ANSWER_ORDER, under `priors[effort_id]` where given, else `prior`,
        else the model's `prior`. A criterion the page does not state gets `silent_prior` instead.

        The head was fitted with balanced weights, so its output assumes a uniform prior; a prior π reweights
        it to p(y) ∝ head(y) · π(y). The head runs once over all judgements."""
        if not judgements:
            return np.zeros((0, len(ANSWER_ORDER)))
        default = prior or self.prior_
        row_priors = [(priors or {}).get(j.unit.effort_id, default) for j in judgements]
        weights = np.array([p.weights for p in row_priors])
        weighted = self.head_.predict_proba(self._matrix(judgements)) * weights
        probabilities = weighted / np.clip(weighted.sum(axis=1, keepdims=True), 1e-12, None)
        silent = np.array([j.stated == "silent" for j in judgements])
        probabilities[silent] = self.silent_prior_.weights
        return probabilities

    def predict_proba(self, efforts: Sequence[Effort], prior: Prior | None = None) -> np.ndarray:
        return self.probabilities(self.judge(efforts), prior)

    def predict(
        self, efforts: Sequence[Effort], priors: Mapping[str, Prior] | None = None
    ) -> list[Prediction]:
        """One Prediction per answered criterion; `priors` maps an effort id to the prior known for that page."""
        judgements = self.judge(efforts)
        probabilities = self.probabilities(judgements, priors=priors)
        seen = {e.effort_id for e in efforts if self.saw_answers_of(e)}
        return [
            prediction_from(j, p, in_sample=j.unit.effort_id in seen)
            for j, p in zip(judgements, probabilities, strict=True)
        ]

    def saw_answers_of(self, effort: Effort) -> bool:
        """Whether the head was fitted on this page's answers (then it may not judge them)."""
        return getattr(self.head_, "uses_answers", True) and effort.content_sha256 in self.trained_on_

    def fingerprint(self, efforts: Sequence[Effort]) -> str:
        """Same training data and parameters, same fingerprint: an unchanged model is not registered again."""
        params = {k: v for k, v in self.get_params().items() if k != "cache"}
        learnt = [
            corpus_hash(efforts),
            getattr(self, "text_answers_hash_", ""),
            getattr(self, "statement_gold_hash_", ""),
        ]
        text = json.dumps([*learnt, params], sort_keys=True, default=str)  # a Prior by its text form
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def prediction_from(judgement: Judgement, probabilities: np.ndarray, in_sample: bool) -> Prediction:
    by_label = dict(zip(ANSWER_ORDER, probabilities, strict=True))
    unit = judgement.unit
    return Prediction(
        effort_id=unit.effort_id,
        criterion_id=unit.criterion_id,
        test_kind=unit.test_kind,
        item=unit.item,
        p_ja=round(float(by_label["Ja"]), 6),
        p_delvist=round(float(by_label["Delvist"]), 6),
        p_nej=round(float(by_label["Nej"]), 6),
        predicted=ANSWER_ORDER[int(np.argmax(probabilities))],
        self_assessed=unit.self_assessed or "",
        p_stated=round(judgement.p_stated, 6),
        stated=judgement.stated,
        comparison=judgement.comparison.outcome,
        basis=judgement.comparison.basis,
        basis_sentence=judgement.comparison.sentence,
        evidence=judgement.evidence,
        quotes=judgement.quotes,
        in_sample=in_sample,
    )
