"""The fault matrix: hostile and broken input and faults, by category, each ending with nothing lost, nothing
evaluated that came from a page, and no traceback shown. docs/faults.md lists the cases and their results.

Commands run in-process through `pipeline.cli.entry` (the installed `evidens` program), so that faults can be
injected; pages are generated fixtures (named as such) or copies of the corpus's real pages."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from conftest import ODSHERRED, REPO, TAARNBY, FakeEmbedder, batch_outputs, evidens, make_effort_page
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.batch import run as batch
from pipeline.batch.run import BatchLocked, output_lock, run_batch
from pipeline.corpus import EFFORTS_FILE, load_efforts
from pipeline.embed.cache import CachedEmbedder
from pipeline.errors import EvidensError
from pipeline.evidence.segment import MAX_SENTENCE_CHARS, bounded_pieces
from pipeline.ingest.readers import read_page, read_page_file
from pipeline.tables import FORMULA_STARTS, csv_records, neutralise, read_csv, restore

HOSTILE_ITEM = '=HYPERLINK("http://x","klik") borgere får samtaler'


def assert_one_line_error(err: str, *words: str) -> None:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for word in words:
        assert word in errors[0], errors[0]


def _hostile_pages(folder: Path) -> Path:
    """Two generated effort pages (fixtures) whose items and text start with spreadsheet formula characters."""
    folder.mkdir(parents=True)
    for town in ("Nyby", "Gammelby"):
        page = make_effort_page(
            town,
            [("Ja", HOSTILE_ITEM), ("Delvist", "@SUM(A1:A9) jobkonsulenten vejleder"), ("Nej", "-2+3 møder")],
            description="+cmd|' /C calc'!A0 Borgerne har samtaler hver 14. dag.",
        )
        (folder / f"{town}.txt").write_text(page, encoding="utf-8")
    return folder


def _cells(folder: Path) -> list[str]:
    cells = []
    for path in folder.rglob("*.csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            import csv

            cells += [cell for row in csv.reader(handle) for cell in row]
    return cells


# --- formula injection ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["=1+1", "+1", "-x", "@x", "\tx", "\rx", "'=x", "''x", "'x", "x", "", "-"])
def test_neutralise_and_restore_are_inverse_and_leave_no_formula(value):
    written = neutralise(value)
    assert not written.startswith(FORMULA_STARTS)
    assert restore(written) == value


def test_no_csv_of_ingest_or_flag_starts_a_cell_with_a_formula(tmp_path, monkeypatch, capsys):
    pages = _hostile_pages(tmp_path / "raw")
    corpus, labels, reports = tmp_path / "corpus", tmp_path / "labels", tmp_path / "reports"
    code, _, err = evidens(
        monkeypatch, capsys, "ingest", str(pages), "--out", str(corpus), "--labels", str(labels)
    )
    assert code == 0, err
    code, _, err = evidens(
        monkeypatch, capsys, "flag", "--corpus", str(corpus), "--labels", str(labels), "--out", str(reports),
        "--embedder", "fake", "--cache", str(tmp_path / "cache.sqlite"),
    )  # fmt: skip
    assert code == 0, err
    cells = _cells(tmp_path)
    assert any(cell.startswith("'=HYPERLINK") for cell in cells)  # the hostile text is there, neutralised
    numbers = {"-"} | {c for c in cells if c.lstrip("-").replace(".", "", 1).replace("e-", "").isdigit()}
    assert [c for c in cells if c.startswith(FORMULA_STARTS) and c not in numbers] == []
    items = {row["item"] for row in read_csv(labels / "answers.csv")}
    assert HOSTILE_ITEM in items  # read back exactly


# --- batch: resume at every instant, passing faults, versions, deletions, the lock ---------------------------
class FakeScorer:
    """A scorer without a model (test double): the page's records, no predictions; fails while `broken`."""

    broken: ClassVar[set[str]] = set()

    def __init__(self, model_uri, cache=None):
        pass

    def score(self, key, source, efforts):
        if any(e.municipality in self.broken for e in efforts):
            raise RuntimeError("simulated passing fault")
        return batch.PageResult(key=key, source=source, efforts=efforts)


@pytest.fixture
def fake_scorer(monkeypatch):
    monkeypatch.setattr(batch, "PageScorer", FakeScorer)
    FakeScorer.broken = set()
    return FakeScorer


