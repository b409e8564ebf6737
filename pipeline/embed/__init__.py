"""Embedders behind one interface, built by name: `get_embedder("e5-offline")`."""

from pipeline.embed import e5_offline  # noqa: F401  (registers "e5-offline")
from pipeline.embed.base import Embedder, get_embedder, l2_normalise, register_embedder, registered_embedders

DEFAULT_EMBEDDER = "e5-offline"

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "get_embedder",
    "l2_normalise",
    "register_embedder",
    "registered_embedders",
]
