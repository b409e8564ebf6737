"""MLflow: tracking store, runs for train and evaluate, and the registered pyfunc model.

This is the only module that imports mlflow; the stages know nothing of it and run without it."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
from sklearn.base import clone

import pipeline
from pipeline.defaults import CHAMPION_ALIAS, DEFAULT_EXPERIMENT, EXPERIMENTS_DIR, REGISTERED_MODEL
from pipeline.errors import EvidensError
from pipeline.io import file_sha256, special_kind
from pipeline.judgement.evaluate import Evaluation
from pipeline.judgement.model import EvidensModel, corpus_hash
from pipeline.judgement.prior import Prior
from pipeline.labels import LEARNT_FROM, STATEMENT_GOLD_FILE
from pipeline.labels import label_version as label_version_of
from pipeline.records import ANSWER_ORDER, PREDICTION_COLUMNS, Effort
from pipeline.tables import write_csv

log = logging.getLogger("evidens.tracking")
TRAINED_ALIAS = "candidate"  # `evidens train` points it at every version it registers
FINGERPRINT_TAG = "evidens.fingerprint"
MACRO_F1_TAG = "evidens.oof_macro_f1"
LABEL_VERSION_TAG = "evidens.label_version"
RESCORED_TAG = "evidens.oof_macro_f1.on."  # + a later label version: the version re-scored on those labels
DECISION_TAG = "evidens.champion_decision"
MODEL_SHA256_TAG = "evidens.model_sha256"  # the packed model's SHA-256, where the registry keeps the version
MODEL_DESCRIPTION = (
    "Ja / Delvist / Nej per self-assessment criterion of a Danish municipal employment-effort page: page text "
    "in (column `text`, optional `source`), one prediction row per criterion out. `candidate` is the newest "
    "version `evidens train` registered; `champion` (what `evidens predict` and `batch` load) moves to a new "
    "version when its out-of-fold macro-F1 is at least the champion's on the new version's labels (a champion "
    "trained on other labels is re-scored on them first). Each version's description names its label version, "
    "head, embedder, code version and out-of-fold macro-F1; its run logs the files it learnt from as datasets."
)


def quiet_mlflow() -> None:
    """MLflow's INFO lines (database migrations, run links) and warnings are not for the user."""
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")
    warnings.filterwarnings("ignore", message=r".*(mlflow|MLflow|pydantic|Pydantic).*")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def default_tracking_uri(experiments_dir: Path = EXPERIMENTS_DIR) -> str:
    return f"sqlite:///{(experiments_dir / 'mlflow.db').resolve()}"


def configure(
    tracking_uri: str | None,
    experiment: str = DEFAULT_EXPERIMENT,
    experiments_dir: Path = EXPERIMENTS_DIR,
    create: bool = True,
) -> str:
    """Point MLflow at --tracking-uri, else MLFLOW_TRACKING_URI, else the SQLite store in experiments/, after
    checking that the store is readable. A command that only reads models passes create=False: then a missing
    store is an EvidensError, and nothing is created."""
    quiet_mlflow()
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(experiments_dir)
    artifacts = None  # elsewhere than an SQLite file (a server, a database): the store's own default
    if uri.startswith("sqlite:///"):
        store = Path(uri.removeprefix("sqlite:///"))
        artifacts = artifacts_beside(store)
        check_sqlite_store(store, create)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri.startswith("sqlite:///"):  # open it now, MLflow's own error log silenced: one line, not 66
        mlflow_log = logging.getLogger("mlflow")
        level = mlflow_log.level
        mlflow_log.setLevel(logging.CRITICAL + 1)
        try:
            mlflow.search_experiments(max_results=1)
        except Exception as error:
            raise EvidensError(
                f"the MLflow store {uri} cannot be read ({_first_line(error)}): restore it, or move it aside "
                "and train again"
            ) from None
        finally:
            mlflow_log.setLevel(level)
    if not create:
        return uri
    try:
        known = mlflow.get_experiment_by_name(experiment)
    except MlflowException as error:
        raise EvidensError(f"the MLflow store {uri} cannot be read ({_first_line(error)})") from None
    if known is None:
        if artifacts is not None:
            artifacts.mkdir(parents=True, exist_ok=True)
        mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri() if artifacts else None)
    mlflow.set_experiment(experiment)
    return uri


