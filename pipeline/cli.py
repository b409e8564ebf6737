"""The `evidens` command line: parse arguments, call the stages, print. No stage logic lives here.

Exit codes: 0 done; 1 done, but some input was rejected; 2 usage error; 3 a missing prerequisite or a fault at
run time (one line on stderr says what to do; --verbose adds the traceback). Only the standard library, typer
and pipeline.defaults are imported here: each command imports what it needs, so `evidens --help` is quick."""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import typing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from pipeline import __version__
from pipeline.defaults import (
    DEFAULT_CACHE,
    DEFAULT_CORPUS,
    DEFAULT_EMBEDDER,
    DEFAULT_EXPERIMENT,
    DEFAULT_LABELS,
    DEFAULT_MODEL_URI,
    DEFAULT_RAW,
    DEFAULT_REPORT_LANGUAGE,
    DEFAULT_REPORTS,
    SILENT_PRIOR,
    ReportLanguage,
)
from pipeline.errors import EXIT_FAULT, EXIT_REJECTED, EXIT_USAGE, EvidensError, one_line
from pipeline.labels import STATEMENT_GOLD_FILE, label_version

log = logging.getLogger("evidens")

# Click's plain help (switches shown as --x/--no-x) and errors turned into one line by `entry`
app = typer.Typer(
    help="evidens: evidence for the self-assessments on Danish employment-effort pages.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


def _check_embedder(name: str) -> str:
    from pipeline.embed import registered_embedders

    if name.partition(":")[0] not in registered_embedders():
        raise typer.BadParameter(
            f"unknown embedder {name!r} (expected one of {', '.join(registered_embedders())})"
        )
    return name


def _check_head(name: str) -> str:
    from pipeline.judgement.heads import HEADS

    if name not in HEADS:
        raise typer.BadParameter(f"unknown head {name!r} (expected one of {', '.join(HEADS)})")
    return name


CorpusOption = Annotated[Path, typer.Option(help="Folder written by `evidens ingest`.")]
EmbedderOption = Annotated[
    str, typer.Option(help="e5-offline, tfidf or st:<model or folder>.", callback=_check_embedder)
]
CacheOption = Annotated[Path, typer.Option(help="Embedding cache (SQLite).")]
ExperimentOption = Annotated[str, typer.Option(help="MLflow experiment name.")]


review_app = typer.Typer(
    help="The analyst's verdicts on flags, exported from report.html.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(review_app, name="review")


class _Lines(logging.Formatter):
    """Status lines as they are; warnings and errors prefixed with their level."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {line}"


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """evidens's status lines on stderr through `logging`: --quiet keeps warnings and errors, --verbose adds
    debug lines and tracebacks."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lines("%(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"evidens {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    context: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug lines, and tracebacks of errors.")
    ] = False,
) -> None:
    """Keeps `evidens` a group of commands, and sets up logging for all of them: while the command runs, the
    handler just installed writes through tqdm, so a line prints above a progress bar, never on its line."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    configure_logging(quiet, verbose)
    context.with_resource(logging_redirect_tqdm(loggers=[log]))  # left when the command is done


def entry() -> None:
    """The `evidens` program: the app, with every error that escapes a command turned into one line (a usage
    error too, exit code 2)."""
    configure_logging()  # for the errors found before the group's callback sets it up
    try:
        outcome = app(standalone_mode=False)
    except TyperException as error:  # typer's own click: a usage error (exit code 2) or a bad file argument
        message = " ".join(error.format_message().split())
        context = getattr(error, "ctx", None)
        if context is not None and error.format_message() == context.get_help():  # a group with no command
            typer.echo(context.get_help())
            sys.exit(error.exit_code)
        if error.exit_code == EXIT_USAGE:
            message += f" ({context.command_path if context else 'evidens'} --help shows the options)"
        log.error("%s", message)
        sys.exit(error.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        log.error("interrupted; nothing was half-written, and a rerun resumes")
        sys.exit(130)
    except EvidensError as error:
        log.error("%s", error)
        sys.exit(EXIT_FAULT)
    except Exception as error:
        log.debug("traceback:", exc_info=True)
        hint = (
            ""
            if isinstance(error, OSError) or log.isEnabledFor(logging.DEBUG)
            else " (--verbose shows the traceback)"
        )
        log.error("%s%s", one_line(error), hint)
        sys.exit(EXIT_FAULT)
    sys.exit(outcome if isinstance(outcome, int) else 0)  # an int is a typer.Exit's code; else a return value


def _err(message: str) -> None:
    log.info(message)


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Page files (.txt, .html) or folders of them.", exists=True, metavar="PATH"),
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for efforts.jsonl, rejected.jsonl and the dataset.")
    ] = DEFAULT_CORPUS,
    labels: Annotated[Path, typer.Option(help="Folder for criteria.csv and answers.csv.")] = DEFAULT_LABELS,
) -> None:
    """Read pages into validated Effort records, the criteria catalogue and the labelled answers.

    Exit code 0 when every input was ingested, 1 when some were rejected (the rest is still written)."""
    from pipeline.corpus import write_corpus
    from pipeline.ingest import ingest_paths
    from pipeline.ingest.criteria import PINS_FILE, CriteriaCatalogue, load_pins, save_answers

    pins = load_pins(labels / PINS_FILE)  # a bad pins file stops before any work
    result = ingest_paths(paths)
    if not result.efforts:  # nothing to write: the old corpus and labels stay as they are
        for rejection in result.rejected:
            _err(f"  rejected: {rejection.reason}")
        log.error(
            f"every input was rejected ({len(result.rejected)} of {result.files_read} files): nothing written, "
            f"{out}/ and {labels}/ are as they were"
            if result.files_read
            else f"no page files (.txt, .html) found in {', '.join(map(str, paths))}: nothing written"
        )
        raise typer.Exit(EXIT_REJECTED)
    catalogue = CriteriaCatalogue.load(labels / "criteria.csv", pins=pins)
    catalogue.assign(result.efforts)
    for idle in catalogue.idle_pins():
        log.warning("%s", idle)
    write_corpus(result.efforts, result.rejected, out)
    catalogue.save(labels / "criteria.csv")
    save_answers(result.efforts, labels / "answers.csv")

    for effort in result.efforts:
        answers = sum(len(t.answers) for t in effort.tests)
        _err(f"  {effort.effort_id:32} {effort.kind:16} {effort.municipality or '-':15} {answers:3} answers")
        for warning in effort.warnings:
            _err(f"      warning: {warning}")
    for source, first in result.duplicates:
        _err(f"  duplicate: {source} has the same content as {first}")
    for rejection in result.rejected:
        _err(f"  rejected: {rejection.reason}")
    _err(
        f"ingested {len(result.efforts)} efforts from {result.files_read} files: "
        f"{len(result.rejected)} rejected, {len(result.duplicates)} duplicates; "
        f"{len(catalogue.criteria)} criteria -> {out}/, {labels}/"
    )
    if result.rejected:
        raise typer.Exit(EXIT_REJECTED)


EVIDENCE_COLUMNS = (
    "effort_id",
    "criterion_id",
    "rank",
    "score",
    "stated",
    "p_stated",
    "section",
    "sentence",
)


@app.command()
def criteria(
    labels: Annotated[
        Path, typer.Option(help="Folder with criteria.csv and criteria_pins.csv.")
    ] = DEFAULT_LABELS,
    margin: Annotated[float, typer.Option(help="List pairs this far below the merge threshold.")] = 0.15,
    out: Annotated[Path | None, typer.Option(help="Also write the near-misses as CSV.")] = None,
) -> None:
    """List the criteria catalogue, its merges and its near-misses, for review.

    To decide a pair, add a row `item_a,item_b,same|different,note` to labels/criteria_pins.csv and ingest
    again; to undo an earlier merge, also delete labels/criteria.csv first (ids are derived from the items, so
    every other criterion keeps its id)."""
    from pipeline.ingest.criteria import (
        NEAR_MISS_COLUMNS,
        PINS_FILE,
        CriteriaCatalogue,
        load_pins,
        merged_criteria,
        near_miss_rows,
    )
    from pipeline.tables import write_csv

    path = labels / "criteria.csv"
    if not path.exists():
        raise EvidensError(f"{path} not found: run `evidens ingest` first")
    catalogue = CriteriaCatalogue.load(path, pins=load_pins(labels / PINS_FILE))
    idle = catalogue.idle_pins()
    for line in idle:
        log.warning("%s", line)
    typer.echo(
        f"{len(catalogue.criteria)} criteria (threshold {catalogue.threshold}, {len(catalogue.pins)} pins"
        + (f", {len(idle)} item(s) of them in no criterion" if idle else "")
        + ")"
    )
    for criterion in sorted(catalogue.criteria.values(), key=lambda c: c.criterion_id):
        tests = ",".join(sorted(criterion.tests))
        typer.echo(
            f"  {criterion.criterion_id}  {tests:34} {len(criterion.phrasings)}  {criterion.canonical_text[:90]}"
        )
    merges = merged_criteria(catalogue)
    typer.echo(f"\nmerges ({len(merges)}): one criterion, phrasings with different cores")
    for criterion in merges:
        typer.echo(f"  {criterion.criterion_id}")
        for phrasing in sorted(criterion.phrasings):
            typer.echo(f"    - {phrasing}")
    rows = near_miss_rows(catalogue, margin)
    typer.echo(f"\nnear-misses ({len(rows)}): kept apart, similarity within {margin} of the threshold")
    for row in rows:
        typer.echo(f"  {row['similarity']}  {row['criterion_a']} ~ {row['criterion_b']}")
        typer.echo(f"    a: {row['item_a']}\n    b: {row['item_b']}")
    if out is not None:
        write_csv(out, rows, NEAR_MISS_COLUMNS)
        _err(f"wrote {len(rows)} near-misses -> {out}")


@app.command()
def evidence(
    effort_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Efforts to show (default: all labelled).", metavar="EFFORT_ID"),
    ] = None,
    corpus: CorpusOption = DEFAULT_CORPUS,
    embedder: EmbedderOption = DEFAULT_EMBEDDER,
    k: Annotated[int, typer.Option(min=1, help="Evidence sentences per criterion.")] = 5,
    out: Annotated[Path | None, typer.Option(help="Write rows to .jsonl or .csv (by extension).")] = None,
    labels: LabelsOption = DEFAULT_LABELS,
    cache: CacheOption = DEFAULT_CACHE,
) -> None:
    """Rank the sentences of each page by how well they evidence each criterion of its self-assessment."""
    from pipeline.corpus import load_efforts
    from pipeline.evidence.retrieval import find_evidence, load_ranking_settings
    from pipeline.judgement.stated_eval import stated_probabilities
    from pipeline.tables import write_table

    if out is not None and out.suffix.lower() not in (".jsonl", ".csv"):
        raise typer.BadParameter(f"{out}: expected a .jsonl or .csv file", param_hint="--out")
    efforts = load_efforts(corpus)
    known = {e.effort_id for e in efforts}
    if unknown := [i for i in effort_ids or [] if i not in known]:
        raise typer.BadParameter(
            f"unknown effort id(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    p_stated = None
    if (labels / STATEMENT_GOLD_FILE).exists():
        p_stated = stated_probabilities(corpus, labels, embedder, cache)
        _err("P(stated): the stated detector, out of source for the statement gold's pairs")
    else:
        _err(
            f"note: no {labels / STATEMENT_GOLD_FILE}: P(stated) is the one-feature sentence-cosine estimate"
        )
        if not load_ranking_settings(embedder)[1]:
            _err(f"note: {embedder} has no calibration of its own; that estimate uses the lexical score")
    rows = find_evidence(efforts, embedder, k, cache, effort_ids or None, p_stated)
    items = {(e.effort_id, a.criterion_id): a.item for e in efforts for t in e.tests for a in t.answers}
    for row in rows:
        if row.rank == 1:
            flag = "stated" if row.stated else "not stated"
            typer.echo(f"\n{row.effort_id}  {row.criterion_id}  {flag} (P(stated) {row.p_stated:.2f})")
            typer.echo(f"  {items[(row.effort_id, row.criterion_id)]}")
        typer.echo(f"    {row.rank}. {row.score:.3f}  [{row.section}] {row.sentence}")
    if out is not None:
        write_table(out, [r.model_dump() for r in rows], EVIDENCE_COLUMNS)
        _err(f"wrote {len(rows)} evidence rows to {out}")


TrackingUri = Annotated[
    str | None,
    typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else experiments/mlflow.db)."),
]
HeadOption = Annotated[
    str, typer.Option(help="Head of the model: rules (default), logistic or ordinal.", callback=_check_head)
]


def _prior(text: Any) -> Any:
    """--prior and --silent-prior, parsed where they enter: a pipeline.judgement.prior.Prior."""
    from pipeline.judgement.prior import Prior

    try:
        return Prior.parse(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


PriorOption = Annotated[
    Any,
    typer.Option(
        parser=_prior,
        metavar="PRIOR",
        help='Answer prior: "balanced", or one known for the pages, e.g. "Ja=0.6,Delvist=0.3,Nej=0.1".',
    ),
]
SilentPriorOption = Annotated[
    Any,
    typer.Option(
        parser=_prior,
        metavar="PRIOR",
        help="Answers of a criterion the page does not state (the text cannot say how honest a page is): "
        '"Nej=0.5,Delvist=0.3,Ja=0.2" (default: silence leans to not done), "balanced", or any prior.',
    ),
]
ModelUriOption = Annotated[
    str, typer.Option(help="MLflow model URI: models:/evidens@champion, models:/evidens/<version>, ...")
]
LabelsOption = Annotated[
    Path, typer.Option(help="Folder with criteria.csv, answers.csv and the analysts' verdicts.csv.")
]


def _check_language(code: str) -> str:
    if code not in ReportLanguage.__members__:
        raise typer.BadParameter(
            f"unknown language {code!r} (expected one of {', '.join(ReportLanguage.__members__)})"
        )
    return code


LangOption = Annotated[
    str,
    typer.Option(
        help="Language of report.html: da (Danish) or en.", metavar="da|en", callback=_check_language
    ),
]
TargetOption = Annotated[
    str,
    typer.Option(
        help='What a fitted head learns: "self-assessed" answers, or "text" (the answers analysts\' verdicts '
        "say the text supports). Both targets are always reported."
    ),
]


@dataclass(frozen=True)
class ModelOptions:
    """The options of every command that fits a model on the corpus (train, evaluate, flag), declared once."""

    corpus: CorpusOption = DEFAULT_CORPUS
    labels: LabelsOption = DEFAULT_LABELS
    embedder: EmbedderOption = DEFAULT_EMBEDDER
    head: HeadOption = "rules"
    prior: PriorOption = "balanced"
    silent_prior: SilentPriorOption = SILENT_PRIOR
    target: TargetOption = "self-assessed"
    cache: CacheOption = DEFAULT_CACHE

    def model(self):
        """An unfitted EvidensModel, its options checked before any work."""
        from pipeline.judgement.model import TARGETS, EvidensModel

        if self.target not in TARGETS:
            raise typer.BadParameter(
                f"unknown target {self.target!r} (expected one of {', '.join(TARGETS)})",
                param_hint="--target",
            )
        return EvidensModel(
            embedder=self.embedder,
            head=self.head,
            prior=_prior(self.prior),
            silent_prior=_prior(self.silent_prior),
            cache=str(self.cache),
            target=self.target,
        )


@dataclass(frozen=True)
class TrackingOptions:
    """Where a command that logs to MLflow logs, declared once."""

    experiment: ExperimentOption = DEFAULT_EXPERIMENT
    tracking_uri: TrackingUri = None


def with_options(*groups: type) -> Callable[[Callable], Callable]:
    """Declare a group of options once and share it: each group (a dataclass of annotated options) adds its
    fields to the command's options and reaches the command as one argument, named after the group in snake
    case (ModelOptions -> model_options). Called from Python, the command takes the fields as keywords."""

    def argument(group: type) -> str:
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in group.__name__).lstrip("_")

    def decorate(command: Callable) -> Callable:
        shared = {
            group: [
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=f.default,
                    annotation=typing.get_type_hints(group, include_extras=True)[f.name],
                )
                for f in fields(group)
            ]
            for group in groups
        }
        names = {argument(group) for group in groups}
        own = [
            p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name not in names
        ]
        parameters = [*own, *(p for group in groups for p in shared[group])]

        @functools.wraps(command)
        def with_groups(*args: Any, **kwargs: Any) -> Any:
            for group in groups:
                given = {p.name: kwargs.pop(p.name) for p in shared[group] if p.name in kwargs}
                if argument(group) not in kwargs:  # a group passed whole is kept as it is
                    kwargs[argument(group)] = group(**given)
            return command(*args, **kwargs)

        with_groups.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        with_groups.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_groups

    return decorate


def _text_answers(labels: Path, efforts) -> dict:
    """The second target: the answers the analysts' verdicts say the text supports."""
    from pipeline.outputs.review import load_verdicts, text_answers

    return text_answers(load_verdicts(labels), efforts)


