"""Source links: a page's URL and retrieval date from its sidecar or its HTML, refused unless http(s), kept in
the record without touching its id, and linked from the report. The pages here are generated fixtures."""

from __future__ import annotations

import html
import json
from urllib.parse import urlsplit

import pytest
from conftest import TAARNBY, make_effort_page
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.corpus import EFFORTS_FILE, load_efforts
from pipeline.ingest import ingest_paths
from pipeline.ingest.readers import collect_files
from pipeline.ingest.source import page_link, url_in_html
from pipeline.records import Effort, http_url

PAGE = make_effort_page("Nyby", [("Ja", "Borgerne har samtaler hver 14. dag")])


def _html_page(head: str, before: str = "") -> str:
    body = "".join(f"<p>{html.escape(line)}</p>" for line in PAGE.split("\n"))
    return f"<!DOCTYPE html>{before}<html><head>{head}</head><body>{body}</body></html>"


def _link(tmp_path, name: str, content: str, sidecar: str | None = None):
    page = tmp_path / name
    page.write_text(content, encoding="utf-8")
    if sidecar is not None:
        (tmp_path / (page.stem + ".meta.json")).write_text(sidecar, encoding="utf-8")
    return page_link(page, content if name.endswith(".html") else None)


def test_the_canonical_link_comes_before_og_url_and_the_saved_from_comment(tmp_path):
    link = _link(
        tmp_path,
        "a.html",
        _html_page(
            '<meta property="og:url" content="https://og.example/a">'
            '<link rel="canonical" href="https://kommune.dk/indsats/a">',
            before="<!-- saved from url=(0026)https://saved.example/a -->",
        ),
    )
    assert (link.source_url, link.retrieved_at, link.warnings) == ("https://kommune.dk/indsats/a", None, ())


def test_og_url_and_the_saved_from_comment_serve_where_there_is_no_canonical_link(tmp_path):
    og = _link(tmp_path, "og.html", _html_page('<meta property="og:url" content="https://og.example/a">'))
    saved = _link(
        tmp_path, "saved.html", _html_page("", before="<!-- saved from url=(0026)https://saved.example/a -->")
    )
    assert (og.source_url, saved.source_url) == ("https://og.example/a", "https://saved.example/a")


def test_a_sidecar_gives_the_url_and_the_retrieval_date_and_comes_first(tmp_path):
    link = _link(
        tmp_path,
        "a.html",
        _html_page('<link rel="canonical" href="https://kommune.dk/other">'),
        sidecar='{"url": "https://kommune.dk/indsats/a", "retrieved_at": "2026-11-30T09:15:00+01:00"}',
    )
    assert link.source_url == "https://kommune.dk/indsats/a"
    assert link.retrieved_at == "2026-11-30T09:15:00+01:00"


@pytest.mark.parametrize(
    "hostile",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>",
        "/relative",
        "http://`/",
        "http://{x}/",
    ],
)
def test_a_url_that_is_not_absolute_http_is_refused_with_a_warning(tmp_path, hostile):
    head = f'<link rel="canonical" href="{html.escape(hostile)}">'
    link = _link(tmp_path, "a.html", _html_page(head))
    assert link.source_url is None
    assert len(link.warnings) == 1 and "a.html: canonical link" in link.warnings[0]
    assert "not an absolute http(s) URL" in link.warnings[0]


def test_a_refused_canonical_link_falls_back_to_og_url(tmp_path):
    head = '<link rel="canonical" href="javascript:alert(1)"><meta property="og:url" content="http://og.example/">'
    assert _link(tmp_path, "a.html", _html_page(head)).source_url == "http://og.example/"


def test_a_duplicate_with_another_source_link_is_named_on_the_kept_record(tmp_path):
    for name, url in (("a.txt", "https://kommune.dk/indsats/a"), ("b.txt", "https://other.dk/b")):
        (tmp_path / name).write_text(PAGE, encoding="utf-8")
        (tmp_path / name.replace(".txt", ".meta.json")).write_text(json.dumps({"url": url}), encoding="utf-8")
    (tmp_path / "c.txt").write_text(PAGE, encoding="utf-8")  # the same page without a link: nothing to say
    result = ingest_paths([tmp_path])
    [effort] = result.efforts
    assert [source for source, _ in result.duplicates] == [str(tmp_path / "b.txt"), str(tmp_path / "c.txt")]
    assert effort.source_url == "https://kommune.dk/indsats/a"
    [warning] = [w for w in effort.warnings if "same content" in w]
    assert "b.txt" in warning and "https://other.dk/b" in warning and "a.txt" in warning


def test_a_page_without_any_has_neither(tmp_path):
    assert _link(tmp_path, "a.txt", PAGE) == _link(tmp_path, "b.html", _html_page("<title>x</title>"))
    assert _link(tmp_path, "a.txt", PAGE).source_url is None and _link(tmp_path, "a.txt", PAGE).warnings == ()


