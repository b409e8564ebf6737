"""`Prior`: how likely each answer is before the page is read. One type, parsed once where it enters (an
option, a model parameter, a pyfunc parameter) and passed on as it is."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.records import ANSWER_ORDER

BALANCED_TEXT = "balanced"


DIGITS = 12  # a weight's precision: its text form (shortest repr) then parses back to the same Prior
EXAMPLE = "e.g. Ja=0.6,Delvist=0.3,Nej=0.1"


@dataclass(frozen=True)
class Prior:
    """A normalised distribution over ANSWER_ORDER, each weight rounded to DIGITS decimals. Its text form,
    `str(prior)`, parses back to an equal Prior: "balanced" (uniform) or "Nej=0.5,Delvist=0.3,Ja=0.2"."""

    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        weights = tuple(float(w) for w in self.weights)
        if (
            len(weights) != len(ANSWER_ORDER)
            or not all(0 <= w < math.inf for w in weights)
            or not any(weights)
        ):
            raise ValueError(
                f"prior: give Ja, Delvist and Nej, each a finite number >= 0, not all 0, {EXAMPLE}"
            )
        total = sum(weights)
        if abs(total - 1) > 10 ** (
            3 - DIGITS
        ):  # weights that sum to 1 but for rounding (a text form) are kept
            weights = tuple(w / total for w in weights)
        object.__setattr__(self, "weights", tuple(round(w, DIGITS) for w in weights))

    @classmethod
    def balanced(cls) -> Prior:
        return cls((1.0,) * len(ANSWER_ORDER))

    @classmethod
    def parse(cls, text: str | Prior) -> Prior:
        """ "Ja=0.6,Delvist=0.3,Nej=0.1" (any order, any positive scale) or "balanced" -> a Prior; a Prior as it
        is. Raises ValueError naming what is wrong."""
        if isinstance(text, Prior):
            return text
        if text.strip().lower() == BALANCED_TEXT:
            return cls.balanced()
        given: dict[str, float] = {}
        for part in text.split(","):
            label, _, value = part.partition("=")
            label = label.strip().capitalize()
            if label not in ANSWER_ORDER:
                raise ValueError(f"prior: unknown answer {label!r} (expected Ja, Delvist or Nej)")
            if label in given:
                raise ValueError(f"prior: {label} is given twice")
            try:
                given[label] = float(value)
            except ValueError:
                raise ValueError(f"prior: {part.strip()!r} is not ANSWER=NUMBER") from None
        if missing := [label for label in ANSWER_ORDER if label not in given]:
            raise ValueError(f"prior: {' and '.join(missing)} missing; give all three, {EXAMPLE}")
        return cls(tuple(given[label] for label in ANSWER_ORDER))

    def __getitem__(self, answer: str) -> float:
        return self.weights[ANSWER_ORDER.index(answer)]

    def __str__(self) -> str:
        if self == Prior.balanced():
            return BALANCED_TEXT
        return ",".join(
            f"{label}={weight!r}" for label, weight in zip(ANSWER_ORDER, self.weights, strict=True)
        )