def artifacts_beside(store: Path) -> Path:
    """Where the runs of an SQLite store keep their artifacts: beside the store, whatever the working folder."""
    return store.resolve().parent / "artifacts"


HALF_MADE_SUFFIX = ".half-made"


def check_sqlite_store(path: Path, create: bool) -> None:
    """A missing store is created only where asked, in one step (made in a temporary file, then linked into
    place); one that is not an SQLite database, or not MLflow's, is an EvidensError naming it. A store left
    half-made by a kill during its creation (tables at another schema revision than MLflow's, and no runs or
    models) is moved aside (NAME.half-made) and made again where asked."""
    if not path.exists():
        if not create:
            raise EvidensError(
                f"no MLflow store at {path}: train a model first (evidens train) or pass --tracking-uri"
            )
        create_sqlite_store(path)
        return
    kind = special_kind(path)
    if kind:  # SQLite would wait on a FIFO for ever
        raise EvidensError(f"the MLflow store {path} is {kind}, not a file: pass another --tracking-uri")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            half_made = bool(tables) and _half_made(db, tables)
    except sqlite3.DatabaseError as error:
        raise EvidensError(
            f"the MLflow store {path} is corrupt ({error}): restore it, or move it aside and train again"
        ) from None
    if not tables and not create:  # a zero-byte or empty file: MLflow would make a whole store of it
        raise EvidensError(
            f"the MLflow store {path} is empty (no model in it): train a model first (evidens train) or pass "
            "--tracking-uri"
        )
    if half_made:
        if not create:
            raise EvidensError(
                f"the MLflow store {path} was left half-made by an interrupted command and holds no runs: "
                "train a model first (evidens train), which makes it again"
            )
        aside = path.with_name(path.name + HALF_MADE_SUFFIX)
        os.replace(path, aside)
        log.warning(
            "the MLflow store %s was left half-made by an interrupted command (it held no runs): moved aside to "
            "%s and made again",
            path,
            aside.name,
        )
        create_sqlite_store(path)
        return
    if tables and "experiments" not in tables:
        raise EvidensError(f"{path} is an SQLite file but not an MLflow store: pass another --tracking-uri")


def _half_made(db: sqlite3.Connection, tables: set[str]) -> bool:
    """Tables at another schema revision than this MLflow's head (or a migration's temporary table), and
    nothing in them worth keeping: no run, no registered model. Only a file with MLflow's first table (made with
    the others in one transaction) can be one: another program's database is never moved."""
    if "experiments" not in tables:
        return False
    for table in ("runs", "registered_models"):
        if table in tables and db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
            return False
    from mlflow.store.db.utils import _get_latest_schema_revision

    try:
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        revision = None
    migrating = any(t.startswith("_alembic_tmp_") for t in tables)
    return migrating or revision is None or revision[0] != _get_latest_schema_revision()


def create_sqlite_store(path: Path) -> None:
    """Make an empty MLflow store at path in one step: MLflow's migrations run on a temporary file (named with
    this process's id; those of dead processes are removed), which is then linked into place. A kill leaves
    no store or a whole one; a store another process made meanwhile is kept."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.creating*"):
        pid = stale.name.removeprefix(f".{path.name}.").split(".")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            stale.unlink(missing_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.creating")
    uri = f"sqlite:///{temporary}"
    try:
        SqlAlchemyStore(uri, artifacts_beside(path).as_uri())
        SqlAlchemyStore._engine_map.pop(uri).dispose()  # closed before the file is linked into place
        with contextlib.suppress(FileExistsError):  # made by another process meanwhile: theirs is kept
            os.link(temporary, path)
    finally:
        engine = SqlAlchemyStore._engine_map.pop(uri, None)
        if engine is not None:
            engine.dispose()
        for leftover in path.parent.glob(f"{temporary.name}*"):
            leftover.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def code_version() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(pipeline.__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"{pipeline.__version__}+{commit}"


def _metric_name(text: str) -> str:
    """ "baseline: majority answer" -> "baseline_majority_answer"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def confusion_png(matrix: np.ndarray, title: str, path: Path) -> None:
    """scikit-learn's ConfusionMatrixDisplay, labels in answer order."""
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axis = plt.subplots(figsize=(4, 3.6))
    ConfusionMatrixDisplay(matrix, display_labels=list(ANSWER_ORDER)).plot(
        ax=axis, colorbar=False, cmap="Blues"
    )
    axis.set_xlabel("predicted")
    axis.set_ylabel("self-assessed")
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


