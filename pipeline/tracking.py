"""MLflow: tracking store, runs for train and evaluate, and the registered pyfunc model.

This is the only module that imports mlflow; the stages know nothing of it and run without it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

import pipeline
from pipeline.classify.evaluate import Evaluation
from pipeline.classify.train import TrainingData, build_features, prediction_rows, predictions_from
from pipeline.embed.cache import DEFAULT_CACHE
from pipeline.records import ANSWER_ORDER, PREDICTION_COLUMNS, Effort

EXPERIMENTS_DIR = Path("experiments")
DEFAULT_EXPERIMENT = "evidens"
REGISTERED_MODEL = "evidens"
TRAINED_ALIAS = (
    "candidate"  # `evidens train` points it at the version it registers: models:/evidens@candidate
)


def default_tracking_uri(experiments_dir: Path = EXPERIMENTS_DIR) -> str:
    return f"sqlite:///{(experiments_dir / 'mlflow.db').resolve()}"


def configure(tracking_uri: str | None, experiment: str, experiments_dir: Path = EXPERIMENTS_DIR) -> str:
    """Point MLflow at --tracking-uri, else MLFLOW_TRACKING_URI, else the SQLite store in experiments/."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(experiments_dir)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        artifacts = (experiments_dir / "artifacts").resolve()
        artifacts.mkdir(parents=True, exist_ok=True)
        mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment)
    return uri


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
    """ "baseline: majority class" -> "baseline_majority_class"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def confusion_png(matrix: np.ndarray, title: str, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(4, 3.6))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(ANSWER_ORDER)), ANSWER_ORDER)
    axis.set_yticks(range(len(ANSWER_ORDER)), ANSWER_ORDER)
    axis.set_xlabel("predicted")
    axis.set_ylabel("self-assessed")
    axis.set_title(title, fontsize=9)
    for (i, j), value in np.ndenumerate(matrix):
        axis.text(j, i, str(value), ha="center", va="center", color="black")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def log_evaluation(
    evaluation: Evaluation, data: TrainingData, params: dict[str, Any], model_name: str
) -> str:
    """One run: parameters, every predictor's metrics, confusion matrix, per-item predictions. Returns its id."""
    with mlflow.start_run(run_name="evaluate") as run, tempfile.TemporaryDirectory() as scratch:
        mlflow.log_params({**params, "code_version": code_version(), "folds": "leave-one-effort-out"})
        for name, metrics in evaluation.metrics.items():
            prefix = "model" if name == model_name else _metric_name(name)
            mlflow.log_metrics({f"{prefix}.{k}": v for k, v in metrics.items()})
        folder = Path(scratch)
        confusion_png(
            evaluation.confusion[model_name], f"{model_name}, out of fold", folder / "confusion_matrix.png"
        )
        out_of_fold = predictions_from(data, evaluation.probabilities[model_name])
        table = pd.DataFrame([p.model_dump() for p in out_of_fold], columns=list(PREDICTION_COLUMNS))
        table.to_csv(folder / "predictions_out_of_fold.csv", index=False)
        evaluation.table().to_csv(folder / "metrics.csv")
        (folder / "folds.json").write_text(json.dumps(evaluation.folds), encoding="utf-8")
        mlflow.log_artifacts(scratch)
        return run.info.run_id


MODEL_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", name, required=False) for name in ("text", "source", "effort")]),
    params=ParamSchema([ParamSpec("output", "string", "rows")]),
)


