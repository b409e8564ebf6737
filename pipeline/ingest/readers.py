"""Turn a file's bytes into normalised page text: encoding detection, line ends, HTML to text."""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from pathlib import Path
from typing import NamedTuple

from bs4 import BeautifulSoup

from pipeline.defaults import MAX_PAGE_BYTES
from pipeline.ingest.source import PageLink, is_sidecar, page_link
from pipeline.io import special_kind

SUPPORTED_SUFFIXES = (".txt", ".html", ".htm")
_HTML_START = re.compile(rb"^\s*(<!doctype html|<html|<head|<body)", re.IGNORECASE)
_BLOCK_TAGS = (
    "p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "li", "table", "tr", "blockquote", "pre", "dd", "dt", "figure", "figcaption",
)  # fmt: skip
_DROPPED_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "form", "button")
_REPLACEMENT = "\ufffd"
MAX_BAD_UTF8_BYTES = 16  # or one in a thousand bytes, whichever is more
# Control characters other than tab/newline/carriage return/form feed: many of them mean the file is not text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class UnreadableFile(ValueError):
    """The file is empty, binary or not decodable as text."""


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """The text and any warnings. UTF-16 with a BOM; else UTF-8 (with or without BOM), keeping the good bytes of a
    mostly UTF-8 file (a few bad bytes become U+FFFD, with a warning giving the first offset); else cp1252 and
    then Latin-1, the encodings Danish pages are found in (cp1252 is Latin-1 plus typographic quotes)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text, warnings = data.decode("utf-16"), []
        except UnicodeDecodeError as error:
            raise UnreadableFile(f"invalid UTF-16 at byte offset {error.start}") from None
    elif b"\x00" in data:
        raise UnreadableFile("binary content (NUL bytes), expected a text or HTML page (UTF-16 needs a BOM)")
    else:
        text, warnings = _decode_8bit(data)
    if len(_CONTROL.findall(text)) > max(2, len(text) // 100):
        raise UnreadableFile("binary content (control characters), expected a text or HTML page")
    return text, warnings


def _decode_8bit(data: bytes) -> tuple[str, list[str]]:
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as error:
        first_bad = error.start
    replaced = data.decode("utf-8-sig", errors="replace")
    bad = replaced.count(_REPLACEMENT) - data.count(_REPLACEMENT.encode())
    real_utf8 = sum(1 for character in replaced if ord(character) > 127 and character != _REPLACEMENT)
    # Real multi-byte characters and only a few bad bytes: a UTF-8 page damaged in places, not a cp1252 page.
    if real_utf8 > bad and bad <= max(MAX_BAD_UTF8_BYTES, len(data) // 1000):
        return replaced, [
            f"{bad} invalid UTF-8 byte sequence(s) replaced by U+FFFD; the first at byte offset {first_bad}"
        ]
    for encoding in ("cp1252", "latin-1"):
        try:
            return data.decode(encoding), []
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")


def html_to_text(html: str) -> str:
    """Convert HTML to the line layout of the text dumps: one block per line, list items as "• " bullets."""
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(_DROPPED_TAGS):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for item in soup.find_all("li"):
        item.insert(0, "• ")
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    return soup.get_text()


def normalise_page(text: str) -> str:
    """NFC, Unix line ends, no-break spaces as spaces, trailing spaces and runs of blank lines removed.

    The content hash and therefore the effort id are computed on this form, so the same page read from a
    UTF-8, cp1252 or CRLF file gets the same id."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\ufeff", "")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text)


def is_html(path: Path, data: bytes) -> bool:
    return path.suffix.lower() in (".html", ".htm") or bool(_HTML_START.match(data[:512]))


class PageFile(NamedTuple):
    """A page file as read: its normalised text, the warnings of its decoding, and its source link."""

    text: str
    warnings: list[str]
    link: PageLink


def printable_path(path: Path) -> str:
    """The path as text every output can hold: the bytes of a name that is not UTF-8 as \\xNN escapes (str(path)
    would carry surrogates that no UTF-8 file, JSON or CSV, accepts)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_page_file(path: Path) -> PageFile:
    """One page file as normalised text, with the warnings of its decoding and its source URL and retrieval
    date (pipeline/ingest/source.py); raise UnreadableFile with the reason."""
    if printable_path(path) != str(path):
        raise UnreadableFile("its name is not valid UTF-8; rename the file")
    kind = special_kind(path)
    if kind:
        raise UnreadableFile(f"{kind}, expected a regular text or HTML file")
    size = path.stat().st_size
    if size > MAX_PAGE_BYTES:
        raise UnreadableFile(f"{size:,} bytes, over the limit of {MAX_PAGE_BYTES:,} per page file")
    data = path.read_bytes()
    if not data.strip():
        raise UnreadableFile("empty file")
    decoded, warnings = decode_text(data)
    html = decoded if is_html(path, data) else None
    text = normalise_page(html_to_text(html) if html is not None else decoded)
    if not text.strip():
        raise UnreadableFile("no text after conversion")
    return PageFile(text, warnings, page_link(path, html))


def read_page(path: Path) -> str:
    """One page file as normalised text (warnings and link dropped: read_page_file keeps them)."""
    return read_page_file(path).text


def collect_files(paths: list[Path]) -> list[Path]:
    """Expand folders into every entry that is not a folder (sorted, so runs are reproducible), plus folders
    named like a page file (`x.txt/`): these and special files (FIFOs, sockets) are listed so that they can
    be rejected with their reason, never skipped in silence. Hidden entries and sidecars (`PAGE.meta.json`, read
    with their page) are skipped. Files are kept as given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if not any(part.startswith(".") for part in p.relative_to(path).parts)
                    and not is_sidecar(p)
                    and (not p.is_dir() or p.suffix.lower() in SUPPORTED_SUFFIXES)
                )
            )
        else:
            files.append(path)
    return files
