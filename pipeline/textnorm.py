"""Danish text normalisation shared by retrieval, criteria alignment and themes.

Page dumps carry line-break hyphenation ("be-skæftigelsesindsatsen", "myndighedssagsbe-handler") beside real
hyphens ("job-databaser", "it-værktøjerne", "JobFirst-indsatsen"). A lower-case "left-right" is joined when the
joined word is a known Danish word form, or ends in one that starts before the hyphen ("sagsbehandler" in
"myndighedssagsbehandler"); known forms are spaCy's Danish lemma table (spacy-lookups-data, about 550,000
forms). A real compound's halves never make a known word across the hyphen, so it is kept.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

_HYPHENATED = re.compile(r"\b([a-zæøå]+)-\s?([a-zæøå]+)\b")
_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f]+")
# A known word ending the joined form must be this long to count ("handler" in "sagsbehandler").
MIN_JOINED_SUFFIX = 6


@cache
def _lemma_table():
    """spaCy's Danish lookup table (keys are hashed: look words up with `in` and `.get`)."""
    from spacy.lookups import load_lookups

    return load_lookups("da", ["lemma_lookup"]).get_table("lemma_lookup")


@cache
def stop_words() -> frozenset[str]:
    from spacy.lang.da.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def is_known_word(word: str) -> bool:
    return word in _lemma_table()


def _joins(left: str, right: str) -> bool:
    """Whether left-right is one word broken across a line rather than a compound with a real hyphen."""
    joined = left + right
    if is_known_word(joined):
        return True
    return any(
        is_known_word(joined[start:])
        for start in range(1, len(left))
        if len(joined) - start >= MIN_JOINED_SUFFIX
    )


def dehyphenate(text: str) -> str:
    """Join words broken across lines by hyphenation; keep real hyphens."""
    return _HYPHENATED.sub(lambda m: m[1] + m[2] if _joins(m[1], m[2]) else m[0], text)


def normalise_text(text: str) -> str:
    """NFC, soft hyphens dropped, line-break hyphenation joined, runs of spaces as one, no space before
    punctuation."""
    text = unicodedata.normalize("NFC", text).replace("\u00ad", "")
    text = dehyphenate(text)
    text = _SPACE.sub(" ", text)
    return re.sub(r" ([,.;:!?])", r"\1", text).strip()


def lemma(word: str) -> str:
    """The lemma of one lower-case word form (the form itself when the table does not know it)."""
    return _lemma_table().get(word, word)


def content_lemmas(text: str) -> list[str]:
    """Lemmas of the content words of a normalised, lower-cased text: letters only, more than two of them, no
    stop word (as form or as lemma)."""
    words = re.findall(r"[a-zæøåé]+(?:-[a-zæøåé]+)*", normalise_text(text).lower())
    stops = stop_words()
    found = []
    for word in words:
        base = lemma(word)
        if len(word) > 2 and word not in stops and base not in stops:
            found.append(base)
    return found