@dataclass(frozen=True)
class LabelledData:
    """Where a run's data lies as files: the corpus folder (efforts.jsonl, written by `evidens ingest`) and the
    labels folder (answers.csv, verdicts.csv, statement_gold.csv: pipeline.labels.LEARNT_FROM)."""

    corpus: Path
    labels: Path


# MLflow stores a dataset's digest in 36 characters: the first 32 hex digits of the file's SHA-256.
DIGEST_CHARS = 32


def file_digest(path: Path) -> str:
    return file_sha256(path)[:DIGEST_CHARS]


def file_dataset(path: Path, frame: pd.DataFrame, targets: str | None = None):
    """A dataset named after its file, the file as its source and the file's content hash as its digest, so
    the MLflow UI shows which file (and which state of it) a run read."""
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json

    source = get_dataset_source_from_json(json.dumps({"uri": str(path.resolve())}), source_type="local")
    return mlflow.data.from_pandas(
        frame,
        source=source,
        name=path.name,
        digest=file_digest(path),
        targets=targets if targets in frame.columns else None,
    )


def corpus_dataset(corpus: Path, efforts: Sequence[Effort]):
    """efforts.jsonl as a dataset: one row per effort (its id, kind, municipality, source page, content hash and
    number of self-assessed answers), the page text itself left out."""
    from pipeline.corpus import EFFORTS_FILE

    frame = pd.DataFrame(
        [
            {
                "effort_id": e.effort_id,
                "kind": str(e.kind),
                "municipality": e.municipality or "",
                "source": e.source,
                "content_sha256": e.content_sha256,
                "answers": sum(len(t.answers) for t in e.tests),
            }
            for e in efforts
        ],
        columns=["effort_id", "kind", "municipality", "source", "content_sha256", "answers"],
    )
    return file_dataset(corpus / EFFORTS_FILE, frame)


def label_datasets(labels: Path) -> list:
    """The label files a model learns from that exist in labels/, each as a dataset of its rows (read by the
    one CSV reader: a garbled file is an EvidensError naming its line)."""

    from pipeline.tables import read_csv

    datasets = []
    for name, target in LEARNT_FROM.items():
        path = labels / name
        if path.is_file():
            frame = pd.DataFrame(read_csv(path, comments=name == STATEMENT_GOLD_FILE))
            datasets.append(file_dataset(path, frame, target))
    return datasets


def log_inputs(context: str, datasets: Sequence) -> None:
    """Into the active run: each dataset as an input of the given context (training, evaluation, themes)."""
    for dataset in datasets:
        mlflow.log_input(dataset, context=context)


def log_evaluation(evaluation: Evaluation) -> None:
    """Into the active run: every predictor's out-of-fold metrics, the confusion matrix, the out-of-fold
    predictions, the metrics table and the folds."""
    # the self-assessed target, then the second target (what the text supports) under text_target.
    for target, table in (("", evaluation.metrics), ("text_target.", evaluation.text_metrics)):
        for name, metrics in table.items():
            prefix = "model" if name == evaluation.model_name else _metric_name(name)
            mlflow.log_metrics({f"{target}{prefix}.{k}": v for k, v in metrics.items() if np.isfinite(v)})
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        confusion_png(
            evaluation.confusion[evaluation.model_name],
            f"{evaluation.model_name}, out of fold",
            folder / "confusion_matrix.png",
        )
        rows = [p.row() for p in evaluation.predictions()]
        write_csv(folder / "predictions_out_of_fold.csv", rows, PREDICTION_COLUMNS)
        for name, table in (
            ("metrics", evaluation.table()),
            ("comparison_vs_answers", evaluation.outcome_table()),
        ):
            frame = table.rename_axis("row").reset_index()
            frame.columns = [str(c) for c in frame.columns]
            write_csv(folder / f"{name}.csv", frame.to_dict("records"), list(frame.columns))
        (folder / "folds.json").write_text(json.dumps(evaluation.folds), encoding="utf-8")
        mlflow.log_artifacts(scratch)


