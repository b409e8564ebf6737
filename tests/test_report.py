"""The analysts' report in a real browser: it renders, sorts answers in answer order, filters, keeps decisions
across a reload, exports them as the documented CSV, and runs none of the scraped text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from conftest import outside_references
from scaffolding import browser_page, chromium_path

from pipeline.judgement.evaluate import leave_one_effort_out
from pipeline.judgement.model import EvidensModel
from pipeline.outputs.flags import all_flags
from pipeline.outputs.report import ReportContent, ReportRow, write_report
from pipeline.outputs.report.rows import highlighted, honest_figures, report_rows
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
    with ReportContent.of([*labelled_efforts, hostile], rows, flags) as content:
        write_report(path, content, figures=figures)
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


def _sort_values(page, column: int) -> list[str]:
    """The shown rows' values in a column as the table sorts them (numbers unformatted: 0.5, not 0,50)."""
    cells = page.locator(f"#triage-table tbody tr:visible td:nth-child({column})")
    return [cells.nth(i).get_attribute("data-sort") for i in range(cells.count())]


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
        assert "grundlinje: det hyppigste svar" in page.inner_text(
            "#honest-figures"
        )  # predictor names in Danish

        # flagged only by default, most suspicious first
        confidences = [float(t) for t in _sort_values(page, 1)]
        assert confidences == sorted(confidences, reverse=True) and min(confidences) > 0

        # answers sort in answer order, not alphabetically
        page.uncheck("#filter-flagged")
        page.click("#triage-table th:has-text('Selvvurderet')")
        ranks = [ANSWER_ORDER.index(a) for a in _answers(page, 4) if a]
        assert ranks == sorted(ranks) and len(set(ranks)) == 3  # Nej, then Delvist, then Ja
        page.click("#triage-table th:has-text('Selvvurderet')")
        ranks = [ANSWER_ORDER.index(a) for a in _answers(page, 4) if a]
        assert ranks == sorted(ranks, reverse=True)

        # filters: reason, municipality, test, confidence; test names and reasons in words, as on the page
        total = page.locator("#triage-table tbody tr:visible").count()
        page.select_option("#filter-municipality", "Odsherred")
        assert set(_answers(page, 2)) and all(t.startswith("Odsherred") for t in _answers(page, 2))
        page.select_option("#filter-municipality", "")
        page.select_option("#filter-test", "good_practice_test")
        assert {t.splitlines()[1] for t in _answers(page, 2)} == {"God praksis test"}
        page.select_option("#filter-test", "")
        page.select_option("#filter-reason", "unsupported_claim")
        phrase = "angiver en praksis, som siden ikke beskriver"
        assert _answers(page, 6) and all(
            phrase in t and "unsupported_claim" not in t for t in _answers(page, 6)
        )
        page.select_option("#filter-reason", "")
        page.select_option("#filter-confidence", "0.5")
        assert all(float(t) >= 0.5 for t in _sort_values(page, 1)) and len(_answers(page, 1)) < total
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


GENERATED_SENTENCES = [
    "Denne side er genereret til en test.",
    "Borgerne får en samtale med beskæftigelsesindsatsen hver uge.",
    "Indsatsen følger en skriftlig manual.",
    "Den sidste sætning er også genereret.",
]


