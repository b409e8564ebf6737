"""Where a page lives and when it was fetched: its source URL and retrieval date, where the input says so.

In order of trust:
1. A sidecar `PAGE.meta.json` beside the page file (`taarnby.txt` -> `taarnby.meta.json`), as a scraper writes it:
   `{"url": "https://...", "retrieved_at": "2026-11-30T09:15:00+01:00"}` (both keys optional, other keys
   ignored; a date alone, `2026-11-30`, is fine).
2. In an HTML page: `<link rel="canonical" href=...>`, then `<meta property="og:url" content=...>`, then the
   `<!-- saved from url=(0042)https://... -->` comment a browser's "Save page as" writes.

Only absolute http(s) URLs are kept (`pipeline.records.http_url`); anything else, and a date that is not
ISO-8601, is ignored with a warning naming the file. A page without any of these has neither."""

from __future__ import annotations

import json
import re
import warnings as python_warnings
from pathlib import Path

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, SoupStrainer
from pydantic import BaseModel, ConfigDict

from pipeline.defaults import MAX_SIDECAR_BYTES
from pipeline.io import read_regular_bytes
from pipeline.records import http_url, iso_date_or_time

SIDECAR_SUFFIX = ".meta.json"
_SAVED_FROM = re.compile(r"<!--\s*saved from url=\(\d+\)(\S+?)\s*-->", re.IGNORECASE)


class PageLink(BaseModel):
    """A page's source URL and retrieval date (None where unknown), and the warnings of reading them."""

    model_config = ConfigDict(frozen=True)

    source_url: str | None = None
    retrieved_at: str | None = None
    warnings: tuple[str, ...] = ()


NO_LINK = PageLink()


def sidecar_path(page: Path) -> Path:
    return page.with_name(page.stem + SIDECAR_SUFFIX)


def is_sidecar(path: Path) -> bool:
    return path.name.endswith(SIDECAR_SUFFIX)  # exactly what sidecar_path looks for: any other is reported


def checked_url(value: object, where: str, warnings: list[str]) -> str | None:
    """The URL if it is an absolute http(s) URL; else None, with a warning naming `where`."""
    if not isinstance(value, str):
        warnings.append(f"{where}: expected a URL as text, found {type(value).__name__}; ignored")
        return None
    try:
        return http_url(value)
    except ValueError:
        warnings.append(f"{where}: {value[:80]!r} is not an absolute http(s) URL; ignored")
        return None


def checked_date(value: object, where: str, warnings: list[str]) -> str | None:
    """The date in ISO-8601 form; else None, with a warning naming `where`."""
    if isinstance(value, str):
        try:
            return iso_date_or_time(value)
        except ValueError:
            pass
    shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
    warnings.append(
        f"{where}: retrieved_at {shown} is not an ISO-8601 date (e.g. 2026-11-30T09:15:00+01:00); ignored"
    )
    return None


def html_candidates(html: str) -> list[tuple[str, str]]:
    """(what, URL as written) for each place an HTML page names its own address, most trusted first."""
    with python_warnings.catch_warnings():  # a page that is only a URL is still a page
        python_warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(html, "lxml", parse_only=SoupStrainer(["link", "meta"]))
    found = []
    for link in soup.find_all("link", href=True):
        if "canonical" in [r.lower() for r in link.get("rel") or []]:
            found.append(("canonical link", link["href"]))
    for meta in soup.find_all("meta", content=True):
        if str(meta.get("property") or meta.get("name") or "").lower() == "og:url":
            found.append(("og:url", meta["content"]))
    found += [("saved-from comment", match) for match in _SAVED_FROM.findall(html[:4096])]
    return [(what, value) for what, value in found if isinstance(value, str)]


def url_in_html(html: str, where: str, warnings: list[str]) -> str | None:
    """The first valid http(s) URL among the page's canonical link, og:url and saved-from comment."""
    for what, value in html_candidates(html):
        url = checked_url(value, f"{where}: {what}", warnings)
        if url is not None:
            return url
    return None


def read_sidecar(sidecar: Path, warnings: list[str]) -> tuple[str | None, str | None]:
    """(url, retrieved_at) from a sidecar; (None, None) with a warning for one that cannot be read."""
    try:
        size = sidecar.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            raise ValueError(f"{size:,} bytes, over the limit of {MAX_SIDECAR_BYTES:,}")
        meta = json.loads(read_regular_bytes(sidecar).decode("utf-8-sig"))
    except OSError as error:
        warnings.append(f"{sidecar}: cannot be read ({error.strerror}); ignored")
        return None, None
    except UnicodeDecodeError as error:
        warnings.append(f"{sidecar}: not UTF-8 (byte {error.start}); ignored")
        return None, None
    except json.JSONDecodeError as error:
        warnings.append(f"{sidecar}: line {error.lineno}: not valid JSON ({error.msg}); ignored")
        return None, None
    except ValueError as error:
        warnings.append(f"{sidecar}: {error}; ignored")
        return None, None
    if not isinstance(meta, dict):
        warnings.append(
            f'{sidecar}: expected a JSON object such as {{"url": ..., "retrieved_at": ...}}; ignored'
        )
        return None, None
    url = checked_url(meta["url"], f"{sidecar}: url", warnings) if meta.get("url") is not None else None
    retrieved = meta.get("retrieved_at")
    return url, (checked_date(retrieved, str(sidecar), warnings) if retrieved is not None else None)


def page_link(page: Path, html: str | None = None) -> PageLink:
    """The source URL and retrieval date of the page file `page` (`html`: its decoded text, if it is HTML)."""
    warnings: list[str] = []
    url, retrieved_at = None, None
    sidecar = sidecar_path(page)
    if sidecar.exists() or sidecar.is_symlink():
        url, retrieved_at = read_sidecar(sidecar, warnings)
    if url is None and html is not None:
        url = url_in_html(html, str(page), warnings)
    return PageLink(source_url=url, retrieved_at=retrieved_at, warnings=tuple(warnings))