@pytest.mark.parametrize(
    ("sidecar", "expected"),
    [
        (
            '{"url": "https://x.dk/a", "retrieved_at": "yesterday"}',
            "retrieved_at 'yesterday' is not an ISO-8601",
        ),
        ('{"url": "https://x.dk/a", "retrieved_at": 20261130}', "retrieved_at int is not an ISO-8601"),
        (
            '{"url": "https://x.dk/a", "retrieved_at": "2026-13-01"}',
            "retrieved_at '2026-13-01' is not an ISO",
        ),
    ],
)
def test_a_bad_date_is_ignored_with_a_warning_naming_the_sidecar(tmp_path, sidecar, expected):
    link = _link(tmp_path, "a.txt", PAGE, sidecar=sidecar)
    assert (link.source_url, link.retrieved_at) == ("https://x.dk/a", None)
    (warning,) = link.warnings
    assert warning.startswith(str(tmp_path / "a.meta.json")) and expected in warning


@pytest.mark.parametrize(
    ("sidecar", "expected"),
    [
        ('{"url": "https://x.dk/a",\n "retrieved_at": }', "line 2: not valid JSON"),
        ('["https://x.dk/a"]', "expected a JSON object"),
        ('{"url": "javascript:alert(1)"}', "url: 'javascript:alert(1)' is not an absolute http(s) URL"),
    ],
)
def test_a_bad_sidecar_is_ignored_with_a_one_line_warning(tmp_path, sidecar, expected):
    link = _link(tmp_path, "a.txt", PAGE, sidecar=sidecar)
    (warning,) = link.warnings
    assert link.source_url is None and expected in warning and "\n" not in warning
    assert warning.startswith(str(tmp_path / "a.meta.json"))


def test_a_date_alone_is_kept_as_a_date(tmp_path):
    link = _link(tmp_path, "a.txt", PAGE, sidecar='{"retrieved_at": "2026-11-30"}')
    assert (link.source_url, link.retrieved_at, link.warnings) == (None, "2026-11-30", ())


SCHEMES = [
    "https://x.dk/",
    "http://",
    "https://",
    "HTTPS://",
    "javascript:",
    " javascript:",
    "java\tscript:",
    "data:",
    "//",
    "h\ttp://",
]
CANDIDATES = st.one_of(
    st.text(max_size=200), st.tuples(st.sampled_from(SCHEMES), st.text(max_size=120)).map("".join)
)


@settings(max_examples=400, deadline=None)
@given(CANDIDATES)
def test_no_text_gives_a_url_that_is_not_http(candidate):
    for text in (
        candidate,
        f'<link rel="canonical" href="{candidate}">',
        f"<!-- saved from url=(0001){candidate} -->",
    ):
        url = url_in_html(text, "page.html", [])
        if url is not None:
            assert urlsplit(url).scheme in ("http", "https") and url.startswith(("http://", "https://"))
            # the URL standard percent-encodes these everywhere: nothing ends the href's quotes or the tag
            assert not any(c.isspace() or c in '"<>' for c in url)
            assert http_url(url) == url  # what the report links to reads back the same


def test_ingest_keeps_the_link_and_the_same_effort_id(tmp_path):
    plain, linked = tmp_path / "plain", tmp_path / "linked"
    plain.mkdir(), linked.mkdir()
    (plain / TAARNBY.name).write_bytes(TAARNBY.read_bytes())
    (linked / TAARNBY.name).write_bytes(TAARNBY.read_bytes())
    (linked / (TAARNBY.stem + ".meta.json")).write_text(
        json.dumps({"url": "https://www.taarnby.dk/indsats", "retrieved_at": "2026-11-30"}), encoding="utf-8"
    )
    assert collect_files([linked]) == [linked / TAARNBY.name]  # the sidecar is no page
    (before,), (after,) = ingest_paths([plain]).efforts, ingest_paths([linked]).efforts
    assert after.effort_id == before.effort_id and after.content_sha256 == before.content_sha256
    assert (after.source_url, after.retrieved_at) == ("https://www.taarnby.dk/indsats", "2026-11-30")
    assert (before.source_url, before.retrieved_at) == (None, None)


def test_a_corpus_written_before_the_link_fields_still_loads(tmp_path):
    (effort,) = ingest_paths([TAARNBY]).efforts
    row = effort.model_dump()
    del row["source_url"], row["retrieved_at"]
    (tmp_path / EFFORTS_FILE).write_text(
        json.dumps(row) + "\n", encoding="utf-8"
    )  # no manifest: an old corpus
    (loaded,) = load_efforts(tmp_path)
    assert loaded.effort_id == effort.effort_id and loaded.source_url is None


def test_the_record_itself_refuses_a_url_that_is_not_http():
    fields = {"effort_id": "e", "source": "s", "content_sha256": "c", "kind": "effort_page"}
    with pytest.raises(ValidationError, match="scheme"):
        Effort(**fields, source_url="javascript:alert(1)")
    with pytest.raises(ValidationError):
        Effort(**fields, retrieved_at="last tuesday")
    assert Effort(**fields, source_url="https://x.dk/a b").source_url == "https://x.dk/a%20b"
