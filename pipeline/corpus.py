"""The ingested corpus on disk: efforts.jsonl, rejected.jsonl, a Hugging Face dataset, and the labels."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import datasets
from pydantic import ValidationError

from pipeline.errors import EvidensError
from pipeline.io import atomic_replace_dir, special_kind, write_jsonl
from pipeline.records import FLAG_COLUMNS, SECTION_NAMES, Effort, Flag, Rejection

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


STAGING_PREFIX = ".dataset-"  # + pid + "-": the dataset is built here, then renamed into place


def write_corpus(efforts: list[Effort], rejected: list[Rejection], out_dir: Path) -> None:
    """Write the three outputs, each atomically. The dataset is built first, in a staging folder named after
    this process, so that a failure leaves every old output as it was; staging folders a killed run left
    behind (their process gone) are removed first. An empty list gives a valid empty corpus."""
    rows = [effort.model_dump() for effort in efforts]
    datasets.disable_progress_bars()
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f"{STAGING_PREFIX}{os.getpid()}-") as build:
        staged = Path(build) / DATASET_DIR
        if rows:
            datasets.Dataset.from_list(rows, features=EFFORT_FEATURES).save_to_disk(str(staged))
        else:  # from_list([]) cannot match the features ("Keys mismatch"), and zero shards do not load again
            empty = {name: [] for name in EFFORT_FEATURES}
            datasets.Dataset.from_dict(empty, features=EFFORT_FEATURES).save_to_disk(
                str(staged), num_shards=1
            )
        write_jsonl(out_dir / EFFORTS_FILE, rows)
        write_jsonl(out_dir / REJECTED_FILE, [r.model_dump() for r in rejected])
        atomic_replace_dir(staged, out_dir / DATASET_DIR)


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove the staging folders of runs that were killed (their process is gone, or the name carries none);
    a live run's folder stays. Returns what was removed."""
    removed = []
    for folder in out_dir.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if folder.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def load_efforts(corpus_dir: Path) -> list[Effort]:
    """The efforts that `evidens ingest` wrote into corpus_dir, each line checked: EvidensError naming the file
    and line of the first that is not a whole, valid record (every field present, none dropped in silence)."""
    path = corpus_dir / EFFORTS_FILE
    if not path.exists():
        raise EvidensError(f"{path} not found: run `evidens ingest` first")
    if kind := special_kind(path):  # a FIFO would block the reader for ever
        raise EvidensError(f"{path}: {kind}, expected a regular file: run `evidens ingest` again")
    efforts = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    efforts.append(_effort_from_line(line, f"{path}: line {number}"))
    except UnicodeDecodeError as error:
        raise EvidensError(f"{path}: not UTF-8 (byte {error.start}); run `evidens ingest` again") from None
    return efforts


def _effort_from_line(line: str, where: str) -> Effort:
    redo = "run `evidens ingest` again to rebuild the corpus"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise EvidensError(f"{where}: not valid JSON ({error.msg} at column {error.colno}); {redo}") from None
    if not isinstance(row, dict):
        raise EvidensError(f"{where}: expected an effort record (a JSON object); {redo}")
    missing = [name for name in Effort.model_fields if name not in row]
    if missing:
        raise EvidensError(f"{where}: record lacks {', '.join(missing)}; {redo}")
    try:
        return Effort.model_validate(row)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise EvidensError(f"{where}: {field}: {first['msg']}; {redo}") from None


def load_dataset(corpus_dir: Path) -> datasets.Dataset:
    return datasets.load_from_disk(str(corpus_dir / DATASET_DIR))


def read_flags(path: Path) -> list[Flag]:
    """flags.csv as `evidens flag` writes it."""
    from pipeline.tables import read_csv

    return [Flag.model_validate(row) for row in read_csv(path, FLAG_COLUMNS)]