def _pages(folder: Path, *sources: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        (folder / source.name).write_bytes(source.read_bytes())
    return folder


def _sources(out: Path) -> list[str]:
    lines = (out / "efforts.jsonl").read_text(encoding="utf-8").splitlines()
    return [Path(json.loads(line)["source"]).name for line in lines]


def test_a_kill_during_the_final_rebuild_resumes_to_the_uninterrupted_result(
    tmp_path, fake_scorer, monkeypatch
):
    import pipeline.outputs.report

    pages = _pages(tmp_path / "in", ODSHERRED)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    run_batch(pages, broken, "unused")
    run_batch(pages, whole, "unused")  # the same history: the changes block compares with the run before
    _pages(pages, TAARNBY)
    run_batch(pages, whole, "unused")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # data files renamed, report not yet: the mixed state of a real kill

    monkeypatch.setattr(pipeline.outputs.report, "write_report", killed)
    with pytest.raises(KeyboardInterrupt):
        run_batch(pages, broken, "unused")
    monkeypatch.undo()
    monkeypatch.setattr(batch, "PageScorer", FakeScorer)
    summary = run_batch(pages, broken, "unused")
    assert summary.processed == 0  # the page was done: only the outputs were stale, and they are rebuilt
    assert batch_outputs(broken) == batch_outputs(whole)


def test_stored_results_are_keyed_by_the_model_that_made_them(tmp_path, fake_scorer):
    """Before: results keyed by content only; a batch with another model said "already done" and kept the old
    model's answers. Now another model (or champion moved) scores every page again."""
    pages, out = _pages(tmp_path / "in", ODSHERRED, TAARNBY), tmp_path / "out"
    assert run_batch(pages, out, "runs:/model-a/model").processed == 2
    assert run_batch(pages, out, "runs:/model-a/model").skipped == 2
    again = run_batch(pages, out, "runs:/model-b/model")
    assert again.processed == 2 and again.skipped == 0
    manifest = json.loads((out / batch.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["made_by"] == "runs:/model-b/model"
    assert "runs:/model-b/model" in (out / "report.html").read_text(encoding="utf-8")


def test_another_report_language_rebuilds_the_report_without_scoring_again(tmp_path, fake_scorer):
    """`evidens batch --lang en` over a Danish batch: the outputs are rebuilt in English, no page is scored."""
    pages, out = _pages(tmp_path / "in", ODSHERRED, TAARNBY), tmp_path / "out"
    run_batch(pages, out, "runs:/model-a/model")
    assert '<html lang="da">' in (out / "report.html").read_text(encoding="utf-8")
    again = run_batch(pages, out, "runs:/model-a/model", lang="en")
    assert again.processed == 0 and again.skipped == 2
    report = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in report and "Triage: every answer" in report and "Gennemgang" not in report
    # the same run in another language: changes.json still says what the last real run changed
    assert json.loads((out / batch.CHANGES).read_text(encoding="utf-8"))["previous_run"] is None


def test_an_altered_page_result_is_processed_again(tmp_path, fake_scorer, caplog):
    """Before: one digit changed in OUT/.pages/*.json reached the outputs. Now its checksum fails and the page
    is processed again, with a warning."""
    pages, out, fresh = _pages(tmp_path / "in", ODSHERRED), tmp_path / "out", tmp_path / "fresh"
    run_batch(pages, out, "unused")
    (result_file,) = (out / batch.STATE_DIR).glob("*.json")
    text = result_file.read_text(encoding="utf-8")
    digit = next(i for i, c in enumerate(text) if c.isdigit() and i > text.index('"result"'))
    result_file.write_text(
        text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1 :], encoding="utf-8"
    )
    assert run_batch(pages, out, "unused").processed == 1
    assert "damaged or altered" in caplog.text
    run_batch(pages, fresh, "unused")
    assert batch_outputs(out) == batch_outputs(fresh)


@pytest.mark.parametrize(
    "damage",
    [
        ("predictions.csv", lambda b: b[: len(b) // 2]),
        ("efforts.jsonl", lambda b: b[: len(b) // 3]),
        ("efforts.jsonl", lambda b: b"\xff\xfe garbled" + b[10:]),
        ("report.html", lambda b: b[:100]),
        (batch.MANIFEST, lambda b: b.replace(b'"pages": 2', b'"pages": 3')),
    ],
    ids=[
        "truncated-predictions",
        "truncated-efforts",
        "garbled-efforts",
        "truncated-report",
        "edited-manifest",
    ],
)
def test_a_damaged_output_is_rebuilt_never_already_done(tmp_path, fake_scorer, damage):
    """Before: a truncated predictions.csv, efforts.jsonl or report.html stayed ("already done", exit 0; 11
    efforts reported instead of 30), a garbled efforts.jsonl gave a UnicodeDecodeError. Now every output is
    checked against the manifest's checksums, and the manifest against its own."""
    pages, out = _pages(tmp_path / "in", ODSHERRED, TAARNBY), tmp_path / "out"
    first = run_batch(pages, out, "unused")
    before = batch_outputs(out)
    name, change = damage
    (out / name).write_bytes(change((out / name).read_bytes()))
    again = run_batch(pages, out, "unused")
    assert again.processed == 0 and again.efforts == first.efforts
    assert batch_outputs(out) == before


def test_an_output_folder_inside_the_input_folder_is_refused(tmp_path, fake_scorer):
    """Before: OUT inside IN made the batch read its own outputs as pages on every run."""
    pages = _pages(tmp_path / "in", ODSHERRED)
    with pytest.raises(EvidensError, match="inside the input folder"):
        run_batch(pages, pages / "out", "unused")
    assert not (pages / "out").exists()


def test_a_page_rejected_for_a_passing_fault_is_retried(tmp_path, fake_scorer):
    pages = _pages(tmp_path / "in", ODSHERRED, TAARNBY)
    fake_scorer.broken = {"Tårnby"}
    first = run_batch(pages, tmp_path / "out", "unused")
    assert (
        len(first.rejected_inputs) == 1
        and "passing fault" in (tmp_path / "out" / "rejected.jsonl").read_text()
    )
    fake_scorer.broken = set()
    again = run_batch(pages, tmp_path / "out", "unused")
    assert again.rejected_inputs == [] and (tmp_path / "out" / "rejected.jsonl").read_text() == ""
    assert sorted(_sources(tmp_path / "out")) == sorted([ODSHERRED.name, TAARNBY.name])


def test_an_edited_page_keeps_one_current_record_and_its_old_version_only_if_asked(tmp_path, fake_scorer):
    pages = _pages(tmp_path / "in", ODSHERRED)
    out = tmp_path / "out"
    run_batch(pages, out, "unused")
    page = pages / ODSHERRED.name
    page.write_text(page.read_text(encoding="utf-8") + "\nEn tilføjet linje.\n", encoding="utf-8")
    summary = run_batch(pages, out, "unused", keep_history=True)
    assert _sources(out) == [ODSHERRED.name] and summary.dropped == 1
    assert len(list((out / "history").glob("*.json"))) == 1
    assert "En tilføjet linje." in (out / "efforts.jsonl").read_text(encoding="utf-8")


def test_a_deleted_input_leaves_the_outputs_unless_kept(tmp_path, fake_scorer):
    pages = _pages(tmp_path / "in", ODSHERRED, TAARNBY)
    kept, gone = tmp_path / "kept", tmp_path / "gone"
    run_batch(pages, kept, "unused")
    run_batch(pages, gone, "unused")
    (pages / TAARNBY.name).unlink()
    run_batch(pages, kept, "unused", keep_deleted=True)
    run_batch(pages, gone, "unused")
    assert sorted(_sources(kept)) == sorted([ODSHERRED.name, TAARNBY.name])
    assert _sources(gone) == [ODSHERRED.name]


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_a_second_batch_on_one_output_folder_is_refused_naming_the_holder(
    tmp_path, fake_scorer, monkeypatch, capsys
):
    from pipeline.tracking import configure

    pages = _pages(tmp_path / "in", ODSHERRED)
    out = tmp_path / "out"
    configure(f"sqlite:///{tmp_path / 'mlflow.db'}", experiments_dir=tmp_path / "experiments")
    with output_lock(out):
        with pytest.raises(BatchLocked, match=f"pid {os.getpid()}"):
            run_batch(pages, out, "unused")
        code, _, err = evidens(monkeypatch, capsys, "batch", str(pages), "--out", str(out), "--tracking-uri",
                               f"sqlite:///{tmp_path / 'mlflow.db'}")  # fmt: skip
    assert code == 3 and not (out / "efforts.jsonl").exists()
    assert_one_line_error(err, "in use by another batch run", f"pid {os.getpid()}")
    assert run_batch(pages, out, "unused").processed == 1  # released


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_a_full_disk_under_batch_is_one_line_and_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch, "PageScorer", FakeScorer)
    # the fake scorer needs no model; the registry lookup that keys the results needs none either
    monkeypatch.setattr("pipeline.tracking.model_identity", lambda uri: "evidens/1 run generated")
    pages = _pages(tmp_path / "in", ODSHERRED)
    store = tmp_path / "mlflow.db"
    from pipeline.tracking import configure

    configure(f"sqlite:///{store}", experiments_dir=tmp_path / "experiments")

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(batch, "atomic_write_text", full)
    code, _, err = evidens(monkeypatch, capsys, "batch", str(pages), "--out", str(tmp_path / "out"),
                           "--tracking-uri", f"sqlite:///{store}")  # fmt: skip
    assert code == 3
    assert_one_line_error(err, "no space left on device")
    assert "train" not in err
    assert list((tmp_path / "out").rglob("*.tmp")) == [] and not (tmp_path / "out" / "efforts.jsonl").exists()


# --- corrupt state -----------------------------------------------------------------------------------------
@pytest.fixture
def small_corpus(tmp_path, monkeypatch, capsys) -> Path:
    corpus = tmp_path / "corpus"
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(ODSHERRED), str(TAARNBY), "--out", str(corpus),
                           "--labels", str(tmp_path / "labels"))  # fmt: skip
    assert code == 0, err
    return corpus


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda lines: [*lines[:-1], lines[-1][: len(lines[-1]) // 2]], ["line 2", "not valid JSON"]),
        (lambda lines: [lines[0], json.dumps({k: v for k, v in json.loads(lines[1]).items() if k != "tests"})],
         ["line 2", "lacks tests"]),
        (lambda lines: [lines[0], json.dumps({**json.loads(lines[1]), "kind": 5})], ["line 2", "kind"]),
    ],
    ids=["truncated", "missing-tests", "wrong-type"],
)  # fmt: skip
@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_a_damaged_corpus_is_named_by_file_and_line(small_corpus, damage, words, monkeypatch, capsys):
    path = small_corpus / EFFORTS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(damage(lines)) + "\n", encoding="utf-8")
    code, _, err = evidens(
        monkeypatch, capsys, "evaluate", "--corpus", str(small_corpus), "--embedder", "fake"
    )
    assert code == 3
    assert_one_line_error(err, str(path), *words)


class CountingEmbedder(FakeEmbedder):
    cacheable = True
    calls = 0

    def embed(self, texts, role):
        CountingEmbedder.calls += len(texts)
        return super().embed(texts, role)


@pytest.mark.parametrize("damage", ["garbage", "wrong-schema"])
def test_a_broken_embedding_cache_is_rebuilt_with_a_warning(tmp_path, damage, caplog):
    path = tmp_path / "cache.sqlite"
    if damage == "garbage":
        path.write_bytes(b"this is not an SQLite file" * 100)
    else:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE vectors (id INTEGER, data TEXT)")
    texts = ["Borgerne har samtaler", "Virksomheden ansætter"]
    with caplog.at_level("WARNING", logger="evidens"):
        vectors = CachedEmbedder(CountingEmbedder(), path).embed(texts, "passage")
    assert "moved aside to cache.sqlite.corrupt and rebuilt" in caplog.text
    assert (tmp_path / "cache.sqlite.corrupt").exists()
    assert np.allclose(vectors, FakeEmbedder().embed(texts, "passage"))


@pytest.mark.parametrize("bad", ["nan", "short"])
def test_a_bad_cached_vector_is_embedded_again(tmp_path, bad, caplog):
    path = tmp_path / "cache.sqlite"
    texts = ["Borgerne har samtaler", "Virksomheden ansætter"]
    clean = CachedEmbedder(CountingEmbedder(), path).embed(texts, "passage")
    with sqlite3.connect(path) as db:
        vector = np.full(32, np.nan, dtype=np.float32) if bad == "nan" else np.ones(31, dtype=np.float32)
        db.execute("UPDATE vectors SET vector = ?", (vector.tobytes(),))
    CountingEmbedder.calls = 0
    with caplog.at_level("WARNING", logger="evidens"):
        again = CachedEmbedder(CountingEmbedder(), path).embed(texts, "passage")
    assert np.array_equal(again, clean) and CountingEmbedder.calls == 2
    assert "wrong dimension or not finite" in caplog.text


CACHE_TEXTS = [
    f"Borgerne {i} i kommune nr. {i * 7919 % 1000} har samtaler {i % 13} gange" for i in range(300)
]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_flipped_bits_in_stored_vectors_are_found_counted_and_embedded_again(tmp_path, caplog):
    """One bit flipped in 54 stored vectors, on disk (before: returned as they were, in silence)."""
    path = tmp_path / "cache.sqlite"
    clean = CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS, "passage")
    assert len({v.tobytes() for v in clean}) == len(CACHE_TEXTS)  # each vector found once in the file
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(54)
    for row in rng.choice(len(CACHE_TEXTS), 54, replace=False):
        at, bit = data.find(clean[row].tobytes()), int(rng.integers(32 * 32))
        assert at > 0
        data[at + bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))
    CountingEmbedder.calls = 0
    with caplog.at_level("WARNING", logger="evidens"):
        cached = CachedEmbedder(CountingEmbedder(), path)
        again = cached.embed(CACHE_TEXTS, "passage")
        twice = cached.embed(CACHE_TEXTS[:100], "passage")
    assert np.array_equal(again, clean) and np.array_equal(twice, clean[:100])
    assert CountingEmbedder.calls == 54  # the failing rows only, once
    (warning,) = _warnings(caplog)  # one warning for the whole cache, with the count
    assert ": 54 stored vectors failed their check" in warning


def test_a_vector_paired_with_another_key_is_refused(tmp_path, caplog):
    """A damaged index can hand one row's vector to another key: the checksum is keyed by the row's key."""
    path = tmp_path / "cache.sqlite"
    clean = CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS[:2], "passage")
    with sqlite3.connect(path) as db:
        (first, second) = db.execute("SELECT vector, checksum FROM vectors ORDER BY key").fetchall()
        db.execute("UPDATE vectors SET vector = ?, checksum = ? WHERE vector = ?", (*second, first[0]))
    with caplog.at_level("WARNING", logger="evidens"):
        again = CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS[:2], "passage")
    assert np.array_equal(again, clean)
    assert ": 1 stored vectors failed their check" in caplog.text


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_changed_in_the_cache_file_never_change_a_vector(tmp_path, seed, caplog):
    """64 random bytes of the SQLite file changed (seeded; before: a malformed-database traceback on 34 of
    40 seeds, or vectors returned as damaged)."""
    path = tmp_path / "cache.sqlite"
    clean = CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS, "passage")
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for at in rng.choice(len(data), 64, replace=False):
        data[at] = (data[at] + int(rng.integers(1, 256))) % 256
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="evidens"):
        again = CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS, "passage")
    assert np.array_equal(again, clean)
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and ("moved aside" in warnings[0] or "failed their check" in warnings[0])
    with caplog.at_level("WARNING", logger="evidens"):
        caplog.clear()
        assert np.array_equal(CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS, "passage"), clean)
    assert _warnings(caplog) == []  # repaired for good


def test_a_locked_cache_is_one_line_and_not_moved_aside(tmp_path, monkeypatch):
    import pipeline.embed.cache as cache_module

    path = tmp_path / "cache.sqlite"
    CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS[:2], "passage")
    monkeypatch.setattr(cache_module.sqlite3, "connect", partial(sqlite3.connect, timeout=0.1))
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(EvidensError, match=r"embedding cache .*database is locked"):
            CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS[2:4], "passage")
    finally:
        holder.rollback()
        holder.close()
    assert not (tmp_path / "cache.sqlite.corrupt").exists()


