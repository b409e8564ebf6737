"""Character n-gram TF-IDF: the lexical baseline, and the lexical half of the hybrid ranking.

Vectors are hashed into a fixed number of columns so that a text's vector does not depend on which other texts
were embedded with it (the cache relies on that). The IDF weights come from `fit(texts)` (the corpus's
sentences); unfitted, every n-gram weighs 1. The fitted IDF is part of `embedder_id`, so cached vectors of
one fit are never served to another."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

from pipeline.embed.base import TextRole, l2_normalise, register_embedder

N_FEATURES = 2**12


class TfidfEmbedder:
    needs_fit = True
    cacheable = False  # cheap to compute, and its vectors change with every fit

    def __init__(self) -> None:
        self._hasher = HashingVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), n_features=N_FEATURES, alternate_sign=False, norm=None
        )
        self._idf: TfidfTransformer | None = None
        self.embedder_id = "tfidf:char_wb3-5:unfitted"

    def fit(self, texts: Sequence[str]) -> TfidfEmbedder:
        self._idf = TfidfTransformer(sublinear_tf=True).fit(
            self._hasher.transform([t.lower() for t in texts])
        )
        fingerprint = hashlib.sha256(self._idf.idf_.astype(np.float32).tobytes()).hexdigest()[:12]
        self.embedder_id = f"tfidf:char_wb3-5:idf-{fingerprint}"
        return self

    def embed(self, texts: Sequence[str], role: TextRole) -> np.ndarray:
        if not texts:
            return np.zeros((0, N_FEATURES), dtype=np.float32)
        counts = self._hasher.transform([t.lower() for t in texts])
        weighted = self._idf.transform(counts) if self._idf is not None else counts.log1p()
        return l2_normalise(weighted.toarray())


@register_embedder("tfidf")
def make_tfidf(argument: str) -> TfidfEmbedder:
    if argument:
        raise ValueError(f"tfidf takes no argument, got {argument!r}")
    return TfidfEmbedder()
