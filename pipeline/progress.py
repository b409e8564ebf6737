"""Progress bars for long steps, one way for every stage: a tqdm bar on stderr when it is a terminal, nothing
otherwise. The command line routes evidens's log lines through `tqdm.write` while a command runs
(`pipeline.cli.entry`), so a status or warning line prints above a bar and never on its line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")


def progress(
    items: Iterable[Item], description: str, unit: str = "it", total: int | None = None
) -> Iterator[Item]:
    """`items`, with a bar while they are consumed (on a terminal); the bar goes when it is done."""
    return iter(tqdm(items, desc=description, unit=unit, total=total, disable=None, leave=False))
