"""The analyst's verdicts on flags: the CSV the report exports, its validation, and versioned labels.

A verdict says what a page's text supports, which the self-assessment cannot: `confirm` (the flag is right,
the text does not support the claimed answer), `dismiss` (the text does support it) or `correct` (the text
supports `answer`). `evidens review import FILE` checks a whole file before it writes anything, then appends
its new rows to `labels/verdicts.csv`: every verdict ever imported stays there with the file it came from, so
the labels are versioned and a re-import changes nothing. The current verdict on an answer is its latest.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.records import ANSWER_ORDER, Effort
from pipeline.tables import read_csv, restore, write_table

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
    """The (effort_id, criterion_id) pairs of the self-assessed answers in labels/answers.csv."""
    path = labels / ANSWERS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `evidens ingest` first, so that verdicts have answers"
        )
    return {(row["effort_id"], row["criterion_id"]) for row in read_csv(path, ("effort_id", "criterion_id"))}


def _problems_of(row: dict[str, str], known: set[Key]) -> list[str]:
    problems = []
    if row["effort_id"] not in {effort for effort, _ in known}:
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
    try:
        datetime.fromisoformat(row["decided_at"])
    except ValueError:
        problems.append(f"decided_at {row['decided_at']!r} is not an ISO 8601 time")
    return problems


def read_verdicts(path: Path, known: set[Key]) -> list[Verdict]:
    """Every row of a verdicts file, or VerdictFileError naming each bad line (header is line 1)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise VerdictFileError(path, [f"not UTF-8 (byte {error.start})"]) from None
    reader = csv.DictReader(text.splitlines())
    if tuple(reader.fieldnames or ()) != VERDICT_COLUMNS:
        raise VerdictFileError(
            path, [f"line 1: expected the columns {','.join(VERDICT_COLUMNS)}, got {reader.fieldnames}"]
        )
    source = hashlib.sha256(text.encode()).hexdigest()[:12]
    verdicts, problems, first_line = [], [], {}
    for row in reader:
        line = reader.line_num
        if None in row or any(value is None for value in row.values()):
            problems.append(f"line {line}: expected {len(VERDICT_COLUMNS)} fields")
            continue
        row = {column: restore(value.strip()) for column, value in row.items()}
        problems += [f"line {line}: {problem}" for problem in _problems_of(row, known)]
        key = (row["effort_id"], row["criterion_id"])
        if key in first_line:
            problems.append(f"line {line}: duplicate of line {first_line[key]} ({key[0]}, {key[1]})")
        first_line.setdefault(key, line)
        verdicts.append(Verdict(**row, imported_from=source))
    if problems:
        raise VerdictFileError(path, problems)
    return verdicts


def load_verdicts(labels: Path) -> list[Verdict]:
    """Every stored verdict, oldest import first; [] where none was imported."""
    path = labels / VERDICTS_FILE
    if not path.exists():
        return []
    return [Verdict(**{c: row[c] or "" for c in STORED_COLUMNS}) for row in read_csv(path, STORED_COLUMNS)]


def current_verdicts(verdicts: Sequence[Verdict]) -> dict[Key, Verdict]:
    """The latest verdict on each answer (by decided_at; a later import wins a tie)."""
    current: dict[Key, Verdict] = {}
    for verdict in verdicts:
        held = current.get(verdict.key)
        if held is None or datetime.fromisoformat(verdict.decided_at) >= datetime.fromisoformat(
            held.decided_at
        ):
            current[verdict.key] = verdict
    return current


@dataclass(frozen=True)
class ImportResult:
    read: int
    added: int
    path: Path


def import_verdicts(path: Path, labels: Path) -> ImportResult:
    """Validate the whole file, then append the verdicts not stored yet to labels/verdicts.csv (atomically).
    Nothing is written when any line is refused, or when every verdict is already stored."""
    verdicts = read_verdicts(path, known_answers(labels))
    stored = load_verdicts(labels)
    seen = {v.decision for v in stored}
    new = [v for v in verdicts if v.decision not in seen]
    target = labels / VERDICTS_FILE
    if new:
        write_table(target, [v.row() for v in [*stored, *new]], STORED_COLUMNS)
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


def decided_flags_note(flagged: Sequence[tuple[str, str, str]], verdicts: Sequence[Verdict]) -> str:
    """One line for the report: how many of the flagged answers (effort_id, criterion_id, claimed answer)
    analysts have decided, and how many of those they found the text does not support; "" where none."""
    current = current_verdicts(verdicts)
    decided = [(current[(e, c)], claim) for e, c, claim in flagged if (e, c) in current]
    if not decided:
        return ""
    upheld = sum(not verdict.supports_claim(claim) for verdict, claim in decided)
    return (
        f"Analysts' verdicts (labels/{VERDICTS_FILE}) cover {len(decided)} of the {len(flagged)} flagged answers: "
        f"in {upheld} of them the text does not support the claim ({upheld / len(decided):.0%}, the flags' "
        "precision as the analysts see it)."
    )
