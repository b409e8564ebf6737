"""On-disk embedding cache: SQLite, keyed by embedder id, role and text hash. An unchanged corpus embeds
nothing again; a different model, IDF fit or text never gets a stale vector."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.embed.base import Embedder, TextRole

DEFAULT_CACHE = Path(".cache") / "embeddings.sqlite"


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
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")

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
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):  # SQLite caps the number of bound parameters
                chunk = unique[start : start + 500]
                rows = db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk
                )
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
            if missing:
                vectors = _embed_in_batches(self.inner, list(missing.values()), role)
                self.misses += len(missing)
                db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                    [(k, v.astype(np.float32).tobytes()) for k, v in zip(missing, vectors, strict=True)],
                )
                found.update(zip(missing, vectors.astype(np.float32), strict=True))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys])
