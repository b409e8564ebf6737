"""Tables on disk: CSV, JSON Lines or Parquet chosen by the file's extension, always written atomically, and
every CSV cell neutralised against formula injection on the one code path that all CSV writers use."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pipeline.defaults import MAX_CSV_FIELD_CHARS
from pipeline.errors import EvidensError
from pipeline.io import NotAFile, atomic_path, atomic_write_text, read_regular_bytes, write_jsonl

TABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")
# OWASP: a spreadsheet evaluates a cell that starts with one of these; a leading ' makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would evaluate gets a leading '; so does one that already starts with
    ' before such a character, so that `restore` is exact. Numbers stay numbers."""
    if isinstance(value, str) and (value.startswith(FORMULA_STARTS) or restore(value) != value):
        return ESCAPE + value
    return value


def restore(value: str) -> str:
    """The inverse of `neutralise` for a cell read back from a CSV this project wrote."""
    if value.startswith(ESCAPE) and value[1:].startswith((*FORMULA_STARTS, ESCAPE)):
        return value[1:]
    return value


class SafeCsvWriter:
    """csv.DictWriter whose every cell goes through `neutralise`; unknown keys are refused."""

    def __init__(self, handle: IO[str], columns: Sequence[str]):
        self._writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        # The csv module quotes a cell holding a line terminator's characters only: with "\n" a bare "\r" went
        # out unquoted and the reader took it for a row break. A row with one has every cell quoted.
        self._quoting = csv.DictWriter(
            handle, fieldnames=list(columns), lineterminator="\n", quoting=csv.QUOTE_ALL
        )

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, row: dict[str, Any]) -> None:
        cells = {k: neutralise(v) for k, v in row.items()}
        bare_cr = any(isinstance(v, str) and "\r" in v for v in cells.values())
        (self._quoting if bare_cr else self._writer).writerow(cells)

    def writerows(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer, columns)
    writer.writeheader()
    writer.writerows({c: row.get(c, "") for c in columns} for row in rows)
    return buffer.getvalue()


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    atomic_write_text(path, csv_text(rows, columns))


class CsvFileError(EvidensError):
    """A CSV file that cannot be read: `reason` at `line` (0 where no line applies) of `path`."""

    def __init__(self, path: Path, line: int, reason: str, redo: str = ""):
        self.path, self.line, self.reason = path, line, reason
        where = f"{path}: line {line}" if line else f"{path}"
        super().__init__(f"{where}: {reason}" + (f"; {redo}" if redo else ""))


@dataclass(frozen=True)
class CsvRecords:
    """A CSV file as read by `csv_records`: its header, its records (cells as written) with the line each
    starts on, and the SHA-256 of its bytes."""

    path: Path
    header: list[str]
    records: list[tuple[int, list[str]]]
    sha256: str
    header_line: int = 1


def csv_records(path: Path, *, comments: bool = False, max_records: int | None = None) -> CsvRecords:
    """The one CSV reader: every CSV evidens reads goes through here.

    The file's bytes are decoded (UTF-8, a BOM dropped) and parsed by the csv module as they are, never split
    into lines first, so a quoted cell keeps its newlines and a U+2028 or form feed inside a cell is text, not a
    row break. A cell may hold up to MAX_CSV_FIELD_CHARS characters. Each record carries the line it starts on
    (the header is line 1). With `comments`, lines starting with '#' between records are skipped (hand-kept
    files). A FIFO, folder or device, bytes that are not UTF-8, a malformed or oversized cell and more than
    `max_records` records are each a CsvFileError naming the file and the line."""
    try:
        data = read_regular_bytes(path)
    except NotAFile as error:
        raise CsvFileError(path, 0, error.strerror) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvFileError(path, 0, f"not UTF-8 (byte {error.start})") from None
    sha = hashlib.sha256(data).hexdigest()
    counter = _LineCounter(io.StringIO(text, newline=""), comments)
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD_CHARS))
    reader = csv.reader(counter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            start = counter.start
            counter.boundary = True
            if not cells:  # a blank line
                continue
            if any(len(cell) > MAX_CSV_FIELD_CHARS for cell in cells):
                raise CsvFileError(path, start, f"a cell over {MAX_CSV_FIELD_CHARS:,} characters")
            rows.append((start, cells))
            if max_records is not None and len(rows) > max_records + 1:  # the header and max_records
                raise CsvFileError(path, start, f"more than {max_records:,} rows (the limit): split the file")
    except csv.Error as error:
        reason = str(error)
        if "field larger than field limit" in reason:
            reason = f"a cell over {MAX_CSV_FIELD_CHARS:,} characters"
        raise CsvFileError(path, counter.start, f"not valid CSV ({reason})") from None
    if not rows:
        return CsvRecords(path, [], [], sha)
    (header_line, header), *records = rows
    return CsvRecords(path, header, records, sha, header_line)


class _LineCounter:
    """The lines of a text for csv.reader, counted; `start` is the line the current record began on. Lines
    starting with '#' at a record boundary are skipped where `comments` is set."""

    def __init__(self, lines: Iterable[str], comments: bool):
        self._lines = iter(lines)
        self._comments = comments
        self.number = 0
        self.start = 0
        self.boundary = True

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        while True:
            line = next(self._lines)
            self.number += 1
            if self.boundary and self._comments and line.startswith("#"):
                continue
            if self.boundary:
                self.start, self.boundary = self.number, False
            return line


def read_csv(
    path: Path, columns: Sequence[str] = (), *, comments: bool = False, redo: str = ""
) -> list[dict[str, str]]:
    """Rows of a CSV this project wrote (see `read_csv_lines`)."""
    return [row for _, row in read_csv_lines(path, columns, comments=comments, redo=redo)]


def read_csv_lines(
    path: Path, columns: Sequence[str] = (), *, comments: bool = False, redo: str = ""
) -> list[tuple[int, dict[str, str]]]:
    """(line, row) for each row of a CSV this project wrote (or one in its format), cells restored, through
    `csv_records`. With
    `columns`, a file that lacks one of them is a CsvFileError (an EvidensError) naming the file, as is any row
    whose number of fields differs from the header's (naming the line), a FIFO, non-UTF-8 bytes and bad CSV."""
    redo = redo or "restore it from version control, or regenerate it"
    try:
        table = csv_records(path, comments=comments)
    except CsvFileError as error:
        raise CsvFileError(error.path, error.line, error.reason, redo) from None
    missing = [c for c in columns if c not in table.header]
    if missing:
        raise CsvFileError(path, table.header_line, f"missing column(s) {', '.join(missing)}", redo)
    rows = []
    for line, cells in table.records:
        if len(cells) != len(table.header):
            raise CsvFileError(path, line, f"expected {len(table.header)} fields, found {len(cells)}", redo)
        rows.append((line, {name: restore(cell) for name, cell in zip(table.header, cells, strict=True)}))
    return rows


def write_table(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Rows with exactly `columns`, in that order; the format follows path's extension."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: unsupported extension {suffix!r} (expected {', '.join(TABLE_SUFFIXES)})")
    if suffix == ".jsonl":
        write_jsonl(path, [{c: row[c] for c in columns} for row in rows])
    elif suffix == ".csv":
        write_csv(path, rows, columns)
    else:
        import pandas as pd

        with atomic_path(path) as temporary:
            pd.DataFrame(list(rows), columns=list(columns)).to_parquet(temporary, index=False)
