"""What a criterion requires, what a page states about it, and how the two compare.

A criterion such as "Borgere får samtaler hver 2. uge" asks for a practice (samtaler), who performs or receives
it (borgere), and often a measurable part: a frequency ("hver 2. uge"), a time limit ("inden for 24 timer"),
a duration ("mindst 30 minutter") or a share ("alle borgere", "17 pct."). Those parts are found with spaCy
`Matcher` patterns over the Danish tokens of `spacy.blank("da")`, here and nowhere else, and normalised to one
unit per kind (events per week, hours, minutes, a fraction) so that a page's statement can be compared with the
criterion's: **meets**, **partly**, **falls short** or **not stated**.

The comparison is a rule, fitted to nothing: the bands below (a page at least half as frequent as asked is
"partly") are stated in advance, not tuned on the labelled pages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import spacy
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

QuantityKind = Literal["frequency", "time_limit", "duration", "share"]
Outcome = Literal["meets", "partly", "falls short", "not stated"]
OUTCOMES: tuple[Outcome, ...] = ("meets", "partly", "falls short", "not stated")
NO_FIGURE = "gives no figure"  # the basis's words for a measurable part the page states no figure for

# A page stating at least PARTLY_FACTOR of what is asked (half as often, twice the time limit, half the
# duration, half the share) is "partly"; less is "falls short". Chosen a priori, not fitted.
PARTLY_FACTOR = 0.5

_NUMBER_WORDS = {
    "en": 1, "én": 1, "et": 1, "ét": 1, "to": 2, "tre": 3, "fire": 4, "fem": 5, "seks": 6, "syv": 7,
    "otte": 8, "ni": 9, "ti": 10, "fjorten": 14, "anden": 2, "andet": 2, "tredje": 3, "fjerde": 4,
}  # fmt: skip
_WEEKS_PER_UNIT = {
    "dag": 1 / 7,
    "hverdag": 1 / 5,
    "uge": 1.0,
    "måned": 52 / 12 / 1,
    "år": 52.0,
    "døgn": 1 / 7,
}
_HOURS_PER_UNIT = {"time": 1.0, "døgn": 24.0, "dag": 24.0, "hverdag": 24.0, "uge": 168.0, "måned": 730.0}
_MINUTES_PER_UNIT = {"minut": 1.0, "time": 60.0, "dag": 1440.0, "uge": 10080.0}
_UNIT_STEMS = ("minut", "time", "døgn", "hverdag", "dag", "uge", "måned", "år")
_ADVERB_RATES = {"dagligt": 5.0, "daglig": 5.0, "ugentligt": 1.0, "ugentlig": 1.0, "månedligt": 12 / 52,
                 "månedlig": 12 / 52, "årligt": 1 / 52, "årlig": 1 / 52}  # fmt: skip
_SHARE_WORDS = {"alle": 1.0, "hver": 1.0, "hvert": 1.0, "samtlige": 1.0, "de fleste": 0.75, "ofte": 0.6,
                "nogle": 0.3, "enkelte": 0.2, "sjældent": 0.1, "ingen": 0.0}  # fmt: skip
_NEGATIONS = {"ikke", "ingen", "intet", "aldrig", "hverken"}
_ACTOR_PATTERNS = {
    "primær kontaktperson": [{"LOWER": {"REGEX": r"^primære?$"}}, {"LOWER": {"REGEX": r"^kontaktperson"}}],
    "jobkonsulent": [{"LOWER": {"REGEX": r"^jobkonsulent"}}],
    "virksomhedskonsulent": [{"LOWER": {"REGEX": r"^virksomhedskonsulent"}}],
    "sagsbehandler": [{"LOWER": {"REGEX": r"sagsbe-?handler"}}],
    "jobformidler": [{"LOWER": {"REGEX": r"^jobformidler"}}],
    "mentor": [{"LOWER": {"REGEX": r"^mentor"}}],
    "kontaktperson": [{"LOWER": {"REGEX": r"^kontaktperson"}}],
    "ledelse": [{"LOWER": {"REGEX": r"^(ledelse|leder|chef)"}}],
    "direktion": [{"LOWER": {"REGEX": r"^direktion"}}],
    "politisk niveau": [{"LOWER": "politisk"}, {"LOWER": "niveau"}],
    "medarbejdere": [{"LOWER": {"REGEX": r"^medarbejder"}}],
    "teammøder": [{"LOWER": {"REGEX": r"^teammøde"}}],
    "borgere": [{"LOWER": {"REGEX": r"^borger(e|en|ne|s)?$"}}],
}

_NUMBER = {"LIKE_NUM": True}
_NUMBER_OR_WORD = {"LOWER": {"REGEX": r"^(\d+\.?|" + "|".join(_NUMBER_WORDS) + r")$"}}
_UNIT = {"LOWER": {"REGEX": r"^(" + "|".join(_UNIT_STEMS) + r")\w*$"}}


def _patterns() -> dict[str, list[list[dict]]]:
    per = {"LOWER": {"IN": ["om", "pr", "pr.", "i", "hver", "per"]}}
    return {
        "frequency": [
            [{"LOWER": {"IN": ["hver", "hvert"]}}, {**_NUMBER_OR_WORD, "OP": "?"}, _UNIT],
            [_NUMBER_OR_WORD, {"LOWER": {"REGEX": r"^gange?$"}}, per, _UNIT],
            [{"LOWER": "flere"}, {"LOWER": "gange"}, per, _UNIT],
            [_NUMBER_OR_WORD, {"IS_ALPHA": True, "OP": "?"}, {"LOWER": {"IN": ["om", "pr", "pr.", "per"]}}, _UNIT],
            [{"LOWER": {"IN": list(_ADVERB_RATES)}}],
            [{"LOWER": "alle"}, {"LOWER": {"REGEX": r"^hverdage"}}],
        ],
        "time_limit": [
            [{"LOWER": {"IN": ["inden", "senest"]}}, {"LOWER": "for", "OP": "?"},
             {"LOWER": {"IN": ["de", "den"]}, "OP": "?"}, {"LOWER": {"REGEX": r"^første$"}, "OP": "?"},
             _NUMBER_OR_WORD, _UNIT],
            [{"LOWER": {"IN": ["de", "den"]}}, {"LOWER": "første"}, _NUMBER, _UNIT],
        ],
        "duration": [
            [{"LOWER": {"IN": ["mindst", "minimum", "min.", "højst", "max", "max."]}, "OP": "?"}, _NUMBER,
             {"LOWER": {"REGEX": r"^(minut|time)\w*$"}}],
        ],
        "share": [
            [_NUMBER, {"LOWER": {"IN": ["pct", "pct.", "%", "procent"]}}],
            [{"LOWER": {"IN": ["alle", "samtlige", "nogle", "enkelte", "ingen", "ofte", "sjældent"]}}],
            [{"LOWER": "de"}, {"LOWER": "fleste"}],
            [{"LOWER": {"IN": ["hver", "hvert"]}}, {"IS_ALPHA": True}],
        ],
    }  # fmt: skip


@cache
def _nlp():
    return spacy.blank("da")


@cache
def _matchers() -> tuple[Matcher, Matcher]:
    nlp = _nlp()
    quantities = Matcher(nlp.vocab)
    for kind, patterns in _patterns().items():
        quantities.add(kind, patterns)
    actors = Matcher(nlp.vocab)
    for actor, pattern in _ACTOR_PATTERNS.items():
        actors.add(actor, [pattern])
    return quantities, actors


@dataclass(frozen=True)
class Quantity:
    """One measurable statement, normalised: frequency in events per week, time limit in hours, duration in
    minutes, share as a fraction. `at_least` marks "mindst"/"minimum"; `text` is the words as written."""

    kind: QuantityKind
    value: float
    text: str
    at_least: bool = False
    hedged: bool = False  # "ofte hyppigere", "som regel": the page claims more than it pins down


@dataclass(frozen=True)
class Requirement:
    """What a criterion asks: its core text, who it concerns, its content words and its measurable parts."""

    text: str
    actors: tuple[str, ...]
    practice: tuple[str, ...]
    quantities: tuple[Quantity, ...]

    @property
    def measurable(self) -> tuple[Quantity, ...]:
        """The parts a page can meet or miss: frequency, time limit, duration (a share is implied: nearly all)."""
        return tuple(q for q in self.quantities if q.kind != "share")


@dataclass(frozen=True)
class Comparison:
    """A criterion's requirement against what the page states, in words an analyst can check."""

    outcome: Outcome
    basis: str
    sentence: str = ""