def run_params(
    model: EvidensModel, efforts: Sequence[Effort], label_version: str, text_answers: int = 0
) -> dict[str, Any]:
    """The parameters a run records: the model's get_params() (its settings, whether fitted or not), the data
    and label versions (self-assessed answers, and how many answers analysts' verdicts give), the code."""
    assessed = [e for e in efforts if e.tests]
    return {
        **{f"model.{k}": v for k, v in model.get_params().items()},
        "corpus_hash": corpus_hash(assessed),
        "label_version": label_version,
        "label_text_answers": text_answers,
        "n_answers": sum(len(t.answers) for e in assessed for t in e.tests),
        "n_efforts": len(assessed),
        "code_version": code_version(),
    }


def log_evaluate_run(
    evaluation: Evaluation, params: dict[str, Any], data: LabelledData, efforts: Sequence[Effort]
) -> str:
    """A run of `evidens evaluate`: parameters, the files it read (as datasets) and the out-of-fold evaluation.
    Returns its id."""
    with mlflow.start_run(run_name="evaluate") as run:
        mlflow.log_params({**params, "folds": "leave-one-effort-out"})
        log_inputs("evaluation", [corpus_dataset(data.corpus, efforts), *label_datasets(data.labels)])
        log_evaluation(evaluation)
        return run.info.run_id


MODEL_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", name, required=False) for name in ("text", "source", "effort")]),
    outputs=Schema([ColSpec("string" if c not in ("p_ja", "p_delvist", "p_nej", "p_stated") else "double", c)
                    for c in PREDICTION_COLUMNS]),
    params=ParamSchema([ParamSpec("output", "string", "rows"), ParamSpec("prior", "string", "")]),
)  # fmt: skip


class DamagedModel(EvidensError):
    """The packed model file is not what was written (truncated, altered): one line naming it."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


def load_fitted_model(path: Path, sha256: str | None = None) -> EvidensModel:
    """The fitted model packed in a registered version, checked against the SHA-256 recorded beside it where
    there is one (models registered since), and failing as one line where it cannot be read: truncated or
    altered (EOFError, pickle, zlib, numpy buffer errors), or pickled under module paths that have since moved
    (before the stage packages: pipeline.model, pipeline.heads, ...), which says to retrain."""
    if sha256 is not None:
        digest = file_sha256(path)
        if digest != sha256:
            raise DamagedModel(
                path,
                f"the model file is damaged ({path.stat().st_size} bytes, SHA-256 {digest[:12]} where "
                f"{sha256[:12]} was written): retrain with `evidens train`, or name another version with --model",
            )
    try:
        model = joblib.load(path)
    except (ModuleNotFoundError, AttributeError) as error:
        raise EvidensError(
            f"{path}: this model was saved by an older evidens whose modules have moved ({error}); "
            "retrain it with `evidens train`"
        ) from None
    except Exception as error:  # a truncated or altered pickle fails in many ways (EOFError, zlib, numpy)
        raise DamagedModel(
            path,
            f"the model file cannot be read ({path.stat().st_size} bytes; {type(error).__name__}: "
            f"{_first_line(error)[:100]}): retrain with `evidens train`, or name another version with --model",
        ) from None
    if not isinstance(model, EvidensModel):
        raise DamagedModel(
            path, f"holds a {type(model).__name__}, not an EvidensModel: retrain with `evidens train`"
        )
    return model


class EvidensPyfunc(PythonModel):
    """Raw page text (column `text`, optional `source`) or Effort records (column `effort`, JSON) in;
    per-criterion predictions (PREDICTION_COLUMNS) out, from the packed EvidensModel. Each input row is
    scored on its own, so the rows do not depend on how inputs are batched. With params={"output": "per_page"}
    it returns one row per input row, column `predictions` holding that page's rows as JSON (for Spark)."""

    def load_context(self, context) -> None:
        digest = context.artifacts.get("model_sha256")
        sha256 = Path(digest).read_text(encoding="utf-8").strip() if digest else None
        packed = Path(context.artifacts["model"])
        self.model_sha256 = file_sha256(packed)  # checked against the registry's
        self.model: EvidensModel = load_fitted_model(packed, sha256)

    @staticmethod
    def _efforts_of(row: pd.Series, index: int) -> list[Effort]:
        from pipeline.ingest import records_from_text
        from pipeline.ingest.readers import normalise_page

        if isinstance(row.get("effort"), str) and row["effort"]:
            return [Effort.model_validate_json(row["effort"])]
        source = str(row["source"]) if isinstance(row.get("source"), str) else f"input-row-{index}"
        return records_from_text(source, normalise_page(str(row["text"])))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        given = (params or {}).get("prior") or ""  # a pyfunc parameter is text: parsed here, where it enters
        prior = Prior.parse(given) if given else None
        pages = []
        for i, (_, row) in enumerate(model_input.iterrows()):
            efforts = self._efforts_of(row, i)
            priors = {e.effort_id: prior for e in efforts} if prior else None
            pages.append([p.row() for p in self.model.predict(efforts, priors)])
        if (params or {}).get("output") == "per_page":
            return pd.DataFrame({"predictions": [json.dumps(rows, ensure_ascii=False) for rows in pages]})
        return pd.DataFrame([r for rows in pages for r in rows], columns=list(PREDICTION_COLUMNS))


