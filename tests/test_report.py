"""The analysts' report in a real browser: it renders, sorts, filters, and runs none of the scraped text."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import REPO

from pipeline.classify.evaluate import leave_one_effort_out
from pipeline.flags import all_flags
from pipeline.model import EvidensModel
from pipeline.records import Effort, Sections
from pipeline.report import ReportRow, write_report
from pipeline.report.rows import report_rows

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INJECTED = ["<script>window.__pwned = 1</script>", '"><img src=x onerror="window.__pwned = 2">']


@pytest.fixture(scope="session")
def report_file(ingested, tmp_path_factory, embedding_cache):
    labelled = [e for e in ingested.efforts if e.tests]
    predictions = leave_one_effort_out(
        labelled, EvidensModel(cache=str(embedding_cache)), heads=("rules",)
    ).predictions()
    flags = all_flags(labelled, predictions)
    rows = report_rows(predictions, flags)
    hostile = Effort(
        effort_id="injected-test-page",
        source="generated fixture",
        content_sha256="0" * 64,
        kind="effort_page",
        municipality=INJECTED[1],
        title=INJECTED[0],
        sections=Sections(description=INJECTED[0]),
    )
    for n, text in enumerate(INJECTED):
        rows.append(
            ReportRow("injected-test-page", f"crit-x{n}", "evidence_test", text, "Ja", "Nej", 0.1 * n, 0.2, 0.7 - 0.1 * n,
                      [("description", text)], ["model_disagrees"], 0.9, "partly", f"asks: {text} · page: {text}")
        )  # fmt: skip
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(path, [*ingested.efforts, hostile], rows, flags)
    return path


def test_report_escapes_scraped_text_in_the_html_source(report_file):
    html = report_file.read_text(encoding="utf-8")
    assert "<script>window.__pwned" not in html and 'onerror="window' not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the report's own sorting script, nothing else
    assert "http://" not in html and "https://" not in html  # no network at view time


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_sorts_filters_and_runs_no_injected_script(report_file):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(report_file.as_uri())
        assert page.title().startswith("evidens")
        assert page.evaluate("window.__pwned") is None  # neither <script> nor onerror ran
        assert INJECTED[0] in page.inner_text("body") and INJECTED[1] in page.inner_text("body")

        tables = page.locator("table.sortable")
        assert tables.count() == 3  # Odsherred, Tårnby, the injected fixture
        first = tables.nth(0)
        p_ja = lambda: [float(v) for v in first.locator("tbody tr td:nth-child(5)").all_inner_texts()]  # noqa: E731
        before = p_ja()
        assert len(before) == 18
        first.locator("th", has_text="P(Ja)").click()
        ascending = p_ja()
        assert ascending == sorted(before) and ascending != before
        first.locator("th", has_text="P(Ja)").click()
        assert p_ja() == sorted(before, reverse=True)

        page.fill('[data-filter-for="table-1"]', "Jobnet")
        visible = first.locator("tbody tr:visible")
        assert 0 < visible.count() < 18 and all("Jobnet" in t for t in visible.all_inner_texts())
        page.fill('[data-filter-for="table-1"]', "")

        page.screenshot(path=str(REPO / "docs" / "report.png"), full_page=False)
        browser.close()
    assert np.isfinite(ascending).all()
