"""Which words may appear in a theme's keywords and label.

A keyword word is Danish: a form in spaCy's Danish lemma table (spacy-lookups-data, about 550,000 forms), or a
compound of such forms ("progressions-trappen", "målgruppe-teamet", with a linking -s- or -e-), and not an
English word the Danish table lacks ("apart", "inclusive": spaCy's English lemma index). A programme or product
name is kept as the source writes it (CUBB, KIB, JobFirst, Jobnet): a word the sources write with a capital
where no sentence starts, in two places or more; such a word is shown in that form, never lower-cased.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import cache

from pipeline.textnorm import is_known_word, normalise_text

# A word token (letters, inner hyphens, optionally the trailing hyphen of a suspended compound) or any other
# single character: punctuation and digits end a phrase.
TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*-?|[^\s]")
MIN_COMPOUND_PART = 3
LINKING = ("s", "e")


@cache
def _english() -> frozenset[str]:
    """English word forms: spaCy's English lemma index (every part of speech) and its lookup table."""
    from spacy.lookups import load_lookups

    lookups = load_lookups("en", ["lemma_index", "lemma_lookup"])
    words: set[str] = set()
    index = lookups.get_table("lemma_index")
    for pos in ("noun", "verb", "adj", "adv"):
        words.update(index.get(pos, []))
    return frozenset(w.lower() for w in words if w.isalpha())


def is_english_only(word: str) -> bool:
    """An English word that Danish does not have ("apart", "inclusive"; "team" and "job" are Danish too)."""
    return word in _english() and not is_danish_word(word)


@cache
def is_danish_word(word: str) -> bool:
    """A known Danish form, or a compound whose last part is one and whose first part (less a linking -s- or
    -e-) is a Danish word itself."""
    if is_known_word(word):
        return True
    for split in range(MIN_COMPOUND_PART, len(word) - MIN_COMPOUND_PART + 1):
        left, right = word[:split], word[split:]
        if not is_known_word(right):
            continue
        stems = [left] + [left[: -len(link)] for link in LINKING if left.endswith(link)]
        if any(len(stem) >= MIN_COMPOUND_PART and is_danish_word(stem) for stem in stems):
            return True
    return False


def tokens(text: str) -> list[str]:
    """The text's tokens as written (normalised): words, and single characters that are not letters."""
    return TOKEN.findall(normalise_text(text))


def is_word_token(token: str) -> bool:
    return token.isalpha()


def name_forms(texts: Iterable[str]) -> dict[str, str]:
    """Lower-case word -> how the sources write it, for names: words written in capitals or with an inner
    capital (CUBB, JobFirst), or, when no Danish word, with a capital where no sentence starts (mostly, and at
    least twice: Jobnet). "Vejle Kommune" does not make "kommune" a name."""
    forms: dict[str, Counter] = defaultdict(Counter)
    for text in texts:
        previous = "."
        for token in tokens(text):
            if is_word_token(token) and previous not in (".", "!", "?", ":"):
                forms[token.lower()][token] += 1
            previous = token
    names = {}
    for word, seen in forms.items():
        written, count = seen.most_common(1)[0]
        inner_capital = any(c.isupper() for c in written[1:])
        capitalised = written[0].isupper() and count >= 2 and count / sum(seen.values()) > 0.5
        if written != word and (inner_capital or (capitalised and not is_danish_word(word))):
            names[word] = written
    return names


def same_word(a: str, b: str) -> bool:
    """Two forms of one word: the same lemma, or one the other's stem (they agree on 80% of the shorter and at
    least four letters: "sagsstamme", "sagsstammer", which the lemma table lacks)."""
    from pipeline.textnorm import lemma

    a, b = a.lower(), b.lower()
    if a == b or lemma(a) == lemma(b):
        return True
    prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return prefix >= max(4, 0.8 * min(len(a), len(b)))


def share_a_word(first: str, second: str) -> bool:
    return any(same_word(a, b) for a in first.split() for b in second.split())
