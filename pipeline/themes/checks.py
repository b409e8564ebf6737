"""The label rules, run on every fit: each is a named check, its failures counted per theme (themes_info.csv,
column label_checks) and over the fit (themes.json, MLflow metrics check_<name>).

- phrase_length: a label is one or two phrases of 2-4 words.
- template: no label phrase is frequent across themes (model.PhraseTable.is_template): "kommune arbejder".
- acronym_fragment: no name is shown lower-cased ("cubb" where the source writes CUBB).
- unknown_word: every label word is Danish (vocabulary.is_danish_word) or a name as the source writes it.
- repeats_neighbour: the second phrase shares no word (lemma or stem, vocabulary.same_word) with the first ("indeholder jobsøgningsaktiviteter ·
  forløbet indeholder").
- shared_label: no label phrase is another theme's label phrase too.
- english_keyword: no keyword word is English only ("apart", "inclusive").
- boilerplate: no passage in a theme is front matter, a table of contents or a caption (model.is_boilerplate).

A researcher's pinned label (labels/theme_pins.csv) is the researcher's: the label checks skip it; the keyword and
passage checks still run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise

from pipeline.records import Theme
from pipeline.textnorm import lemma
from pipeline.themes.vocabulary import is_danish_word, is_english_only, share_a_word

SEPARATOR = " · "
LABEL_CHECKS = (
    "phrase_length",
    "template",
    "acronym_fragment",
    "unknown_word",
    "repeats_neighbour",
    "shared_label",
    "english_keyword",
    "boilerplate",
)


def label_phrases(label: str) -> list[str]:
    return [p.strip() for p in label.split(SEPARATOR) if p.strip()]


def _lemmas(phrase: str) -> set[str]:
    return {lemma(w.lower()) for w in phrase.split()}


def check_themes(
    themes: Sequence[Theme],
    names: dict[str, str],
    is_template: Callable[[str], bool],
    boilerplate_passages: dict[int, int],
    pinned: frozenset[int] = frozenset(),
) -> dict[int, list[str]]:
    """Each theme's failed checks (names from LABEL_CHECKS, in that order; empty when it passes all).
    `names`: lower-case word -> the source's form; `is_template`: whether a phrase is frequent across themes;
    `boilerplate_passages`: per theme, its passages that are boilerplate."""
    phrase_owners = Counter(
        p.lower() for t in themes if t.theme_id not in pinned for p in set(label_phrases(t.label))
    )
    failures = {}
    for theme in themes:
        phrases = label_phrases(theme.label)
        own = theme.theme_id not in pinned
        words = [w for p in phrases for w in p.split()]
        failed = {
            "phrase_length": own
            and not (1 <= len(phrases) <= 2 and all(2 <= len(p.split()) <= 4 for p in phrases)),
            "template": own and any(is_template(p) for p in phrases),
            "acronym_fragment": own and any(w.lower() in names and w != names[w.lower()] for w in words),
            "unknown_word": own
            and any(not is_danish_word(w.lower()) and names.get(w.lower()) != w for w in words),
            "repeats_neighbour": own and any(share_a_word(a, b) for a, b in pairwise(phrases)),
            "shared_label": own and any(phrase_owners[p.lower()] > 1 for p in phrases),
            "english_keyword": any(
                is_english_only(w.lower())
                for k in [*([theme.label] if own else []), *theme.keywords]
                for w in k.split()
            ),
            "boilerplate": boilerplate_passages.get(theme.theme_id, 0) > 0,
        }
        failures[theme.theme_id] = [name for name in LABEL_CHECKS if failed[name]]
    return failures


def check_counts(failures: dict[int, list[str]]) -> dict[str, int]:
    """Per check, the themes that fail it (0 for every check: the target)."""
    return {name: sum(name in f for f in failures.values()) for name in LABEL_CHECKS}
