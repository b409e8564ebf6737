"""Embedders behind one interface, built by name: `get_embedder("e5-offline")`."""

from pipeline.embed import e5_offline, sentence_transformers, tfidf  # noqa: F401  (register themselves)
from pipeline.embed.base import (
    DEFAULT_EMBEDDER,
    Embedder,
    get_embedder,
    l2_normalise,
    register_embedder,
    registered_embedders,
)
from pipeline.embed.cache import DEFAULT_CACHE, CachedEmbedder

__all__ = [
    "DEFAULT_CACHE",
    "DEFAULT_EMBEDDER",
    "CachedEmbedder",
    "Embedder",
    "get_embedder",
    "l2_normalise",
    "register_embedder",
    "registered_embedders",
]