def _labelled(corpus: Path, at_least: int):
    from pipeline.corpus import load_efforts

    efforts = load_efforts(corpus)
    if len([e for e in efforts if e.tests]) < at_least:
        raise EvidensError(
            f"{corpus}: needs at least {at_least} labelled efforts (leave-one-effort-out); ingest more pages"
        )
    return efforts


def _statement_gold(labels: Path) -> list:
    """The hand-labelled statement pairs of labels/statement_gold.csv (none where the file is absent)."""
    from pipeline.judgement.stated import load_statement_gold

    path = labels / STATEMENT_GOLD_FILE
    return load_statement_gold(path) if path.exists() else []


def _evaluate(efforts, model, heads: tuple[str, ...], answers: dict, statement_gold: list):
    from pipeline.judgement.evaluate import leave_one_effort_out

    try:
        return leave_one_effort_out(
            efforts, model, heads=heads, text_answers=answers, statement_gold=statement_gold
        )
    except ValueError as error:  # e.g. --target text where a fold's pages have no verdicts
        raise EvidensError(str(error)) from None


def _print_evaluation(evaluation, labels: Path) -> None:
    from pipeline.judgement.evaluate import markdown_table
    from pipeline.records import ANSWER_ORDER

    answers = len(evaluation.judgements)
    typer.echo(f"leave-one-effort-out over {answers} answers of {len(evaluation.folds)} efforts\n")
    typer.echo(markdown_table(evaluation.metrics))
    typer.echo(
        f"\nconfusion matrix of {evaluation.model_name} (rows self-assessed, columns predicted; {', '.join(ANSWER_ORDER)}):"
    )
    typer.echo(str(evaluation.confusion[evaluation.model_name]))
    typer.echo("\nrequirement comparison (rows) against the self-assessed answer (columns):")
    typer.echo(evaluation.outcome_table().to_string())
    _print_text_target(evaluation, labels)


