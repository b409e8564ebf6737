"""Leave-one-effort-out evaluation of `EvidensModel` (each head) and its baselines, under the same folds.

Every figure comes with a bootstrap confidence interval (items resampled, fixed seed): with two labelled pages
the intervals are wide, and the tables say so. Baselines are scikit-learn's where one exists (`DummyClassifier`
for the majority answer; a balanced `LogisticRegression` on three similarity features).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, log_loss, recall_score
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.judgement.features import JUDGEMENT_FEATURES
from pipeline.judgement.heads import HEADS
from pipeline.judgement.model import EvidensModel, Judgement, prediction_from
from pipeline.judgement.stated import StatementLabel
from pipeline.progress import progress
from pipeline.records import ANSWER_ORDER, Effort, Prediction
from pipeline.stats import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, with_interval

PRIOR_STRENGTH = 2.0  # pseudo-answers of the global prior added to each criterion's own answers
THREE_FEATURES = ("p_stated", "dense_top", "lexical_top")
MODEL = "model ({head} head)"


def _in_answer_order(classes: Sequence[str], probabilities: np.ndarray) -> np.ndarray:
    """Columns of a scikit-learn classifier's predict_proba (alphabetical, maybe missing classes) reordered."""
    out = np.zeros((len(probabilities), len(ANSWER_ORDER)))
    for column, label in enumerate(classes):
        out[:, ANSWER_ORDER.index(label)] = probabilities[:, column]
    return out


def majority_baseline(X_train, y_train, test: Sequence[Judgement], X_test) -> np.ndarray:
    """The training answers' frequencies for every item: predicts the majority answer."""
    dummy = DummyClassifier(strategy="prior").fit(X_train, y_train)
    return _in_answer_order(dummy.classes_, dummy.predict_proba(X_test))


def criterion_prior_baseline(X_train, y_train, test, X_test, train: Sequence[Judgement] = ()) -> np.ndarray:
    """Each criterion's own training answers, shrunk towards the global prior; the prior where unseen."""
    counts = Counter(y_train)
    prior = np.array([(counts[a] + 1) / (len(y_train) + len(ANSWER_ORDER)) for a in ANSWER_ORDER])
    seen: dict[str, list[str]] = {}
    for judgement, label in zip(train, y_train, strict=True):
        seen.setdefault(judgement.unit.criterion_id, []).append(label)
    rows = []
    for judgement in test:
        own = seen.get(judgement.unit.criterion_id, [])
        own_counts = np.array([own.count(a) for a in ANSWER_ORDER], dtype=float)
        rows.append((own_counts + PRIOR_STRENGTH * prior) / (len(own) + PRIOR_STRENGTH))
    return np.array(rows)


def three_feature_baseline(X_train, y_train, test, X_test) -> np.ndarray:
    """Balanced logistic regression on P(stated) and the best dense and lexical similarity."""
    columns = [JUDGEMENT_FEATURES.index(f) for f in THREE_FEATURES]
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    model.fit(X_train[:, columns], y_train)
    return _in_answer_order(model.classes_, model.predict_proba(X_test[:, columns]))


def zero_shot_baseline(X_train, y_train, test, X_test) -> np.ndarray:
    """No training: P(stated) p read as two ordered steps, Nej (1-p)^2, Delvist 2p(1-p), Ja p^2."""
    p = X_test[:, JUDGEMENT_FEATURES.index("p_stated")]
    return np.column_stack([(1 - p) ** 2, 2 * p * (1 - p), p**2])


BASELINES = {
    "baseline: majority answer": majority_baseline,
    "baseline: per-criterion prior": criterion_prior_baseline,
    "baseline: 3 similarity features, balanced logistic": three_feature_baseline,
    "baseline: zero-shot (P(stated))": zero_shot_baseline,
}


def _log_loss(y_true: Sequence[str], probabilities: np.ndarray) -> float:
    """Log-loss with columns in ANSWER_ORDER. scikit-learn reads the columns in sorted label order (Delvist, Ja,
    Nej) whatever `labels` says, so they are reordered; clipped and renormalised so a zero costs finitely."""
    alphabetical = sorted(ANSWER_ORDER)
    columns = np.clip(probabilities[:, [ANSWER_ORDER.index(label) for label in alphabetical]], 1e-6, 1.0)
    return float(log_loss(y_true, columns / columns.sum(axis=1, keepdims=True), labels=alphabetical))


