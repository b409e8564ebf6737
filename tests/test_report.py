"""The analysts' report in a real browser: it renders, sorts answers in answer order, filters, keeps decisions
across a reload, exports them as the documented CSV, and runs none of the scraped text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from conftest import outside_references

from pipeline.judgement.evaluate import leave_one_effort_out
from pipeline.judgement.model import EvidensModel
from pipeline.outputs.flags import all_flags
from pipeline.outputs.report import ReportRow, write_report
from pipeline.outputs.report.rows import highlighted, honest_figures, report_rows
from pipeline.outputs.report.screenshot import browser_page, chromium_path
from pipeline.outputs.review import VERDICT_COLUMNS, read_verdicts
from pipeline.records import ANSWER_ORDER, Effort, Sections

INJECTED = ["<script>window.__pwned = 1</script>", '"><img src=x onerror="window.__pwned = 2">']


@pytest.fixture(scope="session")
def report_parts(labelled_efforts, embedding_cache):
    evaluation = leave_one_effort_out(
        labelled_efforts, EvidensModel(cache=str(embedding_cache)), heads=("rules",)
    )
    predictions = evaluation.predictions()
    flags = all_flags(labelled_efforts, predictions)
    return evaluation, predictions, flags


@pytest.fixture(scope="session")
def report_file(report_parts, labelled_efforts, tmp_path_factory):
    evaluation, predictions, flags = report_parts
    rows = report_rows(predictions, flags, labelled_efforts)
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
            ReportRow(
                effort_id="injected-test-page",
                criterion_id=f"crit-x{n}",
                test_kind="evidence_test",
                item=text,
                self_assessed="Ja",
                predicted="Nej",
                p_ja=0.1 * n,
                p_delvist=0.2,
                p_nej=0.7 - 0.1 * n,
                evidence=[("description", [(text, False), (text, True)])],
                reasons=["model_disagrees"],
                p_stated=0.9,
                basis=f"asks: {text} · page: {text}",
                municipality=INJECTED[1],
                confidence=0.5,
                explanation=text,
            )
        )
    path = tmp_path_factory.mktemp("report") / "report.html"
    figures = honest_figures(evaluation.metrics, evaluation.model_name)
    write_report(path, [*labelled_efforts, hostile], rows, flags, figures=figures)
    return path


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_report_escapes_scraped_text_and_links_nothing(report_file):
    html = report_file.read_text(encoding="utf-8")
    assert "<script>window.__pwned" not in html and 'onerror="window' not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the report's own script, nothing else
    assert "http://" not in html and "https://" not in html  # no network at view time
    assert outside_references(html) == []  # self-contained: nothing points at a file beside it


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_triage_rows_are_most_suspicious_first_with_reasons_in_words(report_parts, labelled_efforts):
    _, predictions, flags = report_parts
    rows = report_rows(predictions, flags, labelled_efforts)
    assert len(rows) == len(predictions)
    confidences = [r.confidence for r in rows]
    assert confidences == sorted(confidences, reverse=True) and confidences[0] > 0
    flagged = [r for r in rows if r.reasons]
    assert flagged and all(r.explanation for r in flagged)
    assert all(r.confidence == 0 for r in rows if not r.reasons)
    assert {r.municipality for r in rows} == {"Tårnby", "Odsherred"}


def test_evidence_highlights_the_words_the_criterion_shares():
    segments = highlighted(
        "Borgerne får en samtale hver 14. dag.", "Mindst 9 ud af 10 borgere får en samtale hver 2. uge"
    )
    assert "".join(text for text, _ in segments) == "Borgerne får en samtale hver 14. dag."
    assert [text for text, match in segments if match] == ["Borgerne", "samtale"]


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_honest_figures_put_the_model_before_its_baselines(report_parts):
    evaluation, _, _ = report_parts
    figures = honest_figures(evaluation.metrics, evaluation.model_name)
    assert figures[0][0] == evaluation.model_name
    assert any(name == "baseline: majority answer" for name, _, _ in figures)
    assert all("[" in f1 and "[" in qwk for _, f1, qwk in figures)


def _answers(page, column: int) -> list[str]:
    return page.locator(f"#triage-table tbody tr:visible td:nth-child({column})").all_inner_texts()


@pytest.mark.slow  # a browser, and the real e5 behind the report
@pytest.mark.skipif(
    chromium_path() is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_report_sorts_filters_keeps_decisions_and_exports_them(report_file, labelled_efforts, tmp_path):
    pytest.importorskip("playwright.sync_api")
    with browser_page() as page:
        page.goto(report_file.as_uri())
        assert page.title().startswith("evidens")
        assert page.evaluate("window.__pwned") is None  # neither <script> nor onerror ran
        assert INJECTED[0] in page.inner_text("body") and INJECTED[1] in page.inner_text("body")
        assert "baseline: majority answer" in page.inner_text("#honest-figures")

        # flagged only by default, most suspicious first
        flagged = page.locator("#triage-table tbody tr:visible")
        confidences = [float(t) for t in flagged.locator("td:nth-child(1)").all_inner_texts()]
        assert confidences == sorted(confidences, reverse=True) and min(confidences) > 0

        # answers sort in answer order, not alphabetically
        page.uncheck("#filter-flagged")
        page.click("#triage-table th:has-text('Self-assessed')")
        ranks = [ANSWER_ORDER.index(a) for a in _answers(page, 5) if a]
        assert ranks == sorted(ranks) and len(set(ranks)) == 3  # Nej, then Delvist, then Ja
        page.click("#triage-table th:has-text('Self-assessed')")
        ranks = [ANSWER_ORDER.index(a) for a in _answers(page, 5) if a]
        assert ranks == sorted(ranks, reverse=True)

        # filters: reason, municipality, test, confidence
        total = page.locator("#triage-table tbody tr:visible").count()
        page.select_option("#filter-municipality", "Odsherred")
        assert set(_answers(page, 2)) and all(t.startswith("Odsherred") for t in _answers(page, 2))
        page.select_option("#filter-municipality", "")
        page.select_option("#filter-test", "good_practice_test")
        assert set(_answers(page, 3)) == {"good_practice_test"}
        page.select_option("#filter-test", "")
        page.select_option("#filter-reason", "unsupported_claim")
        assert all("unsupported_claim" in t for t in _answers(page, 7)) and _answers(page, 7)
        page.select_option("#filter-reason", "")
        page.select_option("#filter-confidence", "0.5")
        assert all(float(t) >= 0.5 for t in _answers(page, 1)) and len(_answers(page, 1)) < total
        page.select_option("#filter-confidence", "0")
        page.check("#filter-flagged")

        # decisions: confirm, dismiss, correct with an answer and a note; kept across a reload
        page.fill("#analyst", "test-analyst")
        page.dispatch_event("#analyst", "change")
        visible = page.locator('#triage-table tbody tr:visible:not([data-effort="injected-test-page"])')
        keys = [visible.nth(i).get_attribute("data-key") for i in range(3)]
        row = lambda key: page.locator(f'#triage-table tbody tr[data-key="{key}"]').first  # noqa: E731
        row(keys[0]).locator("button[data-verdict=confirm]").click()
        row(keys[1]).locator("button[data-verdict=dismiss]").click()
        row(keys[2]).locator("td.decision select").select_option("Delvist")
        row(keys[2]).locator("button[data-verdict=correct]").click()
        row(keys[2]).locator("input.note").fill('=HYPERLINK("x"), says "Delvist"')
        row(keys[2]).locator("input.note").dispatch_event("change")
        page.reload()
        assert row(keys[0]).locator("button[data-verdict=confirm]").get_attribute("aria-pressed") == "true"
        assert row(keys[1]).locator("button[data-verdict=dismiss]").get_attribute("aria-pressed") == "true"
        assert row(keys[2]).locator("button[data-verdict=correct]").get_attribute("aria-pressed") == "true"
        assert row(keys[2]).locator("td.decision select").input_value() == "Delvist"
        assert row(keys[2]).locator("input.note").input_value().startswith("=HYPERLINK")
        assert page.inner_text("#decided-count") == "3"
        page.select_option("#filter-decision", "decided")
        assert page.locator("#triage-table tbody tr:visible").count() >= 3

        with page.expect_download() as download:
            page.click("#export")
        exported = tmp_path / "verdicts.csv"
        download.value.save_as(exported)

    text = exported.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(VERDICT_COLUMNS)
    by_key = {f"{r['effort_id']}|{r['criterion_id']}": r for r in rows}
    assert set(by_key) == set(keys)
    assert by_key[keys[0]]["verdict"] == "confirm" and by_key[keys[0]]["answer"] == ""
    assert by_key[keys[1]]["verdict"] == "dismiss"
    assert by_key[keys[2]]["verdict"] == "correct" and by_key[keys[2]]["answer"] == "Delvist"
    assert by_key[keys[2]]["note"] == '\'=HYPERLINK("x"), says "Delvist"'  # neutralised for spreadsheets
    assert all(r["analyst"] == "test-analyst" and r["decided_at"] for r in rows)
    # the export is exactly what `evidens review import` reads
    known = {(e.effort_id, a.criterion_id) for e in labelled_efforts for t in e.tests for a in t.answers}
    assert len(read_verdicts(exported, known)) == 3


def test_a_quoted_sentence_with_a_bar_in_it_stays_whole():
    """Evidence reaches the report as records, never parsed back from the CSV cell: a sentence containing
    " | " is one quote (generated fixture)."""
    from pipeline.records import Prediction, Quote

    sentence = "Borgeren vælger selv: job | uddannelse | praktik, og jobkonsulenten følger op hver uge."
    prediction = Prediction(
        effort_id="generated", criterion_id="crit-1", test_kind="evidence_test", item="Borgere får opfølgning",
        p_ja=0.5, p_delvist=0.3, p_nej=0.2, predicted="Ja", self_assessed="Ja",
        quotes=[Quote(section="description", index=3, text=sentence)],
    )  # fmt: skip
    (row,) = report_rows([prediction], [], [])
    assert len(row.evidence) == 1 and row.evidence[0][0] == "description"
    assert "".join(text for text, _ in row.evidence[0][1]) == sentence


# --- decisions are kept per report: local storage is shared by every file:// page ---


def _generated_page(effort_id: str, municipality: str) -> tuple[Effort, list, list]:
    """A generated effort with two self-assessed answers, each predicted otherwise and flagged (generated
    fixture, not real data)."""
    from pipeline.records import AnswerRecord, Flag, Prediction, SelfAssessment

    criteria = [("crit-1", "Borgere får opfølgning"), ("crit-2", "Indsatsen har en manual")]
    effort = Effort(
        effort_id=effort_id,
        source="generated fixture",
        content_sha256="0" * 64,
        kind="effort_page",
        municipality=municipality,
        title=f"Genereret testindsats {effort_id}",
        tests=[
            SelfAssessment(
                kind="evidence_test",
                answers=[AnswerRecord(item=item, answer="Ja", criterion_id=c) for c, item in criteria],
            )
        ],
    )
    predictions = [
        Prediction(
            effort_id=effort_id,
            criterion_id=c,
            test_kind="evidence_test",
            item=item,
            p_ja=0.1,
            p_delvist=0.2,
            p_nej=0.7,
            predicted="Nej",
            self_assessed="Ja",
        )
        for c, item in criteria
    ]
    flags = [
        Flag(
            effort_id=effort_id,
            criterion_id=c,
            test_kind="evidence_test",
            item=item,
            reason="model_disagrees",
            confidence=0.6,
            self_assessed="Ja",
            predicted="Nej",
        )
        for c, item in criteria
    ]
    return effort, predictions, flags


def _write_generated_report(out, *effort_ids: str):
    """report.html in `out` through the one place a report is rendered, from generated pages."""
    from pipeline.outputs.scoring import write_analyst_report

    parts = [_generated_page(effort_id, "Genereret Kommune") for effort_id in effort_ids]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    write_analyst_report(
        path,
        [effort for effort, _, _ in parts],
        [p for _, predictions, _ in parts for p in predictions],
        [f for _, _, flags in parts for f in flags],
    )
    return path


def test_a_report_is_identified_by_its_output_folder(tmp_path, monkeypatch):
    """Before: every report stored its decisions under one local-storage key, shared by every file:// page,
    so an export carried another report's decisions. Now a report's identity is its output folder's: another
    folder gets another, a rebuild of the same folder (reached by a relative path too) the same."""
    from pipeline.outputs.report import report_identity

    first = _write_generated_report(tmp_path / "a", "generated-a")
    second = _write_generated_report(tmp_path / "b", "generated-a")  # the same pages, another folder
    identity = report_identity(tmp_path / "a")
    assert identity != report_identity(tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    assert report_identity(tmp_path / "a") == report_identity(Path("a")) == report_identity(Path("b/../a"))

    html = first.read_text(encoding="utf-8")
    assert f'<meta name="evidens-report-id" content="{identity}">' in html
    assert f'var REPORT_ID = "{identity}";' in html
    assert report_identity(tmp_path / "b") in second.read_text(encoding="utf-8")
    assert identity not in second.read_text(encoding="utf-8")
    assert "evidens.decisions.v1" not in html  # the former key, shared by every report, is not read

    rebuilt = _write_generated_report(tmp_path / "a", "generated-a", "generated-a2")  # more pages
    assert f'var REPORT_ID = "{identity}";' in rebuilt.read_text(encoding="utf-8")


def _decide(page, key: str, verdict: str) -> None:
    page.locator(f'#triage-table tbody tr[data-key="{key}"] button[data-verdict={verdict}]').click()


def _pressed(page, key: str, verdict: str) -> bool:
    button = page.locator(f'#triage-table tbody tr[data-key="{key}"] button[data-verdict={verdict}]')
    return button.get_attribute("aria-pressed") == "true"


def _export(page, path):
    with page.expect_download() as download:
        page.click("#export")
    download.value.save_as(path)
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.mark.slow  # a browser
@pytest.mark.skipif(
    chromium_path() is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_decisions_stay_with_their_report_and_survive_its_rebuild(tmp_path):
    """Report A's decisions are not in report B (another folder, one page in common) nor in B's export; A
    rebuilt in its folder still has them; an export holds only the rows of the report it is made from."""
    pytest.importorskip("playwright.sync_api")

    a, b = tmp_path / "a", tmp_path / "b"
    report_a = _write_generated_report(a, "generated-shared", "generated-a")
    report_b = _write_generated_report(b, "generated-shared", "generated-b")
    shared, only_a, only_b = "generated-shared|crit-1", "generated-a|crit-1", "generated-b|crit-1"
    with browser_page() as page:  # one browser: every file:// page shares its local storage
        page.goto(report_a.as_uri())
        _decide(page, shared, "confirm")
        _decide(page, only_a, "dismiss")
        assert page.inner_text("#decided-count") == "2"

        page.goto(report_b.as_uri())
        assert page.inner_text("#decided-count") == "0"
        assert not _pressed(page, shared, "confirm")  # the same answer, decided in another report
        assert page.locator("#triage-table tbody tr.decided").count() == 0
        assert _export(page, tmp_path / "b-empty.csv") == []
        _decide(page, only_b, "confirm")
        exported_b = _export(page, tmp_path / "b.csv")
        assert [(r["effort_id"], r["criterion_id"], r["verdict"]) for r in exported_b] == [
            ("generated-b", "crit-1", "confirm")
        ]
        known_b = {("generated-shared", c) for c in ("crit-1", "crit-2")} | {
            ("generated-b", c) for c in ("crit-1", "crit-2")
        }
        assert len(read_verdicts(tmp_path / "b.csv", known_b)) == 1  # `evidens review import` takes it

        _write_generated_report(a, "generated-shared", "generated-a")  # rebuilt in the same folder
        page.goto(report_a.as_uri())
        assert _pressed(page, shared, "confirm") and _pressed(page, only_a, "dismiss")
        assert page.inner_text("#decided-count") == "2"

        _write_generated_report(a, "generated-shared")  # rebuilt without one page: its decision not exported
        page.goto(report_a.as_uri())
        assert page.inner_text("#decided-count") == "1"
        exported_a = _export(page, tmp_path / "a.csv")
        assert [(r["effort_id"], r["criterion_id"], r["verdict"]) for r in exported_a] == [
            ("generated-shared", "crit-1", "confirm")
        ]

        _write_generated_report(a, "generated-shared", "generated-a")  # the page back: so is its decision
        page.goto(report_a.as_uri())
        assert _pressed(page, only_a, "dismiss") and page.inner_text("#decided-count") == "2"