class EvidensPyfunc(PythonModel):
    """Raw page text (column `text`, optional `source`) or Effort records (column `effort`, JSON) in;
    per-criterion predictions (PREDICTION_COLUMNS) out. Each input row is scored on its own, so the rows do not
    depend on how inputs are batched. With params={"output": "per_page"} it returns one row per input row,
    column `predictions` holding that page's rows as JSON (for Spark's one-row-per-row UDFs)."""

    def load_context(self, context) -> None:
        from pipeline.ingest.criteria import CriteriaCatalogue

        fitted = joblib.load(context.artifacts["classifier"])
        self.model, self.lexical = fitted["classifier"], fitted["lexical"]
        self.config = json.loads(Path(context.artifacts["config"]).read_text(encoding="utf-8"))
        self.catalogue = CriteriaCatalogue.load(Path(context.artifacts["criteria"]))

    def _efforts_of(self, row: pd.Series, index: int) -> list[Effort]:
        from pipeline.ingest import records_from_text
        from pipeline.ingest.readers import normalise_text

        if isinstance(row.get("effort"), str) and row["effort"]:
            efforts = [Effort.model_validate_json(row["effort"])]
        else:
            source = str(row["source"]) if isinstance(row.get("source"), str) else f"input-row-{index}"
            efforts = records_from_text(source, normalise_text(str(row["text"])))
        self.catalogue.assign(
            [e for e in efforts if any(not a.criterion_id for t in e.tests for a in t.answers)]
        )
        return efforts

    def predict_page(self, efforts: Sequence[Effort]) -> list[dict[str, Any]]:
        data = build_features(efforts, self.config["embedder"], DEFAULT_CACHE, self.lexical)
        return [p.model_dump() for p in prediction_rows(self.model, data)]

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        pages = [
            self.predict_page(self._efforts_of(row, i)) for i, (_, row) in enumerate(model_input.iterrows())
        ]
        if (params or {}).get("output") == "per_page":
            return pd.DataFrame({"predictions": [json.dumps(rows, ensure_ascii=False) for rows in pages]})
        return pd.DataFrame([r for rows in pages for r in rows], columns=list(PREDICTION_COLUMNS))


def log_training(
    model,
    data: TrainingData,
    params: dict[str, Any],
    criteria_csv: Path,
    embedder: str,
    trained_on: Sequence[str],
) -> tuple[str, str]:
    """One run: parameters, in-sample metrics, coefficients, and the pyfunc model, registered. Returns
    (run id, registered version); the alias TRAINED_ALIAS points at that version."""
    from importlib.metadata import requires

    with mlflow.start_run(run_name="train") as run, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        mlflow.log_params({**params, "code_version": code_version()})
        mlflow.log_metric("train.n_answers", len(data.units))
        mlflow.log_metric("train.accuracy_in_sample", float(np.mean(model.predict(data.X) == data.y)))
        _coefficients(model).to_csv(folder / "coefficients.csv", index=False)
        mlflow.log_artifact(str(folder / "coefficients.csv"))
        joblib.dump({"classifier": model, "lexical": data.lexical}, folder / "classifier.joblib")
        config = {"embedder": embedder, "trained_on": sorted(set(trained_on))}
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=EvidensPyfunc(),
            artifacts={
                "classifier": str(folder / "classifier.joblib"),
                "config": str(folder / "config.json"),
                "criteria": str(criteria_csv),
            },
            code_paths=[str(Path(pipeline.__file__).parent)],
            signature=MODEL_SIGNATURE,
            pip_requirements=[r for r in requires("evidens") or [] if "extra ==" not in r],
            registered_model_name=REGISTERED_MODEL,
        )
        version = str(info.registered_model_version)
        mlflow.MlflowClient().set_registered_model_alias(REGISTERED_MODEL, TRAINED_ALIAS, version)
        return run.info.run_id, version


def _coefficients(model) -> pd.DataFrame:
    """Per-threshold logistic coefficients of the transformed features (scaled numerics, criterion components)."""
    names = model.named_steps["features"].get_feature_names_out()
    classifier = model.named_steps["classifier"]
    rows = []
    for threshold, estimator in zip(classifier.classes_[1:], classifier.estimators_, strict=False):
        if isinstance(estimator, float | int):
            continue
        for name, coefficient in zip(names, np.atleast_2d(estimator.coef_)[0], strict=True):
            rows.append(
                {
                    "threshold": f"> {ANSWER_ORDER[list(ANSWER_ORDER).index(threshold) - 1]}",
                    "feature": name,
                    "coefficient": coefficient,
                }
            )
    return pd.DataFrame(rows).sort_values("coefficient", key=abs, ascending=False)


def load_model(uri: str):
    return mlflow.pyfunc.load_model(uri)


def load_classifier(uri: str):
    """The fitted scikit-learn model inside a registered evidens model, and the content hashes it was trained on."""
    wrapper = load_model(uri).unwrap_python_model()
    return wrapper.model, wrapper.config.get("trained_on", [])


def predict_texts(model_uri: str, texts: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Run the registered model on (source, normalised page text) pairs."""
    frame = pd.DataFrame({"source": [s for s, _ in texts], "text": [t for _, t in texts]})
    return load_model(model_uri).predict(frame)