def _print_text_target(evaluation, labels: Path) -> None:
    from pipeline.judgement.evaluate import markdown_table
    from pipeline.outputs.review import current_verdicts, load_verdicts

    if not evaluation.text_metrics:
        judged = {(j.unit.effort_id, j.unit.criterion_id) for j in evaluation.judgements}
        verdicts = sum(key in judged for key in current_verdicts(load_verdicts(labels)))
        typer.echo(
            "\nsecond target (what the text supports): "
            + (
                f"none of the {verdicts} analysts' verdicts on these answers says which answer the text supports "
                "(a confirm leaves it unsaid): nothing to score"
                if verdicts
                else "no analysts' verdicts yet (evidens review import)"
            )
        )
        return
    typer.echo(
        f"\nsecond target: the answer the text supports, by analysts' verdicts on {len(evaluation.text_answers)} "
        "answers (out of fold):\n"
    )
    typer.echo(markdown_table(evaluation.text_metrics))


@app.command()
@with_options(ModelOptions, TrackingOptions)
def train(model_options: ModelOptions, tracking_options: TrackingOptions) -> object:
    """Evaluate (leave-one-effort-out), fit on every labelled effort, log both to one MLflow run, register.
    Both targets are scored: the self-assessed answers, and the answers the analysts' verdicts give. Returns
    the evaluation (so that `run` flags from it instead of leaving one out again)."""
    from pipeline import tracking
    from pipeline.ingest.criteria import CriteriaCatalogue
    from pipeline.ingest.readers import UnreadableFile, read_page
    from pipeline.stats import with_interval

    model = model_options.model()
    labels = model_options.labels
    efforts = _labelled(model_options.corpus, 2)
    answers = _text_answers(labels, efforts)
    statement_gold = _statement_gold(labels)
    _err("evaluating leave-one-effort-out ...")
    evaluation = _evaluate(efforts, model, (model.head,), answers, statement_gold)
    catalogue = (
        CriteriaCatalogue.load(labels / "criteria.csv") if (labels / "criteria.csv").exists() else None
    )
    model.fit(efforts, catalogue, text_answers=answers, statement_gold=statement_gold)
    uri = tracking.configure(tracking_options.tracking_uri, tracking_options.experiment)
    try:
        example = read_page(Path(next(e.source for e in efforts if e.tests)))
    except (UnreadableFile, OSError):
        example = ""
    outcome = tracking.log_training(
        model,
        efforts,
        evaluation,
        tracking.LabelledData(model_options.corpus, labels),
        example,
        out_of_fold=lambda unfitted: _evaluate(efforts, unfitted, (unfitted.head,), answers, statement_gold),
    )
    metrics = evaluation.metrics[evaluation.model_name]
    _err(
        f"trained on {model.n_answers_} answers of {len(model.trained_on_)} efforts; out of fold: macro-F1 "
        f"{with_interval(metrics, 'macro_f1')}, QWK {metrics['qwk']:.2f}"
    )
    if evaluation.text_metrics:
        text = evaluation.text_metrics[evaluation.model_name]
        _err(
            f"second target, {len(evaluation.text_answers)} answers the text supports by analysts' verdicts: "
            f"macro-F1 {with_interval(text, 'macro_f1')}"
        )
    name = f"models:/{tracking.REGISTERED_MODEL}/{outcome.version}"
    if outcome.registered:
        champion = (
            f"; alias {tracking.CHAMPION_ALIAS} -> it"
            if outcome.champion
            else f"; {tracking.CHAMPION_ALIAS} stays (better macro-F1 on these labels)"
        )
        _err(f"MLflow run {outcome.run_id} in {uri}; registered {name}{champion}")
    else:
        _err(
            f"MLflow run {outcome.run_id} in {uri}; unchanged model (same data, labels and parameters): {name} not registered again"
        )
    return evaluation


