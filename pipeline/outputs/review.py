"""The analyst's verdicts on flags: the CSV the report exports, its validation, and versioned labels.

A verdict says what a page's text supports, which the self-assessment cannot: `confirm` (the flag is right,
the text does not support the claimed answer), `dismiss` (the text does support it) or `correct` (the text
supports `answer`). `evidens review import FILE` checks a whole file before it writes anything, then appends
its new rows to `labels/verdicts.csv`: every verdict ever imported stays there with the file it came from, so
the labels are versioned and a re-import changes nothing. The current verdict on an answer is its latest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from pipeline.defaults import MAX_VERDICT_ROWS
from pipeline.errors import EvidensError
from pipeline.records import ANSWER_ORDER, Effort
from pipeline.tables import CsvFileError, csv_records, read_csv_lines, restore, write_table

VERDICT_COLUMNS: tuple[str, ...] = (
    "effort_id",
    "criterion_id",
    "verdict",
    "answer",
    "note",
    "analyst",
    "decided_at",
)
STORED_COLUMNS: tuple[str, ...] = (*VERDICT_COLUMNS, "imported_from")
VERDICTS = ("confirm", "dismiss", "correct")
VERDICTS_FILE = "verdicts.csv"
ANSWERS_FILE = "answers.csv"
LOCK_FILE = ".verdicts.csv.lock"  # held over read, merge and write of an import
LOCK_TIMEOUT_S = 120.0

Key = tuple[str, str]  # (effort_id, criterion_id)


class VerdictFileError(ValueError):
    """A verdicts file that cannot be imported; `problems` name the line of each."""

    def __init__(self, path: Path, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Verdict:
    effort_id: str
    criterion_id: str
    verdict: str
    answer: str
    note: str
    analyst: str
    decided_at: str
    imported_from: str = ""

    @property
    def key(self) -> Key:
        return (self.effort_id, self.criterion_id)

    def row(self) -> dict[str, str]:
        return {column: getattr(self, column) for column in STORED_COLUMNS}

    @property
    def decision(self) -> tuple[str, ...]:
        """The verdict as the analyst exported it (without where it was imported from)."""
        return tuple(getattr(self, column) for column in VERDICT_COLUMNS)

    def text_answer(self, self_assessed: str) -> str | None:
        """The answer the text supports: the claim where dismissed, the analyst's answer where corrected, and
        unknown where confirmed (the claim is wrong, and the file does not say what is right)."""
        return {"dismiss": self_assessed, "correct": self.answer}.get(self.verdict)

    def supports_claim(self, self_assessed: str) -> bool:
        """Whether the text supports the self-assessed answer, by this verdict."""
        return self.verdict == "dismiss" or (self.verdict == "correct" and self.answer == self_assessed)


def known_answers(labels: Path) -> set[Key]:
    """The (effort_id, criterion_id) pairs of the self-assessed answers in labels/answers.csv, every row checked:
    an EvidensError names the file and line of the first that is not a whole answer."""
    path = labels / ANSWERS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `evidens ingest` first, so that verdicts have answers"
        )
    redo = "run `evidens ingest` again to regenerate it"
    table = read_csv_lines(path, ("effort_id", "criterion_id", "answer"), redo=redo)
    for line, row in table:
        problem = (
            "an empty effort_id or criterion_id"
            if not (row["effort_id"].strip() and row["criterion_id"].strip())
            else f"answer {row['answer']!r} is not one of {', '.join(ANSWER_ORDER)}"
            if row["answer"] not in ANSWER_ORDER
            else ""
        )
        if problem:
            raise EvidensError(f"{path}: line {line}: {problem}; {redo}")
    return {(row["effort_id"], row["criterion_id"]) for _, row in table}


def decided_at_utc(text: str) -> str | None:
    """An ISO 8601 time with a UTC offset as UTC (`2026-11-24T09:00:00+00:00`); None for anything else: a time
    without an offset (its zone is unknown, and it cannot be ordered against one with), one that falls outside
    the calendar in UTC, or one finer than a microsecond (Python would cut it in silence)."""
    return None if _time_problem(text) else datetime.fromisoformat(text).astimezone(UTC).isoformat()


# the fraction of a second, in digits: Python keeps six and drops the rest without a word
_FRACTION = re.compile(r"\d\d:?\d\d:?\d\d[.,](\d+)")


def _time_problem(text: str) -> str:
    """Why `text` is not a decided_at evidens can store and order ('' where it is one)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return f"decided_at {text!r} is not an ISO 8601 time"
    if moment.tzinfo is None or moment.utcoffset() is None:
        return (
            f"decided_at {text!r} has no UTC offset (its zone is unknown): write it as "
            f"{moment.isoformat()}Z for UTC, or with its offset, e.g. {moment.isoformat()}+01:00"
        )
    fraction = _FRACTION.search(text)
    if fraction and len(fraction.group(1)) > 6:
        return f"decided_at {text!r} is finer than a microsecond: write at most 6 digits after the seconds"
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return f"decided_at {text!r} falls outside the calendar (years 1 to 9999) in UTC"
    return ""


def _problems_of(row: dict[str, str], known: set[Key] | None) -> list[str]:
    problems = []
    if known is None:  # a stored verdict: its answer was known when it was imported
        if not (row["effort_id"] and row["criterion_id"]):
            problems.append("an empty effort_id or criterion_id")
    elif row["effort_id"] not in {effort for effort, _ in known}:
        problems.append(f"unknown effort_id {row['effort_id']!r} (not in {ANSWERS_FILE})")
    elif (row["effort_id"], row["criterion_id"]) not in known:
        problems.append(
            f"unknown criterion_id {row['criterion_id']!r}: {row['effort_id']} has no such answer"
        )
    if row["verdict"] not in VERDICTS:
        problems.append(f"verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)}")
    elif row["verdict"] == "correct" and row["answer"] not in ANSWER_ORDER:
        problems.append(
            f"verdict correct needs an answer, one of {', '.join(ANSWER_ORDER)} (got {row['answer']!r})"
        )
    elif row["verdict"] != "correct" and row["answer"]:
        problems.append(f"answer {row['answer']!r} is given only with verdict correct")
    if problem := _time_problem(row["decided_at"]):
        problems.append(problem)
    return problems