def _point_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    labels = list(ANSWER_ORDER)
    return {
        "accuracy": float(np.mean(predicted == y_true)),
        "macro_f1": float(f1_score(y_true, predicted, labels=labels, average="macro", zero_division=0)),
        "qwk": float(np.nan_to_num(cohen_kappa_score(y_true, predicted, labels=labels, weights="quadratic"))),
    }


def within_page_auc(y_true: Sequence[str], p_ja: np.ndarray, pages: Sequence[str]) -> tuple[float, int]:
    """P(Ja) ranks a page's Ja items above its Nej items: the share of (Ja, Nej) pairs of one page ordered
    right (ties count half), pooled over pages; and the number of pairs (0: NaN)."""
    right, pairs = 0.0, 0
    y, pages_ = np.asarray(y_true), np.asarray(pages)
    for page in np.unique(pages_):
        ja = p_ja[(pages_ == page) & (y == "Ja")]
        nej = p_ja[(pages_ == page) & (y == "Nej")]
        if len(ja) and len(nej):
            difference = ja[:, None] - nej[None, :]
            right += float((difference > 0).sum() + 0.5 * (difference == 0).sum())
            pairs += difference.size
    return (right / pairs if pairs else float("nan")), pairs


def classification_metrics(
    y_true: Sequence[str], probabilities: np.ndarray, pages: Sequence[str] | None = None
) -> dict[str, float]:
    """Point metrics, per-class recall and F1, log-loss, within-page AUC, and 95% bootstrap intervals."""
    labels = list(ANSWER_ORDER)
    y = np.asarray(y_true)
    predicted = np.array(labels)[np.argmax(probabilities, axis=1)]
    metrics = _point_metrics(y, predicted)
    recalls = recall_score(y, predicted, labels=labels, average=None, zero_division=0)
    f1s = f1_score(y, predicted, labels=labels, average=None, zero_division=0)
    for label, recall, f1 in zip(labels, recalls, f1s, strict=True):
        metrics[f"recall_{label.lower()}"] = float(recall)
        metrics[f"f1_{label.lower()}"] = float(f1)
    metrics["log_loss"] = _log_loss(y, probabilities)
    if pages is not None:
        metrics["auc_ja_vs_nej_within_page"], metrics["auc_pairs"] = within_page_auc(
            y, probabilities[:, labels.index("Ja")], pages
        )
    true_index = np.array([labels.index(a) for a in y])
    predicted_index = np.array([labels.index(a) for a in predicted])
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    values = np.array(
        [
            _confusion_metrics(np.bincount(3 * true_index[s] + predicted_index[s], minlength=9).reshape(3, 3))
            for s in (rng.integers(0, len(y), len(y)) for _ in range(BOOTSTRAP_SAMPLES))
        ]
    )
    for column, name in enumerate(("accuracy", "macro_f1", "qwk")):
        low, high = np.percentile(values[:, column], [2.5, 97.5])
        metrics[f"{name}_low"], metrics[f"{name}_high"] = float(low), float(high)
    return metrics


def _confusion_metrics(confusion: np.ndarray) -> tuple[float, float, float]:
    """(accuracy, macro-F1, quadratic kappa) from a confusion matrix, as scikit-learn defines them (checked
    against it in the tests); plain numpy, for the bootstrap's thousands of resamples."""
    total = confusion.sum()
    diagonal = np.diag(confusion).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.nan_to_num(2 * diagonal / (confusion.sum(axis=0) + confusion.sum(axis=1)))
    k = len(confusion)
    weights = (np.subtract.outer(np.arange(k), np.arange(k)) ** 2) / (k - 1) ** 2
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / total
    denominator = (weights * expected).sum()
    kappa = 1 - (weights * confusion).sum() / denominator if denominator else 0.0
    return float(diagonal.sum() / total), float(f1.mean()), float(kappa)


