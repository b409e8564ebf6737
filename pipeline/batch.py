"""Incremental, resumable batch runs over newly scraped pages.

Each input file is read, keyed by the hash of its normalised text (of its bytes when unreadable), and, unless
a page with that key was processed before, ingested, predicted and flagged on its own with the registered
model. The page's result lands in OUT/.pages/<key>.json in one atomic rename: a run killed at any moment loses
at most the page in hand and resumes from the next one. The outputs (efforts.jsonl, predictions.csv,
flags.csv, report.html, rejected.jsonl) are then rebuilt from those files, streamed in a fixed order, each
written atomically, so they never hold a partial page or a page twice.
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import hashlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field
from tqdm import tqdm

from pipeline.ingest import records_from_text, sha256_text
from pipeline.ingest.effort_page import PageError
from pipeline.ingest.readers import UnreadableFile, collect_files, read_page
from pipeline.io import atomic_path, atomic_write_text
from pipeline.records import (
    FLAG_COLUMNS,
    PREDICTION_COLUMNS,
    Effort,
    Flag,
    Prediction,
    Rejection,
)

STATE_DIR = ".pages"
OUTPUTS = ("efforts.jsonl", "predictions.csv", "flags.csv", "report.html", "rejected.jsonl")
log = logging.getLogger("evidens.batch")


class PageResult(BaseModel):
    """Everything one input page contributes to the outputs."""

    key: str
    source: str
    efforts: list[Effort] = Field(default_factory=list)
    predictions: list[Prediction] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    rejection: Rejection | None = None


@dataclass
class BatchSummary:
    files: int = 0
    processed: int = 0
    skipped: int = 0
    duplicates: int = 0
    rejected_inputs: list[str] = field(default_factory=list)
    efforts: int = 0
    seconds: float = 0.0

    def line(self, out: Path) -> str:
        return (
            f"{self.files} files: {self.processed} processed, {self.skipped} already done, "
            f"{self.duplicates} duplicates, {len(self.rejected_inputs)} rejected; {self.efforts} efforts in "
            f"the outputs ({self.seconds:.1f} s) -> {out}"
        )


def page_key(path: Path) -> tuple[str, str | None, str | None]:
    """(key, normalised text, why unreadable): the key is the content hash of the text, or of the bytes."""
    try:
        text = read_page(path)
        return sha256_text(text), text, None
    except UnreadableFile as error:
        return "raw-" + hashlib.sha256(path.read_bytes()).hexdigest(), None, str(error)
    except OSError as error:
        return (
            "unreadable-" + hashlib.sha256(str(path).encode()).hexdigest(),
            None,
            f"cannot read ({error.strerror})",
        )


class PageScorer:
    """The registered EvidensModel, scoring one page at a time."""

    def __init__(self, model_uri: str, cache: Path | None = None):
        from pipeline.tracking import load_evidens_model

        self.model = load_evidens_model(model_uri)
        if cache is not None:
            self.model.set_params(cache=str(cache))

    def score(self, key: str, source: str, text: str) -> PageResult:
        from pipeline.flags import all_flags

        efforts = records_from_text(source, text)
        predictions = self.model.predict(efforts)
        flags = all_flags(efforts, predictions)
        return PageResult(
            key=key,
            source=source,
            efforts=efforts,
            predictions=predictions,
            flags=flags,
        )


@cache
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> None:
    """glibc keeps memory freed by native code (numpy, the e5 engine, SQLite) in its arenas, so a long batch's
    resident size creeps up although Python's own memory stays flat; malloc_trim hands it back to the system.
    A no-op where the C library has no malloc_trim."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _rejected(key: str, path: Path, why: str) -> PageResult:
    return PageResult(
        key=key, source=str(path), rejection=Rejection(source=str(path), reason=f"{path}: {why}")
    )


def _progress(files: list[Path]) -> Iterator[Path]:
    """A progress bar with ETA on a terminal; plain log lines (from the caller) otherwise."""
    if sys.stderr.isatty():
        yield from tqdm(files, desc="pages", unit="page")
    else:
        yield from files


