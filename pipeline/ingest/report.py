"""Parse the transcript of an evaluation report from a document-download page.

Such a page carries a title, download furniture, then the transcript as numbered pages ("1 Til Styrelsen ...",
"2 INDHOLD ...", ...), then a list of related documents. Only the numbered pages are the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PAGE = re.compile(r"^(\d{1,4})\s+(.*)$")
_SENTENCE_END = (".", "!", "?", ":", '"', "”", "»", ")")
_MIN_PAGES = 3


@dataclass
class ParsedReport:
    title: str
    text: str
    pages: int


def _numbered_pages(lines: list[str]) -> list[str]:
    """The longest run of lines numbered 1, 2, 3, ... (blank lines between them allowed)."""
    best: list[str] = []
    for start, line in enumerate(lines):
        if not (m := _PAGE.match(line.strip())) or m.group(1) != "1":
            continue
        pages, expected = [], 1
        for candidate in lines[start:]:
            candidate = candidate.strip()
            if not candidate:
                continue
            m = _PAGE.match(candidate)
            if not m or int(m.group(1)) != expected:
                break
            pages.append(m.group(2).strip())
            expected += 1
        if len(pages) > len(best):
            best = pages
    return best


def looks_like_report(lines: list[str]) -> bool:
    return len(_numbered_pages(lines)) >= _MIN_PAGES


def parse_report(text: str) -> ParsedReport:
    lines = text.split("\n")
    pages = _numbered_pages(lines)
    title = next(line.strip() for line in lines if line.strip())
    joined = ""
    for number, page in enumerate(pages, start=1):
        page = re.sub(rf"(?:^|\s+){number}$", "", page)  # the page number again as a footer
        if not page:
            continue
        separator = "\n\n" if joined.endswith(_SENTENCE_END) else " "
        joined = f"{joined}{separator}{page}" if joined else page
    return ParsedReport(title=title, text=joined, pages=len(pages))