def training_fingerprint(model: EvidensModel, efforts: Sequence[Effort], label_version: str) -> str:
    """The model's fingerprint (its data and parameters) with the label version: an unchanged model is not
    registered again, and a model trained after the labels changed is a new version."""
    return hashlib.sha256(f"{model.fingerprint(efforts)} {label_version}".encode()).hexdigest()[:16]


def _registered_with(fingerprint: str) -> str | None:
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{REGISTERED_MODEL}'")
    except MlflowException:
        return None
    return next((str(v.version) for v in versions if v.tags.get(FINGERPRINT_TAG) == fingerprint), None)


def _aliased(client, alias: str):
    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except MlflowException:
        return None


def _trained_on(client, version) -> str:
    """The label version a registered version was trained on (from its run where an older evidens did not tag it)."""
    return version.tags.get(LABEL_VERSION_TAG) or client.get_run(version.run_id).data.params.get(
        "label_version", ""
    )


ChampionFigure = Callable[[Any], tuple[float, str]]  # champion version -> its macro-F1 on the labels, and how


def _champion_on_labels(
    champion, label_version: str, out_of_fold: Callable[[EvidensModel], Evaluation], cache: str | None
) -> tuple[float, str]:
    """The champion's out-of-fold macro-F1 on the labels at label_version, and how it was found: its own where it
    was trained on them; else re-scored by the challenger's evaluation (out_of_fold: leave-one-effort-out on
    these labels) on an unfitted copy of it, recorded on the champion's version (read back by a later train) and
    logged to the active run. A champion that cannot be loaded or evaluated gives -inf: it cannot hold."""
    client = mlflow.MlflowClient()
    trained_on = _trained_on(client, champion)
    if trained_on == label_version:
        return float(champion.tags.get(MACRO_F1_TAG, "-inf")), f"its own, on label version {label_version}"
    rescored = RESCORED_TAG + label_version
    if rescored in champion.tags:
        figure = float(champion.tags[rescored])
    else:
        log.info(
            "re-scoring the champion, version %s, on label version %s (leave-one-effort-out) ...",
            champion.version,
            label_version,
        )
        try:
            fitted = load_evidens_model(f"models:/{REGISTERED_MODEL}/{champion.version}")
            evaluation = out_of_fold(clone(fitted).set_params(cache=cache))
        except Exception as error:  # an outdated or damaged champion, whatever fails in it, cannot hold
            reason = f"it cannot be re-scored on label version {label_version}: {_first_line(error)}"
            log.warning("the champion, version %s: %s", champion.version, reason)
            return float("-inf"), reason
        figure = round(evaluation.metrics[evaluation.model_name]["macro_f1"], 6)
        client.set_model_version_tag(REGISTERED_MODEL, champion.version, rescored, f"{figure:.6f}")
    mlflow.log_metric("champion.rescored_macro_f1", figure)
    mlflow.set_tags({"champion.version": champion.version, "champion.label_version": trained_on})
    return figure, f"re-scored out of fold on label version {label_version}; trained on {trained_on}"


def _version_description(client, version: str, decision: str) -> str:
    """What a version is, from its tags and its run: label version, head, embedder, code version, out-of-fold
    macro-F1, and the champion decision made when it was registered."""
    registered = client.get_model_version(REGISTERED_MODEL, version)
    params = client.get_run(registered.run_id).data.params
    return (
        f"Label version `{_trained_on(client, registered)}` (hash of {', '.join(LEARNT_FROM)} in labels/). Head `{params.get('model.head')}`, embedder `{params.get('model.embedder')}`, "
        f"target {params.get('model.target')}, prior {params.get('model.prior')}. Code {params.get('code_version')}. "
        f"Out-of-fold macro-F1 {float(registered.tags[MACRO_F1_TAG]):.3f} (leave-one-effort-out over "
        f"{params.get('n_efforts')} efforts, {params.get('n_answers')} answers). Run `{registered.run_id}`.\n\n"
        f"On registration: {decision}."
    )