def _generated_page(effort_id: str, municipality: str) -> tuple[Effort, list, list]:
    """A generated effort with two self-assessed answers, each predicted otherwise and flagged (generated
    fixture, not real data)."""
    from pipeline.records import AnswerRecord, Flag, Prediction, Quote, SelfAssessment

    criteria = [("crit-1", "Borgere får opfølgning"), ("crit-2", "Indsatsen har en manual")]
    quoted = {"crit-1": GENERATED_SENTENCES[1], "crit-2": GENERATED_SENTENCES[2]}
    effort = Effort(
        effort_id=effort_id,
        source="generated fixture",
        content_sha256="0" * 64,
        kind="effort_page",
        municipality=municipality,
        title=f"Genereret testindsats {effort_id}",
        sections=Sections(
            description=" ".join(GENERATED_SENTENCES).replace("beskæftigelses", "be-skæftigelses")
        ),
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
            quotes=[Quote(section="description", index=GENERATED_SENTENCES.index(quoted[c]), text=quoted[c])],
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


def _write_generated_report(out, *effort_ids: str, labels: Path | None = None, lang: str = "da"):
    """report.html in `out` through the one place a report is rendered, from generated pages, with the
    verdicts imported into `labels` where given."""
    from pipeline.outputs.review import current_verdicts, load_verdicts
    from pipeline.outputs.scoring import write_analyst_report

    parts = [_generated_page(effort_id, "Genereret Kommune") for effort_id in effort_ids]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    write_analyst_report(
        path,
        [effort for effort, _, _ in parts],
        [p for _, predictions, _ in parts for p in predictions],
        [f for _, _, flags in parts for f in flags],
        verdicts=current_verdicts(load_verdicts(labels)) if labels else {},
        lang=lang,
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


# --- the analyst's desk: Danish words, verdicts that come back, context, keys, a page that fits ---


def _template_messages() -> set[str]:
    """Every msgid of the report's templates and flag checks, extracted as `pybabel extract` does (babel.cfg)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    root = Path(__file__).resolve().parents[1]
    with (root / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {"_": None, "gettext": None, "register_flag_check": (2,)}
    found = extract_from_dir(root, method_map, options_map, keywords=keywords)
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def test_every_message_of_the_report_has_a_danish_translation():
    """Danish is the default: no word of the report may fall back to its English msgid, and a translation keeps
    the message's placeholders."""
    import re

    from babel.messages.pofile import read_po

    from pipeline.outputs.flags import FLAG_CHECKS
    from pipeline.outputs.report.i18n import catalogue_path

    messages = _template_messages()
    assert {check.words for check in FLAG_CHECKS.values()} <= messages  # the reasons' phrases are extracted
    assert {"Evidence test", "Good practice test", "Confirm"} <= messages
    with catalogue_path("da").open("rb") as po:
        danish = {m.id: m.string for m in read_po(po) if m.id}
    untranslated = sorted(m for m in messages if not danish.get(m))
    assert untranslated == []
    placeholder = re.compile(r"%\(\w+\)s|\{\w+\}|%%")
    assert [
        m for m in messages if sorted(placeholder.findall(m)) != sorted(placeholder.findall(danish[m]))
    ] == []


def _visible_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for hidden in soup(["script", "style"]):
        hidden.decompose()
    return soup.get_text(" ")


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "da",
            [
                "Evidenstest",
                "sidens tal eller modellen peger på et andet svar",
                "opfylder ikke (Nej)",
                "Bekræft",
            ],
        ),
        (
            "en",
            [
                "Evidence test",
                "the page's figures or the model point to another answer",
                "does not meet (Nej)",
            ],
        ),
    ],
)
def test_the_report_renders_in_both_languages_with_reasons_as_phrases(tmp_path, lang, words):
    html = _write_generated_report(tmp_path, "generated-a", lang=lang).read_text(encoding="utf-8")
    text = _visible_text(html)
    assert f'<html lang="{lang}">' in html
    assert all(word in text for word in words), [w for w in words if w not in text]
    # codes stay out of what the analyst reads (they remain in data attributes, the filters' values and the CSV)
    assert "model_disagrees" not in text and "evidence_test" not in text
    assert 'data-reasons="model_disagrees"' in html and '<option value="model_disagrees">' in html
    # one probability with its meaning, never three bare numbers
    assert "0,70" in text if lang == "da" else "0.70" in text
    assert "0.10 / 0.20 / 0.70" not in text and "0,10" not in text


