"""Write rows as CSV, JSON Lines or Parquet, chosen by the file's extension; always atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.io import atomic_path, write_jsonl

TABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")


def write_table(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Rows with exactly `columns`, in that order; the format follows path's extension."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: unsupported extension {suffix!r} (expected {', '.join(TABLE_SUFFIXES)})")
    if suffix == ".jsonl":
        write_jsonl(path, [{c: row[c] for c in columns} for row in rows])
        return
    frame = pd.DataFrame(list(rows), columns=list(columns))
    with atomic_path(path) as temporary:
        if suffix == ".csv":
            frame.to_csv(temporary, index=False)
        else:
            frame.to_parquet(temporary, index=False)
