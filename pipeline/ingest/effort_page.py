"""Parse an effort page ("indsats") into its header, five sections and self-assessment tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.ingest.wording import answer_level_in_wording
from pipeline.records import ANSWER_ORDER, AnswerRecord, Sections, SelfAssessment, TestKind

SECTION_HEADINGS: dict[str, str] = {
    "kommunens beskrivelse af indsatsen": "description",
    "erfaringer og resultater": "experiences",
    "krav til organisering": "organisation",
    "gode råd": "advice",
    "ledelsens anbefaling": "recommendation",
}
TEST_TABS: dict[str, TestKind] = {"evidenstest": "evidence_test", "god praksis test": "good_practice_test"}
PAGE_FURNITURE = frozenset(
    {"se alle svar", "se færre svar", "dokumenter", "gå til hovedindhold", "læs mere", "til toppen"}
)
_TEST_HEADER = re.compile(r"^(evidenstest|god praksis test)\b\s*(?:vedr\.?|for|:)\s*(.*)$", re.IGNORECASE)
_SCORE = re.compile(r"^[0-5](?:[,.]\d)?$")
_BULLET = re.compile(r"^(?:[•·▪◦●*\-–]|o(?=\s))\s*(.*)$")
_ANSWER = re.compile(r"^([^\W\d_]+)\s*:\s*(.*)$")


class PageError(ValueError):
    """The page cannot be ingested; the message names the line and what was expected."""


def looks_like_effort_page(lines: list[str]) -> bool:
    """The description heading or a test heading; "Gode råd" alone also opens parts of theme pages."""
    keys = {_key(line) for line in lines}
    return "kommunens beskrivelse af indsatsen" in keys or any(_TEST_HEADER.match(k) for k in keys)


def parse_score(text: str) -> float:
    return float(text.replace(",", "."))


def _key(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip()).lower()


def _normalise_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class ParsedEffortPage:
    """What the page says, before ids and the catalogue are attached."""

    municipality: str | None = None
    title: str = ""
    headline_score: float | None = None
    target_groups: list[str] = field(default_factory=list)
    sections: Sections = field(default_factory=Sections)
    tests: list[SelfAssessment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _EffortPageParser:
    def __init__(self, lines: list[str]):
        self.lines = lines
        self.page = ParsedEffortPage()
        self.section_lines: dict[str, list[str]] = {}
        self.pending_score: float | None = None
        self.pending_kind: TestKind | None = None

    def _next_nonblank(self, index: int) -> str:
        for line in self.lines[index + 1 :]:
            if line.strip():
                return _key(line)
        return ""

    def _is_score_line(self, index: int) -> bool:
        return bool(_SCORE.match(self.lines[index].strip())) and self._next_nonblank(index) in TEST_TABS

    def parse(self) -> ParsedEffortPage:
        state, section = "header", ""
        for index, raw in enumerate(self.lines):
            line, key, number = raw.strip(), _key(raw), index + 1
            if not line or key in PAGE_FURNITURE:
                if not line and state == "sections":
                    self.section_lines[section].append("")  # keep paragraph breaks
                continue
            if key in SECTION_HEADINGS and state != "tests":
                state, section = "sections", SECTION_HEADINGS[key]
                self.section_lines.setdefault(section, [])
            elif self._is_score_line(index) and state != "header":
                state, self.pending_score = "tests", parse_score(line)
            elif key in TEST_TABS and state != "header":
                state, self.pending_kind = "tests", TEST_TABS[key]
            elif (header := _TEST_HEADER.match(line)) and state != "header":
                state = "tests"
                self._start_test(TEST_TABS[_key(header.group(1))], header.group(2).strip() or None)
            elif state == "header":
                self._header_line(index, line)
            elif state == "sections":
                self.section_lines[section].append(line)
            else:
                self._test_line(number, line)
        self.page.sections = Sections(
            **{
                name: re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
                for name, lines in self.section_lines.items()
            }
        )
        if not self.page.tests:
            self.page.warnings.append("no self-assessment test found on the page")
        return self.page

    def _header_line(self, index: int, line: str) -> None:
        page = self.page
        if self._is_score_line(index):
            if page.headline_score is None:
                page.headline_score = parse_score(line)
        elif _key(line) in TEST_TABS:
            return  # the label under the headline score
        elif page.municipality is None:
            page.municipality = line
        elif bullet := _BULLET.match(line):
            page.target_groups.append(_normalise_space(bullet.group(1)))
        elif not page.title:
            page.title = _normalise_space(line)
        else:
            page.warnings.append(f"line {index + 1}: unexpected header text {line[:60]!r} ignored")

    def _start_test(self, kind: TestKind, target_group: str | None) -> None:
        score = self.pending_score if self.pending_kind in (kind, None) else None
        self.page.tests.append(SelfAssessment(kind=kind, target_group=target_group, score=score))
        self.pending_score, self.pending_kind = None, None

    def _test_line(self, number: int, line: str) -> None:
        bullet = _BULLET.match(line)
        if not bullet:
            self.page.warnings.append(f"line {number}: unexpected text in the tests {line[:60]!r} ignored")
            return
        match = _ANSWER.match(bullet.group(1))
        label = match.group(1) if match else ""
        if label not in ANSWER_ORDER:
            found = f"unknown answer label {label!r}" if label else f"an answer without a label {line[:60]!r}"
            raise PageError(f"line {number}: {found} (expected Ja, Delvist or Nej)")
        if not self.page.tests:
            kind = self.pending_kind or "evidence_test"
            self.page.warnings.append(f"line {number}: answers before any test heading, read as {kind}")
            self._start_test(kind, None)
        item = _normalise_space(match.group(2))
        level = answer_level_in_wording(item)
        if level is not None and level != label:
            self.page.warnings.append(
                f"line {number}: answer {label} disagrees with the item's own wording, which reads as {level}"
            )
        self.page.tests[-1].answers.append(AnswerRecord(item=item, answer=label))


def parse_effort_page(text: str) -> ParsedEffortPage:
    """Parse the normalised text of an effort page; raise PageError where it cannot be ingested."""
    return _EffortPageParser(text.split("\n")).parse()
