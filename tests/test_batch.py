"""Batch runs: good and bad pages, a run killed and resumed, a rerun that does no work."""

from __future__ import annotations

import csv
import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import REPO, TAARNBY, batch_outputs, make_effort_page, run_cli
from scaffolding import write_varied_pages

from pipeline.batch.run import OUTPUTS, STATE_DIR
from pipeline.records import PREDICTION_COLUMNS

SOURCES = [REPO / "corpus" / "raw" / "odsherred_tidlig_jobrettet_indsats.txt", TAARNBY]


def _batch(input_dir, out, uri, cache) -> subprocess.CompletedProcess[str]:
    return run_cli("batch", str(input_dir), "--out", str(out), "--tracking-uri", uri, "--cache", str(cache))


@pytest.mark.slow
def test_batch_with_good_and_bad_pages(tmp_path, trained_model, embedding_cache):
    pages = tmp_path / "in"
    write_varied_pages(SOURCES, pages, 3)
    (pages / "binary.txt").write_bytes(b"\x00\x01\x02")
    (pages / "maaske.txt").write_text(
        make_effort_page("Nyby", [("Måske", "Borgere får samtaler")]), encoding="utf-8"
    )
    (pages / "again.txt").write_bytes(TAARNBY.read_bytes())
    (pages / "again_crlf.txt").write_bytes(TAARNBY.read_bytes().replace(b"\n", b"\r\n"))
    done = _batch(pages, tmp_path / "out", trained_model, embedding_cache)
    assert done.returncode == 1, done.stderr  # some input rejected, everything else written
    assert "7 files: 6 processed, 0 already done, 1 duplicates, 2 rejected; 4 efforts" in done.stderr
    out = tmp_path / "out"
    rejected = [
        json.loads(line) for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert {r["source"].rsplit("/", 1)[1] for r in rejected} == {"binary.txt", "maaske.txt"}
    assert any("unknown answer label 'Måske'" in r["reason"] and "line" in r["reason"] for r in rejected)
    efforts = [json.loads(line) for line in (out / "efforts.jsonl").read_text(encoding="utf-8").splitlines()]
    sources = {e["source"].rsplit("/", 1)[1] for e in efforts} | {
        r["source"].rsplit("/", 1)[1] for r in rejected
    }
    assert sources == {p.name for p in pages.iterdir()} - {"again_crlf.txt"}  # every page somewhere, once
    header = (out / "predictions.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(PREDICTION_COLUMNS)
    answers = sum(len(a["answers"]) for e in efforts for a in e["tests"])
    assert len((out / "predictions.csv").read_text(encoding="utf-8").splitlines()) == 1 + answers
    assert (out / "report.html").read_text(encoding="utf-8").count(
        'class="effort-link"'
    ) == 4  # 4 assessed pages


@pytest.mark.slow
def test_killed_batch_resumes_to_the_same_outputs_and_a_rerun_does_no_work(
    tmp_path, trained_model, embedding_cache
):
    pages = tmp_path / "in"
    write_varied_pages(SOURCES, pages, 8, seed=1)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert _batch(pages, whole, trained_model, embedding_cache).returncode == 0

    command = [sys.executable, "-m", "pipeline.cli", "batch", str(pages), "--out", str(resumed)]
    command += [
        "--tracking-uri",
        trained_model,
        "--cache",
        str(tmp_path / "fresh-cache.sqlite"),
    ]  # cold: slower
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(list((resumed / STATE_DIR).glob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before_kill = len(list((resumed / STATE_DIR).glob("*.json")))
    assert 2 <= done_before_kill < 8, "the kill should land part-way"
    assert not any((resumed / name).exists() for name in OUTPUTS)  # nothing half-written

    again = _batch(pages, resumed, trained_model, embedding_cache)
    assert again.returncode == 0, again.stderr
    assert f"8 files: {8 - done_before_kill} processed, {done_before_kill} already done" in again.stderr
    assert batch_outputs(resumed) == batch_outputs(whole)

    before = {name: (resumed / name).stat().st_mtime_ns for name in OUTPUTS}
    rerun = _batch(pages, resumed, trained_model, embedding_cache)
    assert "8 files: 0 processed, 8 already done" in rerun.stderr
    assert {
        name: (resumed / name).stat().st_mtime_ns for name in OUTPUTS
    } == before  # no work, nothing rewritten


def test_a_page_that_fails_is_rejected_and_the_batch_goes_on(tmp_path, monkeypatch):
    """A fake scorer (no model) that breaks on one page: that page is rejected with the error, the rest kept."""
    from pipeline.batch import run as batch

    class BreaksOnTaarnby:
        def __init__(self, model_uri, cache=None):
            pass

        def score(self, key, source, efforts):
            if any(e.municipality == "Tårnby" for e in efforts):
                raise RuntimeError("simulated failure")
            return batch.PageResult(key=key, source=source, efforts=efforts)

    monkeypatch.setattr(batch, "PageScorer", BreaksOnTaarnby)
    pages = tmp_path / "in"
    pages.mkdir()
    for source in SOURCES:
        (pages / source.name).write_bytes(source.read_bytes())
    summary = batch.run_batch(pages, tmp_path / "out", "runs:/unused/model")  # resolved without a store
    assert (summary.processed, len(summary.rejected_inputs)) == (2, 1)
    (rejection,) = [
        json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()
    ]
    assert rejection["source"].endswith(TAARNBY.name)
    assert "could not be processed (RuntimeError: simulated failure)" in rejection["reason"]
    efforts = (tmp_path / "out" / "efforts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(efforts) == 1 and "Odsherred" in efforts[0]


def test_a_batch_streams_its_report_holding_no_page_of_it(tmp_path, monkeypatch, fake_model):
    """Before: the batch held every assessed page's efforts, predictions and flags to build the report's rows,
    and rendered the report as one string before writing it, so its peak memory grew with the pages (+32% from
    200 to 1,000 pages). Now each page's rows are spooled as the page is read and the report is written while
    its rows are read back: when the report starts no row and no page's predictions beyond the last one read
    are alive, and by the last row the report is already on disk."""
    import pipeline.outputs.report as report
    from pipeline.batch import run as batch
    from pipeline.outputs.report import ReportContent, ReportRow
    from pipeline.records import Prediction

    class FakeModelScorer(batch.PageScorer):
        def __init__(self, model_uri, cache=None):
            self.model = fake_model

    def alive(kind: type) -> int:
        gc.collect()
        return sum(type(thing) is kind for thing in gc.get_objects())

    out, seen = tmp_path / "out", {}
    written, reading_rows = report.write_report, ReportContent.rows

    def write_report(*args, **kwargs):
        seen["rows"], seen["predictions"] = alive(ReportRow), alive(Prediction) - seen["predictions"]
        written(*args, **kwargs)

    def rows(content):
        for row in reading_rows(content):
            seen["on disk"] = sum(p.stat().st_size for p in out.glob(".report.html.*.tmp"))
            yield row

    monkeypatch.setattr(batch, "PageScorer", FakeModelScorer)
    monkeypatch.setattr(report, "write_report", write_report)
    monkeypatch.setattr(ReportContent, "rows", rows)
    write_varied_pages(SOURCES, tmp_path / "in", 6)
    seen["predictions"] = alive(Prediction)
    batch.run_batch(tmp_path / "in", out, "unused")
    with (out / "predictions.csv").open(encoding="utf-8") as table:
        per_page = Counter(row["effort_id"] for row in csv.DictReader(table))
    assert len(per_page) == 6 and seen["rows"] == 0
    assert seen["predictions"] <= max(per_page.values())  # the last page read, at most
    assert seen["on disk"] > 0
