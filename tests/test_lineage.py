"""Lineage in MLflow: the files a run read are its datasets (named by file, the file as source, its content hash as
digest); a label change is a new model version, described with its label version and decided against the
champion re-scored on the new labels; the registered model and its versions have descriptions.

Every model here uses the registered fake embedder (tests/conftest.py); the verdicts are generated test labels."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
from conftest import REPO
from sklearn.base import clone
from typer.testing import CliRunner

from pipeline import tracking
from pipeline.cli import app
from pipeline.corpus import EFFORTS_FILE
from pipeline.errors import EvidensError
from pipeline.judgement.evaluate import leave_one_effort_out
from pipeline.judgement.model import EvidensModel
from pipeline.judgement.stated import load_statement_gold
from pipeline.labels import label_version
from pipeline.outputs.review import VERDICT_COLUMNS, import_verdicts, load_verdicts, text_answers
from pipeline.tables import read_csv

EXAMPLE = "Generated example page."


def sha_prefix(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[: tracking.DIGEST_CHARS]


def import_one_verdict(labels: Path, verdict: str, scratch: Path, row: int = 0) -> str:
    """Import one generated verdict (a test label, not an analyst's) on the row-th answer; the new label version."""
    answer = read_csv(labels / "answers.csv")[row]
    exported = scratch / f"verdict-{row}.csv"
    exported.write_text(
        ",".join(VERDICT_COLUMNS)
        + f"\n{answer['effort_id']},{answer['criterion_id']},{verdict},,,tester,2026-12-01T10:00:00Z\n",
        encoding="utf-8",
    )
    assert import_verdicts(exported, labels).added == 1
    return label_version(labels)


def out_of_fold(efforts, labels: Path):
    """What `evidens train` passes: leave-one-effort-out for another unfitted model, on the labels as they are."""
    return lambda unfitted: leave_one_effort_out(
        efforts,
        unfitted,
        heads=(unfitted.head,),
        text_answers=text_answers(load_verdicts(labels), efforts),
    )


def test_label_files_are_datasets_named_by_file_sourced_from_it_with_its_hash(labels_copy, tmp_path):
    shutil.copy(REPO / "labels" / "statement_gold.csv", labels_copy)
    import_one_verdict(labels_copy, "confirm", tmp_path)
    datasets = {d.name: d for d in tracking.label_datasets(labels_copy)}
    assert list(datasets) == ["answers.csv", "verdicts.csv", "statement_gold.csv"]
    for name, dataset in datasets.items():
        path = labels_copy / name
        assert dataset.source.uri == str(path.resolve()) and dataset.to_dict()["source_type"] == "local"
        assert dataset.digest == sha_prefix(path)
    assert datasets["answers.csv"].targets == "answer"
    assert datasets["answers.csv"].profile["num_rows"] == len(read_csv(labels_copy / "answers.csv"))
    assert datasets["verdicts.csv"].profile["num_rows"] == 1
    gold = load_statement_gold(labels_copy / "statement_gold.csv")  # its "#" comment lines are not rows
    assert datasets["statement_gold.csv"].profile["num_rows"] == len(gold)

    answers = labels_copy / "answers.csv"
    text = answers.read_text(encoding="utf-8")
    answers.write_text(text.replace(",Ja\n", ",Nej\n", 1), encoding="utf-8")  # one answer edited
    edited = {d.name: d.digest for d in tracking.label_datasets(labels_copy)}
    assert edited["answers.csv"] == sha_prefix(answers) != datasets["answers.csv"].digest
    assert edited["verdicts.csv"] == datasets["verdicts.csv"].digest
    assert edited["statement_gold.csv"] == datasets["statement_gold.csv"].digest


def test_the_corpus_dataset_is_efforts_jsonl_one_row_per_effort(corpus_dir, ingested):
    dataset = tracking.corpus_dataset(corpus_dir, ingested.efforts)
    path = corpus_dir / EFFORTS_FILE
    assert dataset.name == EFFORTS_FILE and dataset.source.uri == str(path.resolve())
    assert dataset.digest == sha_prefix(path)
    frame = dataset.df
    assert list(frame["effort_id"]) == [e.effort_id for e in ingested.efforts]
    assert frame["answers"].sum() == len(read_csv(corpus_dir / "labels" / "answers.csv"))


def inputs_of(run) -> dict[str, tuple[str, str, str]]:
    """name -> (source uri, digest, context) of a run's datasets."""
    return {
        d.dataset.name: (
            json.loads(d.dataset.source)["uri"],
            d.dataset.digest,
            next(t.value for t in d.tags if t.key == "mlflow.data.context"),
        )
        for d in run.inputs.dataset_inputs
    }


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_train_evaluate_and_themes_runs_log_the_files_they_read(
    corpus_dir, labels_copy, labelled_efforts, ingested, tmp_path
):
    uri = tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}", "evidens", tmp_path)
    client = mlflow.MlflowClient(uri, uri)
    import_one_verdict(labels_copy, "dismiss", tmp_path)
    data = tracking.LabelledData(corpus_dir, labels_copy)
    model = EvidensModel(embedder="fake")
    evaluation = leave_one_effort_out(labelled_efforts, model, heads=("rules",))
    fitted = clone(model).fit(labelled_efforts)
    outcome = tracking.log_training(
        fitted, ingested.efforts, evaluation, data, EXAMPLE, out_of_fold(labelled_efforts, labels_copy)
    )
    files = {
        name: (str(path.resolve()), sha_prefix(path))
        for name, path in [
            (EFFORTS_FILE, corpus_dir / EFFORTS_FILE),
            ("answers.csv", labels_copy / "answers.csv"),
            ("verdicts.csv", labels_copy / "verdicts.csv"),
        ]
    }
    assert inputs_of(client.get_run(outcome.run_id)) == {n: (*f, "training") for n, f in files.items()}

    evaluate = tracking.log_evaluate_run(evaluation, {"embedder": "fake"}, data, ingested.efforts)
    assert inputs_of(client.get_run(evaluate)) == {n: (*f, "evaluation") for n, f in files.items()}

    tracking.configure(uri, tracking.THEMES_EXPERIMENT)
    themes = SimpleNamespace(units=[], silhouettes={2: 0.1})  # a fake fit: only the run's inputs are tested
    run_id = tracking.log_themes(themes, ingested.efforts, {"embedder": "fake"}, {}, [], corpus_dir)
    assert inputs_of(client.get_run(run_id)) == {EFFORTS_FILE: (*files[EFFORTS_FILE], "themes")}


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_a_label_change_is_a_new_version_described_and_decided_on_the_new_labels(
    corpus_dir, labels_copy, labelled_efforts, tmp_path, monkeypatch
):
    uri = tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}", "evidens", tmp_path)
    client = mlflow.MlflowClient(uri, uri)
    data = tracking.LabelledData(corpus_dir, labels_copy)

    def train(head: str, recorded_macro_f1: float | None = None) -> tracking.TrainingOutcome:
        model = EvidensModel(embedder="fake", head=head)
        evaluation = leave_one_effort_out(labelled_efforts, model, heads=(head,))
        if recorded_macro_f1 is not None:
            evaluation.metrics[evaluation.model_name]["macro_f1"] = recorded_macro_f1
        fitted = clone(model).fit(labelled_efforts)
        return tracking.log_training(
            fitted, labelled_efforts, evaluation, data, EXAMPLE, out_of_fold(labelled_efforts, labels_copy)
        )

    old_labels = label_version(labels_copy)
    # the logistic head, its out-of-fold macro-F1 recorded as 0.99: no head scores that on these two pages
    first = train("logistic", recorded_macro_f1=0.99)
    assert first.registered and first.champion and first.version == "1"
    assert client.get_registered_model("evidens").description == tracking.MODEL_DESCRIPTION
    described = client.get_model_version("evidens", "1").description
    for named in (f"Label version `{old_labels}`", "Head `logistic`", "embedder `fake`", "macro-F1 0.990"):
        assert named in described
    assert tracking.code_version() in described and "On registration: champion (there was none)" in described
    assert not train("logistic", recorded_macro_f1=0.99).registered  # unchanged labels and data

    new_labels = import_one_verdict(
        labels_copy, "confirm", tmp_path
    )  # no text answer: only the labels change
    assert new_labels != old_labels
    second = train("rules")
    assert second.registered and second.version == "2"
    rules = out_of_fold(labelled_efforts, labels_copy)(EvidensModel(embedder="fake"))
    logistic = out_of_fold(labelled_efforts, labels_copy)(EvidensModel(embedder="fake", head="logistic"))
    rules_f1 = round(rules.metrics[rules.model_name]["macro_f1"], 6)
    rescored = round(logistic.metrics[logistic.model_name]["macro_f1"], 6)
    assert rescored < rules_f1 < 0.99  # so the champion moves only when compared on the new labels
    assert second.champion
    assert str(client.get_model_version_by_alias("evidens", "champion").version) == "2"
    champion_then = client.get_model_version("evidens", "1")
    assert float(champion_then.tags[tracking.RESCORED_TAG + new_labels]) == pytest.approx(rescored)
    assert client.get_run(second.run_id).data.metrics["champion.rescored_macro_f1"] == pytest.approx(rescored)
    version = client.get_model_version("evidens", "2")
    assert version.tags[tracking.LABEL_VERSION_TAG] == new_labels
    for named in (
        f"Label version `{new_labels}`",
        "Head `rules`",
        "embedder `fake`",
        f"macro-F1 {rules_f1:.3f}",
    ):
        assert named in version.description
    assert (
        f"{rescored:.3f} of the champion, version 1 (re-scored out of fold on label version {new_labels}"
        in (version.description)
    )

    # a champion that cannot be loaded to be re-scored cannot hold against a version on newer labels
    import_one_verdict(labels_copy, "confirm", tmp_path, row=1)

    def damaged(uri: str):
        raise EvidensError(f"{uri}: the model file is damaged")

    monkeypatch.setattr(tracking, "load_evidens_model", damaged)
    third = train("ordinal")
    assert third.registered and third.version == "3" and third.champion
    assert "cannot be re-scored" in client.get_model_version("evidens", "3").tags[tracking.DECISION_TAG]


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_train_after_importing_a_verdict_registers_version_2_named_by_its_label_version(
    corpus_dir, labels_copy, tmp_path
):
    """Before: a verdict that gives no text answer (confirm) changed the label version, and `train` said
    "unchanged ... not registered again", leaving the champion on a run of the old labels."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train = ["train", "--corpus", str(corpus_dir), "--labels", str(labels_copy), "--embedder", "fake"]
    assert CliRunner().invoke(app, [*train, "--tracking-uri", uri]).exit_code == 0
    new_labels = import_one_verdict(labels_copy, "confirm", tmp_path)
    done = CliRunner().invoke(app, [*train, "--tracking-uri", uri])
    assert done.exit_code == 0, done.output
    assert "registered models:/evidens/2; alias champion -> it" in done.output
    client = mlflow.MlflowClient(uri, uri)
    champion = client.get_model_version_by_alias("evidens", "champion")
    assert str(champion.version) == "2" and f"Label version `{new_labels}`" in champion.description
    assert client.get_run(champion.run_id).data.params["label_version"] == new_labels
    assert "its own, on label version" not in champion.description  # compared with version 1 re-scored
    assert f"re-scored out of fold on label version {new_labels}" in champion.description
