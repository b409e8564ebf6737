"""The classifier: scikit-learn conventions, explicit label order, no leakage, honest folds, MLflow end to end."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import ODSHERRED, make_effort_page
from sklearn.utils.estimator_checks import check_estimator
from typer.testing import CliRunner

from pipeline.classify.evaluate import leave_one_effort_out, majority_baseline
from pipeline.classify.features import FEATURE_GROUPS, answer_units, feature_table
from pipeline.classify.model import OrdinalLogisticClassifier
from pipeline.classify.train import build_features, fit_model, predict_efforts
from pipeline.cli import app
from pipeline.ingest import ingest_paths
from pipeline.ingest.criteria import CriteriaCatalogue
from pipeline.records import ANSWER_ORDER, PREDICTION_COLUMNS


@pytest.fixture(scope="session")
def training_data(ingested, embedding_cache):
    return build_features(ingested.efforts, "e5-offline", embedding_cache)


@pytest.mark.parametrize("ordinal", [True, False])
def test_estimator_passes_sklearn_checks(ordinal):
    results = check_estimator(OrdinalLogisticClassifier(ordinal=ordinal), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) >= 50


def test_label_order_is_explicit_and_probabilities_are_named():
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    y = np.array(["Nej", "Nej", "Delvist", "Delvist", "Ja", "Ja"])
    model = OrdinalLogisticClassifier(label_order=ANSWER_ORDER).fit(X, y)
    assert list(model.classes_) == ["Nej", "Delvist", "Ja"]  # not scikit-learn's alphabetical order
    assert model.probability_columns == ["p_nej", "p_delvist", "p_ja"]
    probabilities = model.predict_proba(np.array([[-10.0], [2.5], [10.0]]))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert list(model.predict(np.array([[-10.0], [10.0]]))) == ["Nej", "Ja"]
    assert probabilities[0, 0] > 0.5 and probabilities[2, 2] > 0.5
    with pytest.raises(ValueError, match="not in label_order"):
        OrdinalLogisticClassifier(label_order=ANSWER_ORDER).fit(X, np.array(["Måske"] * 6))


def test_features_never_see_the_answer_level_wording(ingested, training_data):
    efforts = [e.model_copy(deep=True) for e in ingested.efforts if e.tests]
    for effort in efforts:
        for test in effort.tests:
            for answer in test.answers:
                answer.item = re.sub(r"[Mm]indst [79] ud af 10", "Færre end 7 ud af 10", answer.item)
                answer.item = re.sub(r"\baltid\b", "sjældent", answer.item)
    reworded = feature_table(answer_units(efforts), training_data.scores, training_data.settings)
    pd.testing.assert_frame_equal(reworded, training_data.X)
    assert not any("ud af 10" in u.query for u in answer_units(efforts))


def test_no_fold_trains_on_the_effort_it_scores(training_data):
    seen: list[tuple[set, set]] = []

    def spy(X_train, y_train, units_train, X_test, units_test):
        seen.append(({u.effort_id for u in units_train}, {u.effort_id for u in units_test}))
        return majority_baseline(X_train, y_train, units_train, X_test, units_test)

    evaluation = leave_one_effort_out(training_data.units, training_data.X, {"spy": spy})
    assert len(seen) == 2
    for trained_on, scored in seen:
        assert trained_on.isdisjoint(scored) and len(scored) == 1
    assert [set(t).isdisjoint(s) for t, s in evaluation.folds] == [True, True]


def test_evaluation_is_reproducible_and_reports_model_ablations_and_baselines(training_data):
    first = leave_one_effort_out(training_data.units, training_data.X)
    second = leave_one_effort_out(training_data.units, training_data.X)
    pd.testing.assert_frame_equal(first.table(), second.table())
    names = list(first.metrics)
    assert names[0] == "model (all features, ordinal)"
    assert {f"model without {g}__" for g in FEATURE_GROUPS} <= set(names)
    assert {
        "baseline: majority class",
        "baseline: per-criterion prior",
        "baseline: zero-shot (documented flag)",
    } <= set(names)
    for metrics in first.metrics.values():
        assert {"accuracy", "macro_f1", "f1_nej", "f1_delvist", "f1_ja", "qwk", "log_loss"} <= set(metrics)
    assert first.metrics["baseline: majority class"]["accuracy"] == pytest.approx(28 / 47)
    assert first.confusion["model (all features, ordinal)"].sum() == 47


def test_a_criterion_never_seen_in_training_gets_a_prediction(training_data, tmp_path, embedding_cache):
    page = tmp_path / "new.txt"
    page.write_text(
        make_effort_page("Nyby", [("Ja", "Mindst 9 ud af 10 borgere får samtaler hver 14. dag")]),
        encoding="utf-8",
    )
    efforts = ingest_paths([page]).efforts
    CriteriaCatalogue().assign(efforts)
    model = fit_model(training_data)
    (prediction,) = predict_efforts(model, efforts, "e5-offline", embedding_cache)
    assert prediction.criterion_id not in {u.criterion_id for u in training_data.units}
    assert prediction.p_ja + prediction.p_delvist + prediction.p_nej == pytest.approx(1.0, abs=1e-5)
    assert prediction.self_assessed == "Ja" and prediction.evidence.startswith("[description]")


@pytest.mark.slow
def test_train_register_load_by_name_predict_and_runs_are_complete(corpus_dir, tmp_path, embedding_cache):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runner = CliRunner()
    labels = ["--tracking-uri", uri]
    corpus = ["--corpus", str(corpus_dir), "--cache", str(embedding_cache)]
    trained = runner.invoke(app, ["train", *corpus, *labels, "--labels", str(corpus_dir / "labels")])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["evaluate", *corpus, *labels])
    assert evaluated.exit_code == 0, evaluated.output
    assert "| baseline: majority class | 0.60 |" in evaluated.output

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = {
        r.info.run_name: r
        for r in client.search_runs([client.get_experiment_by_name("evidens").experiment_id])
    }
    assert set(runs) == {"train", "evaluate"}
    for run in runs.values():
        params = run.data.params
        assert params["embedder"] == "e5-offline" and len(params["corpus_hash"]) == 64
        assert {"k", "features", "classifier.C", "classifier.ordinal", "code_version"} <= set(params)
    metrics = runs["evaluate"].data.metrics
    assert {"model.accuracy", "model.qwk", "model.log_loss", "baseline_majority_class.accuracy"} <= set(
        metrics
    )
    artifacts = {a.path for a in client.list_artifacts(runs["evaluate"].info.run_id)}
    assert {"confusion_matrix.png", "predictions_out_of_fold.csv", "metrics.csv", "folds.json"} <= artifacts
    assert "coefficients.csv" in {a.path for a in client.list_artifacts(runs["train"].info.run_id)}
    assert client.get_registered_model("evidens").name == "evidens"

    out = tmp_path / "predictions.csv"
    assert str(client.get_model_version_by_alias("evidens", "candidate").version) == "1"
    predicted = runner.invoke(
        app, ["predict", str(ODSHERRED), "--model", "models:/evidens@candidate", "--out", str(out), *labels]
    )
    assert predicted.exit_code == 0, predicted.output
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == list(PREDICTION_COLUMNS) and len(frame) == 18
    assert set(frame["predicted"]) <= set(ANSWER_ORDER)
    np.testing.assert_allclose(frame[["p_ja", "p_delvist", "p_nej"]].sum(axis=1), 1.0, atol=1e-5)


def test_metrics_read_probability_columns_in_answer_order():
    """scikit-learn's log_loss reads columns alphabetically; ours are Nej, Delvist, Ja."""
    from pipeline.classify.evaluate import classification_metrics

    y = ["Nej", "Delvist", "Ja", "Ja"]
    perfect = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, 1.0]])
    metrics = classification_metrics(y, perfect)
    assert metrics["log_loss"] < 1e-4 and metrics["accuracy"] == 1.0 and metrics["qwk"] == 1.0
    assert classification_metrics(y, perfect[:, ::-1])["log_loss"] > 5