def _full_cache(monkeypatch):
    """SQLite's own full-disk error (SQLITE_FULL): the file may not grow past the pages it has."""
    import pipeline.embed.cache as cache_module

    original = cache_module._connect

    def capped(path):
        db = original(path)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {max(pages, 3)}")
        return db

    monkeypatch.setattr(cache_module, "_connect", capped)


def test_a_full_disk_under_the_cache_is_one_error(tmp_path, monkeypatch):
    path = tmp_path / "cache.sqlite"
    CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS[:2], "passage")
    _full_cache(monkeypatch)
    with pytest.raises(EvidensError, match=f"no space left on device writing {path}"):
        CachedEmbedder(CountingEmbedder(), path).embed(CACHE_TEXTS, "passage")
    assert not (tmp_path / "cache.sqlite.corrupt").exists()


def test_a_full_disk_under_the_cache_stops_a_command_with_one_line(tmp_path, monkeypatch, capsys):
    """Before: `OperationalError: database or disk is full`, and in a batch a traceback per page."""
    corpus, labels, reports = tmp_path / "corpus", tmp_path / "labels", tmp_path / "reports"
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(_hostile_pages(tmp_path / "raw")), "--out",
                           str(corpus), "--labels", str(labels))  # fmt: skip
    assert code == 0, err
    from pipeline.embed import base

    monkeypatch.setitem(base._FACTORIES, "fake-cached", lambda argument: CountingEmbedder())
    cache = tmp_path / "cache.sqlite"
    CachedEmbedder(CountingEmbedder(), cache).embed(CACHE_TEXTS, "passage")  # its pages full
    _full_cache(monkeypatch)
    code, _, err = evidens(monkeypatch, capsys, "flag", "--corpus", str(corpus), "--labels", str(labels),
                           "--out", str(reports), "--embedder", "fake-cached", "--cache", str(cache))  # fmt: skip
    assert code == 3
    assert_one_line_error(err, "no space left on device", str(cache))
    assert not (reports / "predictions.csv").exists()


def test_a_corrupt_mlflow_store_is_one_line(tmp_path, monkeypatch, capsys):
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"garbage " * 1000)
    code, _, err = evidens(
        monkeypatch, capsys, "predict", str(ODSHERRED), "--tracking-uri", f"sqlite:///{store}"
    )
    assert code == 3
    assert_one_line_error(err, "corrupt", str(store))


@pytest.mark.slow  # a second process (SQLite's open cannot be interrupted in this one)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_an_mlflow_store_that_is_a_fifo_is_one_line_not_waited_on(tmp_path):
    """Before (second probe): SQLite opened a FIFO given as the store and waited for ever. Now one line."""
    store = tmp_path / "mlflow.db"
    os.mkfifo(store)
    done = (
        subprocess.run(  # a process of its own: SQLite retries its open() on a signal, so no alarm stops it
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "predict",
                str(ODSHERRED),
                "--tracking-uri",
                f"sqlite:///{store}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    )
    assert done.returncode == 3
    assert_one_line_error(done.stderr, str(store), "a FIFO")


@pytest.mark.parametrize("command", ["predict", "batch"])
def test_a_zero_byte_mlflow_store_is_no_model_and_stays_untouched(tmp_path, monkeypatch, capsys, command):
    """Before: `batch` on a zero-byte mlflow.db made a whole empty MLflow store of it (954 KB), then said
    "Registered Model ... not found"; `predict` and `batch` only read the store."""
    store = tmp_path / "mlflow.db"
    store.touch()
    pages = _pages(tmp_path / "in", ODSHERRED)
    target = ["--out", str(tmp_path / "out")] if command == "batch" else []
    code, _, err = evidens(
        monkeypatch, capsys, command, str(pages), *target, "--tracking-uri", f"sqlite:///{store}"
    )
    assert code == 3
    assert_one_line_error(err, str(store), "is empty", "evidens train")
    assert store.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["in", "mlflow.db"]


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
@pytest.mark.parametrize("uri", ["models:/evidens@champion", "models:/nosuchmodel/7", "runs:/0123/model"])
def test_a_missing_or_unknown_model_is_one_line(tmp_path, uri, monkeypatch, capsys):
    from pipeline.tracking import configure

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    configure(store, experiments_dir=tmp_path / "experiments")  # a store with no model in it
    code, _, err = evidens(
        monkeypatch, capsys, "predict", str(ODSHERRED), "--model", uri, "--tracking-uri", store
    )
    assert code == 3
    assert_one_line_error(err, "cannot load the model", "evidens train")


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_a_full_disk_under_ingest_leaves_the_old_outputs_whole(small_corpus, monkeypatch, capsys):
    before = {p: p.read_bytes() for p in small_corpus.parent.rglob("*") if p.is_file()}

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(ODSHERRED), "--out", str(small_corpus),
                           "--labels", str(small_corpus.parent / "labels"))  # fmt: skip
    monkeypatch.undo()
    assert code == 3
    assert_one_line_error(err, "no space left on device")
    after = {p: p.read_bytes() for p in small_corpus.parent.rglob("*") if p.is_file()}
    assert after == before  # nothing replaced, nothing half-written, no temporary left


# --- encodings and special entries ---------------------------------------------------------------------------
def test_a_few_bad_bytes_keep_the_rest_of_a_utf8_page_with_a_warning(tmp_path):
    data = TAARNBY.read_bytes()
    position = data.index(b"Kommunens beskrivelse")
    damaged = data[:position] + b"\xe6\xf8\xe5 " + data[position:]  # three Latin-1 bytes inside UTF-8
    (tmp_path / "damaged.txt").write_bytes(damaged)
    text, warnings, _ = read_page_file(tmp_path / "damaged.txt")
    assert "Tårnby" in text and "\ufffd" in text
    assert len(warnings) == 1 and f"byte offset {position}" in warnings[0]
    from pipeline.ingest import ingest_paths

    (effort,) = ingest_paths([tmp_path / "damaged.txt"]).efforts
    assert sum(len(t.answers) for t in effort.tests) == 29 and "byte offset" in effort.warnings[0]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "cp1252"])
def test_utf16_with_a_bom_and_cp1252_read_as_the_same_page(tmp_path, encoding):
    text = TAARNBY.read_text(encoding="utf-8")
    data = text.encode(encoding) if encoding != "utf-16-be" else b"\xfe\xff" + text.encode(encoding)
    (tmp_path / "page.txt").write_bytes(data)
    assert read_page(tmp_path / "page.txt") == read_page(TAARNBY)


@pytest.mark.slow  # real e5 (the fast tier never loads it)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_special_entries_are_rejected_with_their_reason(tmp_path, monkeypatch, capsys):
    pages = _pages(tmp_path / "in", ODSHERRED)
    os.mkfifo(pages / "pipe.txt")
    (pages / "folder.txt").mkdir()
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(pages), "--out", str(tmp_path / "corpus"),
                           "--labels", str(tmp_path / "labels"))  # fmt: skip
    assert code == 1 and "FIFO" in err
    rejected = {
        Path(r["source"]).name: r["reason"]
        for r in map(json.loads, (tmp_path / "corpus" / "rejected.jsonl").read_text().splitlines())
    }
    assert "FIFO" in rejected["pipe.txt"] and "a folder" in rejected["folder.txt"]


def test_a_paragraph_without_full_stops_is_cut_into_bounded_pieces():
    from pipeline.evidence.segment import segment_efforts
    from pipeline.records import Effort, Sections

    blob = ("Borgerne får hjælp af jobkonsulenten hver uge " * 3000).strip()
    effort = Effort(effort_id="e", source="s", content_sha256="c", kind="effort_page",
                    sections=Sections(description=blob))  # fmt: skip
    sentences = list(segment_efforts([effort]))
    assert max(len(s.text) for s in sentences) <= MAX_SENTENCE_CHARS
    assert " ".join(s.text for s in sentences) == blob  # nothing lost
    assert all(blob[s.start : s.end] == s.text for s in sentences)
    assert list(bounded_pieces("x" * 2500, 0, 2500, 1000)) == [(0, 1000), (1000, 2000), (2000, 2500)]


