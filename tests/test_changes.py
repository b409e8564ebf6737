"""What changed since the previous batch run: the change computation, changes.json over batch runs, and the
report's changes block and source link with hostile text. Flags and pages here are generated fixtures."""

from __future__ import annotations

import json

import pytest
from conftest import ODSHERRED, TAARNBY, run_cli

from pipeline.batch import run as batch
from pipeline.outputs.changes import FlagState, RunFlags, RunInfo, flag_changes
from pipeline.outputs.flags import score_mismatches
from pipeline.outputs.report import ReportContent, render_report
from pipeline.outputs.report.rows import report_rows
from pipeline.records import Effort, Flag, Prediction

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
RUN_1 = RunInfo(run_id="run-1", built_at="2026-12-01T10:00:00+00:00", model="models:/evidens/1")
RUN_2 = RunInfo(run_id="run-2", built_at="2026-12-01T11:00:00+00:00", model="models:/evidens/1")


def _flag(
    effort_id="nyby-aaaaaaaaaaaa", criterion="crit-1", reason="unsupported_claim", **fields
) -> FlagState:
    values = {
        "item": f"item of {criterion}",
        "self_assessed": "Ja",
        "predicted": "Nej",
        "confidence": 0.8,
        "explanation": "claims Ja",
    } | fields
    return FlagState(
        source="in/nyby.txt",
        effort_id=effort_id,
        criterion_id=criterion,
        test_kind="evidence_test",
        reason=reason,
        **values,
    )


def test_a_first_run_has_no_previous_run_and_every_flag_is_new():
    flags = [_flag(criterion="crit-1"), _flag(criterion="crit-2")]
    changes = flag_changes(None, RunFlags(run=RUN_1, flags=flags))
    assert changes.previous_run is None and changes.current_run == RUN_1
    assert changes.new == flags and changes.changed == [] and changes.resolved == []
    assert changes.counts == {"new": 2, "changed": 0, "resolved": 0, "unchanged": 0}


def test_new_changed_resolved_and_unchanged_flags():
    before = [
        _flag(criterion="crit-kept"),
        _flag(criterion="crit-moved", predicted="Delvist"),
        _flag(criterion="crit-gone"),
        _flag(criterion="crit-reworded", explanation="old words"),
    ]
    after = [
        _flag(criterion="crit-kept", confidence=0.3),  # a new confidence alone is no change
        _flag(criterion="crit-moved", predicted="Nej"),
        _flag(criterion="crit-reworded", explanation="new words"),
        _flag(criterion="crit-kept", reason="model_disagrees"),  # same answer, another reason: a new flag
    ]
    changes = flag_changes(RunFlags(run=RUN_1, flags=before), RunFlags(run=RUN_2, flags=after))
    assert changes.previous_run == RUN_1
    assert [(f.criterion_id, f.reason) for f in changes.new] == [("crit-kept", "model_disagrees")]
    assert [(c.after.criterion_id, c.fields) for c in changes.changed] == [
        ("crit-moved", ["predicted"]),
        ("crit-reworded", ["explanation"]),
    ]
    assert changes.changed[0].before.predicted == "Delvist" and changes.changed[0].after.predicted == "Nej"
    assert [f.criterion_id for f in changes.resolved] == ["crit-gone"]
    assert changes.counts == {"new": 1, "changed": 2, "resolved": 1, "unchanged": 1}


def test_an_edited_page_whose_effort_id_moved_keeps_its_flags_identity():
    """The effort id's hash follows the content: an edit gives a new id, but the same flag is changed, not new."""
    before = [_flag(effort_id="nyby-aaaaaaaaaaaa", self_assessed="Ja")]
    after = [_flag(effort_id="nyby-bbbbbbbbbbbb", self_assessed="Delvist")]
    changes = flag_changes(RunFlags(run=RUN_1, flags=before), RunFlags(run=RUN_2, flags=after))
    assert (len(changes.new), len(changes.resolved)) == (0, 0)
    assert changes.changed[0].fields == ["self_assessed"]
    assert changes.changed[0].after.effort_id == "nyby-bbbbbbbbbbbb"


def test_two_flags_of_one_identity_are_told_apart_by_their_order():
    twice = [_flag(explanation="target group A"), _flag(explanation="target group B")]
    once = flag_changes(RunFlags(run=RUN_1, flags=twice), RunFlags(run=RUN_2, flags=twice[:1]))
    assert (once.counts["unchanged"], [f.explanation for f in once.resolved]) == (1, ["target group B"])