def _unit_of(word: str) -> str | None:
    word = word.lower()
    return next((stem for stem in _UNIT_STEMS if word.startswith(stem)), None)


def _number_of(word: str) -> float | None:
    word = word.lower().rstrip(".")
    if word in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[word])
    try:
        return float(word.replace(",", "."))
    except ValueError:
        return None


def _quantity(kind: str, span: Span) -> Quantity | None:
    words = [t.text for t in span]
    lower = [w.lower() for w in words]
    numbers = [n for n in (_number_of(w) for w in words) if n is not None]
    unit = next((u for u in (_unit_of(w) for w in reversed(words)) if u), None)
    at_least = bool({"mindst", "minimum", "min."} & set(lower)) or lower[:1] == ["hver"]
    if kind == "frequency":
        if lower[0] in _ADVERB_RATES:
            return Quantity("frequency", _ADVERB_RATES[lower[0]], span.text, at_least)
        if lower[:2] == ["alle", "hverdage"]:
            return Quantity("frequency", 5.0, span.text, True)
        if unit is None or unit not in _WEEKS_PER_UNIT:
            return None
        weeks = _WEEKS_PER_UNIT[unit]
        if lower[0] in ("hver", "hvert"):  # every n-th unit
            return Quantity("frequency", 1 / ((numbers[0] if numbers else 1.0) * weeks), span.text, True)
        times = 2.0 if lower[0] == "flere" else (numbers[0] if numbers else 1.0)
        return Quantity("frequency", times / weeks, span.text, at_least)
    if kind == "time_limit":
        if unit is None or unit not in _HOURS_PER_UNIT or not numbers:
            return None
        return Quantity("time_limit", numbers[-1] * _HOURS_PER_UNIT[unit], span.text)
    if kind == "duration":
        if unit is None or unit not in _MINUTES_PER_UNIT or not numbers:
            return None
        return Quantity("duration", numbers[-1] * _MINUTES_PER_UNIT[unit], span.text, at_least)
    if kind == "share":
        if numbers and lower[-1].rstrip(".") in ("pct", "%", "procent"):
            return Quantity("share", min(numbers[0] / 100, 1.0), span.text)
        key = " ".join(lower) if lower[:2] == ["de", "fleste"] else lower[0]
        if key in ("hver", "hvert") and _unit_of(lower[-1]):
            return None  # "hver uge" is a frequency, not a share
        return Quantity("share", _SHARE_WORDS[key], span.text) if key in _SHARE_WORDS else None
    return None