# --- the command line ---------------------------------------------------------------------------------------
def test_runtime_errors_are_one_line_with_exit_code_3(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # as on a fresh machine (set by other tests)
    code, _, err = evidens(monkeypatch, capsys, "evaluate", "--embedder", "fake")
    assert code == 3
    assert_one_line_error(err, "corpus/efforts.jsonl not found", "evidens ingest")
    code, _, err = evidens(monkeypatch, capsys, "predict", str(ODSHERRED))
    assert code == 3
    assert_one_line_error(err, "no MLflow store", "evidens train")
    assert list(tmp_path.iterdir()) == []  # no experiments/ or .cache/ created as a side effect


def test_a_misspelt_option_is_a_usage_error_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = evidens(monkeypatch, capsys, "flag", "--embedder", "e5-ofline")
    assert code == 2 and "unknown embedder 'e5-ofline'" in err and "note" not in err
    code, _, err = evidens(monkeypatch, capsys, "train", "--head", "forest")
    assert code == 2 and "unknown head 'forest'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_exit_code_1_is_only_rejected_input(tmp_path, monkeypatch, capsys):
    pages = _pages(tmp_path / "in", ODSHERRED)
    (pages / "empty.txt").write_text("")
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(pages), "--out", str(tmp_path / "c"),
                           "--labels", str(tmp_path / "l"))  # fmt: skip
    assert code == 1 and "rejected:" in err and "empty file" in err and "Traceback" not in err


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_version_quiet_and_verbose(tmp_path, monkeypatch, capsys):
    from pipeline import __version__

    code, out, _ = evidens(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == f"evidens {__version__}"
    arguments = ["ingest", str(ODSHERRED), "--out", str(tmp_path / "c"), "--labels", str(tmp_path / "l")]
    assert "ingested 1 efforts" in evidens(monkeypatch, capsys, *arguments)[2]
    assert evidens(monkeypatch, capsys, "--quiet", *arguments)[2] == ""

    def crash(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("pipeline.ingest.ingest_paths", crash)
    code, _, err = evidens(monkeypatch, capsys, *arguments)
    assert code == 3 and "Traceback" not in err and "simulated bug" in err and "--verbose" in err
    code, _, err = evidens(monkeypatch, capsys, "--verbose", *arguments)
    assert code == 3 and "Traceback" in err


def test_the_cli_imports_no_backend_for_help():
    probe = "import sys, pipeline.cli; print(sorted({'sklearn', 'mlflow', 'torch', 'spacy', 'pandas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow  # real e5 (the fast tier never loads it)
@pytest.mark.parametrize("damage", ["missing-column", "short-row", "not-utf8"])
def test_a_damaged_label_file_is_named_by_file_and_line(small_corpus, damage, monkeypatch, capsys):
    criteria = small_corpus.parent / "labels" / "criteria.csv"
    lines = criteria.read_text(encoding="utf-8").splitlines()
    if damage == "missing-column":
        criteria.write_text("\n".join([lines[0].replace("canonical_text", "text"), *lines[1:]]) + "\n")
    elif damage == "short-row":
        criteria.write_text("\n".join([*lines[:2], "crit-x", *lines[2:]]) + "\n")
    else:
        criteria.write_bytes(criteria.read_bytes() + b"\xff\xfe bad\n")
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(ODSHERRED), "--out", str(small_corpus),
                           "--labels", str(criteria.parent))  # fmt: skip
    assert code == 3
    assert_one_line_error(err, str(criteria), {"missing-column": "line 1", "short-row": "line 3",
                                               "not-utf8": "not UTF-8"}[damage])  # fmt: skip


def test_a_damaged_page_result_is_processed_again(tmp_path, fake_scorer):
    pages = _pages(tmp_path / "in", ODSHERRED)
    out = tmp_path / "out"
    run_batch(pages, out, "unused")
    whole = batch_outputs(out)
    (state,) = (out / batch.STATE_DIR).glob("*.json")
    state.write_text(state.read_text(encoding="utf-8")[:50], encoding="utf-8")
    assert run_batch(pages, out, "unused").processed == 1
    assert batch_outputs(out) == whole


# --- the second probe's variants (docs/faults.md, "variants"): names, keys, FIFOs, renames, model paths -----
@contextlib.contextmanager
def _within(seconds: int):
    """Fail instead of hanging: SIGALRM interrupts a blocked open() (PEP 475: a raising handler stops the retry)."""
    import signal

    def expired(*_):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_file_name_that_is_not_utf8_is_rejected_by_name_and_the_rest_written(tmp_path, fake_scorer):
    """Before: one such name stopped every batch and `ingest` (exit 3, UnicodeEncodeError). Now that file is
    rejected with its name escaped, and the other pages are written."""
    from pipeline.ingest import ingest_paths

    pages = _pages(tmp_path / "in", TAARNBY)
    odd = pages / os.fsdecode(b"ods\xff.txt")
    odd.write_bytes(ODSHERRED.read_bytes())
    out = tmp_path / "out"
    summary = run_batch(pages, out, "unused")
    assert summary.rejected_inputs == [str(pages / "ods\\xff.txt")]
    assert _sources(out) == [TAARNBY.name]
    [rejection] = [
        json.loads(line) for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert "ods\\xff.txt" in rejection["reason"] and "not valid UTF-8" in rejection["reason"]
    ingested = ingest_paths([pages])
    assert [e.source for e in ingested.efforts] == [str(pages / TAARNBY.name)]
    assert [r.source for r in ingested.rejected] == [str(pages / "ods\\xff.txt")]


def test_another_pages_result_under_this_key_is_not_taken(tmp_path, fake_scorer, caplog):
    """Before: a valid result copied over another page's file was accepted; that page was lost for good. Now the
    key inside must be the file's, else the page is processed again."""
    pages, out, fresh = _pages(tmp_path / "in", ODSHERRED, TAARNBY), tmp_path / "out", tmp_path / "fresh"
    run_batch(pages, out, "unused")
    first, second = sorted((out / batch.STATE_DIR).glob("*.json"))
    shutil.copy(first, second)
    assert run_batch(pages, out, "unused").processed == 1
    assert "holds the result of another page" in caplog.text
    run_batch(pages, fresh, "unused")
    assert batch_outputs(out) == batch_outputs(fresh)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize(
    "state",
    ["report.html", batch.MANIFEST, batch.RUN_HISTORY, "unchanged page's result", "edited page's old result"],
)
def test_a_fifo_among_the_state_files_is_replaced_not_waited_on(tmp_path, fake_scorer, state, caplog):
    """Before: a FIFO as an output, the manifest, the run history or a page result hung the batch for ever.
    Now it is read as a damaged file: rebuilt, and the outputs equal those of the same runs without it (a
    damaged run history loses the previous run, with a warning: only the report's changes block differs)."""
    pages, out, whole = _pages(tmp_path / "in", ODSHERRED, TAARNBY), tmp_path / "out", tmp_path / "whole"
    for folder in (out, whole):
        run_batch(pages, folder, "unused")
    (pages / TAARNBY.name).write_text(  # a new page: the next run reads the history too
        TAARNBY.read_text(encoding="utf-8") + "\nEn tilføjet linje.\n", encoding="utf-8"
    )
    results = {batch._stored(p).source: p for p in (out / batch.STATE_DIR).glob("*.json")}
    path = {
        "unchanged page's result": results[str(pages / ODSHERRED.name)],
        "edited page's old result": results[str(pages / TAARNBY.name)],
    }.get(state, out / state)
    path.unlink()
    os.mkfifo(path)
    with _within(60):
        run_batch(pages, out, "unused")
    run_batch(pages, whole, "unused")
    assert path.is_file() or state == "edited page's old result"  # that one is dropped with its old version
    damaged, clean = batch_outputs(out), batch_outputs(whole)
    if state == batch.RUN_HISTORY:
        assert "the previous run is unknown" in caplog.text
        del damaged["report.html"], clean["report.html"]
    assert damaged == clean


def test_a_renamed_input_gives_the_outputs_of_a_fresh_run(tmp_path, fake_scorer, monkeypatch):
    """Before: a renamed page (or the same folder named another way) kept its old path in efforts.jsonl and the
    report. Now the stored records take the new name, as a fresh run has them, without scoring again."""
    pages, out, fresh = _pages(tmp_path / "in", ODSHERRED), tmp_path / "out", tmp_path / "fresh"
    run_batch(pages, out, "unused")
    (pages / ODSHERRED.name).rename(pages / "omdoebt.txt")
    scored = []
    monkeypatch.setattr(FakeScorer, "score", lambda self, *args: scored.append(args))
    assert run_batch(pages, out, "unused").processed == 1 and scored == []  # the stored result, renamed
    monkeypatch.undo()
    monkeypatch.setattr(batch, "PageScorer", FakeScorer)
    run_batch(pages, fresh, "unused")
    assert _sources(out) == ["omdoebt.txt"]
    renamed, clean = batch_outputs(out), batch_outputs(fresh)
    assert {k: v for k, v in renamed.items() if k != "report.html"} == {
        k: v for k, v in clean.items() if k != "report.html"
    }  # the report differs only in its changes block: this folder has a run before
    assert ODSHERRED.name.encode() not in renamed["report.html"]


def test_a_result_renamed_by_an_older_evidens_is_renamed_again(tmp_path, fake_scorer):
    """An older evidens renamed the result but not its records; such a result must not count as done."""
    pages, out = _pages(tmp_path / "in", ODSHERRED), tmp_path / "out"
    run_batch(pages, out, "unused")
    [result_file] = (out / batch.STATE_DIR).glob("*.json")
    stored = batch._stored(result_file)
    stale = [e.model_copy(update={"source": "old-name.txt"}) for e in stored.efforts]
    batch._write_result(result_file, stored.model_copy(update={"efforts": stale}))
    assert run_batch(pages, out, "unused").processed == 1
    assert _sources(out) == [ODSHERRED.name]


def test_a_damaged_result_kept_for_a_deleted_input_is_set_aside_not_deleted(tmp_path, fake_scorer, caplog):
    """Before: with --keep-deleted, a damaged result of a deleted input was deleted after a warning that it
    would be processed again (it cannot be). Now it is moved to OUT/damaged/ with a warning naming both."""
    pages, out = _pages(tmp_path / "in", ODSHERRED, TAARNBY), tmp_path / "out"
    run_batch(pages, out, "unused")
    keys = {p.stem for p in (out / batch.STATE_DIR).glob("*.json")}
    (pages / TAARNBY.name).unlink()
    run_batch(pages, out, "unused", keep_deleted=True)
    [gone] = [
        p for p in (out / batch.STATE_DIR).glob("*.json") if batch._stored(p).source.endswith(TAARNBY.name)
    ]
    gone.write_text(gone.read_text(encoding="utf-8")[:40], encoding="utf-8")
    run_batch(pages, out, "unused", keep_deleted=True)
    [aside] = (out / batch.DAMAGED_DIR).glob(f"{gone.stem}.*.json")
    assert aside.read_text(encoding="utf-8").startswith('{"sha256"')
    assert _sources(out) == [ODSHERRED.name]
    assert "cannot be processed again" in caplog.text and "processing the page again" not in caplog.text
    assert {p.stem for p in (out / batch.STATE_DIR).glob("*.json")} == keys - {gone.stem}


def test_another_model_put_at_the_same_path_is_another_model(tmp_path):
    """Before: a model named by its folder was keyed by the path alone, so a batch kept the old model's results
    when another model was put there. Now the folder's content is part of its identity."""
    from pipeline.tracking import model_identity

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    (folder / "model.joblib").write_bytes(b"version one")
    first = model_identity(str(folder))
    assert model_identity(str(folder)) == first and model_identity(f"file://{folder}") != first
    (folder / "model.joblib").write_bytes(b"version two")
    assert model_identity(str(folder)) != first
    assert model_identity("runs:/abc/model") == "runs:/abc/model"


# --- labels: concurrent imports, times, every label file checked when read ----------------------------------
VERDICT_HEADER = "effort_id,criterion_id,verdict,answer,note,analyst,decided_at"


def _answer_keys(labels: Path) -> list[tuple[str, str]]:
    return [(r["effort_id"], r["criterion_id"]) for r in read_csv(labels / "answers.csv")]


def _verdicts_file(path: Path, keys, time: str = "2024-01-01T10:00:00Z", note: str = "") -> Path:
    """A verdicts file (generated test fixture): a dismiss on each answer key."""
    lines = [VERDICT_HEADER, *(f"{e},{c},dismiss,,{note},tester,{time}" for e, c in keys)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_two_imports_at_once_both_land(labels_copy, tmp_path, monkeypatch):
    import threading

    from pipeline.outputs import review

    keys = _answer_keys(labels_copy)
    assert len(keys) >= 40
    files = [_verdicts_file(tmp_path / f"v{i}.csv", keys[20 * i : 20 * i + 20]) for i in range(2)]
    load, both_read = review.load_verdicts, threading.Barrier(2, timeout=1)

    def slow_load(
        labels,
    ):  # both imports read the stored verdicts before either writes, where nothing stops it
        stored = load(labels)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()
        return stored

    monkeypatch.setattr(review, "load_verdicts", slow_load)
    errors: list[BaseException] = []

    def run(path):
        try:
            review.import_verdicts(path, labels_copy)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(load(labels_copy)) == 40  # before: 20 of 40


def test_a_naive_time_is_refused_at_import_with_the_line(labels_copy, tmp_path, monkeypatch, capsys):
    (key,) = _answer_keys(labels_copy)[:1]
    naive = _verdicts_file(tmp_path / "naive.csv", [key], time="2024-01-01T10:00:00")
    code, _, err = evidens(monkeypatch, capsys, "review", "import", str(naive), "--labels", str(labels_copy))
    assert code == 1 and "line 2: decided_at '2024-01-01T10:00:00' has no UTC offset" in err
    assert not (labels_copy / "verdicts.csv").exists()
    aware = _verdicts_file(tmp_path / "aware.csv", [key], time="2024-01-01T11:00:00+01:00")
    code, _, err = evidens(monkeypatch, capsys, "review", "import", str(aware), "--labels", str(labels_copy))
    assert code == 0, err
    later = _verdicts_file(tmp_path / "later.csv", [key], time="2024-01-01T10:30:00Z")
    assert evidens(monkeypatch, capsys, "review", "import", str(later), "--labels", str(labels_copy))[0] == 0
    from pipeline.outputs.review import current_verdicts, load_verdicts

    stored = load_verdicts(labels_copy)
    assert [v.decided_at for v in stored] == ["2024-01-01T10:00:00+00:00", "2024-01-01T10:30:00+00:00"]
    assert current_verdicts(stored)[key].decided_at == "2024-01-01T10:30:00+00:00"  # ordered, no TypeError


def test_a_stored_naive_time_beside_an_aware_one_is_named_not_a_type_error(
    labels_copy, corpus_dir, tmp_path, monkeypatch, capsys
):
    """The state the old code left: one naive, one aware time on one answer; `flag` used to exit 3 with
    `TypeError: can't compare offset-naive and offset-aware datetimes`."""
    (effort, criterion), *_ = _answer_keys(labels_copy)
    stored = labels_copy / "verdicts.csv"
    stored.write_text(
        f"{VERDICT_HEADER},imported_from\n{effort},{criterion},dismiss,,,a,2024-01-01T10:00:00,abc\n"
        f"{effort},{criterion},dismiss,,,a,2024-01-01T10:00:00+00:00,def\n",
        encoding="utf-8",
    )
    code, _, err = evidens(monkeypatch, capsys, "flag", "--corpus", str(corpus_dir),
                           "--labels", str(labels_copy), "--out", str(tmp_path / "reports"),
                           "--embedder", "fake", "--cache", str(tmp_path / "cache.sqlite"))  # fmt: skip
    assert code == 3
    assert_one_line_error(err, str(stored), "line 2", "no UTC offset")
    assert "TypeError" not in err


@pytest.mark.parametrize(
    ("time", "words"),
    [
        ("0001-01-01T00:00:00+01:00", "outside the calendar"),
        ("9999-12-31T23:59:59-01:00", "outside the calendar"),
        ("2024-01-01T10:00:00.123456789Z", "finer than a microsecond"),
    ],
    ids=["year-1", "year-9999", "nanoseconds"],
)
def test_a_time_outside_utcs_calendar_is_refused_with_the_line(
    labels_copy, corpus_dir, tmp_path, monkeypatch, capsys, time, words
):
    """Before: `review import` exited 3 with `OverflowError: date value out of range` (no line named), and the
    time stored by hand stopped every command that reads verdicts the same way; nanoseconds were cut in silence."""
    (effort, criterion), *_ = _answer_keys(labels_copy)
    edge = _verdicts_file(tmp_path / "edge.csv", [(effort, criterion)], time=time)
    code, _, err = evidens(monkeypatch, capsys, "review", "import", str(edge), "--labels", str(labels_copy))
    assert code == 1 and f"line 2: decided_at {time!r}" in err and words in err, err
    assert "Traceback" not in err and not (labels_copy / "verdicts.csv").exists()
    stored = labels_copy / "verdicts.csv"
    stored.write_text(
        f"{VERDICT_HEADER},imported_from\n{effort},{criterion},dismiss,,,a,{time},abc\n", "utf-8"
    )
    code, _, err = evidens(monkeypatch, capsys, "flag", "--corpus", str(corpus_dir),
                           "--labels", str(labels_copy), "--out", str(tmp_path / "reports"),
                           "--embedder", "fake", "--cache", str(tmp_path / "cache.sqlite"))  # fmt: skip
    assert code == 3
    assert_one_line_error(err, str(stored), "line 2", words)


@pytest.mark.parametrize(
    ("cell", "words"),
    [(("confrm", ""), ["line 2", "verdict 'confrm'"]), (("correct", "Nje"), ["line 2", "needs an answer"])],
    ids=["garbled-verdict", "garbled-answer"],
)
def test_a_garbled_cell_in_stored_verdicts_is_named_not_dropped(labels_copy, cell, words):
    from pipeline.outputs.review import load_verdicts

    (effort, criterion), *_ = _answer_keys(labels_copy)
    stored = labels_copy / "verdicts.csv"
    stored.write_text(
        f"{VERDICT_HEADER},imported_from\n{effort},{criterion},{cell[0]},{cell[1]},,a,2024-01-01T10:00:00Z,abc\n",
        encoding="utf-8",
    )
    with pytest.raises(EvidensError) as error:
        load_verdicts(
            labels_copy
        )  # before: the verdict was dropped in silence, or its answer reached sklearn
    for word in [str(stored), *words]:
        assert word in str(error.value)


def test_a_garbled_answer_in_answers_csv_is_named_by_file_and_line(
    labels_copy, tmp_path, monkeypatch, capsys
):
    answers = labels_copy / "answers.csv"
    rows = answers.read_text(encoding="utf-8").split("\n")
    rows[3] = rows[3].rsplit(",", 1)[0] + ",Jaa"
    answers.write_text("\n".join(rows), encoding="utf-8")
    verdicts = _verdicts_file(tmp_path / "v.csv", _answer_keys(labels_copy)[:1])
    code, _, err = evidens(
        monkeypatch, capsys, "review", "import", str(verdicts), "--labels", str(labels_copy)
    )
    assert code == 3
    assert_one_line_error(err, str(answers), "line 4", "answer 'Jaa'")


def test_a_pin_naming_no_criterion_is_warned_with_file_and_line(labels_copy, tmp_path, monkeypatch, capsys):
    """Before: a pin `foo,bar,same,x` (items in no criterion) was counted ("1 pins") and did nothing, exit 0,
    without a word."""
    from pipeline.ingest.criteria import PINS_FILE, CriteriaCatalogue, load_pins

    item_a, item_b = (row["item"] for row in read_csv(labels_copy / "answers.csv")[:2])
    pins = labels_copy / PINS_FILE
    pins.write_text(
        f"item_a,item_b,decision,note\n{item_a},{item_b},different,\nfoo,{item_b},same,x\n", "utf-8"
    )
    catalogue = CriteriaCatalogue.load(labels_copy / "criteria.csv", pins=load_pins(pins))
    assert catalogue.idle_pins() == [
        f"{pins}: line 3: item 'foo' is in no criterion of the catalogue, so the pin does nothing "
        "(copy the item's wording from `evidens criteria`)"
    ]
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(ODSHERRED), str(TAARNBY),
                           "--out", str(tmp_path / "corpus"), "--labels", str(labels_copy))  # fmt: skip
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {line}" for line in catalogue.idle_pins()]


@pytest.mark.parametrize("fault", ["a-folder", "read-only"])
def test_a_file_that_cannot_be_written_is_named_not_its_temporary_file(
    labels_copy, tmp_path, monkeypatch, capsys, fault
):
    """Before: `error: [Errno 21] Is a directory: '.answers.csv.zot71f6a.tmp' -> ...` or `Permission denied:
    .../.answers.csv.zot71f6a.tmp`: a temporary file's name, and no advice."""
    import tempfile

    answers = labels_copy / "answers.csv"
    if fault == "a-folder":
        answers.unlink()
        answers.mkdir()
    else:  # tests run as root here, where chmod forbids nothing: the refusal as the OS gives it
        make = tempfile.mkstemp

        def refused(*args, dir=None, prefix="", suffix="", **kwargs):
            if Path(dir) == labels_copy:
                raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/{prefix}zot71f6a{suffix}")
            return make(*args, dir=dir, prefix=prefix, suffix=suffix, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refused)
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(ODSHERRED), "--out", str(tmp_path / "corpus"),
                           "--labels", str(labels_copy))  # fmt: skip
    assert code == 3
    if fault == "a-folder":
        assert_one_line_error(err, f"Is a directory: {answers} (", "move the folder aside")
    else:  # the first file ingest writes in labels/
        assert_one_line_error(
            err, f"Permission denied: {labels_copy / 'criteria.csv'} (", "give this user access"
        )
    assert ".tmp" not in err and not list(labels_copy.glob(".*.tmp"))


SUPPORT_HEADER = "effort_id,municipality,criterion_id,test_kind,self_assessed,support,reason,item"


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        (['e1,M,c1,evidence_test,Ja,"supported","a note\nover two lines",x', "e1,M,c2,evidence_test,Ja,overclaimed,r,x"],
         ["line 4", "support 'overclaimed' is not one of"]),
        (["e1,M,c1,evidence_test,Ja,supported,r,x", "e1,M,c1,evidence_test,Ja,over-claimed,r,x"],
         ["line 3", "says 'over-claimed' where line 2 says 'supported'"]),
        ([",M,c1,evidence_test,Ja,supported,r,x"], ["line 2", "an empty effort_id"]),
    ],
    ids=["bad-value-after-a-newline-in-a-note", "contradicting-duplicate", "empty-key"],
)  # fmt: skip
def test_a_bad_support_set_is_one_line_naming_file_and_line(tmp_path, rows, words):
    """Before: `python -m pipeline.outputs.support` ended in a traceback (`ValueError`) on a bad value, a
    contradicting duplicate row won in silence, and line numbers came from the row index (wrong after a note
    with a newline)."""
    support = tmp_path / "support.csv"
    support.write_text("\n".join([SUPPORT_HEADER, *rows]) + "\n", encoding="utf-8")
    flags = tmp_path / "flags.csv"
    flags.write_text("effort_id\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.outputs.support", str(flags), str(support)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 3 and done.stdout == ""
    assert_one_line_error(done.stderr, str(support), *words)


# --- CSV: one reader, no line splitting before it, an explicit field limit ----------------------------------
def test_a_newline_and_a_u2028_in_a_note_keep_the_rows(labels_copy, tmp_path):
    from pipeline.outputs.review import import_verdicts, load_verdicts

    keys = _answer_keys(labels_copy)[:3]
    path = tmp_path / "v.csv"
    notes = ['"first line\nsecond line"', "a\u2028b", "c\x0cd\x1ce\x85f"]
    lines = [
        VERDICT_HEADER,
        *(f"{e},{c},dismiss,,{n},t,2024-01-01T10:00:00Z" for (e, c), n in zip(keys, notes, strict=True)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert import_verdicts(path, labels_copy).added == 3  # before: splitlines() broke the rows (refused)
    assert [v.note for v in load_verdicts(labels_copy)] == [
        "first line\nsecond line",
        "a\u2028b",
        "c\x0cd\x1ce\x85f",
    ]


def test_a_huge_note_is_read_and_an_oversized_one_refused_with_the_line(labels_copy, tmp_path):
    from pipeline.defaults import MAX_CSV_FIELD_CHARS
    from pipeline.outputs.review import VerdictFileError, import_verdicts, load_verdicts

    keys = _answer_keys(labels_copy)[:2]
    big = _verdicts_file(tmp_path / "big.csv", keys[:1], note="x" * 200_000)  # over csv's default 131,072
    assert import_verdicts(big, labels_copy).added == 1
    assert len(load_verdicts(labels_copy)[0].note) == 200_000
    huge = _verdicts_file(tmp_path / "huge.csv", keys, note="y" * (MAX_CSV_FIELD_CHARS + 1))
    with pytest.raises(VerdictFileError) as refused:
        import_verdicts(huge, labels_copy)
    assert refused.value.problems == [
        f"line 2: not valid CSV (a cell over {MAX_CSV_FIELD_CHARS:,} characters)"
    ]


def test_no_reader_splits_lines_before_the_csv_reader():
    sources = {p: p.read_text(encoding="utf-8") for p in (REPO / "pipeline").rglob("*.py")}
    readers = [p.name for p, text in sources.items() if "csv.reader" in text or "csv.DictReader" in text]
    assert readers == ["tables.py"]  # the one reader
    assert not [p.name for p, text in sources.items() if "import csv" in text and "splitlines" in text]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_verdicts_file_that_is_a_fifo_is_refused_not_waited_on(labels_copy, tmp_path, monkeypatch, capsys):
    import signal

    fifo = tmp_path / "verdicts.csv"
    os.mkfifo(fifo)

    def hung(*_):
        raise AssertionError("reading the FIFO blocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        code, _, err = evidens(
            monkeypatch, capsys, "review", "import", str(fifo), "--labels", str(labels_copy)
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 1 and "a FIFO (named pipe), expected a regular file" in err and "Traceback" not in err


def test_a_verdicts_file_over_the_row_limit_is_refused_with_the_line(labels_copy, tmp_path, monkeypatch):
    from pipeline.outputs import review

    monkeypatch.setattr(review, "MAX_VERDICT_ROWS", 5)
    path = _verdicts_file(tmp_path / "v.csv", _answer_keys(labels_copy)[:6])
    with pytest.raises(review.VerdictFileError) as refused:
        review.import_verdicts(path, labels_copy)
    assert refused.value.problems == ["line 7: more than 5 rows (the limit): split the file"]
    assert not (labels_copy / "verdicts.csv").exists()


# --- properties (hypothesis): the CSV round trip, the verdict import, the page parser -----------------------
FORMULA_TEXT = st.builds(
    lambda start, rest: start + rest, st.sampled_from([*FORMULA_STARTS, "'", "''"]), st.text()
)
LINE_BREAKS = st.sampled_from(
    ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x85", '"', ","]
)
HUGE = st.builds(lambda char, n: char * n, st.characters(), st.integers(131_000, 140_000))
ANY_CELL = st.one_of(
    st.text(), FORMULA_TEXT, st.lists(st.one_of(st.text(max_size=5), LINE_BREAKS)).map("".join), HUGE
)
# EVIDENS_EXAMPLES=2000 searches harder (1,500 each passed at the time of writing)
PROPERTIES = settings(
    max_examples=int(os.environ.get("EVIDENS_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@PROPERTIES
@given(
    rows=st.lists(st.fixed_dictionaries({"a": ANY_CELL, "b": ANY_CELL}), max_size=4),
    single=st.lists(ANY_CELL, max_size=3),
)
def test_property_any_text_survives_the_csv_writer_and_reader(tmp_path_factory, rows, single):
    from pipeline.tables import write_csv

    folder = tmp_path_factory.mktemp("csv")
    write_csv(folder / "two.csv", rows, ("a", "b"))
    assert read_csv(folder / "two.csv", ("a", "b")) == rows
    write_csv(folder / "one.csv", [{"a": cell} for cell in single], ("a",))
    assert [row["a"] for row in read_csv(folder / "one.csv", ("a",))] == single


AWARE_TIMES = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
    ),
)
VERDICT_ROW = st.tuples(
    st.sampled_from(
        [("confirm", ""), ("dismiss", ""), ("correct", "Ja"), ("correct", "Delvist"), ("correct", "Nej")]
    ),
    st.one_of(st.text(), FORMULA_TEXT, LINE_BREAKS),
    st.text(max_size=20),
    AWARE_TIMES,
)
BREAKAGES = {
    "verdict": lambda row: {**row, "verdict": "agree"},
    "naive time": lambda row: {**row, "decided_at": "2024-01-01T10:00:00"},
    "not a time": lambda row: {**row, "decided_at": "yesterday"},
    "unknown effort": lambda row: {**row, "effort_id": "no-such-effort"},
    "answer with confirm": lambda row: {**row, "verdict": "confirm", "answer": "Ja"},
    "correct without answer": lambda row: {**row, "verdict": "correct", "answer": ""},
}


@PROPERTIES
@given(data=st.data(), rows=st.lists(VERDICT_ROW, min_size=1, max_size=8))
def test_property_valid_verdicts_round_trip_and_a_bad_line_is_named(tmp_path_factory, corpus_dir, data, rows):
    from pipeline.outputs.review import VERDICT_COLUMNS, VerdictFileError, import_verdicts, load_verdicts
    from pipeline.tables import csv_text

    labels = tmp_path_factory.mktemp("labels")
    shutil.copy(corpus_dir / "labels" / "answers.csv", labels / "answers.csv")
    keys = _answer_keys(labels)[: len(rows)]
    written = [
        dict(zip(VERDICT_COLUMNS, (e, c, verdict, answer, note, analyst, moment.isoformat()), strict=True))
        for (e, c), ((verdict, answer), note, analyst, moment) in zip(keys, rows, strict=False)
    ]
    path = tmp_path_factory.mktemp("in") / "verdicts.csv"
    path.write_text(csv_text(written, VERDICT_COLUMNS), encoding="utf-8")
    assert import_verdicts(path, labels).added == len(written)
    stored = load_verdicts(labels)
    assert [(v.verdict, v.answer, v.note, v.analyst) for v in stored] == [
        (r["verdict"], r["answer"], r["note"].strip(), r["analyst"].strip()) for r in written
    ]
    assert [datetime.fromisoformat(v.decided_at) for v in stored] == [
        datetime.fromisoformat(r["decided_at"]) for r in written
    ]
    assert all(v.decided_at.endswith("+00:00") for v in stored)

    broken, breakage = (
        data.draw(st.integers(0, len(written) - 1)),
        data.draw(st.sampled_from(sorted(BREAKAGES))),
    )
    bad = [BREAKAGES[breakage](row) if i == broken else row for i, row in enumerate(written)]
    before = (labels / "verdicts.csv").read_bytes()
    path.write_text(csv_text(bad, VERDICT_COLUMNS), encoding="utf-8")
    with pytest.raises(VerdictFileError) as refused:
        import_verdicts(path, labels)
    line = csv_records(path).records[broken][0]  # the line the broken row starts on
    assert any(problem.startswith(f"line {line}: ") for problem in refused.value.problems), (
        breakage,
        refused.value.problems,
    )
    assert (labels / "verdicts.csv").read_bytes() == before  # nothing written


REAL_LINES = TAARNBY.read_text(encoding="utf-8").split("\n")
PAGE_LINES = st.one_of(
    st.sampled_from(REAL_LINES),
    st.sampled_from(["Kommunens beskrivelse af indsatsen", "Evidenstest vedr. x", "God praksis test", "Ja: x", "4,0",
                     " • Nej:", " • : tom", "Tema: x", "Side 1", "Gode råd", "Se færre svar", "5,5", "0,", "•"]),
    st.text(max_size=40),
)  # fmt: skip


@PROPERTIES
@given(lines=st.lists(PAGE_LINES, max_size=80), raw=st.binary(max_size=300))
def test_property_any_text_parses_or_is_rejected_with_a_reason(tmp_path_factory, lines, raw):
    from pipeline.ingest import PageError, records_from_text
    from pipeline.ingest.readers import UnreadableFile, normalise_page

    text = normalise_page("\n".join(lines))
    try:
        efforts = records_from_text("generated.txt", text)
    except PageError as error:
        assert str(error).strip()
    else:
        assert all(e.effort_id and e.kind for e in efforts)
    page = tmp_path_factory.mktemp("page") / "page.txt"
    page.write_bytes(raw)
    try:
        read_page_file(page)
    except UnreadableFile as error:
        assert str(error).strip()


# --- ingest: every input rejected, a killed ingest, bounds on a page ---------------------------------------
def test_every_input_rejected_exits_1_and_writes_nothing(tmp_path, monkeypatch, capsys):
    pages = tmp_path / "in"
    pages.mkdir()
    (pages / "empty.txt").write_text("")
    (pages / "note.txt").write_text("not a page at all\n")
    corpus, labels = tmp_path / "corpus", tmp_path / "labels"
    corpus.mkdir()
    (corpus / EFFORTS_FILE).write_text("old\n")
    code, _, err = evidens(
        monkeypatch, capsys, "ingest", str(pages), "--out", str(corpus), "--labels", str(labels)
    )
    assert (
        code == 1 and "Traceback" not in err and "Keys mismatch" not in err
    )  # before: exit 3, Keys mismatch
    assert_one_line_error(err, "every input was rejected (2 of 2 files): nothing written")
    assert "empty file" in err and "unrecognised page" in err
    assert [p.name for p in corpus.iterdir()] == [EFFORTS_FILE] and (
        corpus / EFFORTS_FILE
    ).read_text() == "old\n"
    assert not labels.exists()


def test_an_empty_corpus_is_valid(tmp_path):
    from pipeline.corpus import load_dataset, load_efforts, write_corpus

    write_corpus([], [], tmp_path)
    assert load_efforts(tmp_path) == [] and len(load_dataset(tmp_path)) == 0


@pytest.fixture
def written_corpus(tmp_path, ingested) -> Path:
    """A corpus folder as `evidens ingest` writes it (write_corpus), without the slow tier's e5."""
    from pipeline.corpus import write_corpus

    corpus = tmp_path / "corpus"
    write_corpus(ingested.efforts, ingested.rejected, corpus)
    return corpus


def _garble_a_letter(text: str) -> str:
    """One letter of the first labelled record's first answered item changed: the line still parses."""
    lines = text.split("\n")
    number, row = next(
        (n, json.loads(line)) for n, line in enumerate(lines) if line and json.loads(line)["tests"]
    )
    item = row["tests"][0]["answers"][0]["item"]
    at = next(i for i, c in enumerate(item) if c.isalpha())
    garbled = item[:at] + ("x" if item[at] != "x" else "y") + item[at + 1 :]
    lines[number] = lines[number].replace(
        json.dumps(item, ensure_ascii=False), json.dumps(garbled, ensure_ascii=False), 1
    )
    assert lines[number] != text.split("\n")[number]
    return "\n".join(lines)


def _change_an_answer(text: str) -> str:
    """A labelled record's first answer changed to another valid answer: the line still parses."""
    lines = text.split("\n")
    number, row = next(
        (n, json.loads(line)) for n, line in enumerate(lines) if line and json.loads(line)["tests"]
    )
    answer = row["tests"][0]["answers"][0]
    answer["answer"] = "Nej" if answer["answer"] != "Nej" else "Ja"
    lines[number] = json.dumps(row, ensure_ascii=False)
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (_garble_a_letter, ["changed since `evidens ingest` wrote it (checksum)"]),
        (_change_an_answer, ["changed since `evidens ingest` wrote it (checksum)"]),
        (lambda text: "".join(text.splitlines(keepends=True)[:-1]), ["changed since", "(checksum)"]),
        (lambda text: text[: len(text) * 2 // 3], ["not valid JSON"]),
    ],
    ids=["garbled-letter-in-a-labelled-record", "changed-answer", "truncated-at-a-line", "truncated-mid-record"],
)  # fmt: skip
def test_a_corpus_changed_since_ingest_is_refused_naming_the_file(written_corpus, damage, words, monkeypatch,
                                                                   capsys):  # fmt: skip
    """Before: a record whose text or answers were altered by hand or by a damaged disk, or a file that lost
    whole lines, still parsed and was used (exit 0). Now efforts.jsonl is checked against the SHA-256 that
    write_corpus recorded in corpus/.corpus.json: exit 3, one line naming the file and saying what to do."""
    path = written_corpus / EFFORTS_FILE
    text = path.read_text(encoding="utf-8")
    path.write_text(damage(text), encoding="utf-8")
    with pytest.raises(EvidensError, match="run `evidens ingest` again"):
        load_efforts(written_corpus)
    code, _, err = evidens(
        monkeypatch, capsys, "evidence", "--corpus", str(written_corpus), "--embedder", "fake"
    )
    assert code == 3
    assert_one_line_error(err, str(path), *words, "run `evidens ingest` again")


def test_a_corpus_without_a_manifest_loads_with_one_warning(written_corpus, caplog):
    """A corpus written by an evidens from before the manifest is read unchecked, with one warning."""
    from pipeline.corpus import MANIFEST_FILE

    expected = load_efforts(written_corpus)
    (written_corpus / MANIFEST_FILE).unlink()
    with caplog.at_level("WARNING", logger="evidens"):
        assert load_efforts(written_corpus) == expected
        assert load_efforts(written_corpus) == expected  # `evidens run` reads it for train and again to flag
    warnings = _warnings(caplog)  # before: the warning twice
    assert len(warnings) == 1 and "no checksum manifest" in warnings[0] and "evidens ingest" in warnings[0]


def test_an_untouched_corpus_loads_without_a_warning(written_corpus, ingested, caplog):
    with caplog.at_level("WARNING", logger="evidens"):
        assert load_efforts(written_corpus) == ingested.efforts
    assert _warnings(caplog) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace('"sha256": "', '"sha256": "0', 1),
        lambda text: text[: len(text) // 2],
        lambda text: "",
    ],
    ids=["altered", "truncated", "empty"],
)
def test_a_damaged_corpus_manifest_is_refused_naming_it(written_corpus, damage):
    from pipeline.corpus import MANIFEST_FILE

    manifest = written_corpus / MANIFEST_FILE
    manifest.write_text(damage(manifest.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(EvidensError, match=rf"{MANIFEST_FILE}: damaged .*run `evidens ingest` again"):
        load_efforts(written_corpus)


def test_a_killed_ingest_leaves_no_staging_folder_behind(tmp_path, ingested):
    import multiprocessing
    import signal

    import datasets

    from pipeline.corpus import STAGING_PREFIX, load_dataset, load_efforts, write_corpus

    efforts = ingested.efforts[:2]

    def killed_while_saving():
        save = datasets.Dataset.save_to_disk

        def save_then_die(self, path, *args, **kwargs):
            save(self, path, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        datasets.Dataset.save_to_disk = save_then_die
        write_corpus(efforts, [], tmp_path)

    child = multiprocessing.get_context("fork").Process(target=killed_while_saving)
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert [p.name.startswith(f"{STAGING_PREFIX}{child.pid}-") for p in tmp_path.iterdir()] == [
        True
    ]  # the kill's
    write_corpus(efforts, [], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".corpus.json",
        "efforts.jsonl",
        "efforts_dataset",
        "rejected.jsonl",
    ]
    assert [e.effort_id for e in load_efforts(tmp_path)] == load_dataset(tmp_path)["effort_id"]


def test_a_page_over_a_million_characters_is_rejected_naming_the_limit(tmp_path, monkeypatch, capsys):
    pages = tmp_path / "in"
    pages.mkdir()
    long = make_effort_page("Nyby", [("Ja", "borgerne får samtaler")], description="Borgerne. " * 110_000)
    (pages / "long.txt").write_text(long, encoding="utf-8")
    code, _, err = evidens(monkeypatch, capsys, "ingest", str(pages), "--out", str(tmp_path / "c"),
                           "--labels", str(tmp_path / "l"))  # fmt: skip
    assert code == 1 and "Traceback" not in err and "E088" not in err  # before: exit 3, spaCy's E088
    assert (
        f"{pages / 'long.txt'}: 1,100," in err and "characters, over the limit of 1,000,000 per page" in err
    )


def test_a_page_with_20000_answers_is_rejected_at_once(tmp_path):
    import time

    from pipeline.ingest import ingest_paths

    answers = [("Ja", f"borgerne får samtale nummer {i} hver uge") for i in range(20_000)]
    (tmp_path / "many.txt").write_text(make_effort_page("Nyby", answers), encoding="utf-8")
    began = time.perf_counter()
    result = ingest_paths([tmp_path / "many.txt"])
    assert time.perf_counter() - began < 30  # before: over 3 minutes and ~880 MB in ingest
    (rejection,) = result.rejected
    assert rejection.reason == (
        f"{tmp_path / 'many.txt'}: 20,000 answers, over the limit of 1,000 per page (the real pages have under "
        "50): is it one page?"
    )


@pytest.mark.slow  # an MLflow store (its migrations take seconds) or a second process
def test_a_garbled_mlflow_store_is_one_line_without_mlflows_log(tmp_path, monkeypatch, capsys):
    from pipeline.tracking import configure

    path = tmp_path / "mlflow.db"
    configure(f"sqlite:///{path}", experiments_dir=tmp_path / "experiments")
    with contextlib.closing(sqlite3.connect(path)) as db:  # MLflow's tables, one of them garbled
        db.execute("DROP TABLE experiments")
        db.execute("CREATE TABLE experiments (x INTEGER)")
        db.commit()
    code, _, err = evidens(
        monkeypatch, capsys, "predict", str(ODSHERRED), "--tracking-uri", f"sqlite:///{path}"
    )
    assert code == 3
    assert_one_line_error(err, str(path), "cannot be read", "no such column")
    assert len(err.strip().splitlines()) == 1, err  # before: 66 lines of MLflow's ERROR log and tracebacks


# --- MLflow: steps that survive a kill -------------------------------------------------------------------------
INTERMEDIATE_REVISION = (
    "0584bdc529eb"  # one of MLflow's migrations, about half-way (a kill after 3 s did this)
)


def _half_made_store(path: Path) -> None:
    """What a kill during MLflow's first migrations left: the initial tables, migrations part-way, and the
    temporary table of the migration that was running."""
    import sqlalchemy
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        config = _get_alembic_config(str(engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, INTERMEDIATE_REVISION)
    engine.dispose()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE _alembic_tmp_experiments (experiment_id INTEGER)")


def test_a_kill_while_the_mlflow_store_is_first_made_leaves_no_store(tmp_path, monkeypatch):
    """Before: a kill during MLflow's first migrations left a half-made store, and every later command failed
    (`table _alembic_tmp_experiments already exists`, or another migration error)."""
    import alembic.command
    import mlflow

    from pipeline import tracking

    store = tmp_path / "mlflow.db"
    stale = tmp_path / ".mlflow.db.999999999.creating"  # left by a process killed earlier
    stale.write_bytes(b"half")
    upgrade = alembic.command.upgrade

    def killed(config, revision, **kwargs):
        upgrade(config, INTERMEDIATE_REVISION, **kwargs)
        raise KeyboardInterrupt  # the kill, half-way through the migrations

    monkeypatch.setattr(alembic.command, "upgrade", killed)
    with pytest.raises(KeyboardInterrupt):
        tracking.configure(f"sqlite:///{store}")
    assert not store.exists()  # no store rather than half of one
    monkeypatch.undo()
    tracking.configure(f"sqlite:///{store}")
    assert [e.name for e in mlflow.MlflowClient(f"sqlite:///{store}").search_experiments()].count(
        "evidens"
    ) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "mlflow.db"]  # the stale one went too


@pytest.mark.slow  # MLflow's migrations run twice (about 8 s): kept out of the fast tier's 60 s
def test_a_half_made_mlflow_store_is_made_again(tmp_path, caplog, monkeypatch, capsys):
    import mlflow

    from pipeline import tracking

    store = tmp_path / "mlflow.db"
    _half_made_store(store)
    code, _, err = evidens(
        monkeypatch, capsys, "predict", str(ODSHERRED), "--tracking-uri", f"sqlite:///{store}"
    )
    assert code == 3  # a command that only reads: one line, and the store left as it is
    assert_one_line_error(err, "half-made", "evidens train")
    with caplog.at_level("WARNING", logger="evidens"):
        tracking.configure(f"sqlite:///{store}")
    assert "moved aside to mlflow.db.half-made" in caplog.text + capsys.readouterr().err
    assert (tmp_path / "mlflow.db.half-made").exists()
    assert "evidens" in [e.name for e in mlflow.MlflowClient(f"sqlite:///{store}").search_experiments()]


def test_another_programs_database_is_never_taken_for_a_half_made_store(tmp_path):
    from pipeline import tracking

    store = tmp_path / "mlflow.db"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    before = store.read_bytes()
    with pytest.raises(EvidensError, match="an SQLite file but not an MLflow store"):
        tracking.configure(f"sqlite:///{store}")
    assert store.read_bytes() == before and not (tmp_path / "mlflow.db.half-made").exists()


def test_a_truncated_model_file_is_one_line_naming_it(tmp_path, fake_model):
    import hashlib

    import joblib

    from pipeline.tracking import DamagedModel, load_fitted_model

    path = tmp_path / "model.joblib"
    joblib.dump(fake_model, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert isinstance(load_fitted_model(path, digest), type(fake_model))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedModel, match=rf"{path}: the model file cannot be read \(\d+ bytes; \w+"):
        load_fitted_model(path)  # a model registered before the checksums: the failure itself, named
    with pytest.raises(DamagedModel, match=rf"{path}: the model file is damaged .* where {digest[:12]} was"):
        load_fitted_model(path, digest)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit at the end: may still unpickle
    with pytest.raises(DamagedModel, match="damaged"):
        load_fitted_model(path, digest)


def _saved_pyfunc(folder: Path, model) -> Path:
    """A pyfunc model folder as `evidens train` logs one (no store needed): the packed model and its SHA-256."""
    import hashlib

    import joblib
    import mlflow

    from pipeline.tracking import EvidensPyfunc

    packed = folder.with_suffix(".joblib")
    joblib.dump(model, packed)
    digest = folder.with_suffix(".sha256")
    digest.write_text(hashlib.sha256(packed.read_bytes()).hexdigest(), encoding="utf-8")
    artifacts = {"model": str(packed), "model_sha256": str(digest)}
    mlflow.pyfunc.save_model(
        str(folder), python_model=EvidensPyfunc(), artifacts=artifacts, pip_requirements=[]
    )
    return folder


@pytest.mark.parametrize(
    ("name", "damage"),
    [("MLmodel", b"garbage: ["), ("MLmodel", b"flavors: {}\n"), ("python_model.pkl", b"xx")],
    ids=["garbled-yaml", "no-flavour", "garbled-pickle"],
)
def test_a_garbled_mlmodel_is_one_line_naming_the_model(tmp_path, fake_model, name, damage):
    """Before: `batch` with a garbled MLmodel exited 3 with `error: ParserError: while parsing a flow node ...
    (--verbose shows the traceback)`, the form of an unexpected error, with no advice."""
    from pipeline.tracking import load_evidens_model

    folder = _saved_pyfunc(tmp_path / "model", fake_model)
    assert isinstance(load_evidens_model(str(folder)), type(fake_model))
    (folder / name).write_bytes(damage)
    with pytest.raises(EvidensError) as error:
        load_evidens_model(str(folder))
    message = str(error.value)
    assert f"the model stored at {folder} is damaged" in message and "register it again" in message, message
    assert "\n" not in message
    with pytest.raises(EvidensError, match=r"cannot load the model .*: train one"):
        load_evidens_model(str(tmp_path / "nothing-here"))


@pytest.mark.slow  # two trainings registered in MLflow (about 30 s), no e5
def test_a_kill_before_the_aliases_is_repaired_and_artifacts_stay_beside_the_store(
    labelled_efforts, corpus_dir, tmp_path, monkeypatch, capsys
):
    """(b) Before: a kill between registering a version and moving `champion` left no champion, and the next
    train said "unchanged ... not registered again". (d) Before: with --tracking-uri elsewhere, the artifacts
    went to ./experiments/artifacts. (c) Before: a truncated model.joblib ended in `Aborted!`, exit 1."""
    import mlflow
    from sklearn.base import clone

    from pipeline import tracking
    from pipeline.judgement.evaluate import leave_one_effort_out
    from pipeline.judgement.model import EvidensModel

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    store = tmp_path / "elsewhere" / "mlflow.db"
    uri = tracking.configure(f"sqlite:///{store}")
    model = EvidensModel(embedder="fake")
    evaluation = leave_one_effort_out(labelled_efforts, model, heads=("rules",))
    fitted = clone(model).fit(labelled_efforts)
    settle = tracking._settle_aliases
    training = partial(
        tracking.log_training,
        fitted,
        labelled_efforts,
        evaluation,
        tracking.LabelledData(corpus_dir, corpus_dir / "labels"),
        "Generated example page.",
        lambda unfitted: leave_one_effort_out(labelled_efforts, unfitted, heads=(unfitted.head,)),
    )

    def killed(version, macro_f1, champion_figure):
        raise KeyboardInterrupt  # registered, tags with it; not yet described, the aliases not yet moved

    monkeypatch.setattr(tracking, "_settle_aliases", killed)
    with pytest.raises(KeyboardInterrupt):
        training()
    monkeypatch.setattr(tracking, "_settle_aliases", settle)
    client = mlflow.MlflowClient(uri, uri)
    assert client.get_model_version("evidens", "1").tags[tracking.FINGERPRINT_TAG]
    assert client.get_registered_model("evidens").aliases == {}
    assert not client.get_model_version("evidens", "1").description
    again = training()
    assert not again.registered and again.version == "1" and again.champion
    assert client.get_registered_model("evidens").aliases == {"champion": 1, "candidate": 1}
    assert "Label version" in client.get_model_version("evidens", "1").description

    artifacts = store.parent / "artifacts"
    (packed,) = artifacts.rglob("model.joblib")
    assert (
        not (tmp_path / "work" / "experiments").exists() and list(tmp_path.joinpath("work").iterdir()) == []
    )

    packed.write_bytes(packed.read_bytes()[:1000])
    code, _, err = evidens(monkeypatch, capsys, "predict", str(ODSHERRED), "--tracking-uri", uri)
    assert code == 3 and "Aborted" not in err
    assert_one_line_error(err, str(packed), "damaged", "evidens train")


@pytest.mark.slow  # two models registered in MLflow, no e5
def test_another_versions_model_files_swapped_in_are_refused(
    labelled_efforts, corpus_dir, tmp_path, monkeypatch, capsys
):
    """Before: v2's model.joblib and model.joblib.sha256 copied into v1's artifact folder made
    `models:/evidens/1` score as v2, exit 0: the checksum lay beside the file, not in the registry."""
    import mlflow
    from sklearn.base import clone

    from pipeline import tracking
    from pipeline.judgement.evaluate import leave_one_effort_out
    from pipeline.judgement.model import EvidensModel

    uri = tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")
    evaluation = leave_one_effort_out(labelled_efforts, EvidensModel(embedder="fake"), heads=("rules",))
    for head in ("rules", "logistic"):
        fitted = clone(EvidensModel(embedder="fake", head=head)).fit(labelled_efforts)
        tracking.log_training(fitted, labelled_efforts, evaluation, tracking.LabelledData(corpus_dir, corpus_dir / "labels"),
                              "Generated example page.", lambda unfitted: evaluation)  # fmt: skip
    client = mlflow.MlflowClient(uri, uri)
    folders = []
    for version in ("1", "2"):
        recorded = client.get_model_version("evidens", version).tags[tracking.MODEL_SHA256_TAG]
        (packed,) = Path(tracking._stored_root(f"models:/evidens/{version}")).rglob("model.joblib")
        assert recorded == hashlib.sha256(packed.read_bytes()).hexdigest()
        folders.append(packed.parent)
    for name in ("model.joblib", "model.joblib.sha256"):
        shutil.copyfile(folders[1] / name, folders[0] / name)
    assert tracking.load_evidens_model("models:/evidens/2").head == "logistic"
    code, _, err = evidens(monkeypatch, capsys, "predict", str(ODSHERRED), "--model", "models:/evidens/1",
                           "--tracking-uri", uri)  # fmt: skip
    assert code == 3
    assert_one_line_error(
        err, str(folders[0] / "model.joblib"), "not the model registered as evidens version 1"
    )


def test_a_full_disk_under_the_cache_stops_a_batch_instead_of_rejecting_pages(
    tmp_path, fake_scorer, monkeypatch
):
    """Before: the cache raised EvidensError on a full disk and the batch rejected every page with it (a
    traceback each, exit 1). Now the run's own faults stop the batch with one line; a rerun resumes."""

    def full(self, key, source, efforts):
        raise EvidensError("no space left on device writing cache.sqlite: free some space and run again")

    monkeypatch.setattr(FakeScorer, "score", full)
    pages = _pages(tmp_path / "in", ODSHERRED, TAARNBY)
    with pytest.raises(EvidensError, match="no space left"):
        run_batch(pages, tmp_path / "out", "unused")


@pytest.mark.slow  # evidens in subprocesses, killed and rerun: a few minutes
def test_a_seeded_fault_run_ends_every_timing_at_the_uninterruptedbatch_outputs(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "fault_run.py"), "--quick", "6", "--commands", "batch,review",
         "--seed", "3", "--keep", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "6 of 6 timings match the uninterrupted run" in done.stdout
    assert done.stdout.count(": matches") == 6
    killed = int(done.stdout.split(" killed before they finished")[0].rsplit("(", 1)[1])
    assert killed >= 3  # the kills landed inside the commands, not after them