@app.command()
@with_options(ModelOptions, TrackingOptions)
def evaluate(model_options: ModelOptions, tracking_options: TrackingOptions) -> None:
    """Leave-one-effort-out evaluation of every head and the baselines, with bootstrap intervals, against both
    targets (self-assessed answers; the answers analysts' verdicts give); logged to MLflow."""
    from pipeline import tracking
    from pipeline.judgement.heads import HEADS

    model = model_options.model()
    labels = model_options.labels
    efforts = _labelled(model_options.corpus, 2)
    answers = _text_answers(labels, efforts)
    _err("evaluating leave-one-effort-out (every head and baseline) ...")
    evaluation = _evaluate(efforts, model, tuple(HEADS), answers, _statement_gold(labels))
    uri = tracking.configure(tracking_options.tracking_uri, tracking_options.experiment)
    run_id = tracking.log_evaluate_run(
        evaluation,
        tracking.run_params(model, efforts, label_version(labels), len(answers)),
        tracking.LabelledData(model_options.corpus, labels),
        efforts,
    )
    _print_evaluation(evaluation, labels)
    _err(f"MLflow run {run_id} in {uri}")


@app.command("evaluate-pages")
def evaluate_pages(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Labelled page files (.txt, .html) or folders.", exists=True, metavar="PAGE"),
    ],
    model: ModelUriOption = DEFAULT_MODEL_URI,
    statement_gold: Annotated[
        Path | None,
        typer.Option(
            help="A statement gold for these pages (the columns of labels/statement_gold.csv).", exists=True
        ),
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Score a registered model on labelled pages outside the corpus: P(stated) against a statement gold, the
    classifier against the pages' self-assessments (beside the majority answer), the evidence and the flags."""
    from pipeline import tracking
    from pipeline.ingest import ingest_paths
    from pipeline.judgement.evaluate import evaluate_new_pages, new_pages_text
    from pipeline.judgement.stated import load_statement_gold
    from pipeline.outputs.flags import all_flags

    tracking.configure(tracking_uri, create=False)
    fitted = tracking.load_evidens_model(model)
    ingested = ingest_paths(paths)
    for rejection in ingested.rejected:
        _err(f"  rejected: {rejection.reason}")
    efforts = [e for e in ingested.efforts if e.tests]
    if not efforts:
        raise EvidensError("no labelled page among the inputs: a page needs its self-assessment to be scored")
    gold = load_statement_gold(statement_gold) if statement_gold else []
    evaluation = evaluate_new_pages(fitted, efforts, gold)
    typer.echo(new_pages_text(evaluation, all_flags(efforts, evaluation.predictions)))
    if ingested.rejected:
        raise typer.Exit(EXIT_REJECTED)


@app.command()
def predict(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Page files (.txt, .html) or folders.", exists=True, metavar="PATH"),
    ],
    model: ModelUriOption = DEFAULT_MODEL_URI,
    prior: PriorOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Write rows to .csv, .parquet or .jsonl (by extension).")
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Predict Ja/Delvist/Nej for every criterion of each page with a registered model."""
    from pipeline import tracking
    from pipeline.ingest.readers import UnreadableFile, collect_files, read_page
    from pipeline.records import PREDICTION_COLUMNS
    from pipeline.tables import TABLE_SUFFIXES, write_table

    if out is not None and out.suffix.lower() not in TABLE_SUFFIXES:
        raise typer.BadParameter(f"{out}: expected one of {', '.join(TABLE_SUFFIXES)}", param_hint="--out")
    tracking.configure(tracking_uri, create=False)
    texts, failed = [], 0
    for path in collect_files(paths):
        try:
            texts.append((str(path), read_page(path)))
        except (UnreadableFile, OSError) as error:
            failed += 1
            _err(f"  rejected: {path}: {error}")
    frame = tracking.predict_texts(model, texts, prior) if texts else None
    rows = frame.to_dict("records") if frame is not None else []
    for row in rows:
        mark = "" if not row["self_assessed"] or row["self_assessed"] == row["predicted"] else "  <- differs"
        typer.echo(
            f"{row['effort_id']:28} {row['predicted']:7} (Ja {row['p_ja']:.2f}, Delvist {row['p_delvist']:.2f}, "
            f"Nej {row['p_nej']:.2f}) self: {row['self_assessed'] or '-':7}{mark}  {row['item'][:60]}"
        )
    if out is not None:
        write_table(out, rows, PREDICTION_COLUMNS)
        _err(f"wrote {len(rows)} predictions to {out}")
    if failed:
        raise typer.Exit(EXIT_REJECTED)


@app.command()
@with_options(ModelOptions)
def flag(
    model_options: ModelOptions,
    out: Annotated[
        Path, typer.Option(help="Folder for predictions.csv, flags.csv and report.html.")
    ] = DEFAULT_REPORTS,
    lang: LangOption = DEFAULT_REPORT_LANGUAGE.value,
) -> None:
    """Flag the self-assessed answers that the page's text does not support, and write the HTML report.

    Every labelled effort is predicted by a model fitted without it (leave-one-effort-out); predictions.csv,
    flags.csv and report.html all come from those same predictions."""
    model = model_options.model()
    labels = model_options.labels
    efforts = _labelled(model_options.corpus, 2)
    _err("predicting every labelled effort out of fold ...")
    answers = _text_answers(labels, efforts)
    evaluation = _evaluate(efforts, model, (model.head,), answers, _statement_gold(labels))
    _write_flags(efforts, evaluation, out, labels, lang)


def _write_flags(efforts, evaluation, out: Path, labels: Path, lang: str) -> None:
    """The flag stage's outputs from an out-of-fold evaluation (flag, and run after train's evaluation)."""
    from pipeline.outputs.report.rows import honest_figures, themes_view
    from pipeline.outputs.review import current_verdicts, load_verdicts
    from pipeline.outputs.scoring import score_out_of_fold, write_outputs

    scored = score_out_of_fold(evaluation, efforts)
    paths = write_outputs(
        out,
        scored,
        figures=honest_figures(evaluation.metrics, evaluation.model_name),
        themes=themes_view(out),
        verdicts=current_verdicts(load_verdicts(labels)),
        lang=lang,
    )
    for reason, count in sorted(Counter(f.reason for f in scored.flags).items()):
        typer.echo(f"{count:4} {reason}")
    efforts_flagged = len({p.effort_id for p in scored.predictions})
    _err(f"{len(scored.flags)} flags on {efforts_flagged} efforts -> {', '.join(str(p) for p in paths)}")


@review_app.command("import")
def review_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="Verdicts CSV exported from report.html.", exists=True, dir_okay=False, metavar="FILE"
        ),
    ],
    labels: LabelsOption = DEFAULT_LABELS,
) -> None:
    """Validate a verdicts file and store its new verdicts as versioned labels (labels/verdicts.csv).

    A file with any bad line is refused whole, each line named, and nothing is written (exit code 1).
    Importing the same file again changes nothing."""
    from pipeline.outputs.review import VerdictFileError, import_verdicts

    try:
        result = import_verdicts(file, labels)
    except FileNotFoundError as error:
        raise EvidensError(str(error)) from None
    except VerdictFileError as error:
        _err(f"refused {file}: nothing imported")
        for problem in error.problems:
            _err(f"  {problem}")
        raise typer.Exit(EXIT_REJECTED) from None
    if result.added:
        _err(
            f"imported {result.added} new verdicts of {result.read} -> {result.path} (label version {label_version(labels)})"
        )
    else:
        _err(f"all {result.read} verdicts already stored in {result.path}: nothing changed")


@app.command()
def themes(
    corpus: CorpusOption = DEFAULT_CORPUS,
    embedder: EmbedderOption = DEFAULT_EMBEDDER,
    out: Annotated[
        Path, typer.Option(help="Folder for the theme tables, plots and explorer.")
    ] = DEFAULT_REPORTS,
    seed: Annotated[int, typer.Option(help="Seed for everything random (the maps' projection).")] = 0,
    cache: CacheOption = DEFAULT_CACHE,
    tracking_uri: TrackingUri = None,
    assign: Annotated[
        bool, typer.Option(help="Assign the passages to the themes already in OUT (transform), no re-fit.")
    ] = False,
) -> None:
    """Good-practice themes over the practice text of every effort, theme-page part and report.

    A re-fit over an OUT that holds earlier themes reports how they moved (themes_drift.json)."""
    from pipeline import tracking
    from pipeline.corpus import load_efforts
    from pipeline.embed import CachedEmbedder, get_embedder
    from pipeline.themes.output import themes_for, write_theme_outputs

    efforts = load_efforts(corpus)
    dense = get_embedder(embedder)
    dense = CachedEmbedder(dense, cache) if dense.cacheable else dense
    model, drift = themes_for(efforts, dense, out, assign)
    if drift is not None:
        _err(
            f"re-fit: adjusted Rand index {drift['ari']} with the previous themes over {drift['shared_passages']} passages"
        )
    written = write_theme_outputs(model, out, seed)
    quality = model.quality()
    typer.echo(
        f"{quality['themes']} themes over {len(model.units)} passages: {quality['coverage']:.0%} in a theme, "
        f"{quality['outliers']} outliers, NPMI coherence {quality['npmi_coherence']:.3f}\n"
    )
    typer.echo("| theme | label | size | municipalities |\n|---|---|---|---|")
    for theme in model.themes:
        typer.echo(f"| {theme.theme_id} | {theme.label} | {theme.size} | {', '.join(theme.municipalities)} |")
    if not assign:
        tracking.configure(tracking_uri, tracking.THEMES_EXPERIMENT)
        run_id = tracking.log_themes(
            model, efforts, {"embedder": embedder, "seed": seed}, quality, written, corpus
        )
        _err(f"MLflow run {run_id} in experiment {tracking.THEMES_EXPERIMENT}")
    _err("wrote " + ", ".join(str(p) for p in written))


ThemesFolder = Annotated[Path, typer.Option(help="Folder where `evidens themes` wrote its outputs.")]


@app.command("theme-municipalities")
def theme_municipalities(
    theme: Annotated[
        str, typer.Argument(help="A theme id, or words of its label or keywords.", metavar="THEME")
    ],
    out: ThemesFolder = DEFAULT_REPORTS,
) -> None:
    """Which municipalities describe theme X: each with its number of passages and one of them."""
    from pipeline.themes.output import municipalities_describing

    for found in municipalities_describing(out, theme):
        typer.echo(f"theme {found.theme_id}: {found.label}")
        for name, count, example in found.municipalities:
            typer.echo(f"  {name:16} {count:3} passages  “{example[:140]}”")


@app.command("shared-themes")
def shared_themes(
    effort: Annotated[str, typer.Argument(help="An effort id, or a municipality name.", metavar="EFFORT")],
    out: ThemesFolder = DEFAULT_REPORTS,
) -> None:
    """Which themes effort Y shares with others, and with whom."""
    from pipeline.themes.output import themes_shared_by

    for theme_id, label, mine, others in themes_shared_by(out, effort):
        partners = ", ".join(f"{name} ({count})" for name, count in others) or "no other municipality"
        typer.echo(f"theme {theme_id}: {label}\n  {mine} passages here; shared with {partners}")


@app.command()
def batch(
    input_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of newly scraped pages.", exists=True, file_okay=False, metavar="INPUT_DIR"
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for the outputs and the per-page state.")],
    model: ModelUriOption = DEFAULT_MODEL_URI,
    tracking_uri: TrackingUri = None,
    cache: CacheOption = DEFAULT_CACHE,
    keep_deleted: Annotated[
        bool, typer.Option(help="Keep the results of inputs that are gone in the outputs.")
    ] = False,
    keep_history: Annotated[
        bool,
        typer.Option(
            help="Move the results of edited or deleted inputs to OUT/history/ instead of dropping them."
        ),
    ] = False,
    lang: LangOption = DEFAULT_REPORT_LANGUAGE.value,
) -> None:
    """Ingest, predict and flag new pages incrementally; a killed run resumes to the uninterrupted result.

    The outputs describe the inputs as they are now: an edited page replaces its old version, a deleted one
    leaves, a rejected one is retried. Exit code 0 when every input was processed, 1 when some were rejected
    (all else still written), 3 when another batch holds OUT or the model cannot be loaded."""
    from pipeline import tracking
    from pipeline.batch.run import run_batch

    tracking.configure(tracking_uri, create=False)
    summary = run_batch(
        input_dir, out, model, cache, keep_deleted=keep_deleted, keep_history=keep_history, lang=lang
    )
    for source in summary.rejected_inputs:
        _err(f"  rejected: {source}")
    _err(summary.line(out))
    if summary.rejected_inputs:
        raise typer.Exit(EXIT_REJECTED)


@app.command()
def run(
    raw: Annotated[
        Path, typer.Option(help="Folder of raw pages.", exists=True, file_okay=False)
    ] = DEFAULT_RAW,
    corpus: Annotated[Path, typer.Option(help="Folder for the ingested corpus.")] = DEFAULT_CORPUS,
    labels: Annotated[Path, typer.Option(help="Folder for criteria.csv and answers.csv.")] = DEFAULT_LABELS,
    out: Annotated[
        Path, typer.Option(help="Folder for predictions, flags, themes and the report.")
    ] = DEFAULT_REPORTS,
    tracking_uri: TrackingUri = None,
    cache: CacheOption = DEFAULT_CACHE,
    lang: LangOption = DEFAULT_REPORT_LANGUAGE.value,
) -> None:
    """The main job: ingest, train (evaluated and tracked in MLflow), themes, then out-of-fold predictions,
    flags and the report."""
    import time

    started = time.perf_counter()
    trained = {}  # train's out-of-fold evaluation: the flags come from it, leave-one-out runs once
    steps = [
        ("ingest", lambda: ingest([raw], out=corpus, labels=labels)),
        (
            "train",
            lambda: trained.update(
                evaluation=train(corpus=corpus, labels=labels, tracking_uri=tracking_uri, cache=cache)
            ),
        ),
        ("themes", lambda: themes(corpus=corpus, out=out, cache=cache)),
        ("flag", lambda: _write_flags(_labelled(corpus, 2), trained["evaluation"], out, labels, lang)),
    ]
    rejected = False
    for name, step in steps:
        _err(f"\n== {name}")
        try:
            step()
        except typer.Exit as stop:
            if stop.exit_code != EXIT_REJECTED:
                raise
            rejected = True  # rejected inputs are reported by the step; the job goes on without them
    _err(f"\ndone in {time.perf_counter() - started:.0f} s; report: {(out / 'report.html').resolve()}")
    if rejected:
        raise typer.Exit(EXIT_REJECTED)


if __name__ == "__main__":
    entry()