def read_verdicts(path: Path, known: set[Key]) -> list[Verdict]:
    """Every row of a verdicts file, or VerdictFileError naming each bad line (header is line 1). Times are
    stored in UTC; a file of more than MAX_VERDICT_ROWS rows, a FIFO and bad CSV are refused, line named."""
    try:
        table = csv_records(path, max_records=MAX_VERDICT_ROWS)
    except CsvFileError as error:
        raise VerdictFileError(
            path, [f"line {error.line}: {error.reason}" if error.line else error.reason]
        ) from None
    if tuple(table.header) != VERDICT_COLUMNS:
        raise VerdictFileError(
            path,
            [
                f"line {table.header_line}: expected the columns {','.join(VERDICT_COLUMNS)}, got {table.header}"
            ],
        )
    source = table.sha256[:12]
    verdicts, problems, first_line = [], [], {}
    for line, cells in table.records:
        if len(cells) != len(VERDICT_COLUMNS):
            problems.append(f"line {line}: expected {len(VERDICT_COLUMNS)} fields, found {len(cells)}")
            continue
        row = {column: restore(value).strip() for column, value in zip(VERDICT_COLUMNS, cells, strict=True)}
        found = _problems_of(row, known)
        problems += [f"line {line}: {problem}" for problem in found]
        key = (row["effort_id"], row["criterion_id"])
        if key in first_line:
            problems.append(f"line {line}: duplicate of line {first_line[key]} ({key[0]}, {key[1]})")
        first_line.setdefault(key, line)
        if not found:
            verdicts.append(
                Verdict(**{**row, "decided_at": decided_at_utc(row["decided_at"])}, imported_from=source)
            )
    if problems:
        raise VerdictFileError(path, problems)
    return verdicts


def load_verdicts(labels: Path) -> list[Verdict]:
    """Every stored verdict, oldest import first; [] where none was imported. Every row is checked as an
    import checks it (bar the answers it names): an EvidensError names the file and line of the first bad one,
    so that no verdict is dropped or misread in silence."""
    path = labels / VERDICTS_FILE
    if not path.exists():
        return []
    redo = "restore it from version control, or correct that line"
    verdicts = []
    for line, row in read_csv_lines(path, STORED_COLUMNS, redo=redo):
        row = {column: row[column] for column in STORED_COLUMNS}
        problems = _problems_of(row, None)
        if problems:
            raise EvidensError(f"{path}: line {line}: {'; '.join(problems)}; {redo}")
        verdicts.append(Verdict(**{**row, "decided_at": decided_at_utc(row["decided_at"])}))
    return verdicts


def current_verdicts(verdicts: Sequence[Verdict]) -> dict[Key, Verdict]:
    """The latest verdict on each answer (by decided_at; a later import wins a tie)."""
    current: dict[Key, Verdict] = {}
    for verdict in verdicts:
        held = current.get(verdict.key)
        if held is None or _moment(verdict) >= _moment(held):
            current[verdict.key] = verdict
    return current


def _moment(verdict: Verdict) -> datetime:
    moment = datetime.fromisoformat(verdict.decided_at)
    if moment.tzinfo is None:  # never stored (refused at import and on reading): a hand-made Verdict
        raise EvidensError(f"verdict on {verdict.key} has a time without a UTC offset: {verdict.decided_at}")
    return moment


@dataclass(frozen=True)
class ImportResult:
    read: int
    added: int
    path: Path


def import_verdicts(path: Path, labels: Path) -> ImportResult:
    """Validate the whole file, then append the verdicts not stored yet to labels/verdicts.csv (atomically).
    Nothing is written when any line is refused, or when every verdict is already stored."""
    verdicts = read_verdicts(path, known_answers(labels))
    target = labels / VERDICTS_FILE
    lock = FileLock(labels / LOCK_FILE, timeout=LOCK_TIMEOUT_S)
    try:
        with lock:  # another import's read-merge-write must not interleave with this one (it would be lost)
            stored = load_verdicts(labels)
            seen = {v.decision for v in stored}
            new = [v for v in verdicts if v.decision not in seen]
            if new:
                write_table(target, [v.row() for v in [*stored, *new]], STORED_COLUMNS)
    except Timeout:
        raise EvidensError(
            f"{target} is locked by another `evidens review import` for over {LOCK_TIMEOUT_S:.0f} s "
            f"({labels / LOCK_FILE}): let it finish, then run again"
        ) from None
    return ImportResult(read=len(verdicts), added=len(new), path=target)


def text_answers(verdicts: Sequence[Verdict], efforts: Sequence[Effort]) -> dict[Key, str]:
    """(effort_id, criterion_id) -> the answer the text supports, by the current verdict on each answer of the
    efforts; answers without a verdict, or with `confirm` (the claim is wrong, the right answer unsaid), are
    left out."""
    claimed = {(e.effort_id, a.criterion_id): a.answer for e in efforts for t in e.tests for a in t.answers}
    answers = {}
    for key, verdict in current_verdicts(verdicts).items():
        if key in claimed and (answer := verdict.text_answer(claimed[key])) is not None:
            answers[key] = answer
    return answers
