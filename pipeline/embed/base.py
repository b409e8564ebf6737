"""The embedder interface and its registry: one Protocol, one dict of names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import numpy as np

from pipeline.defaults import DEFAULT_EMBEDDER as DEFAULT_EMBEDDER

TextRole = Literal["query", "passage"]


class Embedder(Protocol):
    """Texts in, L2-normalised float32 rows out. `embedder_id` names the model exactly (cache key)."""

    embedder_id: str
    #: True when the embedder learns from the corpus (its IDF, say): a model fits it on its training pages.
    needs_fit: bool
    #: True when a text's vector depends on nothing but the text and the model: vectors may be cached on disk.
    cacheable: bool

    def embed(self, texts: Sequence[str], role: TextRole) -> np.ndarray: ...


_FACTORIES: dict[str, Callable[[str], Embedder]] = {}


def register_embedder(prefix: str) -> Callable[[Callable[[str], Embedder]], Callable[[str], Embedder]]:
    """Register a factory for names equal to `prefix` or starting with `prefix:` (the rest is its argument)."""

    def decorator(factory: Callable[[str], Embedder]) -> Callable[[str], Embedder]:
        _FACTORIES[prefix] = factory
        return factory

    return decorator


def registered_embedders() -> list[str]:
    return sorted(_FACTORIES)


def get_embedder(name: str) -> Embedder:
    """Build the embedder registered under name ("e5-offline", "tfidf", "st:<model or path>")."""
    prefix, _, argument = name.partition(":")
    if prefix not in _FACTORIES:
        raise ValueError(f"unknown embedder {name!r} (expected one of {', '.join(registered_embedders())})")
    return _FACTORIES[prefix](argument)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)