@pytest.mark.parametrize(("lang", "name"), [("da", "model (regelhoved)"), ("en", "model (rules head)")])
def test_the_honest_figures_name_their_predictors_in_the_report_language(lang, name):
    from pipeline.outputs.report.html import render_report

    effort, predictions, flags = _generated_page("generated-a", "Genereret Kommune")
    figures = [("model (rules head)", "0.28 [0.16, 0.41]", "0.05 [-0.08, 0.20]")]
    with ReportContent.of([effort], report_rows(predictions, flags, [effort]), flags) as content:
        html = "".join(render_report(content, figures, report_id="test", lang=lang))
    assert f"<td>{name}</td>" in html


def test_a_silent_criterion_is_named_not_mentioned_and_an_unknown_language_is_refused(tmp_path):
    from pipeline.errors import EvidensError
    from pipeline.outputs.report.i18n import translations

    effort, predictions, flags = _generated_page("generated-a", "Genereret Kommune")
    predictions[0] = predictions[0].model_copy(
        update={"stated": "silent", "p_ja": 0.3, "p_delvist": 0.4, "p_nej": 0.3}
    )
    rows = report_rows(predictions, flags, [effort])
    path = tmp_path / "report.html"
    with ReportContent.of([effort], rows, flags) as content:
        write_report(path, content)
    text = _visible_text(path.read_text(encoding="utf-8"))
    assert "ikke nævnt" in text and "0,30" not in text
    with pytest.raises(EvidensError, match=r"^unknown report language 'fr' \(expected one of da, en\)$"):
        translations("fr")


def test_quotes_carry_no_line_break_hyphenation(fake_model, labelled_efforts):
    """The real pages break words across lines ("be-skæftigelsesindsatsen"); a quote joins them, and keeps
    real compounds such as "IT-hjælp"."""
    from pipeline.textnorm import dehyphenate

    raw = " ".join(text for e in labelled_efforts for text in e.sections.model_dump().values())
    assert dehyphenate(raw) != raw  # the corpus has such breaks: the test can fail
    predictions = fake_model.predict(labelled_efforts)
    quotes = [q.text for p in predictions for q in p.quotes]
    assert quotes and [q for q in quotes if dehyphenate(q) != q] == []
    assert dehyphenate("IT-hjælp, job- og uddannelse, be-skæftigelsesindsatsen") == (
        "IT-hjælp, job- og uddannelse, beskæftigelsesindsatsen"
    )


def test_imported_verdicts_are_on_their_rows_and_counted_before_any_script_runs(tmp_path):
    from pipeline.outputs.review import Verdict

    effort, predictions, flags = _generated_page("generated-a", "Genereret Kommune")
    verdict = Verdict(
        "generated-a", "crit-1", "correct", "Delvist", "tjekket", "AB", "2026-11-24T09:00:00+00:00"
    )
    path = tmp_path / "report.html"
    rows = report_rows(predictions, flags, [effort])
    with ReportContent.of([effort], rows, flags, verdicts={verdict.key: verdict}) as content:
        write_report(path, content)
    html = path.read_text(encoding="utf-8")
    assert '<b id="decided-count">1</b>' in html
    assert "Importeret: <b>rettet</b> (Delvist) · AB · " in html
    assert "dækker 1 af de 2 markerede svar: i 1 af dem" in _visible_text(
        html
    )  # Delvist is not the Ja claimed
    # the section is embedded, hyphenation joined, so the quote is found in it
    assert "med beskæftigelsesindsatsen hver uge" in html and "be-skæftigelses" not in html


# --- in a browser ---

VIEWPORTS = {"desktop": (1366, 900), "phone": (390, 844)}
AXE = Path(__file__).resolve().parents[1] / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
needs_chromium = pytest.mark.skipif(
    chromium_path() is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)

CLIPPED = """() => {
  const width = document.documentElement.clientWidth;
  const buttons = Array.from(document.querySelectorAll('#triage-table tbody tr'))
    .filter(row => row.offsetParent !== null)
    .flatMap(row => Array.from(row.querySelectorAll('button[data-verdict]')));
  return {
    width, scrollWidth: document.documentElement.scrollWidth, buttons: buttons.length,
    clipped: buttons.map(b => b.getBoundingClientRect())
      .filter(box => box.left < 0 || box.right > width || box.width === 0).length,
  };
}"""


