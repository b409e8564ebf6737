"""Incremental, resumable batch runs over newly scraped pages.

Each input file is read, keyed by the hash of its normalised text (by its path when unreadable), and, unless
a page with that key was processed before, ingested, predicted and flagged on its own with the registered
model. The page's result lands in OUT/.pages/<key>.json in one atomic rename.

The outputs (efforts.jsonl, predictions.csv, flags.csv, report.html, rejected.jsonl) are a pure function of
the current inputs and those per-page results, and of the previous run's flags for changes.json and the report's
changes block: they are rebuilt, streamed in a fixed order, whenever the set of results they were built from
(recorded in OUT/.outputs.json, written after them) differs from the current one. The run they were built for
and the run before it, with their flags, are kept in OUT/.run.json, written between the outputs and the
manifest. So a run killed at any instant, the final rebuild included, resumes to exactly the uninterrupted
result. A run that finds nothing new rebuilds nothing: changes.json keeps describing the last run that did.

- One current record per input file: an edited page replaces its old version, which is dropped (or moved to
  OUT/history/ with keep_history).
- A deleted input leaves the outputs (or stays, with keep_deleted).
- rejected.jsonl describes the inputs as they are now: a rejected page is retried on every run, so a rejection
  whose cause has gone (an unreadable file made readable, a broken cache rebuilt) disappears.
- One batch at a time per output folder: OUT/.lock, whose message names the holder.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from pipeline.defaults import DEFAULT_REPORT_LANGUAGE
from pipeline.errors import EvidensError
from pipeline.ingest import records_from_text, sha256_text
from pipeline.ingest.effort_page import PageError
from pipeline.ingest.readers import UnreadableFile, collect_files, printable_path, read_page_file
from pipeline.ingest.source import NO_LINK, PageLink
from pipeline.io import atomic_path, atomic_write_text, file_sha256, read_regular_bytes
from pipeline.outputs.changes import FlagChanges, FlagState, RunFlags, RunInfo, flag_changes
from pipeline.progress import progress
from pipeline.records import FLAG_COLUMNS, PREDICTION_COLUMNS, Effort, Flag, Prediction, Rejection
from pipeline.tables import SafeCsvWriter

if TYPE_CHECKING:  # the report pulls in matplotlib: imported where the outputs are written
    from pipeline.outputs.report import ReportContent

STATE_DIR = ".pages"
HISTORY_DIR = "history"
DAMAGED_DIR = "damaged"  # damaged results of inputs that are gone, kept for a person to look at
MANIFEST = ".outputs.json"
LOCK = ".lock"
OUTPUTS = ("efforts.jsonl", "predictions.csv", "flags.csv", "report.html", "rejected.jsonl")
CHANGES = "changes.json"  # an output too, but of the run's history as well, so it carries timestamps
RUN_HISTORY = ".run.json"  # the run the outputs are built for and the one before it, each with its flags
log = logging.getLogger("evidens.batch")


class BatchLocked(EvidensError):
    """Another batch run holds the output folder."""


class PageResult(BaseModel):
    """Everything one input page contributes to the outputs, and the model that made it."""

    key: str
    source: str
    made_by: str = ""  # tracking.model_identity of the model that scored it ("" for a rejection)
    link: PageLink = NO_LINK  # the source URL and date read with the page: a new one rebuilds the result
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
    dropped: int = 0  # results of deleted or edited inputs taken out of the outputs
    seconds: float = 0.0
    changes: dict[str, int] | None = None  # the flags' change counts, where the outputs were rebuilt

    def line(self, out: Path) -> str:
        dropped = f", {self.dropped} old or deleted pages dropped" if self.dropped else ""
        changes = (
            f"; flags since the previous run: {self.changes['new']} new, {self.changes['changed']} changed, "
            f"{self.changes['resolved']} resolved ({CHANGES})"
            if self.changes is not None
            else ""
        )
        return (
            f"{self.files} files: {self.processed} processed, {self.skipped} already done, "
            f"{self.duplicates} duplicates, {len(self.rejected_inputs)} rejected{dropped}; {self.efforts} efforts "
            f"in the outputs ({self.seconds:.1f} s) -> {out}{changes}"
        )


@dataclass
class InputPage:
    """One input file as this run reads it."""

    path: Path
    key: str
    text: str | None = None
    warnings: list[str] = field(default_factory=list)
    link: PageLink = NO_LINK
    unreadable: str | None = None  # why, where the file cannot be read as a page


def read_input(path: Path) -> InputPage:
    """The file keyed by the content hash of its text, or by its path when unreadable."""
    try:
        text, warnings, link = read_page_file(path)
        return InputPage(path, sha256_text(text), text, warnings, link)
    except UnreadableFile as error:
        return InputPage(path, _unreadable_key(path), unreadable=str(error))
    except OSError as error:
        return InputPage(path, _unreadable_key(path), unreadable=f"cannot read ({error.strerror})")


def _unreadable_key(path: Path) -> str:
    """Per file, not per content: two empty files are two rejections, not a page and its duplicate. The path
    alone is enough, since a rejection is retried on every run whatever its bytes."""
    return "unreadable-" + hashlib.sha256(os.fsencode(path)).hexdigest()


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold OUT/.lock for the run; raise BatchLocked naming the holder if another run has it."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "an unknown process"
            raise BatchLocked(
                f"{out} is in use by another batch run ({holder}); wait for it to finish or use another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {started}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()


class PageScorer:
    """The registered EvidensModel, scoring one page at a time."""

    def __init__(self, model_uri: str, cache: Path | None = None):
        from pipeline.tracking import load_evidens_model

        self.model = load_evidens_model(model_uri)
        if cache is not None:
            self.model.set_params(cache=str(cache))

    def score(self, key: str, source: str, efforts: list[Effort]) -> PageResult:
        from pipeline.outputs.scoring import score

        scored = score(self.model, efforts)  # the stored records carry their criterion ids
        return PageResult(
            key=key, source=source, efforts=scored.efforts, predictions=scored.predictions, flags=scored.flags
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
    name = printable_path(path)
    return PageResult(key=key, source=name, rejection=Rejection(source=name, reason=f"{name}: {why}"))


def _process(page: InputPage, scorer: PageScorer | None, model_uri: str, cache: Path | None):
    """(result, scorer): the model is loaded on the first page that needs it."""
    if page.unreadable is not None:
        return _rejected(page.key, page.path, page.unreadable), scorer
    try:
        efforts = records_from_text(str(page.path), page.text or "", page.warnings, page.link)
    except PageError as error:
        return _rejected(page.key, page.path, str(error)), scorer
    scorer = scorer or PageScorer(model_uri, cache)
    try:
        result = scorer.score(page.key, str(page.path), efforts)
        return result.model_copy(update={"link": page.link}), scorer
    except (
        EvidensError
    ):  # the run's own fault (a full disk, a damaged store): stop, one line; a rerun resumes
        raise
    except Exception as error:  # one page's failure must not stop the batch: record it and go on
        log.exception("%s: could not be processed", page.path)
        return _rejected(
            page.key, page.path, f"could not be processed ({type(error).__name__}: {error})"
        ), scorer


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_result(result_file: Path, result: PageResult) -> None:
    """A page result with the checksum of its content, in one atomic rename."""
    body = result.model_dump_json()
    atomic_write_text(result_file, json.dumps({"sha256": _checksum(body), "result": json.loads(body)}))


class DamagedResult(Exception):
    """A stored page result that is not what _write_result wrote for its key."""


def _stored(result_file: Path) -> PageResult | None:
    """The page result stored in result_file; None where there is none; DamagedResult where it is damaged,
    altered, not a regular file (a FIFO would block the run), or the result of another page (its key is not the
    file's)."""
    try:
        stored = json.loads(read_regular_bytes(result_file).decode("utf-8"))
        result = PageResult.model_validate(stored["result"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DamagedResult(f"{result_file}: damaged or altered ({type(error).__name__})") from None
    if stored["sha256"] != _checksum(result.model_dump_json()):
        raise DamagedResult(f"{result_file}: damaged or altered (checksum)")
    if result.key != result_file.stem:
        raise DamagedResult(f"{result_file}: holds the result of another page ({result.key})")
    return result


def _stored_or_redo(result_file: Path) -> PageResult | None:
    """The stored result of an input page, or None (with a warning where it is damaged): it is processed again."""
    try:
        return _stored(result_file)
    except DamagedResult as error:
        log.warning("%s, processing the page again", error)
        return None


def run_batch(
    input_dir: Path,
    out: Path,
    model_uri: str,
    cache: Path | None = None,
    keep_deleted: bool = False,
    keep_history: bool = False,
    lang: str = DEFAULT_REPORT_LANGUAGE,
) -> BatchSummary:
    """Process every new page of input_dir into out; return what was done. Raise BatchLocked if another run
    holds out."""
    if out.resolve().is_relative_to(input_dir.resolve()):
        raise EvidensError(
            f"{out} is inside the input folder {input_dir}: the batch would read its own outputs as pages; "
            "choose an output folder outside it"
        )
    with output_lock(out):
        return _run_batch(input_dir, out, model_uri, cache, keep_deleted, keep_history, lang)


def _run_batch(
    input_dir: Path,
    out: Path,
    model_uri: str,
    cache: Path | None,
    keep_deleted: bool,
    keep_history: bool,
    lang: str,
) -> BatchSummary:
    from pipeline.tracking import model_identity

    started = time.perf_counter()
    made_by = model_identity(model_uri)  # what the stored results must have been made by
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".*.tmp"), *state.glob(".*.tmp")]:  # left by a run killed mid-write
        stale.unlink()
    files = collect_files([input_dir])
    summary = BatchSummary(files=len(files))
    scorer: PageScorer | None = None
    current: dict[str, str] = {}  # key -> source, the inputs as they are now
    for number, path in enumerate(progress(files, "pages", "page"), start=1):
        page, name = read_input(path), printable_path(path)
        if page.key in current:
            summary.duplicates += 1
            log.info("[%d/%d] %s: duplicate of %s", number, len(files), name, current[page.key])
            continue
        current[page.key] = name
        result_file = state / f"{page.key}.json"
        stored = _stored_or_redo(result_file)
        if stored is not None and (
            stored.rejection is not None or stored.made_by != made_by or stored.link != page.link
        ):
            stored = None  # a rejection is retried; a result of another model, or a new source link, redone
        if stored is not None and stored.source == name and all(e.source == name for e in stored.efforts):
            summary.skipped += 1
            continue
        if stored is not None:  # the same page under a new name: its records renamed, as a fresh run has them
            efforts = [effort.model_copy(update={"source": name}) for effort in stored.efforts]
            result = stored.model_copy(update={"source": name, "efforts": efforts})
        else:
            result, scorer = _process(page, scorer, model_uri, cache)
            result.made_by = made_by if result.rejection is None else ""
        _write_result(result_file, result)
        if result.rejection is not None:
            summary.rejected_inputs.append(name)
        release_freed_memory()
        summary.processed += 1
        log.info(
            "[%d/%d] %s: %s",
            number,
            len(files),
            name,
            result.rejection.reason
            if result.rejection
            else f"{len(result.efforts)} efforts, {len(result.predictions)} predictions, {len(result.flags)} flags",
        )
    kept = _prune(out, current, {printable_path(p) for p in files}, keep_deleted, keep_history, summary)
    plan = sorted((source, key) for key, source in {**kept, **current}.items())
    flags_digest = _plan_digest(state, plan, made_by)
    digest = hashlib.sha256(f"{flags_digest}\0{lang}".encode()).hexdigest()  # the outputs: also the language
    built = _built(out)
    if built is not None and built["digest"] == digest and _outputs_intact(out, built["outputs"]):
        summary.efforts = built["efforts"]
    else:
        run = RunInfo(
            run_id=flags_digest[:16], built_at=datetime.now(UTC).isoformat(timespec="seconds"), model=made_by
        )
        previous = _previous_run(out, run.run_id)
        summary.efforts, flags, changes = write_outputs(
            out, [state / f"{key}.json" for _, key in plan], run, previous, lang
        )
        summary.changes = changes.counts
        _write_checked(out / RUN_HISTORY, {"current": flags.model_dump(), "previous": _dump(previous)})
        manifest = {
            "digest": digest,
            "pages": len(plan),
            "efforts": summary.efforts,
            "made_by": made_by,
            "outputs": {name: file_sha256(out / name) for name in (*OUTPUTS, CHANGES)},
        }
        _write_checked(out / MANIFEST, manifest)
    summary.seconds = time.perf_counter() - started
    return summary


def _prune(
    out: Path,
    current: dict[str, str],
    sources_now: set[str],
    keep_deleted: bool,
    keep_history: bool,
    summary: BatchSummary,
) -> dict[str, str]:
    """Take the results of edited and deleted inputs out of the state (into OUT/history/ with keep_history);
    return the deleted inputs' results that keep_deleted keeps (key -> source)."""
    kept: dict[str, str] = {}
    for result_file in sorted((out / STATE_DIR).glob("*.json")):
        if result_file.stem in current:
            continue
        try:
            stored = _stored(result_file)
        except DamagedResult as error:  # of an input that is gone or was edited: it cannot be made again
            if keep_deleted:
                _set_aside(out, result_file, str(error))
            else:
                result_file.unlink()
                log.info("%s; its input is gone or edited: dropped from the outputs", error)
            summary.dropped += 1
            continue
        deleted = stored is None or stored.source not in sources_now
        if keep_deleted and deleted and stored is not None and stored.rejection is None:
            kept[result_file.stem] = stored.source
            continue
        if keep_history and stored is not None and stored.rejection is None:
            (out / HISTORY_DIR).mkdir(exist_ok=True)
            os.replace(result_file, out / HISTORY_DIR / result_file.name)
        else:
            result_file.unlink()
        summary.dropped += 1
        log.info("%s: %s, dropped from the outputs", stored.source if stored else result_file.name,
                 "deleted" if deleted else "replaced by its new version")  # fmt: skip
    return kept


def _set_aside(out: Path, result_file: Path, why: str) -> None:
    """A damaged result that keep_deleted would have kept: it cannot be made again (its input is gone), so it
    leaves the outputs and the file is moved to OUT/damaged/, not deleted, with a warning naming both."""
    (out / DAMAGED_DIR).mkdir(exist_ok=True)
    moved_at = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = out / DAMAGED_DIR / f"{result_file.stem}.{moved_at}.json"  # an earlier one of the same key stays
    os.replace(result_file, target)
    log.warning("%s; its input is gone or edited, so it cannot be processed again: its page leaves the outputs, "
                "the file is kept as %s", why, target)  # fmt: skip


def _plan_digest(state: Path, plan: Sequence[tuple[str, str]], made_by: str) -> str:
    """What the flags are a function of: the code's version, the model, and each included result, in order. A
    run is named by it, so a report rebuilt in another language is the same run (its changes stay)."""
    from pipeline import __version__

    digest = hashlib.sha256(f"{__version__}\0{made_by}".encode())
    for source, key in plan:
        digest.update(f"\0{source}\0{key}\0".encode())
        digest.update(read_regular_bytes(state / f"{key}.json"))
    return digest.hexdigest()


def _dump(run: RunFlags | None) -> dict | None:
    return run.model_dump() if run is not None else None


def _write_checked(path: Path, body: dict) -> None:
    """A JSON state file with the checksum of its body, in one atomic rename."""
    atomic_write_text(path, json.dumps({**body, "sha256": _checksum(json.dumps(body))}))


def _read_checked(path: Path) -> dict:
    """The body of a state file that _write_checked wrote; ValueError where its checksum fails."""
    body = json.loads(read_regular_bytes(path).decode("utf-8"))
    if body.pop("sha256") != _checksum(json.dumps(body)):
        raise ValueError(f"{path}: checksum")
    return body


def _previous_run(out: Path, run_id: str) -> RunFlags | None:
    """The run to compare this one's flags with: the last run whose outputs were built, or, when this run is that
    one rebuilt (its outputs damaged, or a kill between OUT/.run.json and the manifest), the run before it. None
    for a first run, and for a history that is damaged (with a warning: every flag then counts as new)."""
    path = out / RUN_HISTORY
    if not path.exists():
        return None
    try:
        history = _read_checked(path)
        last = RunFlags.model_validate(history["current"])
        if last.run.run_id != run_id:
            return last
        return RunFlags.model_validate(history["previous"]) if history["previous"] is not None else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("%s: damaged or altered; the previous run is unknown, every flag counts as new", path)
        return None


def _built(out: Path) -> dict | None:
    """The manifest of the last rebuild, if it is whole (its own checksum holds)."""
    try:
        return _read_checked(out / MANIFEST)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _outputs_intact(out: Path, checksums: dict[str, str]) -> bool:
    """Every output is there with the bytes the manifest recorded: a truncated or edited one is rebuilt."""
    try:
        return all(file_sha256(out / name) == checksums.get(name) for name in (*OUTPUTS, CHANGES))
    except OSError:
        return False


def write_outputs(
    out: Path,
    result_files: Sequence[Path],
    run: RunInfo,
    previous: RunFlags | None = None,
    lang: str = DEFAULT_REPORT_LANGUAGE,
) -> tuple[int, RunFlags, FlagChanges]:
    """Rebuild the five outputs and changes.json from these page results, in this order, streaming; return the
    number of efforts, this run's flags and their changes since `previous`. The report names the model that
    made them (`run.model`), shows the changes and is written in `lang`."""
    from pipeline.outputs.report import ReportContent, write_report

    with ReportContent(spool_dir=out) as report:
        efforts_count, flag_states = _write_data_files(out, result_files, report)
        current = RunFlags(run=run, flags=flag_states)
        changes = flag_changes(previous, current)
        atomic_write_text(out / CHANGES, changes.model_dump_json(indent=2) + "\n")
        write_report(
            out / "report.html",
            report,
            notes=[f"scored by the registered model {run.model}"] if run.model else [],
            changes=changes,
            lang=lang,
        )
    return efforts_count, current, changes


def _write_data_files(
    out: Path, result_files: Sequence[Path], report: ReportContent
) -> tuple[int, list[FlagState]]:
    """efforts.jsonl, predictions.csv, flags.csv and rejected.jsonl, written as the page results are read, one
    at a time; each assessed page's rows go to `report`. Returns the number of efforts and the flags."""
    from pipeline.outputs.report.rows import report_rows

    efforts_count = 0
    flag_states: list[FlagState] = []
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
        predictions = SafeCsvWriter(predictions_file, PREDICTION_COLUMNS)
        flags = SafeCsvWriter(flags_file, FLAG_COLUMNS)
        predictions.writeheader()
        flags.writeheader()
        written: set[str] = (
            set()
        )  # two files may share a record, e.g. one municipality's part of a theme page
        for result_file in result_files:
            try:  # checked a moment ago; changed since: stop rather than write it
                result = _stored(result_file)
            except DamagedResult as error:
                raise EvidensError(
                    f"{error}: changed while the outputs were rebuilt; run the batch again"
                ) from None
            if result is None:
                raise EvidensError(
                    f"{result_file}: removed while the outputs were rebuilt; run the batch again"
                )
            if result.rejection is not None:
                rejected_file.write(result.rejection.model_dump_json() + "\n")
                continue
            for effort in result.efforts:
                if effort.effort_id not in written:
                    written.add(effort.effort_id)
                    efforts_file.write(json.dumps(effort.model_dump(), ensure_ascii=False) + "\n")
                    efforts_count += 1
            predictions.writerows(p.row() for p in result.predictions)
            flags.writerows(f.model_dump() for f in result.flags)
            flag_states.extend(FlagState.of(flag, result.source) for flag in result.flags)
            if result.predictions:  # the report shows assessed pages only
                assessed = [e for e in result.efforts if e.tests]
                report.add(assessed, report_rows(result.predictions, result.flags, assessed), result.flags)
    return efforts_count, flag_states
