"""Analysts' verdicts: the exported CSV imports as versioned labels, every bad line is refused by number with
nothing written, a re-import changes nothing, and the next training run uses and records them."""

from __future__ import annotations

import csv
import shutil

import mlflow
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.judgement.evaluate import SELF_ASSESSMENT, leave_one_effort_out
from pipeline.judgement.model import EvidensModel
from pipeline.outputs.review import (
    VERDICT_COLUMNS,
    VERDICTS_FILE,
    Verdict,
    current_verdicts,
    load_verdicts,
    text_answers,
)

HEADER = ",".join(VERDICT_COLUMNS)


@pytest.fixture
def labels(corpus_dir, tmp_path):
    """A writable copy of the corpus's labels folder (criteria.csv, answers.csv)."""
    target = tmp_path / "labels"
    shutil.copytree(corpus_dir / "labels", target)
    return target


@pytest.fixture(scope="session")
def answers(corpus_dir) -> list[dict[str, str]]:
    with (corpus_dir / "labels" / "answers.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def verdict_lines(answers, *verdicts: tuple[str, str, str]) -> str:
    """A verdicts file (generated test fixture) on the first answers: (verdict, answer, note) each."""
    lines = [HEADER]
    for row, (verdict, answer, note) in zip(answers, verdicts, strict=False):
        lines.append(
            f"{row['effort_id']},{row['criterion_id']},{verdict},{answer},{note},tester,2026-11-24T10:00:00.000Z"
        )
    return "\n".join(lines) + "\n"


def invoke(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


def test_import_round_trip_is_versioned_and_idempotent(labels, answers, tmp_path):
    exported = tmp_path / "verdicts.csv"
    exported.write_text(
        verdict_lines(
            answers, ("confirm", "", "no such text"), ("dismiss", "", ""), ("correct", "Nej", '"a, b"')
        ),
        encoding="utf-8",
    )
    done = invoke("review", "import", str(exported), "--labels", str(labels))
    assert done.exit_code == 0, done.output
    assert "imported 3 new verdicts" in done.output
    stored = labels / VERDICTS_FILE
    first = stored.read_bytes()
    verdicts = load_verdicts(labels)
    assert [v.verdict for v in verdicts] == ["confirm", "dismiss", "correct"]
    assert verdicts[2].answer == "Nej" and verdicts[2].note == "a, b" and verdicts[0].imported_from
    assert (labels / "answers.csv").exists()  # the self-assessments stay beside the verdicts

    again = invoke("review", "import", str(exported), "--labels", str(labels))
    assert again.exit_code == 0 and "nothing changed" in again.output
    assert stored.read_bytes() == first

    later = tmp_path / "later.csv"  # a newer decision on the first answer is added; the older one is kept
    later.write_text(
        f"{HEADER}\n{answers[0]['effort_id']},{answers[0]['criterion_id']},dismiss,,,tester,2026-11-25T09:00:00Z\n",
        encoding="utf-8",
    )
    assert invoke("review", "import", str(later), "--labels", str(labels)).exit_code == 0
    history = load_verdicts(labels)
    assert len(history) == 4
    assert (
        current_verdicts(history)[(answers[0]["effort_id"], answers[0]["criterion_id"])].verdict == "dismiss"
    )


BAD_FILES = {
    "unknown effort": ("no-such-effort,crit-0,confirm,,,a,2026-11-24T10:00:00Z", "line 2: unknown effort_id"),
    "unknown criterion": ("{effort},crit-00000000,confirm,,,a,2026-11-24T10:00:00Z", "line 2: unknown criterion_id"),
    "bad verdict": ("{effort},{criterion},agree,,,a,2026-11-24T10:00:00Z", "line 2: verdict 'agree'"),
    "correct without answer": ("{effort},{criterion},correct,,,a,2026-11-24T10:00:00Z", "line 2: verdict correct needs an answer"),
    "answer not on the scale": ("{effort},{criterion},correct,Maybe,,a,2026-11-24T10:00:00Z", "line 2: verdict correct needs an answer"),
    "answer with confirm": ("{effort},{criterion},confirm,Ja,,a,2026-11-24T10:00:00Z", "line 2: answer 'Ja' is given only"),
    "bad time": ("{effort},{criterion},confirm,,,a,yesterday", "line 2: decided_at 'yesterday'"),
    "short row": ("{effort},{criterion},confirm", "line 2: expected 7 fields"),
    "duplicate": (
        "{effort},{criterion},confirm,,,a,2026-11-24T10:00:00Z\n{effort},{criterion},dismiss,,,a,2026-11-24T10:00:00Z",
        "line 3: duplicate of line 2",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_every_bad_line_is_refused_by_number_and_nothing_is_written(case, labels, answers, tmp_path):
    body, expected = BAD_FILES[case]
    good = verdict_lines(answers[1:2], ("dismiss", "", ""))  # a good line first: refused with the rest
    path = tmp_path / "verdicts.csv"
    path.write_text(
        good.replace(HEADER + "\n", HEADER + "\n" + body.format(effort=answers[0]["effort_id"], criterion=answers[0]["criterion_id"]) + "\n"),
        encoding="utf-8",
    )  # fmt: skip
    done = invoke("review", "import", str(path), "--labels", str(labels))
    assert done.exit_code == 1
    assert expected in done.output and "nothing imported" in done.output
    assert not (labels / VERDICTS_FILE).exists()


def test_a_wrong_header_is_refused(labels, tmp_path):
    path = tmp_path / "verdicts.csv"
    path.write_text("effort_id,criterion_id,verdict\n", encoding="utf-8")
    done = invoke("review", "import", str(path), "--labels", str(labels))
    assert done.exit_code == 1 and "line 1: expected the columns" in done.output


def test_text_answers_follow_the_current_verdict(labelled_efforts):
    effort = labelled_efforts[0]
    first, second, third = [a for t in effort.tests for a in t.answers][:3]
    verdicts = [
        Verdict(effort.effort_id, first.criterion_id, "dismiss", "", "", "a", "2026-11-24T10:00:00Z"),
        Verdict(effort.effort_id, second.criterion_id, "correct", "Nej", "", "a", "2026-11-24T10:00:00Z"),
        Verdict(effort.effort_id, third.criterion_id, "confirm", "", "", "a", "2026-11-24T10:00:00Z"),
        Verdict(effort.effort_id, first.criterion_id, "correct", "Delvist", "", "a", "2026-11-24T09:00:00Z"),
    ]
    answers = text_answers(verdicts, labelled_efforts)
    assert answers == {
        (effort.effort_id, first.criterion_id): first.answer,  # dismiss is newer than the correction
        (effort.effort_id, second.criterion_id): "Nej",
    }  # confirm says the claim is wrong, not what is right: no text answer


def test_evaluation_says_when_only_confirms_leave_the_text_target_empty(labels, answers, tmp_path, capsys):
    from types import SimpleNamespace

    from pipeline.cli import _print_text_target

    judged = [
        SimpleNamespace(unit=SimpleNamespace(effort_id=r["effort_id"], criterion_id=r["criterion_id"]))
        for r in answers
    ]
    evaluation = SimpleNamespace(text_metrics={}, judgements=judged)
    _print_text_target(evaluation, labels)
    assert "no analysts' verdicts yet" in capsys.readouterr().out
    exported = tmp_path / "verdicts.csv"
    exported.write_text(verdict_lines(answers, ("confirm", "", ""), ("confirm", "", "")), encoding="utf-8")
    assert invoke("review", "import", str(exported), "--labels", str(labels)).exit_code == 0
    _print_text_target(evaluation, labels)
    said = capsys.readouterr().out
    assert "none of the 2 analysts' verdicts" in said
    assert "yet" not in said


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_both_targets_are_scored_and_a_text_target_head_fits_the_verdicts(labelled_efforts):
    units = [
        (e.effort_id, a.criterion_id, a.answer) for e in labelled_efforts for t in e.tests for a in t.answers
    ]
    # a generated test target: the analysts "correct" every other answer down to Nej
    answers = {(e, c): ("Nej" if i % 2 else claim) for i, (e, c, claim) in enumerate(units)}
    evaluation = leave_one_effort_out(
        labelled_efforts, EvidensModel(embedder="fake"), heads=("rules",), text_answers=answers
    )
    assert {evaluation.model_name, SELF_ASSESSMENT} <= set(evaluation.text_metrics)
    # the self-assessment agrees with the text target exactly where it was not corrected
    assert evaluation.text_metrics[SELF_ASSESSMENT]["accuracy"] == pytest.approx(
        sum(answers[(e, c)] == claim for e, c, claim in units) / len(units)
    )
    self_assessed = EvidensModel(embedder="fake", head="logistic").fit(labelled_efforts)
    text = EvidensModel(embedder="fake", head="logistic", target="text").fit(
        labelled_efforts, text_answers=answers
    )
    assert text.train_prior_["Nej"] > 0.4 > self_assessed.train_prior_["Nej"]
    assert text.fingerprint(labelled_efforts) != self_assessed.fingerprint(labelled_efforts)
    with pytest.raises(ValueError, match="verdicts"):
        EvidensModel(embedder="fake", target="text").fit(labelled_efforts, text_answers={})


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_the_next_training_run_records_the_new_label_version(corpus_dir, labels, answers, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train = ["train", "--corpus", str(corpus_dir), "--labels", str(labels), "--embedder", "fake"]
    assert invoke(*train, "--tracking-uri", uri).exit_code == 0
    exported = tmp_path / "verdicts.csv"
    exported.write_text(verdict_lines(answers, ("dismiss", "", ""), ("correct", "Nej", "")), encoding="utf-8")
    assert invoke("review", "import", str(exported), "--labels", str(labels)).exit_code == 0
    done = invoke(*train, "--tracking-uri", uri)
    assert done.exit_code == 0, done.output
    assert "second target, 2 answers" in done.output
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["evidens"], order_by=["attributes.start_time ASC"])
    before, after = runs.iloc[0], runs.iloc[-1]
    assert before["params.label_version"] != after["params.label_version"]
    assert before["params.label_text_answers"] == "0" and after["params.label_text_answers"] == "2"
    assert "metrics.text_target.model.accuracy" in runs.columns