@pytest.mark.slow  # a browser, and the real e5 behind the report
@needs_chromium
@pytest.mark.parametrize("size", VIEWPORTS)
def test_no_decision_control_is_clipped(report_file, size):
    """Before: the page was 1447 px wide, cutting off "dismiss" at 1366 px; on a phone three columns showed."""
    pytest.importorskip("playwright.sync_api")
    width, height = VIEWPORTS[size]
    with browser_page() as page:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(report_file.as_uri())
        page.uncheck("#filter-flagged")  # every row, the longest quotes included
        measured = page.evaluate(CLIPPED)
    assert measured["buttons"] >= 3 * 40 and measured["width"] == width
    assert measured["clipped"] == 0 and measured["scrollWidth"] <= width, measured


@pytest.mark.slow  # a browser, and the real e5 behind the report
@needs_chromium
def test_the_report_passes_axe_without_serious_or_critical_violations(report_file):
    pytest.importorskip("playwright.sync_api")
    if not AXE.exists():
        pytest.skip(
            f"axe-core is not installed at {AXE} (.ci/run: npm install --prefix .cache/axe axe-core@4.14.1)"
        )
    with browser_page() as page:
        page.goto(report_file.as_uri())
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            "() => axe.run(document).then(r => r.violations.map(v => [v.id, v.impact, v.nodes.length]))"
        )
    assert [v for v in violations if v[1] in ("serious", "critical")] == []


def _row(page, key: str):
    return page.locator(f'#triage-table tbody tr[data-key="{key}"]')


@pytest.mark.slow  # a browser and the CLI in a subprocess
@needs_chromium
def test_keyboard_decisions_come_back_after_import_and_rebuild(tmp_path):
    """Decide three rows with the keys, export, `evidens review import` into a labels folder, rebuild: a fresh
    browser shows the three verdicts on their rows, counts them, and filters by them; a browser decision that
    differs from an imported one is shown beside it, not over it."""
    pytest.importorskip("playwright.sync_api")
    from conftest import run_cli

    from pipeline.tables import write_table

    out, labels = tmp_path / "reports", tmp_path / "labels"
    labels.mkdir()
    pages = ("generated-a", "generated-b")
    answers = [
        {"effort_id": e, "criterion_id": c, "answer": "Ja"} for e in pages for c in ("crit-1", "crit-2")
    ]
    write_table(labels / "answers.csv", answers, ("effort_id", "criterion_id", "answer"))
    report = _write_generated_report(out, *pages, labels=labels)

    with browser_page() as page:
        page.goto(report.as_uri())
        page.fill("#analyst", "AB")
        page.dispatch_event("#analyst", "change")
        page.locator("body").click(position={"x": 1, "y": 1})  # the keys act on the page, not the analyst box
        keys = page.locator("#triage-table tbody tr:visible").evaluate_all(
            "rows => rows.map(row => row.getAttribute('data-key'))"
        )
        for press in ("j", "c", "j", "d", "j", "x"):
            page.keyboard.press(press)
        assert page.inner_text("#decided-count") == "3"
        assert page.locator("#triage-table tbody tr.current").get_attribute("data-key") == keys[2]
        assert page.locator("#keys-help").is_visible() and "j" in page.inner_text("#keys-help")
        exported = _export(page, tmp_path / "verdicts.csv")
    assert sorted((r["effort_id"] + "|" + r["criterion_id"], r["verdict"]) for r in exported) == sorted(
        zip(keys[:3], ("confirm", "dismiss", "correct"), strict=True)
    )

    imported = run_cli("review", "import", str(tmp_path / "verdicts.csv"), "--labels", str(labels))
    assert imported.returncode == 0, imported.stderr
    report = _write_generated_report(out, *pages, labels=labels)

    with browser_page() as page:  # a fresh browser: nothing in its local storage
        page.goto(report.as_uri())
        assert page.inner_text("#decided-count") == "3"
        for key, word in zip(keys[:3], ("bekræftet", "afvist", "rettet"), strict=True):
            line = _row(page, key).locator(".imported").inner_text()
            assert line.startswith(f"Importeret: {word}") and "AB" in line and "UTC" in line
        assert _pressed(page, keys[0], "confirm") and _pressed(page, keys[2], "correct")
        page.select_option("#filter-decision", "decided")
        shown = page.locator("#triage-table tbody tr:visible").evaluate_all(
            "rows => rows.map(row => row.getAttribute('data-key'))"
        )
        assert sorted(shown) == sorted(keys[:3])
        page.select_option("#filter-decision", "open")
        assert page.locator("#triage-table tbody tr:visible").count() == 1
        page.select_option("#filter-decision", "")

        _decide(page, keys[0], "dismiss")  # differs from the imported confirm
        conflict = _row(page, keys[0]).locator(".conflict")
        assert (
            conflict.is_visible()
            and "afvist" in conflict.inner_text()
            and "bekræftet" in conflict.inner_text()
        )
        assert _row(page, keys[0]).locator(".imported").inner_text().startswith("Importeret: bekræftet")
        assert page.inner_text("#decided-count") == "3"


