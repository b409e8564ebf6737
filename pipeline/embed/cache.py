"""On-disk embedding cache: SQLite, keyed by embedder id, role and text hash. An unchanged corpus embeds
nothing again; a different model, IDF fit or text never gets a stale vector.

The cache is checked when it is opened (an SQLite file with the expected tables) and each vector when it is
read (the embedder's recorded dimension, finite values). A broken cache is rebuilt and a bad vector embedded
again, each with a warning: a cache can cost time, never correctness."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.defaults import DEFAULT_CACHE as DEFAULT_CACHE
from pipeline.embed.base import Embedder, TextRole

log = logging.getLogger("evidens.cache")
SCHEMA = {
    "vectors": "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)",
    "dimensions": "CREATE TABLE IF NOT EXISTS dimensions (embedder_id TEXT PRIMARY KEY, dimension INTEGER NOT NULL)",
}
EXPECTED_COLUMNS = {"vectors": ["key", "vector"], "dimensions": ["embedder_id", "dimension"]}


def _key(embedder_id: str, role: TextRole, text: str) -> str:
    return hashlib.sha256(f"{embedder_id}\x00{role}\x00{text}".encode()).hexdigest()


_BATCH = 64


def _embed_in_batches(embedder: Embedder, texts: list[str], role: TextRole) -> np.ndarray:
    """Embed with a progress bar (shown on a terminal only) when there is more than one batch."""
    batches = [texts[i : i + _BATCH] for i in range(0, len(texts), _BATCH)]
    progress = tqdm(
        batches, desc=f"embedding {role}s", unit="batch", disable=None if len(batches) > 1 else True
    )
    return np.concatenate([embedder.embed(batch, role) for batch in progress])


class CachedEmbedder:
    """Wraps an embedder; `misses` counts the texts it actually had to embed."""

    def __init__(self, embedder: Embedder, path: Path = DEFAULT_CACHE):
        self.inner = embedder
        self.path = path
        self.misses = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        problem = _schema_problem(path)
        if problem:
            log.warning("embedding cache %s is broken (%s): rebuilding it", path, problem)
            path.unlink()
        with sqlite3.connect(path) as db:
            for statement in SCHEMA.values():
                db.execute(statement)

    @property
    def embedder_id(self) -> str:
        return self.inner.embedder_id

    def fit(self, texts: Sequence[str]) -> CachedEmbedder:
        if hasattr(self.inner, "fit"):
            self.inner.fit(texts)
        return self

    def embed(self, texts: Sequence[str], role: TextRole) -> np.ndarray:
        keys = [_key(self.embedder_id, role, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with sqlite3.connect(self.path) as db:
            dimension = self._dimension(db)
            unique = list(dict.fromkeys(keys))
            bad_vectors = 0  # wrong dimension or not finite: embedded again
            for start in range(0, len(unique), 500):  # SQLite caps the number of bound parameters
                chunk = unique[start : start + 500]
                rows = db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk
                )
                for key, blob in rows:
                    vector = _vector(blob, dimension)
                    if vector is None:
                        bad_vectors += 1
                    else:
                        found[key] = vector
            if bad_vectors:
                log.warning(
                    "embedding cache %s: %d vectors of the wrong dimension or not finite; embedding them again",
                    self.path,
                    bad_vectors,
                )
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
            if missing:
                vectors = _embed_in_batches(self.inner, list(missing.values()), role)
                self.misses += len(missing)
                if dimension is None:
                    db.execute(
                        "INSERT OR REPLACE INTO dimensions VALUES (?, ?)",
                        (self.embedder_id, vectors.shape[1]),
                    )
                db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                    [(k, v.astype(np.float32).tobytes()) for k, v in zip(missing, vectors, strict=True)],
                )
                found.update(zip(missing, vectors.astype(np.float32), strict=True))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys])

    def _dimension(self, db: sqlite3.Connection) -> int | None:
        row = db.execute(
            "SELECT dimension FROM dimensions WHERE embedder_id = ?", (self.embedder_id,)
        ).fetchone()
        return int(row[0]) if row else None


def _vector(blob: object, dimension: int | None) -> np.ndarray | None:
    """The stored vector, or None where it cannot be the embedder's (wrong size, NaN or infinite values)."""
    if not isinstance(blob, bytes) or len(blob) % 4 or (dimension is not None and len(blob) != 4 * dimension):
        return None
    vector = np.frombuffer(blob, dtype=np.float32)
    return vector if vector.size and np.isfinite(vector).all() else None


def _schema_problem(path: Path) -> str:
    """'' where path is missing or an SQLite file with the cache's tables (or none yet); else what is wrong.
    Reading the schema is enough to find a file that is not a database; the vectors are checked as they are
    read, so opening a large cache costs no scan."""
    if not path.exists():
        return ""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            for table, columns in EXPECTED_COLUMNS.items():
                found = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
                if found and found != columns:
                    return f"table {table} has columns {found}, expected {columns}"
    except sqlite3.DatabaseError as error:
        return str(error)
    return ""
