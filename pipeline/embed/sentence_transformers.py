"""Any sentence-transformers model by id or local folder, loaded offline (local files and cache only)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from pipeline.embed.base import TextRole, l2_normalise, register_embedder


class SentenceTransformerEmbedder:
    """Uses the model's own "query"/"passage" prompts when it defines them (e5-style models do)."""

    needs_fit = False
    cacheable = True

    def __init__(self, model: str, batch_size: int = 32):
        self.model_name = model
        self.batch_size = batch_size
        self.embedder_id = f"st:{model}"

    @cached_property
    def model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(self.model_name, device="cpu", local_files_only=True)

    def embed(self, texts: Sequence[str], role: TextRole) -> np.ndarray:
        prompt_name = role if role in (self.model.prompts or {}) else None
        vectors = self.model.encode(
            list(texts),
            prompt_name=prompt_name,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return l2_normalise(np.atleast_2d(vectors).reshape(len(texts), -1))


@register_embedder("st")
def make_sentence_transformer(argument: str) -> SentenceTransformerEmbedder:
    if not argument:
        raise ValueError("st needs a model id or folder: st:<name or path>")
    return SentenceTransformerEmbedder(argument)