# --- the report ---------------------------------------------------------------------------------------------
def _report(changes=None, source_url="https://www.nyby.dk/indsats?a=1&b=2", lang="en") -> str:
    """The report of one generated effort, in English unless `lang` says otherwise."""
    effort = Effort(
        effort_id="nyby-aaaaaaaaaaaa",
        source="in/nyby.txt",
        content_sha256="c",
        kind="effort_page",
        municipality="Nyby",
        title=HOSTILE,
        source_url=source_url,
        retrieved_at="2026-11-30",
    )
    prediction = Prediction(
        effort_id=effort.effort_id,
        criterion_id="crit-1",
        test_kind="evidence_test",
        item=HOSTILE,
        p_ja=0.1,
        p_delvist=0.1,
        p_nej=0.8,
        predicted="Nej",
        self_assessed="Ja",
    )
    flag = Flag(**_flag(effort_id=effort.effort_id, item=HOSTILE).model_dump(exclude={"source"}))
    rows = report_rows([prediction], [flag], [effort])
    with ReportContent.of([effort], rows, [flag]) as content:
        return "".join(render_report(content, changes=changes, report_id="test", lang=lang))


def test_the_report_links_the_live_page_with_its_retrieval_date():
    page = _report()
    link = '<a href="https://www.nyby.dk/indsats?a=1&amp;b=2" rel="noopener noreferrer" target="_blank">'
    assert link in page and "retrieved 2026-11-30" in page
    assert HOSTILE not in page and "&lt;script&gt;alert(1)" in page
    assert 'class="muted source-link"' not in _report(source_url=None)  # no URL, no link
    assert ">kildeside</a>, hentet 2026-11-30" in _report(lang="da")


def test_the_changes_block_shows_counts_and_marks_new_flags_with_hostile_text_escaped():
    hostile = _flag(item=HOSTILE, explanation=HOSTILE, criterion=HOSTILE)
    changes = flag_changes(
        RunFlags(run=RUN_1, flags=[_flag(criterion="crit-gone")]),
        RunFlags(run=RUN_2.model_copy(update={"model": HOSTILE}), flags=[hostile]),
    )
    page = _report(changes)
    block = page[page.index('<section id="changes">') : page.index("</section>")]
    assert "Against run run-1" in block
    assert "1 new, 0 changed, 1 resolved" in block
    assert block.count('class="change-new"') == 1 and block.count('class="change-resolved"') == 1
    assert '<span class="flag">new</span>' in block
    assert HOSTILE not in page and "<img src=x" not in page and "&lt;img src=x onerror" in block


def test_a_report_without_changes_has_no_changes_block_and_a_first_run_says_so():
    assert 'id="changes"' not in _report(None)
    first = _report(flag_changes(None, RunFlags(run=RUN_1, flags=[_flag()])))
    assert "A first run: nothing to compare with, every flag is new" in first
    danish = _report(flag_changes(None, RunFlags(run=RUN_1, flags=[_flag()])), lang="da")
    assert "Ændringer siden forrige kørsel" in danish and "1 nye, 0 ændrede, 0 løste" in danish


def test_the_changes_block_shows_at_most_max_changes_shown_of_a_kind():
    from pipeline.outputs.report.html import MAX_CHANGES_SHOWN

    many = [_flag(criterion=f"crit-{n}") for n in range(MAX_CHANGES_SHOWN + 3)]
    page = _report(flag_changes(None, RunFlags(run=RUN_1, flags=many)))
    assert page.count('class="change-new"') == MAX_CHANGES_SHOWN and "and 3 more in changes.json" in page


# --- batch runs (a scorer without a model: the page's score checks are its flags) ----------------------------
class ScoreFlagScorer:
    """A test double for the model: no predictions, and the flags that need none (score_mismatch)."""

    def __init__(self, model_uri, cache=None):
        pass

    def score(self, key, source, efforts):
        return batch.PageResult(key=key, source=source, efforts=efforts, flags=score_mismatches(efforts))


@pytest.fixture
def pages(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "PageScorer", ScoreFlagScorer)
    folder = tmp_path / "in"
    folder.mkdir()
    for page in (ODSHERRED, TAARNBY):
        (folder / page.name).write_bytes(page.read_bytes())
    return folder


def _changes(out) -> dict:
    return json.loads((out / batch.CHANGES).read_text(encoding="utf-8"))


