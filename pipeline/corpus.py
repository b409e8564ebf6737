"""The ingested corpus on disk: efforts.jsonl, rejected.jsonl, a Hugging Face dataset, and the labels.

The corpus is a machine-written state file: `write_corpus` records the SHA-256 of efforts.jsonl and
rejected.jsonl in a small manifest beside them (MANIFEST_FILE, itself checksummed), and `load_efforts` checks
efforts.jsonl against it, so a record altered by hand or by a damaged disk that still parses is refused, not
used. The hand-edited files in labels/ are validated row by row instead (pipeline/tables.py, pipeline/labels.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import datasets
from pydantic import ValidationError

from pipeline.errors import EvidensError
from pipeline.io import NotAFile, atomic_replace_dir, atomic_write_text, jsonl_text, read_regular_bytes
from pipeline.records import (
    EFFORT_FIELDS_ADDED_LATER,
    FLAG_COLUMNS,
    SECTION_NAMES,
    Effort,
    Flag,
    Rejection,
)

EFFORTS_FILE = "efforts.jsonl"
REJECTED_FILE = "rejected.jsonl"
DATASET_DIR = "efforts_dataset"
MANIFEST_FILE = ".corpus.json"  # the checksums of EFFORTS_FILE and REJECTED_FILE, written after them
MANIFEST_FORMAT = 1

log = logging.getLogger("evidens.corpus")

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
        "source_url": _STRING,
        "retrieved_at": _STRING,
    }
)


STAGING_PREFIX = ".dataset-"  # + pid + "-": the dataset is built here, then renamed into place


def write_corpus(efforts: list[Effort], rejected: list[Rejection], out_dir: Path) -> None:
    """Write the three outputs, each atomically, then the manifest of their checksums. The dataset is built
    first, in a staging folder named after this process, so that a failure leaves every old output as it was;
    staging folders a killed run left behind (their process gone) are removed first. An empty list gives a
    valid empty corpus. A kill after the files and before the manifest leaves the old manifest, which no
    longer matches: the next command says to run `evidens ingest` again, never reads a half-written corpus."""
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
        texts = {EFFORTS_FILE: jsonl_text(rows), REJECTED_FILE: jsonl_text(r.model_dump() for r in rejected)}
        for name, text in texts.items():
            atomic_write_text(out_dir / name, text)
        atomic_replace_dir(staged, out_dir / DATASET_DIR)
    _write_manifest(out_dir, {name: text.encode("utf-8") for name, text in texts.items()})


def _write_manifest(out_dir: Path, files: dict[str, bytes]) -> None:
    body = {
        "format": MANIFEST_FORMAT,
        "files": {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in files.items()},
    }
    atomic_write_text(
        out_dir / MANIFEST_FILE, json.dumps({**body, "sha256": _body_sha256(body)}, indent=2) + "\n"
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _body_sha256(body: dict) -> str:
    """The manifest's own checksum: over its other keys, in a canonical form."""
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def _recorded_sha256(corpus_dir: Path, name: str) -> str | None:
    """The SHA-256 that `evidens ingest` recorded for corpus_dir/name; None for a corpus an evidens from before
    the manifest wrote (no MANIFEST_FILE): such a corpus is still read, with one warning, not refused. A
    manifest that is there but damaged is an EvidensError."""
    path = corpus_dir / MANIFEST_FILE
    if not path.exists() and not path.is_symlink():
        return None
    redo = "run `evidens ingest` again"
    try:
        manifest = json.loads(read_regular_bytes(path).decode("utf-8"))
        body = {key: value for key, value in manifest.items() if key != "sha256"}
        if manifest.get("sha256") != _body_sha256(body):
            raise ValueError("its own checksum does not match")
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
        recorded = manifest["files"][name]["sha256"]
        if not isinstance(recorded, str):
            raise TypeError(f"the checksum of {name} is not text")
    except NotAFile as error:
        raise EvidensError(f"{path}: {error.strerror}; {redo}") from None
    except OSError as error:
        raise EvidensError(f"{path}: cannot be read ({error.strerror}); {redo}") from None
    except UnicodeDecodeError as error:
        raise EvidensError(f"{path}: damaged (not UTF-8 at byte {error.start}); {redo}") from None
    except json.JSONDecodeError as error:
        raise EvidensError(f"{path}: damaged (not valid JSON: {error.msg}); {redo}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        what = f"no entry {error}" if isinstance(error, KeyError) else str(error) or type(error).__name__
        raise EvidensError(f"{path}: damaged ({what}); {redo}") from None
    return recorded


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


_READ_UNCHECKED: set[Path] = set()  # corpus files without a manifest this process has warned of


def load_efforts(corpus_dir: Path) -> list[Effort]:
    """The efforts that `evidens ingest` wrote into corpus_dir, each line checked: EvidensError naming the file
    and line of the first that is not a whole, valid record (every field present, none dropped in silence, but for
    EFFORT_FIELDS_ADDED_LATER, which older corpora lack);
    then the whole file checked against the SHA-256 in the corpus manifest: EvidensError for a file that parses
    but changed since ingest wrote it (a letter altered by hand or by a damaged disk, whole lines lost). A
    corpus without a manifest (written by an evidens from before it) loads with one warning."""
    path = corpus_dir / EFFORTS_FILE
    if not path.exists():
        raise EvidensError(f"{path} not found: run `evidens ingest` first")
    recorded = _recorded_sha256(corpus_dir, EFFORTS_FILE)
    try:
        data = read_regular_bytes(path)
    except NotAFile as error:  # a FIFO would block the reader for ever
        raise EvidensError(f"{path}: {error.strerror}: run `evidens ingest` again") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EvidensError(f"{path}: not UTF-8 (byte {error.start}); run `evidens ingest` again") from None
    efforts = [
        _effort_from_line(line, f"{path}: line {number}")
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip()
    ]  # line errors first: they say where; the checksum catches what still parses
    if recorded is None:
        if path.resolve() not in _READ_UNCHECKED:  # said once, however often a command reads it
            _READ_UNCHECKED.add(path.resolve())
            log.warning(
                "%s: no checksum manifest (%s; the corpus was written by an older evidens), read unchecked; "
                "run `evidens ingest` again to add one",
                path,
                MANIFEST_FILE,
            )
    elif _sha256(data) != recorded:
        raise EvidensError(
            f"{path}: changed since `evidens ingest` wrote it (checksum); run `evidens ingest` again"
        )
    return efforts


def _effort_from_line(line: str, where: str) -> Effort:
    redo = "run `evidens ingest` again to rebuild the corpus"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise EvidensError(f"{where}: not valid JSON ({error.msg} at column {error.colno}); {redo}") from None
    if not isinstance(row, dict):
        raise EvidensError(f"{where}: expected an effort record (a JSON object); {redo}")
    missing = [
        name for name in Effort.model_fields if name not in row and name not in EFFORT_FIELDS_ADDED_LATER
    ]
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
