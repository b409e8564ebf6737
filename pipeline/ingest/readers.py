"""Turn a file's bytes into normalised page text: encoding detection, line ends, HTML to text."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from bs4 import BeautifulSoup

SUPPORTED_SUFFIXES = (".txt", ".html", ".htm")
_HTML_START = re.compile(rb"^\s*(<!doctype html|<html|<head|<body)", re.IGNORECASE)
_BLOCK_TAGS = (
    "p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "li", "table", "tr", "blockquote", "pre", "dd", "dt", "figure", "figcaption",
)  # fmt: skip
_DROPPED_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "form", "button")
# Control characters other than tab/newline/carriage return/form feed: many of them mean the file is not text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class UnreadableFile(ValueError):
    """The file is empty, binary or not decodable as text."""


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (with or without BOM), falling back to cp1252 and then Latin-1, the encodings Danish
    pages are found in. cp1252 before Latin-1: it is Latin-1 plus typographic quotes and dashes."""
    if b"\x00" in data:
        raise UnreadableFile("binary content (NUL bytes), expected a text or HTML page")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if len(_CONTROL.findall(text)) > max(2, len(text) // 100):
        raise UnreadableFile("binary content (control characters), expected a text or HTML page")
    return text


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


def normalise_text(text: str) -> str:
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


def read_page(path: Path) -> str:
    """Read one page file into normalised text; raise UnreadableFile with the reason."""
    data = path.read_bytes()
    if not data.strip():
        raise UnreadableFile("empty file")
    text = decode_text(data)
    if is_html(path, data):
        text = html_to_text(text)
    text = normalise_text(text)
    if not text.strip():
        raise UnreadableFile("no text after conversion")
    return text


def collect_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their page files (sorted, so runs are reproducible); keep files as given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        else:
            files.append(path)
    return files