def _doc(text: str) -> Doc:
    return _nlp()(text)


def extract_quantities(text: str) -> list[Quantity]:
    """Every frequency, time limit, duration and share stated in a text, in text order."""
    doc = _doc(text)
    quantities_matcher, _ = _matchers()
    matches = [Span(doc, start, end, label=label) for label, start, end in quantities_matcher(doc)]
    # The longest match wins ("inden for 24 timer" is a time limit, not a duration of 24 hours).
    spans = sorted(filter_spans(matches), key=lambda s: s.start)
    hedged = bool(
        re.search(r"\bofte\s+(?:hyppigere|mere)\b|\bsom\s+regel\b|\bi\s+udgangspunktet\b", text, re.I)
    )
    found = []
    for span in spans:
        quantity = _quantity(doc.vocab.strings[span.label], span)
        if quantity is not None:
            found.append(
                Quantity(quantity.kind, quantity.value, quantity.text, quantity.at_least, hedged)
                if hedged and quantity.kind == "frequency"
                else quantity
            )
    return found


def actors_in(text: str) -> tuple[str, ...]:
    """The roles a text names (jobkonsulent, primær kontaktperson, borgere, ...), in text order, once each."""
    doc = _doc(text)
    _, actors_matcher = _matchers()
    spans = filter_spans([Span(doc, s, e, label=label) for label, s, e in actors_matcher(doc)])
    return tuple(dict.fromkeys(doc.vocab.strings[s.label] for s in sorted(spans, key=lambda s: s.start)))


_STOP = frozenset(
    [
        "at",
        "af",
        "alle",
        "andre",
        "at",
        "de",
        "dem",
        "den",
        "der",
        "det",
        "disse",
        "du",
        "eller",
        "en",
        "end",
        "er",
        "et",
        "for",
        "fra",
        "fx",
        "har",
        "hvor",
        "hvis",
        "i",
        "ikke",
        "ind",
        "inden",
        "jeg",
        "kan",
        "med",
        "men",
        "mod",
        "nu",
        "når",
        "og",
        "om",
        "omkring",
        "op",
        "os",
        "over",
        "på",
        "sig",
        "sin",
        "sine",
        "skal",
        "som",
        "så",
        "til",
        "ud",
        "under",
        "ved",
        "vi",
        "vil",
        "være",
        "været",
        "blive",
        "bliver",
        "deres",
        "dets",
        "hans",
        "hendes",
        "hver",
        "hvert",
        "mindst",
        "gang",
        "gange",
        "samt",
        "via",
        "the",
    ]
)


def content_words(text: str) -> tuple[str, ...]:
    """The text's content words (lower-case, no stop words, at least four letters), once each, in order."""
    words = re.findall(r"[a-zæøå][a-zæøå/-]{3,}", text.lower())
    return tuple(dict.fromkeys(w for w in words if w not in _STOP))


@cache
def requirement_of(core_text: str) -> Requirement:
    """What a criterion (its core text: answer-level wording and test frames removed) requires."""
    return Requirement(
        text=core_text,
        actors=actors_in(core_text),
        practice=content_words(core_text),
        quantities=tuple(extract_quantities(core_text)),
    )


