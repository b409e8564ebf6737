"""On-disk embedding cache: SQLite, keyed by embedder id, role and text hash. An unchanged corpus embeds
nothing again; a different model, IDF fit or text never gets a stale vector.

Every row carries a keyed hash of its vector (BLAKE2b keyed by the row's key), checked on each read together
with the embedder's recorded dimension and finite values: a bit flipped on disk, or a vector paired with another
key by a damaged index, is never returned. The first row that fails starts one scan of the whole cache that
removes every failing row, with one warning counting them; they are embedded again as they are needed. A file
that is not an SQLite database, has the wrong tables, or that SQLite finds malformed when it is opened or read
is moved aside (NAME.corrupt) and rebuilt, with one warning. A full disk is one line (EvidensError). A cache
can cost time, never correctness."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pipeline.defaults import DEFAULT_CACHE as DEFAULT_CACHE
from pipeline.embed.base import Embedder, TextRole
from pipeline.errors import EvidensError, one_line
from pipeline.progress import progress

log = logging.getLogger("evidens.cache")
SCHEMA = {
    "vectors": "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL, "
    "checksum BLOB NOT NULL)",
    "dimensions": "CREATE TABLE IF NOT EXISTS dimensions (embedder_id TEXT PRIMARY KEY, dimension INTEGER NOT NULL)",
}
EXPECTED_COLUMNS = {"vectors": ["key", "vector", "checksum"], "dimensions": ["embedder_id", "dimension"]}
CORRUPT_SUFFIX = ".corrupt"  # a damaged cache is moved aside to NAME.corrupt (the last one is kept)
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)  # SQLite's codes for a file it cannot trust


def _key(embedder_id: str, role: TextRole, text: str) -> str:
    return hashlib.sha256(f"{embedder_id}\x00{role}\x00{text}".encode()).hexdigest()


def checksum(key: str, blob: bytes) -> bytes:
    """The row's keyed hash: BLAKE2b of the vector's bytes keyed by the row's key (64 hex characters)."""
    return hashlib.blake2b(blob, digest_size=16, key=key.encode()[:64]).digest()


_BATCH = 64


def _embed_in_batches(embedder: Embedder, texts: list[str], role: TextRole) -> np.ndarray:
    """Embed with a progress bar (shown on a terminal only) when there is more than one batch."""
    batches = [texts[i : i + _BATCH] for i in range(0, len(texts), _BATCH)]
    shown = progress(batches, f"embedding {role}s", "batch") if len(batches) > 1 else batches
    return np.concatenate([embedder.embed(batch, role) for batch in shown])


class _Damaged(Exception):
    """The cache file cannot be trusted as a whole: move it aside and rebuild."""


