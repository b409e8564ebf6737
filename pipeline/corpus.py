"""The ingested corpus on disk: efforts.jsonl, rejected.jsonl, a Hugging Face dataset, and the labels."""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets

from pipeline.io import atomic_replace_dir, read_jsonl, write_jsonl
from pipeline.records import SECTION_NAMES, Effort, Flag, Rejection

EFFORTS_FILE = "efforts.jsonl"
REJECTED_FILE = "rejected.jsonl"
DATASET_DIR = "efforts_dataset"

_STRING = datasets.Value("string")
EFFORT_FEATURES = datasets.Features(
    {
        "effort_id": _STRING,
        "source": _STRING,
        "content_sha256": _STRING,
        "kind": _STRING,
        "municipality": _STRING,
        "title": _STRING,
        "headline_score": datasets.Value("float64"),
        "target_groups": datasets.List(_STRING),
        "sections": {name: _STRING for name in SECTION_NAMES},
        "tests": datasets.List(
            {
                "kind": _STRING,
                "target_group": _STRING,
                "score": datasets.Value("float64"),
                "answers": datasets.List({"item": _STRING, "answer": _STRING, "criterion_id": _STRING}),
            }
        ),
        "warnings": datasets.List(_STRING),
    }
)


def write_corpus(efforts: list[Effort], rejected: list[Rejection], out_dir: Path) -> None:
    """Write the three outputs, each atomically."""
    rows = [effort.model_dump() for effort in efforts]
    datasets.disable_progress_bars()
    write_jsonl(out_dir / EFFORTS_FILE, rows)
    write_jsonl(out_dir / REJECTED_FILE, [r.model_dump() for r in rejected])
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".dataset-") as build:
        staged = Path(build) / DATASET_DIR
        datasets.Dataset.from_list(rows, features=EFFORT_FEATURES).save_to_disk(str(staged))
        atomic_replace_dir(staged, out_dir / DATASET_DIR)


def load_efforts(corpus_dir: Path) -> list[Effort]:
    """The efforts that `evidens ingest` wrote into corpus_dir."""
    path = corpus_dir / EFFORTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `evidens ingest` first")
    return [Effort.model_validate(row) for row in read_jsonl(path)]


def load_dataset(corpus_dir: Path) -> datasets.Dataset:
    return datasets.load_from_disk(str(corpus_dir / DATASET_DIR))


def read_flags(path: Path) -> list[Flag]:
    """flags.csv as `evidens flag` writes it."""
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return [Flag.model_validate(row) for row in csv.DictReader(handle)]
