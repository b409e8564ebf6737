"""The hand-checked support set (labels/support.csv) and how well the flags agree with it.

For each labelled item a reader of this project recorded whether the page's text supports the claimed answer:
`supported`, `over-claimed` (the text states less than the claim, or nothing, for a Ja or Delvist),
`understated` (the text states more than the claim) or `unclear`, with a one-line reason. It is one reader's
judgement of two pages, not ground truth; the flags are measured against it.
`python -m pipeline.outputs.support [FLAGS_CSV] [SUPPORT_CSV]` prints the figures.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.defaults import DEFAULT_LABELS, DEFAULT_REPORTS
from pipeline.errors import EXIT_FAULT, EvidensError, one_line
from pipeline.records import Flag
from pipeline.tables import read_csv_lines

SUPPORT_FILE = DEFAULT_LABELS / "support.csv"
SUPPORT_VALUES = ("supported", "over-claimed", "understated", "unclear")
WRONG_CLAIM = ("over-claimed", "understated")  # what a flag should point at
ITEM_REASONS = ("unsupported_claim", "model_disagrees", "wording_mismatch", "cross_test_contradiction")


def load_support(path: Path = SUPPORT_FILE) -> dict[tuple[str, str, str], str]:
    """(effort_id, criterion_id, test_kind) -> support value, every row checked: an EvidensError names the file
    and line (as the file counts them, notes with newlines included) of a value not in SUPPORT_VALUES, an empty
    key, or a second row on one item that says otherwise."""
    redo = "correct that line of the hand-kept support set"
    support: dict[tuple[str, str, str], str] = {}
    first_line: dict[tuple[str, str, str], int] = {}
    for line, row in read_csv_lines(path, ("effort_id", "criterion_id", "test_kind", "support"), redo=redo):
        key = (row["effort_id"], row["criterion_id"], row["test_kind"])
        value = row["support"]
        problem = (
            "an empty effort_id, criterion_id or test_kind"
            if not all(part.strip() for part in key)
            else f"support {value!r} is not one of {', '.join(SUPPORT_VALUES)}"
            if value not in SUPPORT_VALUES
            else f"says {value!r} where line {first_line[key]} says {support[key]!r} of the same item"
            if key in support and support[key] != value
            else ""
        )
        if problem:
            raise EvidensError(f"{path}: line {line}: {problem}; {redo}")
        support[key] = value
        first_line.setdefault(key, line)
    return support


def flag_quality(flags: Sequence[Flag], support: dict[tuple[str, str, str], str]) -> dict[str, float]:
    """Precision (flagged items the reader finds over-claimed or understated) and recall (of those items, and
    of the over-claimed ones alone), over the items of the support set; score flags are not item flags."""
    flagged = {(f.effort_id, f.criterion_id, f.test_kind) for f in flags if f.reason in ITEM_REASONS} & set(
        support
    )
    wrong = {key for key, value in support.items() if value in WRONG_CLAIM}
    over = {key for key, value in support.items() if value == "over-claimed"}
    return {
        "flagged_items": len(flagged),
        "precision": len(flagged & wrong) / len(flagged) if flagged else float("nan"),
        "recall": len(flagged & wrong) / len(wrong) if wrong else float("nan"),
        "recall_over_claimed": len(flagged & over) / len(over) if over else float("nan"),
        "wrong_claims": len(wrong),
    }


def main(argv: list[str]) -> None:
    """Print how well the flags agree with the support set; any error is one line on stderr (exit code 3)."""
    from pipeline.corpus import read_flags

    flags_path = Path(argv[0]) if argv else DEFAULT_REPORTS / "flags.csv"
    try:
        support = load_support(Path(argv[1]) if len(argv) > 1 else SUPPORT_FILE)
        quality = flag_quality(read_flags(flags_path), support)
    except Exception as error:  # a script's entry point: one line, as the evidens command gives
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_FAULT)
    print(f"support set: {len(support)} items, {quality['wrong_claims']} over-claimed or understated")
    print(
        f"flags ({flags_path}): {quality['flagged_items']} items flagged; precision {quality['precision']:.2f}, "
        f"recall {quality['recall']:.2f} (over-claimed alone: {quality['recall_over_claimed']:.2f})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
