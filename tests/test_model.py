"""EvidensModel: one fitted object, swappable heads, explicit priors, no leakage, honest folds, MLflow contract.

Most tests use the registered fake embedder (tests/conftest.py): the real e5 model is not the point here."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pytest
from conftest import REPO, make_effort_page
from sklearn.base import clone
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.utils.estimator_checks import check_estimator

from pipeline.defaults import SILENT_PRIOR
from pipeline.ingest import ingest_paths
from pipeline.judgement import heads
from pipeline.judgement.evaluate import (
    BASELINES,
    _confusion_metrics,
    _point_metrics,
    classification_metrics,
    leave_one_effort_out,
    within_page_auc,
)
from pipeline.judgement.model import EvidensModel
from pipeline.judgement.ordinal import OrdinalLogisticClassifier
from pipeline.judgement.prior import Prior
from pipeline.judgement.stated import load_statement_gold
from pipeline.records import ANSWER_ORDER, PREDICTION_COLUMNS

STATEMENT_GOLD = REPO / "labels" / "statement_gold.csv"


@pytest.mark.parametrize("ordinal", [True, False])
def test_ordinal_estimator_passes_sklearn_checks(ordinal):
    results = check_estimator(OrdinalLogisticClassifier(ordinal=ordinal), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []


def test_label_order_is_explicit():
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    y = np.array(["Nej", "Nej", "Delvist", "Delvist", "Ja", "Ja"])
    model = OrdinalLogisticClassifier(label_order=ANSWER_ORDER).fit(X, y)
    assert list(model.classes_) == ["Nej", "Delvist", "Ja"]
    assert list(model.predict(np.array([[-10.0], [10.0]]))) == ["Nej", "Ja"]


def test_one_fitted_object_owns_what_is_fitted_and_reports_its_params(fake_model, labelled_efforts):
    assert fake_model.get_params() == {
        "embedder": "fake", "head": "rules", "prior": "balanced", "silent_prior": SILENT_PRIOR, "k": 3,
        "cache": None, "target": "self-assessed",
    }  # fmt: skip
    assert fake_model.n_answers_ == 47 and len(fake_model.trained_on_) == 2
    assert set(fake_model.catalogue_.criteria) == {
        a.criterion_id for e in labelled_efforts for t in e.tests for a in t.answers
    }
    predictions = fake_model.predict(labelled_efforts)
    assert len(predictions) == 47 and list(predictions[0].row()) == list(PREDICTION_COLUMNS)
    first = predictions[0]  # evidence travels as records; the CSV cell is made from them
    assert first.quotes and first.evidence == " | ".join(f"[{q.section}] {q.text}" for q in first.quotes)
    for p in predictions:
        assert p.p_ja + p.p_delvist + p.p_nej == pytest.approx(1.0, abs=1e-5)
        assert p.comparison in ("meets", "partly", "falls short", "not stated") and p.basis.endswith(
            p.comparison
        )


@pytest.mark.parametrize("head", sorted(heads.HEADS))
def test_every_head_fits_and_predicts_every_answer_order_column(head, labelled_efforts):
    model = EvidensModel(embedder="fake", head=head).fit(labelled_efforts)
    probabilities = model.predict_proba(labelled_efforts)
    assert probabilities.shape == (47, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_a_new_head_is_one_registration(labelled_efforts, monkeypatch):
    """Swapping the head is a change in pipeline/heads.py alone: a registered name is all the model needs."""
    from sklearn.dummy import DummyClassifier

    class AlwaysNej(DummyClassifier):
        def __init__(self):
            super().__init__(strategy="constant", constant="Nej")

        def predict_proba(self, X):
            return np.tile([1.0, 0.0, 0.0], (len(X), 1))

    monkeypatch.setitem(heads.HEADS, "always-nej", AlwaysNej)
    model = EvidensModel(embedder="fake", head="always-nej").fit(labelled_efforts)
    assert {p.predicted for p in model.predict(labelled_efforts)} == {"Nej"}


def test_probabilities_do_not_change_with_the_answer_level_wording(fake_model, labelled_efforts):
    reworded = [e.model_copy(deep=True) for e in labelled_efforts]
    for effort in reworded:
        for test in effort.tests:
            for answer in test.answers:
                text = re.sub(
                    r"^(Jobcenteret|Vi) har (en fast praksis|faste arbejdsgange), (der|som) sikrer,? at ",
                    "",
                    answer.item,
                )
                text = re.sub(r"[Mm]indst [79] ud af 10", "Færre end 7 ud af 10", text)
                answer.item = re.sub(r"\baltid\b", "sjældent", text)
    np.testing.assert_allclose(fake_model.predict_proba(reworded), fake_model.predict_proba(labelled_efforts))


def test_every_answer_can_be_predicted_and_a_known_prior_moves_predictions(labelled_efforts):
    model = EvidensModel(embedder="fake", head="logistic").fit(labelled_efforts)
    balanced = model.predict_proba(labelled_efforts)
    assert set(np.array(ANSWER_ORDER)[balanced.argmax(axis=1)]) >= {"Delvist", "Ja"}
    mostly_ja = model.predict_proba(labelled_efforts, Prior.parse("Ja=0.9,Delvist=0.05,Nej=0.05"))
    assert mostly_ja[:, 2].mean() > balanced[:, 2].mean()
    by_page = model.predict(
        labelled_efforts, {labelled_efforts[0].effort_id: Prior.parse("Ja=0,Delvist=0,Nej=1")}
    )
    assert {p.predicted for p in by_page if p.effort_id == labelled_efforts[0].effort_id} == {"Nej"}
    with pytest.raises(ValueError, match="unknown answer"):
        Prior.parse("Ja=0.5,Måske=0.5")


def test_a_criterion_never_seen_in_training_gets_a_prediction(fake_model, tmp_path):
    page = tmp_path / "generated.txt"
    page.write_text(
        make_effort_page("Nyby", [("Ja", "Mindst 9 ud af 10 borgere får samtaler hver 14. dag")]),
        encoding="utf-8",
    )
    (prediction,) = fake_model.predict(ingest_paths([page]).efforts)
    assert (
        prediction.criterion_id.startswith("crit-")
        and prediction.criterion_id not in fake_model.catalogue_.criteria
    )
    # the generated page says "Borgerne har samtaler hver 14. dag": the requirement is met, and says so
    assert prediction.basis == "asks: every 2 weeks · page: every 2 weeks · meets"


def test_no_fold_sees_the_effort_it_scores_and_the_table_is_complete(ingested, monkeypatch):
    fitted_on: list[set[str]] = []
    gold_of: list[set[str]] = []
    original = EvidensModel.fit

    def spy(self, efforts, catalogue=None, text_answers=None, statement_gold=()):
        fitted_on.append({e.effort_id for e in efforts})
        fitted = original(self, efforts, catalogue, text_answers, statement_gold)
        gold_of.append({e.effort_id for e in efforts} & {g.record_id for g in statement_gold})
        return fitted

    monkeypatch.setattr(EvidensModel, "fit", spy)
    evaluation = leave_one_effort_out(
        ingested.efforts,
        EvidensModel(embedder="fake"),
        heads=("rules", "logistic"),
        statement_gold=load_statement_gold(STATEMENT_GOLD),
    )
    scored = [set(s) for _, s in evaluation.folds]
    assert len(scored) == 2 and all(len(s) == 1 for s in scored)
    assert len(fitted_on) == 2  # the body is fitted once per fold; the two heads share it
    for fit, seen in enumerate(fitted_on):  # every fit of a fold is disjoint from the effort that fold scores
        assert seen and seen.isdisjoint(scored[fit])
        # the stated detector learnt from the gold of the other records (unlabelled ones too), never this one
        assert len(gold_of[fit]) == 9 and gold_of[fit].isdisjoint(scored[fit])
    assert {"model (rules head)", "model (logistic head)", *BASELINES} <= set(evaluation.metrics)
    metrics = evaluation.metrics["model (rules head)"]
    assert metrics["macro_f1_low"] <= metrics["macro_f1"] <= metrics["macro_f1_high"]
    assert {"recall_nej", "recall_delvist", "recall_ja", "auc_ja_vs_nej_within_page"} <= set(metrics)
    assert evaluation.metrics["baseline: majority answer"]["accuracy"] == pytest.approx(28 / 47)
    assert evaluation.confusion["model (rules head)"].sum() == 47 and len(evaluation.predictions()) == 47


def test_metrics_read_columns_in_answer_order_and_within_page_auc():
    y = ["Nej", "Delvist", "Ja", "Ja"]
    perfect = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, 1.0]])
    metrics = classification_metrics(y, perfect)
    assert metrics["log_loss"] < 1e-4 and metrics["accuracy"] == 1.0 and metrics["qwk"] == 1.0
    assert classification_metrics(y, perfect[:, ::-1])["log_loss"] > 5
    rng = np.random.default_rng(0)  # the bootstrap's numpy metrics agree with scikit-learn's
    y_random, predicted_random = rng.choice(ANSWER_ORDER, 40), rng.choice(ANSWER_ORDER, 40)
    confusion = sk_confusion(y_random, predicted_random, labels=list(ANSWER_ORDER))
    expected = _point_metrics(y_random, predicted_random)
    assert _confusion_metrics(confusion) == pytest.approx(
        (expected["accuracy"], expected["macro_f1"], expected["qwk"])
    )
    auc, pairs = within_page_auc(
        ["Ja", "Nej", "Ja", "Nej"], np.array([0.9, 0.1, 0.2, 0.8]), ["a", "a", "b", "b"]
    )
    assert pairs == 2 and auc == 0.5  # right on page a, wrong on page b; never Ja of a against Nej of b


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_mlflow_contract_alias_no_reregistration_linked_metrics(labelled_efforts, corpus_dir, tmp_path):
    from pipeline import tracking
    from pipeline.labels import label_version

    uri = tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}", "evidens", tmp_path)
    model = EvidensModel(embedder="fake")
    evaluation = leave_one_effort_out(labelled_efforts, model, heads=("rules",))
    fitted = clone(model).fit(labelled_efforts)
    data = tracking.LabelledData(corpus_dir, corpus_dir / "labels")

    def log(fitted_model: EvidensModel) -> tracking.TrainingOutcome:
        return tracking.log_training(
            fitted_model,
            labelled_efforts,
            evaluation,
            data,
            "Generated example page.",
            lambda unfitted: leave_one_effort_out(labelled_efforts, unfitted, heads=(unfitted.head,)),
        )

    first = log(fitted)
    assert first.registered and first.champion and first.version == "1"
    again = log(fitted)
    assert (
        not again.registered and again.version == "1"
    )  # same data hash, labels and parameters: not registered again

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(client.get_model_version("evidens", "1").run_id)
    assert run.data.metrics["model.macro_f1"] == pytest.approx(
        evaluation.metrics["model (rules head)"]["macro_f1"]
    )
    assert run.data.params["model.head"] == "rules" and run.data.params["model.embedder"] == "fake"
    assert run.data.params["label_version"] == label_version(corpus_dir / "labels")
    assert sorted(d.dataset.name for d in run.inputs.dataset_inputs) == ["answers.csv", "efforts.jsonl"]

    worse = clone(model).set_params(head="logistic").fit(labelled_efforts)
    evaluation.metrics["model (rules head)"]["macro_f1"] = -1.0  # a worse out-of-fold score
    third = log(worse)
    assert third.registered and third.version == "2" and not third.champion
    assert str(client.get_model_version_by_alias("evidens", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("evidens", "candidate").version) == "2"
    loaded = tracking.load_evidens_model("models:/evidens@champion")
    assert loaded.get_params()["head"] == "rules"
    np.testing.assert_allclose(loaded.predict_proba(labelled_efforts), fitted.predict_proba(labelled_efforts))


def test_predictions_say_when_the_head_was_fitted_on_the_page(labelled_efforts):
    fitted = EvidensModel(embedder="fake", head="logistic").fit(labelled_efforts[:1])
    in_sample = {p.effort_id: p.in_sample for p in fitted.predict(labelled_efforts)}
    assert in_sample == {labelled_efforts[0].effort_id: True, labelled_efforts[1].effort_id: False}
    rules = EvidensModel(embedder="fake", head="rules").fit(labelled_efforts[:1])
    assert not any(p.in_sample for p in rules.predict(labelled_efforts))  # rules never learn the answers


def test_a_model_pickled_before_the_stage_packages_fails_with_one_line_to_retrain():
    """tests/fixtures/model_saved_before_stage_packages.joblib was saved by the code before pipeline/ moved
    into stage packages (pipeline.model, pipeline.heads, pipeline.stated, ...)."""
    from pipeline.errors import EvidensError
    from pipeline.tracking import load_fitted_model

    with pytest.raises(
        EvidensError, match=r"older evidens whose modules have moved .*pipeline\.\w+.*evidens train"
    ):
        load_fitted_model(REPO / "tests" / "fixtures" / "model_saved_before_stage_packages.joblib")


def test_predict_leaves_its_input_unchanged(fake_model, labelled_efforts):
    blank = [e.model_copy(deep=True) for e in labelled_efforts]
    for effort in blank:
        for test in effort.tests:
            for answer in test.answers:
                answer.criterion_id = ""
    before = [e.model_dump_json() for e in blank]
    predictions = fake_model.predict(blank)
    assert [e.model_dump_json() for e in blank] == before
    assert len(predictions) == 47 and all(p.criterion_id.startswith("crit-") for p in predictions)


def test_a_second_head_shares_the_fitted_body(fake_model, labelled_efforts):
    logistic = fake_model.with_head("logistic")
    assert logistic.stated_ is fake_model.stated_ and logistic.catalogue_ is fake_model.catalogue_
    assert logistic.head == "logistic" and fake_model.head == "rules"
    fresh = clone(fake_model).set_params(head="logistic").fit(labelled_efforts)
    judgements = fake_model.judge(labelled_efforts)
    assert np.allclose(logistic.probabilities(judgements), fresh.probabilities(judgements))
