"""What changed in the flags since the previous run: new, changed and resolved flags.

A flag's identity is its effort, criterion, test kind and reason. The effort is named by its input file and the
name part of its effort id (`taarnby-c90eea4e17f9` -> `taarnby`), not by the whole id: the id's hash follows the
page's content, so with it an edited page could never have a changed flag, only resolved and new ones. Two flags
of one identity in one run (two target groups of one test) are told apart by their order.

- new: flagged now, not in the previous run;
- changed: flagged in both, but the claimed answer, the predicted answer or the reason in words (explanation,
  basis) differs; the confidence alone does not count, it moves with every retrained model;
- resolved: flagged in the previous run, not now (the flags of pages that left the input included).

A first run has no previous run: every flag is new."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel

from pipeline.ingest import effort_name as name_of
from pipeline.records import Flag

CHANGES_FORMAT = 1
#: The fields whose change makes a flag "changed" (the identity's fields cannot change).
COMPARED_FIELDS: tuple[str, ...] = ("self_assessed", "predicted", "explanation", "basis")


class FlagState(BaseModel):
    """A flag as one run raised it, with the input file it came from."""

    source: str
    effort_id: str
    criterion_id: str
    test_kind: str
    item: str
    reason: str
    self_assessed: str
    predicted: str
    confidence: float
    basis: str = ""
    explanation: str = ""

    @classmethod
    def of(cls, flag: Flag, source: str) -> FlagState:
        return cls(source=source, **flag.model_dump(exclude={"evidence"}))

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        effort_name = name_of(self.effort_id)
        return (self.source, effort_name, self.criterion_id, self.test_kind, self.reason)


class RunInfo(BaseModel):
    """One batch run: `run_id` names what its outputs were built from (the batch's plan digest), `built_at` when."""

    run_id: str
    built_at: str
    model: str


class RunFlags(BaseModel):
    """A run and the flags it raised: what the next run compares with."""

    run: RunInfo
    flags: list[FlagState]


class ChangedFlag(BaseModel):
    before: FlagState
    after: FlagState
    fields: list[str]  # which of COMPARED_FIELDS differ


class FlagChanges(BaseModel):
    """changes.json: the flags of this run against those of the previous one."""

    format: int = CHANGES_FORMAT
    previous_run: RunInfo | None
    current_run: RunInfo
    counts: dict[str, int]  # new, changed, resolved, unchanged
    new: list[FlagState]
    changed: list[ChangedFlag]
    resolved: list[FlagState]


def _by_identity(flags: Iterable[FlagState]) -> dict[tuple, FlagState]:
    seen: Counter[tuple] = Counter()
    keyed = {}
    for flag in flags:
        keyed[(*flag.identity, seen[flag.identity])] = flag
        seen[flag.identity] += 1
    return keyed


def flag_changes(previous: RunFlags | None, current: RunFlags) -> FlagChanges:
    """The current run's flags against the previous run's (None: a first run, every flag new); the lists in the
    current flags' order, the resolved ones in the previous run's."""
    before, now = _by_identity(previous.flags if previous else ()), _by_identity(current.flags)
    new, changed, unchanged = [], [], 0
    for key, flag in now.items():
        old = before.get(key)
        if old is None:
            new.append(flag)
            continue
        differing = [name for name in COMPARED_FIELDS if getattr(old, name) != getattr(flag, name)]
        if differing:
            changed.append(ChangedFlag(before=old, after=flag, fields=differing))
        else:
            unchanged += 1
    resolved = [flag for key, flag in before.items() if key not in now]
    counts = {"new": len(new), "changed": len(changed), "resolved": len(resolved), "unchanged": unchanged}
    return FlagChanges(
        previous_run=previous.run if previous else None,
        current_run=current.run,
        counts=counts,
        new=new,
        changed=changed,
        resolved=resolved,
    )
