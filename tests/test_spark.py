"""The registered model over a Spark DataFrame (local mode) gives the same rows as `evidens predict`."""

from __future__ import annotations

import os
import shutil
import sys

import pandas as pd
import pytest
from conftest import ODSHERRED, TAARNBY

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'evidens[spark]'")
pytestmark = pytest.mark.skipif(
    shutil.which("java") is None,
    reason="no Java found: Spark needs Java 17 (Debian's openjdk-17-jre-headless)",
)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers must use this venv's Python, not the system one
    session = (
        SparkSession.builder.master("local[1]")
        .appName("evidens-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_udf_gives_the_same_rows_as_predict(spark, trained_model, monkeypatch):
    import mlflow

    from pipeline.batch.spark import score_pages
    from pipeline.ingest.readers import read_page
    from pipeline.records import PREDICTION_COLUMNS
    from pipeline.tracking import predict_texts

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_model)
    mlflow.set_tracking_uri(trained_model)
    mlflow.set_registry_uri(trained_model)
    pages = [(str(path), read_page(path)) for path in (ODSHERRED, TAARNBY)]
    expected = predict_texts("models:/evidens/1", pages)

    frame = spark.createDataFrame(
        pd.DataFrame({"source": [s for s, _ in pages], "text": [t for _, t in pages]})
    )
    got = score_pages(frame, "models:/evidens/1").toPandas()

    assert list(got.columns) == list(PREDICTION_COLUMNS) and len(got) == len(expected) == 47
    key = ["effort_id", "test_kind", "criterion_id"]
    got, expected = (
        got.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-9)