def _settle_aliases(version: str, macro_f1: float, champion_figure: ChampionFigure) -> bool:
    """Describe version and put the aliases where the rules put them, for version, the newest version trained on
    this data: `candidate` at it unless it points at a newer one; `champion` at it when there is none, or when
    the champion is older and its out-of-fold macro-F1 on version's labels (champion_figure: re-scored where it
    was trained on others) is at most version's. The decision is the version's description's last line and a
    tag. Run after every registration, and again by a train that finds the model unchanged, so that a kill
    between registering and moving an alias is repaired by the next train. Returns whether `champion` points at
    version."""
    client = mlflow.MlflowClient()
    if (
        MACRO_F1_TAG not in client.get_model_version(REGISTERED_MODEL, version).tags
    ):  # by an evidens that tagged it later
        client.set_model_version_tag(REGISTERED_MODEL, version, MACRO_F1_TAG, f"{macro_f1:.6f}")
    if client.get_registered_model(REGISTERED_MODEL).description != MODEL_DESCRIPTION:
        client.update_registered_model(REGISTERED_MODEL, description=MODEL_DESCRIPTION)
    candidate = _aliased(client, TRAINED_ALIAS)
    if candidate is None or int(candidate.version) < int(version):
        client.set_registered_model_alias(REGISTERED_MODEL, TRAINED_ALIAS, version)
    champion = _aliased(client, CHAMPION_ALIAS)
    if champion is not None and str(champion.version) == version:
        return True
    if champion is not None and int(champion.version) > int(version):
        return False  # a newer version's registration decided
    if champion is None:
        wins, decision = True, "champion (there was none)"
    else:
        figure, how = champion_figure(champion)
        wins = macro_f1 >= figure
        decision = (
            f"{'champion' if wins else 'not champion'}: out-of-fold macro-F1 {macro_f1:.3f} "
            f"{'≥' if wins else '<'} {figure:.3f} of the champion, version {champion.version} ({how})"
        )
    mlflow.set_tag(DECISION_TAG, decision)
    client.set_model_version_tag(REGISTERED_MODEL, version, DECISION_TAG, decision)
    client.update_model_version(
        REGISTERED_MODEL, version, description=_version_description(client, version, decision)
    )
    if wins:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, version)
    return wins


@dataclass
class TrainingOutcome:
    run_id: str
    version: str
    registered: bool  # False: an identical model (same data, labels and parameters) was registered before
    champion: bool  # whether `champion` points at this version now