def test_batch_changes_over_runs_edited_and_removed_pages(tmp_path, pages):
    out = tmp_path / "out"
    first = batch.run_batch(pages, out, "runs:/unused/model")
    changes = _changes(out)
    assert changes["previous_run"] is None and changes["counts"]["new"] == 2 == len(changes["new"])
    assert first.changes == changes["counts"]

    edited = pages / ODSHERRED.name  # its good-practice score 4,4 -> 4,2: the score check still fails, anew
    edited.write_text(edited.read_text(encoding="utf-8").replace("4,4\nGod praksis", "4,2\nGod praksis"))
    (pages / TAARNBY.name).unlink()
    second = batch.run_batch(pages, out, "runs:/unused/model")
    again = _changes(out)
    assert again["previous_run"] == changes["current_run"] and again["current_run"] != changes["current_run"]
    assert again["counts"] == {"new": 0, "changed": 1, "resolved": 1, "unchanged": 0} == second.changes
    (changed,) = again["changed"]
    assert (changed["before"]["self_assessed"], changed["after"]["self_assessed"]) == ("4.4", "4.2")
    assert changed["before"]["effort_id"] != changed["after"]["effort_id"]  # a new content hash, same flag
    assert again["resolved"][0]["source"].endswith(TAARNBY.name)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"I forhold til kørsel {changes['current_run']['run_id']}" in report  # a batch's report: Danish

    before = (out / batch.CHANGES).read_bytes()
    rerun = batch.run_batch(pages, out, "runs:/unused/model")
    assert (
        rerun.changes is None and (out / batch.CHANGES).read_bytes() == before
    )  # nothing new, nothing rebuilt


@pytest.mark.parametrize("damaged", [batch.CHANGES, batch.MANIFEST, "report.html"])
def test_a_damaged_output_rebuilds_the_same_changes(tmp_path, pages, damaged):
    """A rebuild of the same run compares with the run before it, not with itself."""
    out = tmp_path / "out"
    batch.run_batch(pages, out, "runs:/unused/model")
    (pages / TAARNBY.name).unlink()
    batch.run_batch(pages, out, "runs:/unused/model")
    before, report = _changes(out), (out / "report.html").read_bytes()
    (out / damaged).write_bytes((out / damaged).read_bytes()[:50])
    batch.run_batch(pages, out, "runs:/unused/model")
    after = _changes(out)
    assert after["counts"]["resolved"] == 1 and after["previous_run"] == before["previous_run"]
    assert {k: v for k, v in after.items() if k != "current_run"} == {
        k: v for k, v in before.items() if k != "current_run"
    }
    assert (out / "report.html").read_bytes() == report


def test_a_new_sidecar_refreshes_the_page_result(tmp_path, pages):
    out = tmp_path / "out"
    batch.run_batch(pages, out, "runs:/unused/model")
    (pages / (TAARNBY.stem + ".meta.json")).write_text(
        '{"url": "https://www.taarnby.dk/x"}', encoding="utf-8"
    )
    summary = batch.run_batch(pages, out, "runs:/unused/model")
    assert summary.processed == 1 and summary.skipped == 1
    efforts = [json.loads(line) for line in (out / "efforts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {e["source_url"] for e in efforts} == {None, "https://www.taarnby.dk/x"}


@pytest.mark.slow
def test_evidens_batch_twice_writes_what_changed(tmp_path, pages, trained_model, embedding_cache):
    """The real model through the command line: a page edited so that a flag changes, one page removed."""
    out = tmp_path / "out"

    def evidens_batch():
        done = run_cli("batch", str(pages), "--out", str(out), "--tracking-uri", trained_model, "--cache",
                       str(embedding_cache))  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr, _changes(out)

    stderr, first = evidens_batch()
    flags = (out / "flags.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert first["previous_run"] is None and first["counts"]["new"] == len(flags) > 0
    assert f"flags since the previous run: {len(flags)} new, 0 changed, 0 resolved" in stderr
    taarnby_flags = [f for f in first["new"] if f["source"].endswith(TAARNBY.name)]

    edited = pages / ODSHERRED.name
    edited.write_text(edited.read_text(encoding="utf-8").replace("4,4\nGod praksis", "4,2\nGod praksis"))
    (pages / TAARNBY.name).unlink()
    stderr, second = evidens_batch()
    assert second["previous_run"] == first["current_run"]
    assert second["current_run"]["model"] == first["current_run"]["model"]
    assert [c["after"]["reason"] for c in second["changed"]] == ["score_mismatch"]
    assert second["changed"][0]["fields"] == ["self_assessed", "explanation"]
    assert sorted(map(json.dumps, second["resolved"])) == sorted(map(json.dumps, taarnby_flags))
    assert second["new"] == []  # the text the model reads did not change
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"0 nye, 1 ændrede, {len(taarnby_flags)} løste" in report  # the report's default language: Danish
