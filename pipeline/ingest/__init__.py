"""Ingest: raw page files become validated `Effort` records; bad files become `Rejection`s with a reason."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.defaults import MAX_ANSWERS_PER_PAGE, MAX_PAGE_CHARS
from pipeline.ingest.effort_page import PageError, looks_like_effort_page, parse_effort_page
from pipeline.ingest.readers import UnreadableFile, collect_files, printable_path, read_page_file
from pipeline.ingest.report import looks_like_report, parse_report
from pipeline.ingest.source import NO_LINK, PageLink
from pipeline.ingest.theme_page import looks_like_theme_page, parse_theme_page
from pipeline.records import Effort, Rejection, Sections

UNRECOGNISED = (
    "unrecognised page (expected an effort page with headings such as 'Kommunens beskrivelse af indsatsen' "
    "or 'Evidenstest vedr. ...', a theme page with a 'Tema: ...' title, or a report transcript of numbered pages)"
)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def slug(text: str) -> str:
    """ASCII slug for readable ids: "Tårnby" -> "taarnby", "Hillerød" -> "hilleroed"."""
    folded = text.lower().translate(str.maketrans({"æ": "ae", "ø": "oe", "å": "aa"}))
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:40] or "page"


def effort_id_for(name: str, content_sha256: str) -> str:
    """Readable and stable: the same content gives the same id on every run and machine."""
    return f"{slug(name)}-{content_sha256[:12]}"


def effort_name(effort_id: str) -> str:
    """The readable part of an effort id (`taarnby-c90eea4e17f9` -> `taarnby`): the same across a page's edits."""
    return effort_id.rsplit("-", 1)[0]


def records_from_text(
    source: str, text: str, warnings: Sequence[str] = (), link: PageLink = NO_LINK
) -> list[Effort]:
    """Parse one page's normalised text into its records, each carrying the file's `warnings` (its decoding)
    and its `link` (source URL, retrieval date and their warnings); raise PageError if it cannot be ingested.
    The link never enters the content hash: the effort ids are the same with or without it."""
    if len(text) > MAX_PAGE_CHARS:  # spaCy refuses such a text (E088) deep inside a later stage
        raise PageError(
            f"{len(text):,} characters, over the limit of {MAX_PAGE_CHARS:,} per page: split the page into parts"
        )
    efforts = _parse_records(source, text)
    answers = max((sum(len(t.answers) for t in e.tests) for e in efforts), default=0)
    if answers > MAX_ANSWERS_PER_PAGE:  # matching them against the catalogue would stall ingest
        raise PageError(
            f"{answers:,} answers, over the limit of {MAX_ANSWERS_PER_PAGE:,} per page (the real pages have "
            "under 50): is it one page?"
        )
    for effort in efforts:
        effort.warnings[:0] = [*warnings, *link.warnings]
        effort.source_url, effort.retrieved_at = link.source_url, link.retrieved_at
    return efforts


def _parse_records(source: str, text: str) -> list[Effort]:
    lines = text.split("\n")
    content_sha = sha256_text(text)
    if looks_like_theme_page(lines):
        theme = parse_theme_page(text)
        if not theme.parts:
            raise PageError("; ".join(theme.warnings))
        efforts = []
        for part in theme.parts:
            part_sha = sha256_text(f"{part.municipality}\n" + "\n\n".join(part.paragraphs))
            efforts.append(
                Effort(
                    effort_id=effort_id_for(part.municipality, part_sha),
                    source=source,
                    content_sha256=part_sha,
                    kind="theme_page_part",
                    municipality=part.municipality,
                    title=f"{theme.title} – {part.municipality}",
                    sections=part.sections(),
                    warnings=[*theme.warnings, *part.warnings],
                )
            )
        return efforts
    if looks_like_effort_page(lines):
        page = parse_effort_page(text)
        name = page.municipality or page.title
        return [
            Effort(
                effort_id=effort_id_for(name, content_sha),
                source=source,
                content_sha256=content_sha,
                kind="effort_page",
                municipality=page.municipality,
                title=page.title,
                headline_score=page.headline_score,
                target_groups=page.target_groups,
                sections=page.sections,
                tests=page.tests,
                warnings=page.warnings,
            )
        ]
    if looks_like_report(lines):
        report = parse_report(text)
        return [
            Effort(
                effort_id=effort_id_for("report " + report.title[:30], content_sha),
                source=source,
                content_sha256=content_sha,
                kind="report",
                title=report.title,
                sections=Sections(description=report.text),
            )
        ]
    raise PageError(UNRECOGNISED)


@dataclass
class IngestResult:
    efforts: list[Effort] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    files_read: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (source, source it duplicates)


def ingest_file(path: Path) -> tuple[str, list[Effort]]:
    """The normalised text of one file and its records; raise UnreadableFile or PageError."""
    page = read_page_file(path)
    return page.text, records_from_text(str(path), page.text, page.warnings, page.link)


def iter_ingest(files: Iterable[Path]) -> Iterator[tuple[Path, list[Effort] | Rejection]]:
    """Records (or a rejection) per file, one file at a time: one bad file never stops the rest."""
    for path in files:
        name = printable_path(path)
        try:
            yield path, ingest_file(path)[1]
        except (UnreadableFile, PageError) as error:
            yield path, Rejection(source=name, reason=f"{name}: {error}")
        except OSError as error:
            yield path, Rejection(source=name, reason=f"{name}: cannot read ({error.strerror})")


def ingest_paths(paths: list[Path]) -> IngestResult:
    """Ingest files and folders; a page met twice (same content) is kept once and counted as a duplicate. A
    duplicate's other source link is not lost in silence: the kept record carries a warning that names it."""
    result = IngestResult()
    seen: dict[str, tuple[str, Effort]] = {}  # effort_id -> (source, the record kept)
    for path, outcome in iter_ingest(collect_files(paths)):
        result.files_read += 1
        if isinstance(outcome, Rejection):
            result.rejected.append(outcome)
            continue
        fresh = [effort for effort in outcome if effort.effort_id not in seen]
        if len(fresh) < len(outcome):
            first_seen = next(seen[e.effort_id][0] for e in outcome if e.effort_id in seen)
            result.duplicates.append((str(path), first_seen))
        for effort in outcome:
            source, kept = seen.get(effort.effort_id, (str(path), effort))
            if kept is not effort and effort.source_url and effort.source_url != kept.source_url:
                kept.warnings.append(
                    f"{path} has the same content with another source link ({effort.source_url}); "
                    f"the link read with {source} is kept"
                )
        seen.update((effort.effort_id, (str(path), effort)) for effort in fresh)
        result.efforts.extend(fresh)
    return result
