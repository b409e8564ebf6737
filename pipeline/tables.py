"""Tables on disk: CSV, JSON Lines or Parquet chosen by the file's extension, always written atomically, and
every CSV cell neutralised against formula injection on the one code path that all CSV writers use."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from pipeline.io import atomic_path, atomic_write_text, write_jsonl

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

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: neutralise(v) for k, v in row.items()})

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


def read_csv(path: Path, columns: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV this project wrote (or one in its format), cells restored. With `columns`, a file that lacks
    one of them or has a short row, and any file that is not UTF-8, is an EvidensError naming the file and line."""
    from pipeline.errors import EvidensError

    redo = "restore it from version control, or regenerate it"
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise EvidensError(f"{path}: line 1: missing column(s) {', '.join(missing)}; {redo}")
            rows = []
            for row in reader:
                if any(row.get(c) is None for c in columns):
                    raise EvidensError(
                        f"{path}: line {reader.line_num}: expected {len(columns)} fields; {redo}"
                    )
                rows.append({k: restore(v) if isinstance(v, str) else v for k, v in row.items()})
            return rows
    except UnicodeDecodeError as error:
        raise EvidensError(f"{path}: not UTF-8 (byte {error.start}); {redo}") from None


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