def run_batch(input_dir: Path, out: Path, model_uri: str, cache: Path | None = None) -> BatchSummary:
    """Process every new page of input_dir into out; return what was done."""
    started = time.perf_counter()
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".*.tmp"), *state.glob(".*.tmp")]:  # left by a run killed mid-write
        stale.unlink()
    files = collect_files([input_dir])
    summary = BatchSummary(files=len(files))
    scorer: PageScorer | None = None
    seen_now: set[str] = set()
    for number, path in enumerate(_progress(files), start=1):
        key, text, unreadable = page_key(path)
        result_file = state / f"{key}.json"
        if key in seen_now:
            summary.duplicates += 1
            log.info("[%d/%d] %s: duplicate of a page above", number, len(files), path)
            continue
        seen_now.add(key)
        if result_file.exists():
            summary.skipped += 1
            if json.loads(result_file.read_text(encoding="utf-8")).get("rejection"):
                summary.rejected_inputs.append(str(path))
            continue
        if unreadable is not None:
            result = _rejected(key, path, unreadable)
        else:
            scorer = scorer or PageScorer(model_uri, cache)
            try:
                result = scorer.score(key, str(path), text)
            except PageError as error:
                result = _rejected(key, path, str(error))
            except Exception as error:  # one page's failure must not stop the batch: record it and go on
                log.exception("%s: could not be processed", path)
                result = _rejected(key, path, f"could not be processed ({type(error).__name__}: {error})")
        if result.rejection is not None:
            summary.rejected_inputs.append(str(path))
        atomic_write_text(result_file, result.model_dump_json())
        release_freed_memory()
        summary.processed += 1
        log.info(
            "[%d/%d] %s: %s",
            number,
            len(files),
            path,
            result.rejection.reason
            if result.rejection
            else f"{len(result.efforts)} efforts, {len(result.predictions)} predictions, {len(result.flags)} flags",
        )
    if summary.processed or not all((out / name).exists() for name in OUTPUTS):
        summary.efforts = write_outputs(out)
    else:
        summary.efforts = sum(1 for _ in (out / "efforts.jsonl").open(encoding="utf-8"))
    summary.seconds = time.perf_counter() - started
    return summary


def _results(out: Path) -> Iterator[PageResult]:
    """Every page result, one at a time, ordered by source then key (the same after any interruption)."""
    index = []
    for path in (out / STATE_DIR).glob("*.json"):
        with path.open(encoding="utf-8") as handle:
            source = json.loads(handle.read()).get("source", "")
        index.append((source, path.stem, path))
    for _, _, path in sorted(index):
        yield PageResult.model_validate_json(path.read_text(encoding="utf-8"))


def write_outputs(out: Path) -> int:
    """Rebuild the five outputs from the page results, streaming; return the number of efforts."""
    from pipeline.report import write_report
    from pipeline.report.rows import report_rows

    efforts_count = 0
    report_efforts: list[Effort] = []
    report_predictions: list[Prediction] = []
    report_flags: list[Flag] = []
    with (
        atomic_path(out / "efforts.jsonl") as efforts_path,
        atomic_path(out / "predictions.csv") as predictions_path,
        atomic_path(out / "flags.csv") as flags_path,
        atomic_path(out / "rejected.jsonl") as rejected_path,
        efforts_path.open("w", encoding="utf-8") as efforts_file,
        predictions_path.open("w", encoding="utf-8", newline="") as predictions_file,
        flags_path.open("w", encoding="utf-8", newline="") as flags_file,
        rejected_path.open("w", encoding="utf-8") as rejected_file,
    ):
        predictions = csv.DictWriter(predictions_file, fieldnames=PREDICTION_COLUMNS)
        flags = csv.DictWriter(flags_file, fieldnames=FLAG_COLUMNS)
        predictions.writeheader()
        flags.writeheader()
        written: set[str] = (
            set()
        )  # two files may share a record, e.g. one municipality's part of a theme page
        for result in _results(out):
            if result.rejection is not None:
                rejected_file.write(result.rejection.model_dump_json() + "\n")
                continue
            for effort in result.efforts:
                if effort.effort_id not in written:
                    written.add(effort.effort_id)
                    efforts_file.write(json.dumps(effort.model_dump(), ensure_ascii=False) + "\n")
                    efforts_count += 1
            predictions.writerows(p.model_dump() for p in result.predictions)
            flags.writerows(f.model_dump() for f in result.flags)
            if result.predictions:  # the report shows assessed pages only
                report_efforts.extend(e for e in result.efforts if e.tests)
                report_predictions.extend(result.predictions)
                report_flags.extend(result.flags)
    rows = report_rows(report_predictions, report_flags, report_efforts)
    write_report(out / "report.html", report_efforts, rows, report_flags)
    return efforts_count