def log_training(
    model: EvidensModel,
    efforts: Sequence[Effort],
    evaluation: Evaluation,
    data: LabelledData,
    example_text: str,
    out_of_fold: Callable[[EvidensModel], Evaluation],
) -> TrainingOutcome:
    """One run: the fitted model's parameters, the files it learnt from (datasets: efforts.jsonl and the label
    files, each with its content hash), the out-of-fold evaluation, and the model with its signature and input
    example, registered and described unless an identical one is (same data, label version and parameters).
    `candidate` points at the new version; `champion` moves to it only when its out-of-fold macro-F1 is at
    least the champion's on the same labels: out_of_fold (this run's evaluation, for another unfitted model)
    re-scores a champion trained on other labels."""
    from importlib.metadata import requires

    labels_now = label_version_of(data.labels)
    fingerprint = training_fingerprint(model, efforts, labels_now)
    existing = _registered_with(fingerprint)
    with mlflow.start_run(run_name="train") as run, tempfile.TemporaryDirectory() as scratch:
        params = run_params(model, efforts, labels_now, len(evaluation.text_answers))
        mlflow.log_params({**params, "fingerprint": fingerprint, "folds": "leave-one-effort-out"})
        log_inputs("training", [corpus_dataset(data.corpus, efforts), *label_datasets(data.labels)])
        log_evaluation(evaluation)
        macro_f1 = round(evaluation.metrics[evaluation.model_name]["macro_f1"], 6)

        def champion_figure(champion) -> tuple[float, str]:
            return _champion_on_labels(champion, labels_now, out_of_fold, model.get_params()["cache"])

        if existing is not None:
            mlflow.set_tag("registered_version", existing)
            return TrainingOutcome(
                run.info.run_id, existing, False, _settle_aliases(existing, macro_f1, champion_figure)
            )
        # The cache path is this machine's: where the model is loaded, it uses that user's cache.
        packed = Path(scratch) / "model.joblib"
        joblib.dump(copy.copy(model).set_params(cache=None), packed)
        model_sha256 = file_sha256(packed)
        digest = Path(scratch) / "model.joblib.sha256"
        digest.write_text(model_sha256, encoding="utf-8")
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints registration notes straight to stderr
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=EvidensPyfunc(),
                artifacts={"model": str(packed), "model_sha256": str(digest)},
                code_paths=[str(Path(pipeline.__file__).parent)],
                signature=MODEL_SIGNATURE,
                input_example=pd.DataFrame({"source": ["example.txt"], "text": [example_text]}),
                pip_requirements=[r for r in requires("evidens") or [] if "extra ==" not in r],
            )
            # the version and its tags in one transaction: a version is never found without its fingerprint
            registered = mlflow.register_model(
                info.model_uri,
                REGISTERED_MODEL,
                tags={
                    FINGERPRINT_TAG: fingerprint,
                    MACRO_F1_TAG: f"{macro_f1:.6f}",
                    LABEL_VERSION_TAG: labels_now,
                    MODEL_SHA256_TAG: model_sha256,
                },
            )
        version = str(registered.version)
        return TrainingOutcome(
            run.info.run_id, version, True, _settle_aliases(version, macro_f1, champion_figure)
        )


def model_identity(uri: str) -> str:
    """What a model URI names now, without loading the model: the registered version an alias or a version
    points at, with its run ("evidens/3 run 1f2e..."); for a model folder (a path or file:// URI), the URI and
    the digest of its files, since another model may be put at the same path; the URI itself for a run. A
    batch keys its stored page results by it, so moving `champion`, naming another version or replacing the
    model at a path scores the pages again."""
    if uri.startswith("runs:/"):
        return uri
    if not uri.startswith("models:/"):
        folder = Path(uri.removeprefix("file://"))
        return f"{uri} sha256 {_folder_digest(folder)}" if folder.is_dir() else uri
    version = _registered_version(uri)
    return uri if version is None else f"{version.name}/{version.version} run {version.run_id}"


