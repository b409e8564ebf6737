"""Split a theme page ("Tema: ...") that describes several municipalities into one part per municipality.

The text dump has lost the page's per-municipality headings, so a part starts at a paragraph whose first
sentence names a new "<Name> Kommune" and runs until the next such paragraph. Where a part's last paragraphs
no longer name its municipality, they may belong to the next part (on the corpus page, København's first
paragraphs about Jobdansk land in Vejle's part); the record then carries a warning saying so. Lexical cohesion
(TextTiling) was tried for those paragraphs and moved more of them wrongly than rightly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.ingest.effort_page import PAGE_FURNITURE
from pipeline.ingest.municipalities import mentions, municipality_named_in
from pipeline.records import Sections

SUBHEADING_SECTIONS = {"gode råd": "advice", "organisering": "organisation", "resultater": "experiences"}
_THEME_TITLE = re.compile(r"^Tema\s*:\s*(.+)$", re.IGNORECASE)
_FOOTER_START = re.compile(r"^(Sidst opdateret|Kontakt)\b", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[•·▪◦●*\-–]|\d+\.)\s")
_FIRST_SENTENCE_CHARS = 120
_UNMENTIONED_RUN_WARNING = 3  # this many trailing paragraphs without the municipality's name get a warning


def looks_like_theme_page(lines: list[str]) -> bool:
    return any(_THEME_TITLE.match(line.strip()) for line in lines)


def is_subheading(paragraph: str) -> bool:
    """A one-line paragraph of at most 10 words with no sentence punctuation at its end."""
    return (
        "\n" not in paragraph
        and len(paragraph.split()) <= 10
        and not paragraph.rstrip().endswith((".", ":", "!", "?", ","))
        and not _BULLET.match(paragraph)
    )


@dataclass
class ThemePart:
    municipality: str
    paragraphs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def sections(self) -> Sections:
        """Sub-headings switch the section: Gode råd, Organisering, Resultater; any other goes to description
        and is kept there as context."""
        collected: dict[str, list[str]] = {}
        current = "description"
        for paragraph in self.paragraphs:
            if is_subheading(paragraph):
                current = SUBHEADING_SECTIONS.get(paragraph.strip().lower(), "description")
                if paragraph.strip().lower() in SUBHEADING_SECTIONS:
                    continue
            collected.setdefault(current, []).append(paragraph)
        return Sections(**{name: "\n\n".join(paras) for name, paras in collected.items()})


@dataclass
class ParsedThemePage:
    title: str
    parts: list[ThemePart]
    warnings: list[str] = field(default_factory=list)


def _paragraphs(lines: list[str]) -> list[str]:
    """Body paragraphs between the title block ("Indhold" when present) and the footer."""
    start = next((i + 1 for i, line in enumerate(lines) if line.strip().lower() == "indhold"), None)
    if start is None:
        start = next(i + 1 for i, line in enumerate(lines) if _THEME_TITLE.match(line.strip()))
    body: list[str] = []
    for line in lines[start:]:
        if _FOOTER_START.match(line.strip()):
            break
        body.append(line.strip())
    text = "\n".join(line for line in body if line.lower() not in PAGE_FURNITURE)
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def parse_theme_page(text: str) -> ParsedThemePage:
    lines = text.split("\n")
    title = next(m.group(1).strip() for line in lines if (m := _THEME_TITLE.match(line.strip())))
    paragraphs = _paragraphs(lines)
    starts: list[tuple[int, str]] = []
    for index, paragraph in enumerate(paragraphs):
        named = municipality_named_in(paragraph[:_FIRST_SENTENCE_CHARS])
        if named and (not starts or starts[-1][1] != named):
            starts.append((index, named))
    warnings = []
    if not starts:
        return ParsedThemePage(title, [], ["no paragraph opens with a municipality ('<Name> Kommune')"])
    if starts[0][0] > 0:
        warnings.append(f"{starts[0][0]} paragraph(s) before the first municipality kept in no part")
    ends = [*(start for start, _ in starts[1:]), len(paragraphs)]
    parts = [
        ThemePart(municipality, paragraphs[begin:end])
        for (begin, municipality), end in zip(starts, ends, strict=True)
    ]
    for part in parts:
        unmentioned = next(
            (n for n, p in enumerate(reversed(part.paragraphs)) if mentions(p, part.municipality)),
            len(part.paragraphs),
        )
        if unmentioned >= _UNMENTIONED_RUN_WARNING:
            part.warnings.append(
                f"the last {unmentioned} paragraphs do not name {part.municipality}; "
                "they may belong to the next municipality on the page"
            )
    return ParsedThemePage(title, parts, warnings)