@pytest.mark.slow  # a browser
@needs_chromium
def test_a_quote_opens_in_its_section_with_the_sentence_marked(tmp_path):
    pytest.importorskip("playwright.sync_api")
    report = _write_generated_report(tmp_path, "generated-a")
    with browser_page() as page:
        page.goto(report.as_uri())
        row = _row(page, "generated-a|crit-1")
        row.locator("button.quote").first.click()
        dialog = page.locator("dialog#context")
        assert dialog.is_visible()
        assert dialog.locator("mark").inner_text() == GENERATED_SENTENCES[1]
        text = dialog.locator("#context-text").inner_text()
        assert GENERATED_SENTENCES[0] in text and GENERATED_SENTENCES[2] in text  # its neighbours
        page.keyboard.press("Escape")
        assert not dialog.is_visible()
        page.locator("body").click(position={"x": 1, "y": 1})
        page.keyboard.press("j")
        page.keyboard.press("o")  # the key opens the current row's first quote
        assert dialog.is_visible() and dialog.locator("mark").count() == 1


def test_a_report_gathered_page_by_page_is_the_report_of_all_pages_at_once():
    """A batch adds its pages to the report one at a time (ReportContent.add, the rows spooled to disk): the
    rows sorted across pages, the summaries, the counts and the imported verdicts come out as they do from all
    pages at once."""
    from pipeline.outputs.report import render_report
    from pipeline.outputs.review import Verdict

    pages = [
        _generated_page(effort_id, municipality)
        for effort_id, municipality in [
            ("generated-a", "Genereret Kommune"),
            ("generated-b", "Anden Genereret Kommune"),
            ("generated-c", "Genereret Kommune"),
        ]
    ]
    effort, predictions, flags = pages[1]
    pages[1] = effort, predictions, [flags[0].model_copy(update={"confidence": 0.9}), flags[1]]
    verdict = Verdict(
        "generated-b", "crit-1", "correct", "Delvist", "tjekket", "AB", "2026-11-24T09:00:00+00:00"
    )
    efforts = [effort for effort, _, _ in pages]
    predictions = [p for _, page_predictions, _ in pages for p in page_predictions]
    flags = [f for _, _, page_flags in pages for f in page_flags]
    rows = report_rows(predictions, flags, efforts)
    with ReportContent.of(efforts, rows, flags, {verdict.key: verdict}) as content:
        at_once = "".join(render_report(content, report_id="test"))
    with ReportContent({verdict.key: verdict}) as content:
        for effort, page_predictions, page_flags in pages:
            content.add([effort], report_rows(page_predictions, page_flags, [effort]), page_flags)
        page_by_page = "".join(render_report(content, report_id="test"))
    assert page_by_page == at_once
    triage = at_once[at_once.index('id="triage"') :]
    assert triage.index('data-effort="generated-b"') < triage.index('data-effort="generated-a"')
    assert '<b id="decided-count">1</b>' in at_once