def _registered_version(uri: str):
    """The registered model version a models:/ URI names now (by alias, number or `latest`); None for a run, a
    path or a stage. EvidensError where the registry has no such version."""
    if not uri.startswith("models:/"):
        return None
    name, _, rest = uri.removeprefix("models:/").partition("/")
    try:
        client = mlflow.MlflowClient()
        if "@" in name:
            name, alias = name.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        if rest.isdigit():
            return client.get_model_version(name, rest)
        if rest == "latest":
            return max(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    except (MlflowException, ValueError) as error:
        raise EvidensError(
            f"cannot load the model {uri} from {mlflow.get_tracking_uri()} ({_first_line(error)}): "
            "train one with `evidens train`, or name a registered one with --model models:/evidens/<version>"
        ) from None
    return None


def _folder_digest(folder: Path) -> str:
    """SHA-256 over the relative names and contents of a model folder's regular files (in name order)."""
    digest = hashlib.sha256()
    files = (
        p
        for p in folder.rglob("*")
        if p.is_file()  # regular files (a FIFO is not); a stray .DS_Store or __pycache__ is not the model
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts)
    )
    for path in sorted(files):
        digest.update(f"{path.relative_to(folder)}\0".encode() + bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()[:16]


def load_evidens_model(uri: str) -> EvidensModel:
    """The EvidensModel inside a registered model (models:/evidens@champion, models:/evidens/3, runs:/...);
    EvidensError saying what to do where there is none."""
    return load_pyfunc(uri).unwrap_python_model().model


def load_pyfunc(uri: str):
    """The pyfunc model at uri, in two steps that fail apart: finding its files (none there: an EvidensError saying
    to train one) and reading them (a truncated, altered or garbled file, MLmodel included: one line naming the
    model and where it is stored, saying to train and register it again)."""
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
    except (MlflowException, OSError, ValueError) as error:
        raise EvidensError(
            f"cannot load the model {uri} from {mlflow.get_tracking_uri()} ({_first_line(error)}): "
            "train one with `evidens train`, or name a registered one with --model models:/evidens/<version>"
        ) from None
    try:
        loaded = mlflow.pyfunc.load_model(local)
    except DamagedModel as error:  # named where it is stored, not in a temporary copy MLflow may have made
        raise EvidensError(f"{uri}: {_stored_file(uri, error.path.name)}: {error.why}") from None
    except EvidensError:  # our own message (a model saved by an older evidens, ...) says it best
        raise
    except Exception as error:  # its files are there but cannot be read: YAML, pickle, missing keys, ...
        raise EvidensError(
            f"{uri}: the model stored at {_stored_root(uri)} is damaged ({type(error).__name__}: "
            f"{_first_line(error)[:120]}): retrain and register it again with `evidens train`, or name another "
            "version with --model"
        ) from None
    _check_registered_sha256(uri, loaded.unwrap_python_model().model_sha256)
    return loaded


def _check_registered_sha256(uri: str, model_sha256: str) -> None:
    """The packed model's SHA-256 against the one the registry recorded for the version uri names (versions
    registered since the tag): a whole file pair of another version put in its place is an EvidensError."""
    version = _registered_version(uri)
    recorded = version.tags.get(MODEL_SHA256_TAG) if version is not None else None
    if recorded and recorded != model_sha256:
        raise EvidensError(
            f"{uri}: {_stored_file(uri, 'model.joblib')}: not the model registered as {version.name} version "
            f"{version.version} (SHA-256 {model_sha256[:12]}, the registry recorded {recorded[:12]}; another "
            "model's files in its place?): retrain with `evidens train`, or name another version with --model"
        )


def _stored_root(uri: str) -> str:
    """Where the model at uri keeps its files (the URI itself where that cannot be found)."""
    try:
        from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

        root = ModelsArtifactRepository.get_underlying_uri(uri) if uri.startswith("models:/") else uri
        return root.removeprefix("file://")
    except Exception:  # naming the place is a courtesy: the error itself is the message
        return uri


def _stored_file(uri: str, name: str) -> str:
    """The stored artifact `name` of the model at uri, where it can be found (else just its name)."""
    root = _stored_root(uri)
    found = sorted(Path(root).rglob(name)) if root.startswith("/") else []
    return str(found[0]) if found else f"{root}/.../{name}"


def per_page_spark_udf(spark, model_uri: str):
    """The registered model as a Spark UDF with its per-page output: one JSON array of prediction rows per page."""
    return mlflow.pyfunc.spark_udf(
        spark, model_uri, result_type="string", env_manager="local", params={"output": "per_page"}
    )


def predict_texts(
    model_uri: str, texts: Sequence[tuple[str, str]], prior: Prior | None = None
) -> pd.DataFrame:
    """Run the registered model on (source, normalised page text) pairs, under a prior given for all of them
    (None: the model's own)."""
    frame = pd.DataFrame({"source": [s for s, _ in texts], "text": [t for _, t in texts]})
    return load_pyfunc(model_uri).predict(frame, params={"prior": str(prior)} if prior else None)


THEMES_EXPERIMENT = "evidens-themes"


def log_themes(
    model,
    efforts: Sequence[Effort],
    params: dict[str, Any],
    quality: dict[str, float],
    outputs: Sequence[Path],
    corpus: Path,
) -> str:
    """One MLflow run per theme fit: its parameters, the data hash, the corpus file its passages come from (a
    dataset), its quality (ThemeModel.quality: with the label checks' counts and the pins kept or lost) and best
    silhouette, the tables, and the pins file used."""
    data_hash = hashlib.sha256("\n".join(sorted(e.content_sha256 for e in efforts)).encode()).hexdigest()
    with mlflow.start_run(run_name="themes") as run:
        mlflow.log_params({**params, "data_hash": data_hash, "units": len(model.units)})
        log_inputs("themes", [corpus_dataset(corpus, efforts)])
        mlflow.log_metrics({**quality, "silhouette": max(model.silhouettes.values())})
        for path in outputs:
            if path.suffix in (".csv", ".html", ".png"):
                mlflow.log_artifact(str(path))
        pins = getattr(model, "pins", None)  # the researcher's curation, as it was for this fit
        if pins is not None and pins.path.exists():
            mlflow.log_artifact(str(pins.path), "pins")
        return run.info.run_id