class CachedEmbedder:
    """Wraps an embedder; `misses` counts the texts it actually had to embed."""

    def __init__(self, embedder: Embedder, path: Path = DEFAULT_CACHE):
        self.inner = embedder
        self.path = path
        self.misses = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EvidensError(f"embedding cache {path}: {one_line(error)}") from None
        self._guarded(self._open)

    @property
    def embedder_id(self) -> str:
        return self.inner.embedder_id

    def fit(self, texts: Sequence[str]) -> CachedEmbedder:
        if hasattr(self.inner, "fit"):
            self.inner.fit(texts)
        return self

    def embed(self, texts: Sequence[str], role: TextRole) -> np.ndarray:
        return self._guarded(lambda: self._embed(texts, role))

    def _guarded(self, step):
        """Run step; a damaged file is moved aside and rebuilt and step run once more. A full disk, or any other
        failure of SQLite (a locked or unreadable file), is one line."""
        for attempt in (1, 2):
            try:
                return step()
            except (_Damaged, sqlite3.DatabaseError, UnicodeDecodeError) as error:
                if attempt == 2 or not _is_damage(error):
                    raise self._fault(error) from None
                self._move_aside(str(error))
        raise AssertionError("unreachable")

    def _fault(self, error: BaseException) -> EvidensError:
        if _primary_code(error) == sqlite3.SQLITE_FULL or (
            isinstance(error, OSError) and error.errno == errno.ENOSPC
        ):
            return EvidensError(one_line(OSError(errno.ENOSPC, "No space left on device", str(self.path))))
        return EvidensError(
            f"embedding cache {self.path}: {one_line(error)}; "
            "check that it is readable and writable, or delete it (it is rebuilt)"
        )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a connection that is closed afterwards (so the file can be moved aside)."""
        with contextlib.closing(_connect(self.path)) as db, db:
            yield db

    def _open(self) -> None:
        problem = _schema_problem(self.path)
        if problem:
            raise _Damaged(problem)
        with self._connect() as db:
            _create(db)

    def _move_aside(self, problem: str) -> None:
        aside = self.path.with_name(self.path.name + CORRUPT_SUFFIX)
        for suffix in (
            "",
            "-journal",
            "-wal",
            "-shm",
        ):  # a hot journal must not be replayed into the new file
            source = self.path.with_name(self.path.name + suffix)
            if source.exists():
                os.replace(source, aside.with_name(aside.name + suffix))
        log.warning(
            "embedding cache %s is damaged (%s): moved aside to %s and rebuilt; its vectors are embedded again",
            self.path,
            problem,
            aside.name,
        )

    def _embed(self, texts: Sequence[str], role: TextRole) -> np.ndarray:
        keys = [_key(self.embedder_id, role, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            _create(db)
            dimension = self._dimension(db)
            unique = list(dict.fromkeys(keys))
            failed: set[int] = set()  # rowids that fail their check: the first one starts a scan of the cache
            for start in range(0, len(unique), 500):  # SQLite caps the number of bound parameters
                chunk = unique[start : start + 500]
                asked = set(chunk)
                rows = db.execute(
                    f"SELECT rowid, key, vector, checksum FROM vectors WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for rowid, key, blob, stored in rows:
                    vector = _vector(key, blob, stored, dimension) if key in asked else None
                    if vector is None:
                        failed.add(rowid)
                    else:
                        found[key] = vector
            if failed:
                self._remove_failing(db, failed)
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
            if missing:
                vectors = _embed_in_batches(self.inner, list(missing.values()), role).astype(np.float32)
                if dimension != vectors.shape[1]:
                    db.execute(
                        "INSERT OR REPLACE INTO dimensions VALUES (?, ?)",
                        (self.embedder_id, vectors.shape[1]),
                    )
                rows = []
                for k, v in zip(missing, vectors, strict=True):
                    blob = v.tobytes()
                    rows.append((k, blob, checksum(k, blob)))
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
                found.update(zip(missing, vectors, strict=True))
        self.misses += len(missing)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys])

    def _remove_failing(self, db: sqlite3.Connection, failed: set[int]) -> None:
        """Scan the whole cache once, delete every row that fails its check (and those that failed this read,
        e.g. of another dimension), and say how many in one warning."""
        failing = failed | {
            rowid
            for rowid, key, blob, stored in db.execute("SELECT rowid, key, vector, checksum FROM vectors")
            if _vector(key, blob, stored, None) is None
        }
        db.executemany("DELETE FROM vectors WHERE rowid = ?", [(r,) for r in sorted(failing)])
        log.warning(
            "embedding cache %s: %d stored vectors failed their check (checksum, wrong dimension or not "
            "finite): removed, and embedded again where needed",
            self.path,
            len(failing),
        )

    def _dimension(self, db: sqlite3.Connection) -> int | None:
        row = db.execute(
            "SELECT dimension FROM dimensions WHERE embedder_id = ?", (self.embedder_id,)
        ).fetchone()
        return row[0] if row and isinstance(row[0], int) and row[0] > 0 else None


def _connect(path: Path) -> sqlite3.Connection:
    """Text that is not UTF-8 (a damaged key or name) reads as U+FFFD instead of failing the whole query."""
    db = sqlite3.connect(path)
    db.text_factory = lambda raw: raw.decode("utf-8", "replace")
    return db


def _create(db: sqlite3.Connection) -> None:
    for statement in SCHEMA.values():
        db.execute(statement)


def _is_damage(error: BaseException) -> bool:
    # SQLite's message about a damaged schema can quote bytes that are not UTF-8: Python fails to decode it
    return isinstance(error, _Damaged | UnicodeDecodeError) or _primary_code(error) in _DAMAGED


def _primary_code(error: BaseException) -> int | None:
    """SQLite's primary result code (an extended one, e.g. SQLITE_CORRUPT_INDEX, carries it in its low byte)."""
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _vector(key: object, blob: object, stored: object, dimension: int | None) -> np.ndarray | None:
    """The stored vector, or None where it cannot be what was written for this key: checksum, size, values."""
    if not isinstance(key, str) or not isinstance(blob, bytes) or not isinstance(stored, bytes):
        return None
    if len(blob) % 4 or not blob or (dimension is not None and len(blob) != 4 * dimension):
        return None
    if stored != checksum(key, blob):
        return None
    vector = np.frombuffer(blob, dtype=np.float32)
    return vector if np.isfinite(vector).all() else None


def _schema_problem(path: Path) -> str:
    """'' where path is missing or an SQLite file with the cache's tables (or none yet); else what is wrong.
    Reading the schema is enough to find a file that is not a database; the vectors are checked as they are
    read, so opening a large cache costs no scan. Damage SQLite reports is raised (it is handled by the caller)."""
    if not path.exists():
        return ""
    with contextlib.closing(_connect(path)) as db:
        for table, columns in EXPECTED_COLUMNS.items():
            found = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            if found and found != columns:
                return f"table {table} has columns {found}, expected {columns}"
    return ""