@dataclass
class Evaluation:
    """Out-of-fold probabilities and metrics of every predictor, the folds, and the items they scored."""

    folds: list[tuple[list[str], list[str]]]  # (efforts trained on, efforts scored) per fold
    judgements: list[Judgement] = field(default_factory=list)  # out of fold, in the order of the rows
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    model_name: str = ""
    # The second target: the answer the text supports, where an analyst's verdict gives it
    text_answers: dict[tuple[str, str], str] = field(default_factory=dict)
    text_metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.metrics).T

    @property
    def y(self) -> np.ndarray:
        return np.array([j.unit.self_assessed for j in self.judgements])

    def predictions(self) -> list[Prediction]:
        """The model's out-of-fold predictions: each labelled effort as predicted by a model fitted without it."""
        probabilities = self.probabilities[self.model_name]
        return [
            prediction_from(j, p, in_sample=False)
            for j, p in zip(self.judgements, probabilities, strict=True)
        ]

    def outcome_table(self) -> pd.DataFrame:
        """Requirement comparison (rows) against the self-assessed answer (columns), counts."""
        frame = pd.DataFrame(
            {"comparison": [j.comparison.outcome for j in self.judgements], "answer": self.y}
        )
        table = pd.crosstab(frame["comparison"], frame["answer"])
        return table.reindex(columns=[a for a in ANSWER_ORDER if a in table.columns], fill_value=0)


def leave_one_effort_out(
    efforts: Sequence[Effort],
    model: EvidensModel,
    heads: Sequence[str] = tuple(HEADS),
    text_answers: Mapping[tuple[str, str], str] | None = None,
    statement_gold: Sequence[StatementLabel] = (),
) -> Evaluation:
    """Every head of `model` and every baseline under the same folds: each labelled effort is scored by
    predictors fitted on the others only. The first head is `model`'s own; its out-of-fold judgements are kept.
    The stated detector of each fold is fitted on the statement gold of the records it trains on: the other
    labelled efforts and the efforts without a self-assessment, never the one it scores.

    `text_answers` ((effort_id, criterion_id) -> the answer the text supports, from analysts' verdicts) is the
    second target: every predictor is also scored against it, beside the self-assessment itself as a predictor.
    A model with target="text" is fitted on it."""
    assessed = [e for e in efforts if e.tests]
    unlabelled = [e for e in efforts if not e.tests]
    groups = np.array([e.effort_id for e in assessed])
    splits = list(LeaveOneGroupOut().split(assessed, groups=groups))
    evaluation = Evaluation(folds=[(sorted(groups[tr]), sorted(groups[te])) for tr, te in splits])
    order = [model.head, *(h for h in heads if h != model.head)]
    evaluation.model_name = MODEL.format(head=model.head)
    names = [MODEL.format(head=h) for h in order] + ["model, prior = training answers", *BASELINES]
    fold_probabilities: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for train, test in progress(splits, "leave-one-effort-out", "fold"):
        train_efforts, test_efforts = [assessed[i] for i in train], [assessed[i] for i in test]
        body = clone(model).fit(
            [*train_efforts, *unlabelled], text_answers=text_answers, statement_gold=statement_gold
        )  # fitted once per fold; every head shares it
        test_judgements, train_judgements = body.judge(test_efforts), body.judge(train_efforts)
        evaluation.judgements.extend(test_judgements)
        fold_probabilities["model, prior = training answers"].append(
            body.probabilities(test_judgements, body.train_prior_)
        )
        for head in order:
            fitted = body if head == model.head else body.with_head(head)
            fold_probabilities[MODEL.format(head=head)].append(fitted.probabilities(test_judgements))
        X_train, X_test = EvidensModel._matrix(train_judgements), EvidensModel._matrix(test_judgements)
        y_train = np.array([j.unit.self_assessed for j in train_judgements])
        for name, baseline in BASELINES.items():
            extra = {"train": train_judgements} if baseline is criterion_prior_baseline else {}
            fold_probabilities[name].append(baseline(X_train, y_train, test_judgements, X_test, **extra))
    y = evaluation.y
    pages = [j.unit.effort_id for j in evaluation.judgements]
    for name in names:
        probabilities = np.vstack(fold_probabilities[name])
        evaluation.probabilities[name] = probabilities
        evaluation.metrics[name] = classification_metrics(y, probabilities, pages)
        predicted = np.array(ANSWER_ORDER)[np.argmax(probabilities, axis=1)]
        evaluation.confusion[name] = confusion_matrix(y, predicted, labels=list(ANSWER_ORDER))
    if text_answers:
        score_text_target(evaluation, text_answers)
    return evaluation


