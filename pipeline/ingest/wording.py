"""Answer-level wording of criteria items.

The site phrases one criterion at the level of its answer: "Mindst 9 ud af 10 ..." for Ja, "Mindst 7 ud af 10
..." for Delvist, "Færre end 7 ud af 10 ..." for Nej, and likewise *altid*, *ofte*, *i nogle tilfælde*,
*sjældent*. That wording leaks the answer, so models only ever see `canonical_criterion(item)`.
"""

from __future__ import annotations

import re

from pipeline.records import Answer
from pipeline.textnorm import normalise_text

_RATIO = r"\d+\s+ud\s+af\s+10"
# Quantifier phrases, most specific first. The level is None where the number does not encode it on its own
# (e.g. "mindst 6 ud af 10" is the Ja level of one particular criterion).
_LEVEL_PATTERNS: list[tuple[re.Pattern[str], Answer | None]] = [
    (re.compile(r"\bfærre\s+end\s+7\s+ud\s+af\s+10\b", re.I), "Nej"),
    (re.compile(r"\bmindst\s+9\s+ud\s+af\s+10\b", re.I), "Ja"),
    (re.compile(r"\bmindst\s+7\s+ud\s+af\s+10\b", re.I), "Delvist"),
    (re.compile(rf"\b(?:mindst|færre\s+end|højst|under|over)\s+{_RATIO}\b", re.I), None),
]
_FREQUENCY_PATTERNS: list[tuple[re.Pattern[str], Answer]] = [
    (re.compile(r"\baltid\b", re.I), "Ja"),
    (re.compile(r"\bofte\b", re.I), "Delvist"),
    (re.compile(r"\bi\s+nogle\s+tilfælde\b", re.I), "Delvist"),
    (re.compile(r"\bsjældent\b", re.I), "Nej"),
]


def answer_level_in_wording(item: str) -> Answer | None:
    """The answer that an item's own wording states, or None where it states none.

    A ratio ("mindst 7 ud af 10") outranks a frequency word: "Mindst 7 ud af 10 borgere udarbejder altid CV"
    is the Delvist phrasing of its criterion."""
    for pattern, level in _LEVEL_PATTERNS:
        if pattern.search(item):
            return level
    for pattern, level in _FREQUENCY_PATTERNS:
        if pattern.search(item):
            return level
    return None


def canonical_criterion(item: str) -> str:
    """The criterion with every answer-level phrase removed, tidied into a readable sentence."""
    text = item
    for pattern, _ in [*_LEVEL_PATTERNS, *_FREQUENCY_PATTERNS]:
        text = pattern.sub(" ", text)
    text = re.sub(r"\s+([,.?!;:])", r"\1", text)
    text = re.sub(r"(^|\s)[,;]\s*", r"\1", text)  # a comma left dangling where a phrase was cut out
    text = re.sub(r"\s{2,}", " ", text).strip(" ,;")
    return text[:1].upper() + text[1:] if text else text


def criterion_key(text: str) -> str:
    """Exact-match key of a canonical criterion: case, punctuation and spacing ignored."""
    return re.sub(r"\s+", " ", re.sub(r"[^\wæøå ]+", " ", text.lower())).strip()


# The test's frames around a requirement. The Ja and Delvist phrasings of a criterion wrap it in one of these
# ("Jobcenteret har en fast praksis, der sikrer, at ...") while the Nej phrasing drops it, so a frame, too,
# encodes the answer level; "i tilfælde" is what "i mindst 9 ud af 10 tilfælde" leaves behind.
_FRAMES = [
    re.compile(
        r"^(?:jobcent(?:ere|re)t|vi)\s+(?:har\s+)?(?:ikke\s+)?(?:en\s+fast\s+praksis|ingen\s+fast\s+praksis|"
        r"(?:ingen\s+)?faste\s+arbejdsgange)\s*,?\s*"
        r"(?:der|som)\s+sikrer\s*,?\s*(?:at\s+)?",
        re.I,
    ),
    re.compile(r"^jobcent(?:ere|re)t\s+sikrer\s*,?\s*(?:at\s+)?", re.I),
    re.compile(r"\b(?:i|for)\s+(?:tilfælde|samtaler|borgere)\s*(?=,|$)", re.I),
    re.compile(r"(?<=\bder\s)i\s+tilfælde\s+|^i\s+tilfælde\s+", re.I),
]


def core_requirement(item: str) -> str:
    """The criterion's core requirement: its canonical text with the test's frames removed as well, so that
    every answer-level phrasing of one criterion gives the same text. This is all a model ever sees of it."""
    text = canonical_criterion(normalise_text(item))
    for frame in _FRAMES:
        text = frame.sub("", text).strip(" ,")
    text = re.sub(r"\s*,\s*,", ",", re.sub(r"\s{2,}", " ", text)).strip(" ,;")
    return text[:1].upper() + text[1:] if text else text