def _describe(quantity: Quantity) -> str:
    """A short English reading of a normalised quantity, for the basis line."""
    if quantity.kind == "frequency":
        per_week = quantity.value
        if per_week >= 1:
            text = "weekly" if abs(per_week - 1) < 0.05 else f"{per_week:g}× a week"
        elif per_week >= 0.4:
            weeks = 1 / per_week
            text = f"every {weeks:.0f} weeks" if weeks >= 1.5 else "weekly"
        else:
            text = "monthly" if abs(per_week - 12 / 52) < 0.03 else f"{per_week * 52 / 12:.1f}× a month"
        text = ("at least " if quantity.at_least and not text.startswith("every") else "") + text
        return text + (", often more" if quantity.hedged else "")
    if quantity.kind == "time_limit":
        hours = quantity.value
        return f"within {hours:g} hours" if hours < 48 else f"within {hours / 24:g} days"
    if quantity.kind == "duration":
        return f"{'at least ' if quantity.at_least else ''}{quantity.value:g} minutes"
    return f"share {quantity.value:.0%}"


def _band(asked: Quantity, stated: Quantity) -> Outcome:
    """meets / partly / falls short for one measurable part (larger is better except for time limits). A
    hedged statement ("mindst en om måneden og ofte hyppigere") claims more than its number: one band up, at
    most to partly."""
    if asked.kind == "time_limit":
        ratio = asked.value / stated.value if stated.value else 1.0
    else:
        ratio = stated.value / asked.value if asked.value else 1.0
    if ratio >= 0.999:
        return "meets"
    return "partly" if ratio >= PARTLY_FACTOR or stated.hedged else "falls short"


_EVERYWHERE = {"kommun", "jobcen", "borger"}  # words on every page of this domain: no sign of a topic


def _about_the_practice(sentence: str, requirement: Requirement) -> bool:
    """The sentence shares a content word (first six letters) with the requirement beyond the roles it names,
    so that a frequency stated about some other activity is never read as this one's."""
    roles = {w[:6] for actor in requirement.actors for w in actor.split()} | _EVERYWHERE
    practice = {w[:6] for w in requirement.practice} - roles
    return bool(practice & {w[:6] for w in content_words(sentence)})


def _negated(sentence: str, requirement: Requirement) -> bool:
    """The sentence denies the practice: a negation within three words before a word of the requirement."""
    words = re.findall(r"[a-zæøå]+", sentence.lower())
    practice = {w[:6] for w in requirement.practice}
    for i, word in enumerate(words):
        if word in _NEGATIONS and any(w[:6] in practice for w in words[i + 1 : i + 5]):
            return True
    return False


def compare(requirement: Requirement, evidence: Sequence[str], stated: bool) -> Comparison:
    """Compare a criterion's requirement with the page's best evidence sentences (best first).

    - not stated: the page does not address the criterion (`stated` is the stated model's decision);
    - for each measurable part the criterion asks (frequency, time limit, duration), the first evidence sentence
      that states the same kind of part is compared with it; a part the page leaves out counts as partly;
    - a practice with no measurable part meets when stated, unless its best sentence denies it (falls short)
      or limits it to some cases (partly).
    The outcome is the worst of the parts."""
    asked_words = " · ".join(_describe(q) for q in requirement.measurable) or "the practice"
    if not stated:
        return Comparison("not stated", f"asks: {asked_words} · page: not stated · not stated")
    best = evidence[0] if evidence else ""
    if best and _negated(best, requirement):
        return Comparison("falls short", f"asks: {asked_words} · page: denies it · falls short", best)
    parts: list[tuple[str, str, str]] = []
    sentence = best
    for asked in requirement.measurable:
        found = next(
            (
                (s, q)
                for s in evidence
                if _about_the_practice(s, requirement)
                for q in extract_quantities(s)
                if q.kind == asked.kind
            ),
            None,
        )
        if found is None:
            parts.append((_describe(asked), NO_FIGURE, "partly"))
            continue
        sentence, stated_quantity = found
        parts.append((_describe(asked), _describe(stated_quantity), _band(asked, stated_quantity)))
    if not parts:
        shares = [q for q in extract_quantities(best) if q.kind == "share"]
        if shares and min(q.value for q in shares) < PARTLY_FACTOR:
            share = min(shares, key=lambda q: q.value)
            return Comparison("partly", f"asks: the practice · page: {share.text} · partly", best)
        return Comparison("meets", "asks: the practice · page: describes it · meets", best)
    outcome = max((p[2] for p in parts), key=OUTCOMES.index)
    basis = " · ".join(f"asks: {a} · page: {s}" for a, s, _ in parts) + f" · {outcome}"
    return Comparison(outcome, basis, sentence)  # type: ignore[arg-type]
