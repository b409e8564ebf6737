"""`Prior`: how likely each answer is before the page is read. One type, parsed once where it enters (an
option, a model parameter, a pyfunc parameter) and passed on as it is."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.records import ANSWER_ORDER

BALANCED_TEXT = "balanced"


@dataclass(frozen=True)
class Prior:
    """A normalised distribution over ANSWER_ORDER. Its text form, `str(prior)`, parses back to it:
    "balanced" (uniform) or "Nej=0.5,Delvist=0.3,Ja=0.2"."""

    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.weights) != len(ANSWER_ORDER) or not all(0 <= w < math.inf for w in self.weights):
            raise ValueError(f"prior: {len(ANSWER_ORDER)} weights >= 0 expected, got {self.weights}")
        total = sum(self.weights)
        if total <= 0:
            raise ValueError("prior: the weights sum to 0")
        object.__setattr__(self, "weights", tuple(w / total for w in self.weights))

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
            try:
                given[label] = float(value)
            except ValueError:
                raise ValueError(f"prior: {part.strip()!r} is not ANSWER=NUMBER") from None
        if (
            set(given) != set(ANSWER_ORDER)
            or not all(0 <= v < math.inf for v in given.values())
            or sum(given.values()) <= 0
        ):
            raise ValueError(
                "prior: give Ja, Delvist and Nej, each a finite number >= 0, e.g. Ja=0.6,Delvist=0.3,Nej=0.1"
            )
        return cls(tuple(given[label] for label in ANSWER_ORDER))

    def __getitem__(self, answer: str) -> float:
        return self.weights[ANSWER_ORDER.index(answer)]

    def __str__(self) -> str:
        if self == Prior.balanced():
            return BALANCED_TEXT
        return ",".join(
            f"{label}={weight:g}" for label, weight in zip(ANSWER_ORDER, self.weights, strict=True)
        )
