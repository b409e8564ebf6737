"""Scoring beyond one machine: the registered model over a Spark DataFrame of page texts.

Needs the optional extra `evidens[spark]` (pyspark) and Java 17. The model is applied through
`mlflow.pyfunc.spark_udf` with its per-page output (one JSON array of predictions per page, since a Spark UDF
returns one value per input row), then exploded into the same rows, with the same columns, as
`evidens predict`."""

from __future__ import annotations

from pipeline.records import PREDICTION_COLUMNS, Prediction


def prediction_struct() -> str:
    """The Spark type of a prediction row, from the Prediction record: struct<effort_id:string,...>."""
    spark_types = {float: "double", bool: "boolean"}
    fields = [
        f"{name}:{spark_types.get(Prediction.model_fields[name].annotation, 'string')}"
        for name in PREDICTION_COLUMNS
    ]
    return f"struct<{','.join(fields)}>"


def score_pages(pages, model_uri: str):
    """pages: a Spark DataFrame with a `text` column (and optionally `source`). Returns one row per criterion."""
    from pyspark.sql import functions as F

    from pipeline.tracking import per_page_spark_udf

    udf = per_page_spark_udf(pages.sparkSession, model_uri)
    inputs = [F.col(c) for c in ("text", "source") if c in pages.columns]
    scored = pages.withColumn("_predictions", udf(*inputs))
    rows = scored.select(F.explode(F.from_json("_predictions", f"array<{prediction_struct()}>")).alias("p"))
    return rows.select(*[F.col(f"p.{name}").alias(name) for name in PREDICTION_COLUMNS])
