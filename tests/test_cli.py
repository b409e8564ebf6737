"""The command line as a user meets it: options declared once and parsed where they enter, one-line usage
errors, switches shown as switches, and log lines that never land on a progress bar's line."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest
import typer
from conftest import evidens
from hypothesis import given
from hypothesis import strategies as st

from pipeline import cli
from pipeline.judgement.model import EvidensModel
from pipeline.judgement.prior import Prior
from pipeline.progress import progress
from pipeline.records import ANSWER_ORDER

MODEL_OPTIONS = {
    "--corpus",
    "--labels",
    "--embedder",
    "--head",
    "--prior",
    "--silent-prior",
    "--target",
    "--cache",
}


def options_of(help_text: str) -> set[str]:
    return set(re.findall(r"^\s+(--[a-z-]+)", help_text, flags=re.MULTILINE))


@pytest.mark.parametrize("command", ["train", "evaluate", "flag"])
def test_the_model_options_are_declared_once_and_shared(command, monkeypatch, capsys):
    code, out, _ = evidens(monkeypatch, capsys, command, "--help")
    assert code == 0
    assert options_of(out) >= MODEL_OPTIONS


def test_train_and_evaluate_share_the_tracking_options_too(monkeypatch, capsys):
    helps = [evidens(monkeypatch, capsys, command, "--help")[1] for command in ("train", "evaluate")]
    assert (
        options_of(helps[0])
        == options_of(helps[1])
        == MODEL_OPTIONS | {"--experiment", "--tracking-uri", "--help"}
    )


def test_a_group_reaches_the_command_as_one_argument_also_from_python():
    seen = {}

    @cli.with_options(cli.ModelOptions, cli.TrackingOptions)
    def command(
        model_options: cli.ModelOptions, tracking_options: cli.TrackingOptions, out: str = "x"
    ) -> None:
        seen.update(model=model_options, tracking=tracking_options, out=out)

    command(head="logistic", experiment="elsewhere", out="y")  # as `evidens run` calls `train`
    assert seen["model"] == cli.ModelOptions(head="logistic")
    assert seen["tracking"] == cli.TrackingOptions(experiment="elsewhere")
    assert seen["out"] == "y"
    whole = cli.ModelOptions(head="ordinal", target="text")
    command(model_options=whole)  # a group passed whole is kept, not replaced by its defaults
    assert seen["model"] is whole


def test_the_prior_is_parsed_at_the_option_into_one_type():
    options = cli.ModelOptions(prior="Ja=6,Delvist=3,Nej=1", silent_prior="balanced")
    model = options.model()
    assert isinstance(model, EvidensModel)
    assert model.prior == Prior((1, 3, 6)) and model.silent_prior == Prior.balanced()
    with pytest.raises(typer.BadParameter, match="unknown answer"):
        cli.ModelOptions(prior="Ja=1,Maybe=2").model()


weights = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(st.tuples(weights, weights, weights).filter(lambda w: sum(w) > 1e-9))
def test_a_prior_reads_back_from_its_text(triple):
    prior = Prior(triple)
    assert (
        Prior.parse(str(prior)) == prior
    )  # equal, not close: the text form is what MLflow logs and fingerprints
    assert sum(prior.weights) == pytest.approx(1)


@given(st.text(max_size=40))
def test_any_text_is_a_prior_or_a_value_error(text):
    try:
        prior = Prior.parse(text)
    except ValueError as error:
        assert str(error).startswith("prior:")
    else:
        assert sum(prior.weights) == pytest.approx(1) and len(prior.weights) == len(ANSWER_ORDER)


def test_a_prior_refuses_a_doubled_or_missing_answer():
    with pytest.raises(ValueError, match="Ja is given twice"):
        Prior.parse("Ja=1,Ja=2,Delvist=1,Nej=1")
    with pytest.raises(ValueError, match="Nej missing"):
        Prior.parse("Ja=1,Delvist=1")
    with pytest.raises(ValueError, match="not all 0"):
        Prior.parse("Ja=0,Delvist=0,Nej=0")


def test_the_default_silent_prior_keeps_its_text():
    assert str(Prior.parse(cli.SILENT_PRIOR)) == cli.SILENT_PRIOR
    assert str(Prior.balanced()) == "balanced"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "--prior", "Ja=1,Maybe=2"], ["--prior", "unknown answer 'Maybe'", "evidens train --help"]),
        (["evaluate", "--no-such-option"], ["No such option: --no-such-option", "evidens evaluate --help"]),
        (["flag", "--head", "nope"], ["--head", "unknown head 'nope'"]),
        (
            ["batch", "in", "--out", "out", "--lang", "fr"],
            ["--lang", "unknown language 'fr' (expected one of da, en)"],
        ),
        (["no-such-command"], ["No such command", "evidens --help"]),
    ],
)
def test_a_usage_error_is_one_line_with_exit_code_2(argv, words, monkeypatch, capsys):
    code, out, err = evidens(monkeypatch, capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    for word in words:
        assert word in err


def test_switches_are_shown_as_switches(monkeypatch, capsys):
    _, out, _ = evidens(monkeypatch, capsys, "batch", "--help")
    assert "--keep-deleted / --no-keep-deleted" in out
    assert "<bool>" not in out and "╭" not in out


class Terminal(io.StringIO):
    """What a terminal receives: a stream that says it is one, so that bars are drawn."""

    def isatty(self) -> bool:
        return True


def test_no_log_line_is_glued_to_a_progress_bar(monkeypatch):
    """Through the real program: `entry`, the group's callback with its options, then a command (registered on
    the real app for this test only) that logs while its bar is drawn."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(cli.app, "registered_commands", list(cli.app.registered_commands))
    messages = [f"status line {i}" for i in range(3)] + ["warning line"]

    @cli.app.command("probe-progress")
    def probe() -> None:  # the shape of every long step: a bar, and log lines while it runs
        log = logging.getLogger("evidens.probe")
        for i in progress(range(3), "probing", "step"):
            log.info(messages[i])
        log.warning(messages[-1])

    monkeypatch.setattr(sys, "argv", ["evidens", "--verbose", "probe-progress"])
    with pytest.raises(SystemExit) as stop:
        cli.entry()
    assert stop.value.code == 0
    shown = terminal.getvalue()
    assert "probing" in shown and "%|" in shown  # the bar was drawn
    for message in messages:
        at = shown.index(message)
        before = shown[:at].removesuffix("warning: ")
        assert before == "" or before[-1] in "\r\n", repr(shown[max(0, at - 80) : at + len(message)])