SELF_ASSESSMENT = "the self-assessment itself"


def score_text_target(evaluation: Evaluation, text_answers: Mapping[tuple[str, str], str]) -> None:
    """Every predictor's out-of-fold answers against the answers the text supports (where a verdict gives one),
    and the self-assessment as one more predictor: how often the municipality's own answer is the text's."""
    rows = [
        i
        for i, j in enumerate(evaluation.judgements)
        if (j.unit.effort_id, j.unit.criterion_id) in text_answers
    ]
    evaluation.text_answers = dict(text_answers)
    if not rows:
        return
    claimed = np.array(
        [[float(j.unit.self_assessed == a) for a in ANSWER_ORDER] for j in evaluation.judgements]
    )
    units = [evaluation.judgements[i].unit for i in rows]
    y_text = [text_answers[(u.effort_id, u.criterion_id)] for u in units]
    for name, probabilities in [*evaluation.probabilities.items(), (SELF_ASSESSMENT, claimed)]:
        evaluation.text_metrics[name] = classification_metrics(y_text, probabilities[rows])


def markdown_table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """The README's evaluation table (one row per predictor): each figure with its 95% bootstrap interval."""
    lines = [
        "| predictor | macro-F1 [95% CI] | QWK [95% CI] | accuracy [95% CI] | recall Nej / Delvist / Ja "
        "| AUC Ja vs Nej within page | log-loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        cells = [with_interval(m, k) for k in ("macro_f1", "qwk", "accuracy")]
        recall = " / ".join(f"{m['recall_' + a.lower()]:.2f}" for a in ANSWER_ORDER)
        auc = (
            f"{m['auc_ja_vs_nej_within_page']:.2f} ({int(m['auc_pairs'])} pairs)"
            if np.isfinite(m.get("auc_ja_vs_nej_within_page", np.nan))
            else "n/a"
        )
        lines.append(f"| {name} | {' | '.join(cells)} | {recall} | {auc} | {m['log_loss']:.2f} |")
    return "\n".join(lines)


@dataclass
class NewPagesEvaluation:
    """A fitted model scored on labelled pages it has not seen: P(stated) against a statement gold, the
    classifier against the pages' self-assessments, and the flags it raises."""

    predictions: list[Prediction]
    answers: dict[str, dict[str, float]]  # predictor -> classification metrics against the self-assessments
    stated: dict[str, float]  # P(stated) against the statement gold: AUC, accuracy, Brier, pairs
    stated_pairs: list[tuple[str, str, str, float]]  # (record, criterion, gold label, P(stated))
    evidence: dict[str, float]  # evidence hit@1 / hit@3 against the gold quotes of stated answered criteria


def evaluate_new_pages(
    model: EvidensModel, efforts: Sequence[Effort], statement_gold: Sequence[StatementLabel] = ()
) -> NewPagesEvaluation:
    """Score `model` on `efforts` (pages with self-assessments, none of them in its training data). Gold rows
    are matched to a page by record id, or by source file name (and municipality) for a gold made before the
    page was ingested."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from pipeline.defaults import STATED_THRESHOLD

    assessed = model.with_criteria([e for e in efforts if e.tests])
    judgements = model.judge(assessed)
    probabilities = model.probabilities(judgements)
    predictions = [
        prediction_from(j, p, in_sample=False) for j, p in zip(judgements, probabilities, strict=True)
    ]
    y = np.array([j.unit.self_assessed for j in judgements])
    answers = {MODEL.format(head=model.head): classification_metrics(y, probabilities)}
    answers["baseline: majority answer (Ja)"] = classification_metrics(
        y, np.tile([0.0, 0.0, 1.0], (len(y), 1))
    )
    record_of = _gold_records(assessed, statement_gold)
    gold = [(record_of[g], g) for g in statement_gold if g in record_of]
    scores = model.stated_scores(assessed)
    pairs = [
        (effort_id, g.criterion_id, g.label, scores[(effort_id, g.criterion_id)])
        for effort_id, g in gold
        if (effort_id, g.criterion_id) in scores
    ]
    stated: dict[str, float] = {"pairs": float(len(pairs))}
    if pairs:
        truth = np.array([label != "silent" for _, _, label, _ in pairs])
        p = np.array([probability for *_, probability in pairs])
        stated.update(
            auc=float(roc_auc_score(truth, p)) if 0 < truth.sum() < len(truth) else float("nan"),
            accuracy=float(np.mean((p >= STATED_THRESHOLD) == truth)),
            right=float(np.sum((p >= STATED_THRESHOLD) == truth)),
            brier=float(brier_score_loss(truth, p)),
        )
    return NewPagesEvaluation(predictions, answers, stated, pairs, _evidence_hits(judgements, gold))


def _gold_records(efforts: Sequence[Effort], gold: Sequence[StatementLabel]) -> dict[StatementLabel, str]:
    by_id = {e.effort_id: e.effort_id for e in efforts}
    by_file = {(Path(e.source).name, e.municipality or ""): e.effort_id for e in efforts}
    by_name = {Path(e.source).name: e.effort_id for e in efforts}
    found = {}
    for g in gold:
        effort_id = (
            by_id.get(g.record_id)
            or by_file.get((g.source_file, g.municipality))
            or by_name.get(g.source_file)
        )
        if effort_id:
            found[g] = effort_id
    return found


def _evidence_hits(
    judgements: Sequence[Judgement], gold: Sequence[tuple[str, StatementLabel]]
) -> dict[str, float]:
    """Of the answered criteria the gold says are stated, how often a quoted sentence is the evidence's first,
    or among its first three."""
    quotes = {(effort_id, g.criterion_id): g.quotes for effort_id, g in gold if g.stated}
    ranks = []
    for j in judgements:
        wanted = quotes.pop((j.unit.effort_id, j.unit.criterion_id), None)
        if wanted is None:
            continue
        texts = [j.scores.candidates[i].text for i in j.scores.ranked(3)]
        hit = next((r for r, text in enumerate(texts, 1) if any(_same_text(text, q) for q in wanted)), None)
        ranks.append(hit)
    n = len(ranks)
    return {
        "criteria": float(n),
        "hit@1": float(sum(r == 1 for r in ranks)),
        "hit@3": float(sum(r is not None for r in ranks)),
    }


def _same_text(sentence: str, quote: str) -> bool:
    """A gold quote (a whole line of the page as its reader saw it) names this sentence: one contains the
    other once spacing is ignored."""
    a, b = " ".join(sentence.split()), " ".join(quote.split())
    return bool(a) and bool(b) and (a in b or b in a)


def new_pages_text(evaluation: NewPagesEvaluation, flags: Sequence) -> str:
    """The new-page figures as the command prints them."""
    lines = [
        f"{len(evaluation.predictions)} answered criteria on {len({p.effort_id for p in evaluation.predictions})} pages",
        "",
    ]
    lines.append(markdown_table(evaluation.answers))
    s = evaluation.stated
    if s["pairs"]:
        lines += [
            "",
            f"P(stated) against the statement gold ({int(s['pairs'])} pairs): ROC AUC {s['auc']:.2f}, "
            f"right at the threshold {int(s['right'])} of {int(s['pairs'])} (accuracy {s['accuracy']:.2f}), "
            f"Brier {s['brier']:.3f}",
        ]
    else:
        lines += ["", "P(stated): no statement gold for these pages (--statement-gold FILE)"]
    e = evaluation.evidence
    if e["criteria"]:
        lines.append(
            f"evidence against the gold quotes ({int(e['criteria'])} answered criteria the gold says are stated): "
            f"hit@1 {int(e['hit@1'])}, hit@3 {int(e['hit@3'])} of {int(e['criteria'])}"
        )
    counts = Counter(f.reason for f in flags)
    lines += [
        "",
        f"{len(flags)} flags: " + (", ".join(f"{n} {r}" for r, n in sorted(counts.items())) or "none"),
    ]
    return "\n".join(lines)
