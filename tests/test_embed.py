"""Embedders: one registry, one interface, L2-normalised float32 out; the cache embeds nothing twice."""

from __future__ import annotations

import numpy as np
import pytest
from scaffolding import build_tiny_sentence_transformer

from pipeline.embed import CachedEmbedder, get_embedder, registered_embedders

TEXTS = [
    "Borgere får samtaler hver 14. dag.",
    "Jobkonsulenten hjælper med CV.",
    "Virksomhedspraktik med løntimer.",
]


@pytest.fixture(scope="session")
def tiny_st_model(tmp_path_factory):
    """A tiny sentence-transformers model built and saved locally (random weights, no download)."""
    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("st"), TEXTS * 4)


def _check_vectors(vectors: np.ndarray, n: int) -> None:
    assert vectors.dtype == np.float32 and vectors.shape[0] == n
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_registry_names():
    assert registered_embedders() == ["e5-offline", "fake", "st", "tfidf"]  # "fake": tests/conftest.py's
    assert get_embedder("tfidf").needs_fit and not get_embedder("tfidf").cacheable
    assert get_embedder("e5-offline").cacheable and not get_embedder("e5-offline").needs_fit
    with pytest.raises(ValueError, match="unknown embedder 'bert'"):
        get_embedder("bert")


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_e5_offline_queries_and_passages_differ_and_rank_sensibly():
    embedder = get_embedder("e5-offline")
    passages = embedder.embed(TEXTS, "passage")
    queries = embedder.embed(["hvor ofte har borgerne samtaler"], "query")
    _check_vectors(passages, 3)
    assert embedder.embed(TEXTS[:1], "query")[0] @ passages[0] < 0.9999  # the e5 prefixes differ
    assert int(np.argmax(passages @ queries[0])) == 0


def test_tfidf_is_deterministic_and_fit_changes_its_id():
    embedder = get_embedder("tfidf")
    unfitted = embedder.embedder_id
    _check_vectors(embedder.embed(TEXTS, "passage"), 3)
    embedder.fit(TEXTS)
    assert embedder.embedder_id != unfitted
    np.testing.assert_array_equal(embedder.embed(TEXTS[:1], "query"), embedder.embed(TEXTS, "query")[:1])


def test_sentence_transformers_backend_loads_a_local_folder_offline(tiny_st_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = get_embedder(f"st:{tiny_st_model}")
    assert embedder.embedder_id == f"st:{tiny_st_model}"
    vectors = embedder.embed(TEXTS, "passage")
    _check_vectors(vectors, 3)
    assert vectors.shape[1] == 32
    np.testing.assert_allclose(embedder.embed(TEXTS, "passage"), vectors, atol=1e-6)


def test_st_needs_a_model_name():
    with pytest.raises(ValueError, match="st needs a model id or folder"):
        get_embedder("st")


class CountingEmbedder:
    embedder_id = "counting"

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts, role):
        self.seen.extend(texts)
        return np.eye(4, dtype=np.float32)[[len(t) % 4 for t in texts]]


def test_cache_embeds_each_text_once_per_embedder_and_role(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path / "cache.sqlite")
    first = cached.embed(TEXTS, "passage")
    assert inner.seen == TEXTS and cached.misses == 3
    again = CachedEmbedder(inner, tmp_path / "cache.sqlite").embed(TEXTS + TEXTS[:1], "passage")
    assert inner.seen == TEXTS  # nothing embedded again, across instances
    np.testing.assert_array_equal(again[:3], first)
    cached.embed(TEXTS[:1], "query")
    assert inner.seen == [*TEXTS, TEXTS[0]]  # another role is another key


def test_an_embedder_that_needs_fitting_is_never_swapped_silently():
    """A registered embedder that learns from the corpus, other than tfidf, is refused by name."""
    import pytest

    from pipeline.embed import register_embedder
    from pipeline.evidence.retrieval import dense_embedder, fit_lexical

    class NeedsFit:
        needs_fit, cacheable, embedder_id = True, False, "generated:needs-fit"

    register_embedder("needs-fit-generated")(lambda argument: NeedsFit())
    lexical = fit_lexical([])
    assert dense_embedder("tfidf", lexical) is lexical
    with pytest.raises(ValueError, match=r"needs-fit-generated.*needs fitting"):
        dense_embedder("needs-fit-generated", lexical)
