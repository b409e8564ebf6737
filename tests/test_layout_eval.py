"""The cuts `pipeline.judgement.layout_eval` compares with the shipped one: each covers every word of a sentence
once, in order, and `score_page` embeds the windows of the cut it is given. Sentences are generated fixtures."""

from __future__ import annotations

import math
from functools import partial

from conftest import FakeEmbedder
from hypothesis import given
from hypothesis import strategies as st

from pipeline.evidence.late_interaction import NO_VOCABULARY, score_page, windows
from pipeline.judgement.layout_eval import even_windows, remainder_windows, side_by_side_phrases
from pipeline.records import Sentence

WORDS = st.lists(
    st.sampled_from(["borger", "samtale", "joblog", "hver", "uge", "mentor", "plan"]), max_size=40
)


def _sentence(words: list[str]) -> Sentence:
    text = " ".join(words)
    return Sentence(effort_id="generated", section="description", index=0, text=text, start=0, end=len(text))


@given(WORDS)
def test_the_compared_window_cuts_cover_each_word_once_in_order(words):
    for cut in (even_windows, partial(even_windows, count=math.ceil), remainder_windows):
        texts, owners = cut([_sentence(words)], NO_VOCABULARY)
        assert " ".join(texts).split() == words
        assert set(owners) <= {0}
    ceiling, _ = even_windows([_sentence(words)], NO_VOCABULARY, count=math.ceil)
    assert all(len(t.split()) <= 8 for t in ceiling)


@given(
    st.lists(
        st.sampled_from(["borgeren", "samtalen", "joblog", "mentor", "planen", "virksomheden"]), max_size=12
    )
)
def test_side_by_side_phrases_cover_the_criterion_with_at_most_one_overlap(words):
    distinct = list(dict.fromkeys(words))
    pieces = side_by_side_phrases(" ".join(words), NO_VOCABULARY)
    covered = [w for p in pieces for w in p.split()]
    assert set(covered) == set(distinct)
    assert len(covered) <= len(distinct) + 3  # only the last piece may overlap the one before


class Recording(FakeEmbedder):
    def __init__(self):
        self.passages: list[str] = []

    def embed(self, texts, role):
        if role == "passage":
            self.passages += list(texts)
        return super().embed(texts, role)


def test_score_page_embeds_the_windows_of_the_cut_it_is_given():
    page = [
        _sentence(
            ["borger", "samtale", "joblog", "hver", "uge", "mentor", "plan", "borger", "samtale", "joblog"]
        )
    ]
    criteria = {"c1": "Borgeren har en samtale om sin joblog hver uge"}
    shipped, other = Recording(), Recording()
    score_page("generated", page, criteria, shipped, NO_VOCABULARY)
    score_page("generated", page, criteria, other, NO_VOCABULARY, cut_windows=remainder_windows)
    assert windows(page, NO_VOCABULARY)[0][0] in shipped.passages
    assert remainder_windows(page, NO_VOCABULARY)[0] == [page[0].text]  # 10 words: one window of its own
    assert page[0].text in other.passages and len(other.passages) < len(shipped.passages)
