"""Curation that survives a re-fit: labels/theme_pins.csv.

A pin names a theme by a few of its passages (anchors: sentence ids, the passages nearest the theme's centre
when the pin was made) and gives it a researcher's label. Two pins with the same label merge their themes. A
re-fit finds each pin's theme again (the theme that holds most of its anchors, at least half of them), merges
and renames, and says which pins no longer match (their anchors gone, or scattered over themes).

`python -m pipeline.themes.pins rename THEME_ID --label "label" [--out reports] [--pins labels/theme_pins.csv]` and
`python -m pipeline.themes.pins merge THEME_ID THEME_ID ... --label "label"` add pins for themes of the last
`evidens themes` in OUT; the file can be edited by hand (columns: label, sentence_ids, fitted_label, note).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.defaults import DEFAULT_LABELS, DEFAULT_REPORTS

PINS_FILE = DEFAULT_LABELS / "theme_pins.csv"
PIN_COLUMNS = ("label", "sentence_ids", "fitted_label", "note")
ANCHORS = 5  # passages that name a theme in a pin


@dataclass(frozen=True)
class Pin:
    label: str
    sentence_ids: tuple[str, ...]
    fitted_label: str = ""
    note: str = ""


@dataclass
class PinStatus:
    pin: Pin
    theme_id: int | None  # the theme it names now (after merges and renumbering); None: no longer matches
    status: str  # "kept", "merged", "no longer matches: ..."

    @property
    def matched(self) -> bool:
        return self.theme_id is not None


@dataclass
class PinReport:
    path: Path
    statuses: list[PinStatus] = field(default_factory=list)

    @property
    def unmatched(self) -> list[PinStatus]:
        return [s for s in self.statuses if not s.matched]

    def rows(self) -> list[dict]:
        return [
            {
                "label": s.pin.label,
                "theme_id": "" if s.theme_id is None else s.theme_id,
                "status": s.status,
                "fitted_label": s.pin.fitted_label,
                "sentence_ids": " ".join(s.pin.sentence_ids),
            }
            for s in self.statuses
        ]


def read_pins(path: Path) -> list[Pin]:
    from pipeline.tables import read_csv

    if not path.exists():
        return []
    return [
        Pin(row["label"].strip(), tuple(row["sentence_ids"].split()), row["fitted_label"], row["note"])
        for row in read_csv(path, PIN_COLUMNS)
        if row["label"].strip() and row["sentence_ids"].strip()
    ]


def write_pins(path: Path, pins: Sequence[Pin]) -> None:
    from pipeline.tables import write_table

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "label": p.label,
            "sentence_ids": " ".join(p.sentence_ids),
            "fitted_label": p.fitted_label,
            "note": p.note,
        }
        for p in pins
    ]
    write_table(path, rows, list(PIN_COLUMNS))


def _theme_of(pin: Pin, where: dict[str, int]) -> tuple[int | None, str]:
    present = [where[s] for s in pin.sentence_ids if s in where]
    if not present:
        return None, "no longer matches: none of its passages is in the corpus"
    theme, count = Counter(present).most_common(1)[0]
    if theme < 0 or count * 2 < len(present):
        return None, (
            f"no longer matches: its {len(present)} passages are spread over themes "
            f"{sorted(set(present))}, none holds half"
        )
    return theme, ""


def apply_pins(
    pins: Sequence[Pin], sentence_ids: Sequence[str], labels: np.ndarray, min_size: int, path: Path
) -> tuple[np.ndarray, dict[int, str], PinReport]:
    """The labels with pinned merges done and themes renumbered by size; each pinned theme's label; and what
    became of every pin."""
    from pipeline.themes.model import relabel

    where = {s: int(x) for s, x in zip(sentence_ids, labels, strict=True)}
    found = [(pin, *_theme_of(pin, where)) for pin in pins]
    owner: dict[int, str] = {}  # theme (before merges) -> the pinned label that claimed it
    reasons: list[str] = []
    for pin, theme, reason in found:
        if theme is not None and owner.setdefault(theme, pin.label) != pin.label:
            reason = f"no longer matches: its theme is pinned to {owner[theme]!r} already"
        reasons.append(reason)
    merged = labels.copy()
    groups: dict[str, list[int]] = {}
    for theme, label in owner.items():
        groups.setdefault(label, []).append(theme)
    for themes in groups.values():
        merged[np.isin(labels, themes)] = min(themes)
    renumbered = relabel(merged, min_size)
    new_id = {int(old): int(new) for old, new in zip(merged, renumbered, strict=True)}
    pinned = {new_id[min(themes)]: label for label, themes in groups.items()}
    statuses = []
    for (pin, theme, _), reason in zip(found, reasons, strict=True):
        if reason:
            statuses.append(PinStatus(pin, None, reason))
            continue
        assert theme is not None
        kind = "merged" if len(groups[pin.label]) > 1 else "kept"
        statuses.append(PinStatus(pin, new_id[min(groups[pin.label])], kind))
    return renumbered, pinned, PinReport(path, statuses)


# -- making pins from the last fit ---------------------------------------------------------------------------
def pins_for(out: Path, theme_ids: Sequence[int], label: str, note: str = "") -> list[Pin]:
    """Pins giving `label` to the themes `theme_ids` of the fit in `out` (its themes_model.json)."""
    from pipeline.errors import EvidensError
    from pipeline.themes.output import MODEL_FILE

    path = out / MODEL_FILE
    if not path.exists():
        raise EvidensError(f"{path} not found: run `evidens themes --out {out}` first")
    data = json.loads(path.read_text(encoding="utf-8"))
    themes = {t["theme_id"]: t for t in data["themes"]}
    anchors = {int(k): v for k, v in data.get("anchors", {}).items()}
    pins = []
    for theme_id in theme_ids:
        if theme_id not in themes or theme_id not in anchors:
            raise EvidensError(f"no theme {theme_id} in {path}")
        pins.append(Pin(label, tuple(anchors[theme_id]), themes[theme_id]["label"], note))
    return pins


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("rename", "merge"))
    parser.add_argument("themes", type=int, nargs="+")
    parser.add_argument("--label", required=True, help="the new label")
    parser.add_argument("--out", type=Path, default=DEFAULT_REPORTS)
    parser.add_argument("--pins", type=Path, default=PINS_FILE)
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    label = args.label.strip()
    if args.action == "merge" and len(args.themes) < 2:
        parser.error("merge needs two themes or more")
    if args.action == "rename" and len(args.themes) != 1:
        parser.error("rename takes one theme")
    pins = read_pins(args.pins) + pins_for(args.out, args.themes, label, args.note)
    write_pins(args.pins, pins)
    print(f"{args.pins}: {len(pins)} pins; re-fit with `evidens themes` to apply them")


if __name__ == "__main__":
    main()
