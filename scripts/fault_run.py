"""Fault run: kill `evidens run`, `train`, `batch` and `review import` at random moments (SIGKILL, seeded), rerun
each cleanly, and check that every output equals that of a run that was never killed.

    .venv/bin/python scripts/fault_run.py            # full mode: 52 timings (13 per command)
    .venv/bin/python scripts/fault_run.py --quick 5  # 5 timings, the commands in turn
    .venv/bin/python scripts/fault_run.py --seed 7 --keep /tmp/fault-run  # another draw; keep the folders
    .venv/bin/python scripts/fault_run.py --start 40  # the full run's draws 41 to 52 only (same seed, same draws)

Each command runs in its own process group in a fresh copy of a small project (the corpus's raw pages, the
shipped label files) with the lexical `tfidf` embedder as the default (it needs no model, so one timing takes
seconds, not minutes): the child is this script with `--child`, which sets pipeline.defaults.DEFAULT_EMBEDDER
before the command line is imported. A timing is drawn uniformly over the uninterrupted command's duration;
the rerun is the same command line. Compared: corpus/efforts.jsonl, corpus/rejected.jsonl, labels/*,
reports/predictions.csv, flags.csv and report.html (`run`); OUT/efforts.jsonl, predictions.csv, flags.csv,
rejected.jsonl and report.html (`batch`); labels/verdicts.csv (`review import`); and for `run` and `train`
the MLflow store's aliases (which fingerprint `champion` and `candidate` point at; run ids excluded).
Timestamps in report.html (none today) and its identity (its output folder's, which keys the analyst's decisions
in the browser) are blanked before comparing. Prints one line per timing and a summary;
exit code 1 when any timing differs."""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("run", "train", "batch", "review")
FULL_TIMINGS = 13  # per command: 52 in all
# report.html's identity is its output folder's, by design: the reference and a timing differ in it
REPORT_ID = re.compile(rb'(evidens-report-id" content="|var REPORT_ID = ")[0-9a-f]+')
TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?")


def child(argv: list[str]) -> None:
    """Run `evidens ARGV` with tfidf as the default embedder (this process only)."""
    sys.path.insert(0, str(REPO))
    import pipeline.defaults

    pipeline.defaults.DEFAULT_EMBEDDER = "tfidf"
    from pipeline.cli import entry

    sys.argv = ["evidens", *argv]
    entry()


def command_line(command: str) -> list[str]:
    store = ["--tracking-uri", "sqlite:///experiments/mlflow.db"]
    return {
        "run": ["run", "--raw", "raw", *store, "--cache", "cache.sqlite"],
        "train": ["train", "--embedder", "tfidf", *store, "--cache", "cache.sqlite"],
        "batch": ["batch", "raw", "--out", "out", *store, "--cache", "cache.sqlite"],
        "review": ["review", "import", "verdicts.csv"],
    }[command]


def evidens(folder: Path, argv: list[str], kill_after: float | None = None) -> tuple[int | None, float]:
    """(exit code, or None when killed; seconds) of `evidens ARGV` in folder."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", *argv],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = process.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None, time.perf_counter() - started
    if process.returncode not in (0, 1):
        print(err.decode(errors="replace")[-2000:], file=sys.stderr)
    return process.returncode, time.perf_counter() - started


def project(base: Path) -> Path:
    """A fresh small project: the raw pages and the shipped label files."""
    base.mkdir(parents=True)
    shutil.copytree(REPO / "corpus" / "raw", base / "raw")
    shutil.copytree(REPO / "labels", base / "labels")
    return base


def prepared(command: str, template: Path, folder: Path) -> Path:
    """The state a command starts from: `run` a fresh project; the others the project after one clean run
    (train: ingested corpus, no store; batch: a trained store, no OUT; review: a verdicts file to import)."""
    shutil.copytree(template, folder, symlinks=True)
    if command == "train":
        shutil.rmtree(folder / "experiments")
    elif command == "batch":
        shutil.rmtree(folder / "out", ignore_errors=True)
    elif command == "review":
        (folder / "labels" / "verdicts.csv").unlink(missing_ok=True)
    return folder


def verdicts_file(labels: Path, path: Path) -> None:
    """A verdicts file as the report exports it (generated: the fault run's input, never labels)."""
    with (labels / "answers.csv").open(encoding="utf-8", newline="") as handle:
        answers = list(csv.DictReader(handle))
    rows = []
    for number, answer in enumerate(answers[:60]):
        verdict = ("confirm", "dismiss", "correct")[number % 3]
        other = next(a for a in ("Ja", "Delvist", "Nej") if a != answer["answer"])
        rows.append([answer["effort_id"], answer["criterion_id"], verdict, other if verdict == "correct" else "",
                     "fault run", "fault-run", "2026-01-01T00:00:00+00:00"])  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["effort_id", "criterion_id", "verdict", "answer", "note", "analyst", "decided_at"])
        writer.writerows(rows)


def aliases(store: Path) -> dict[str, str]:
    """alias -> the fingerprint of the version it points at (run ids and version numbers left out)."""
    if not store.exists():
        return {"store": "missing"}
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT a.alias, t.value FROM registered_model_aliases a LEFT JOIN model_version_tags t "
            "ON t.name = a.name AND t.version = a.version AND t.key = 'evidens.fingerprint'"
        ).fetchall()
    return {alias: value or "no fingerprint" for alias, value in rows}


def outputs(command: str, folder: Path) -> dict[str, str]:
    """What must equal the uninterrupted run's: a digest per file (timestamps blanked), and the aliases."""
    if command == "run":
        files = [folder / "corpus" / "efforts.jsonl", folder / "corpus" / "rejected.jsonl",
                 *sorted((folder / "labels").glob("*")),
                 *(folder / "reports" / n for n in ("predictions.csv", "flags.csv", "report.html"))]  # fmt: skip
    elif command == "batch":
        names = ("efforts.jsonl", "predictions.csv", "flags.csv", "rejected.jsonl", "report.html")
        files = [folder / "out" / n for n in names]
    elif command == "review":
        files = sorted((folder / "labels").glob("*"))
    else:
        files = []
    found = {}
    for path in files:
        data = path.read_bytes() if path.exists() else b"<missing>"
        if path.suffix == ".html":
            data = TIMESTAMP.sub(b"<time>", REPORT_ID.sub(rb"\1<report id>", data))
        found[str(path.relative_to(folder))] = hashlib.sha256(data).hexdigest()[:16]
    if command in ("run", "train"):
        found.update({f"alias {k}": v[:16] for k, v in aliases(folder / "experiments" / "mlflow.db").items()})
    return found


@dataclass
class Timing:
    command: str
    kill_after: float
    killed: bool
    matched: bool
    differs: list[str]
    seconds: float


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", type=int, metavar="N", help="only N timings, the commands in turn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated subset")
    parser.add_argument("--jobs", type=int, default=1, help="timings run at once (each is its own process)")
    parser.add_argument(
        "--start",
        type=int,
        default=0,
        metavar="K",
        help="skip the first K draws (resume a full run by its seed)",
    )
    parser.add_argument(
        "--keep", type=Path, help="work in this folder and keep it (default: a temporary one)"
    )
    args = parser.parse_args()
    commands = [c for c in args.commands.split(",") if c]
    count = args.quick if args.quick else FULL_TIMINGS * len(commands)
    rng = random.Random(args.seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix="evidens-fault-run-"))
    started = time.perf_counter()
    timings: list[Timing] = []
    try:
        # The uninterrupted runs: `run` (or, where it is not tried, the ingest and train the others need), then
        # each command from the state it starts from.
        template = project(work / "reference")
        durations: dict[str, float] = {}
        if "run" in commands:
            code, durations["run"] = evidens(template, command_line("run"))
            assert code in (0, 1), f"the uninterrupted run failed ({code})"
        else:
            assert evidens(template, ["ingest", "raw"])[0] in (0, 1), "ingest failed"
            if {"train", "batch"} & set(commands):
                assert evidens(template, command_line("train"))[0] == 0, "train failed"
        verdicts_file(template / "labels", template / "verdicts.csv")
        expected = {"run": outputs("run", template)}
        for command in [c for c in commands if c != "run"]:
            folder = prepared(command, template, work / f"reference-{command}")
            code, durations[command] = evidens(folder, command_line(command))
            assert code in (0, 1), f"the uninterrupted {command} failed ({code})"
            expected[command] = outputs(command, folder)
        print("uninterrupted: " + ", ".join(f"{c} {s:.1f} s" for c, s in durations.items()), flush=True)

        draws = []
        for number in range(count):
            command = commands[number % len(commands)]
            draws.append((number, command, round(rng.uniform(0.05, durations[command]), 2)))

        def one(draw: tuple[int, str, float]) -> Timing:
            number, command, kill_after = draw
            folder = prepared(command, template, work / f"timing-{number:03d}-{command}")
            first = time.perf_counter()
            code, _ = evidens(folder, command_line(command), kill_after)
            rerun, _ = evidens(folder, command_line(command))
            found = outputs(command, folder)
            differs = sorted(k for k in expected[command].keys() | found.keys()
                             if expected[command].get(k) != found.get(k))  # fmt: skip
            if rerun not in (0, 1):
                differs.append(f"rerun exit code {rerun}")
            timing = Timing(
                command, kill_after, code is None, not differs, differs, time.perf_counter() - first
            )
            print(f"[{number + 1}/{count}] {command:6} killed at {kill_after:6.2f} s"
                  f"{'' if timing.killed else ' (had finished)'}: "
                  f"{'matches' if timing.matched else 'DIFFERS: ' + ', '.join(differs)} ({timing.seconds:.0f} s)",
                  flush=True)  # fmt: skip
            if timing.matched and not args.keep:
                shutil.rmtree(folder)
            return timing

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            timings = list(pool.map(one, draws[args.start :]))
    finally:
        if not args.keep and not list(work.glob("timing-*")):
            shutil.rmtree(work)
    matched = sum(t.matched for t in timings)
    killed = sum(t.killed for t in timings)
    print(f"\n{matched} of {len(timings)} timings match the uninterrupted run ({killed} killed before they "
          f"finished); {time.perf_counter() - started:.0f} s in all (seed {args.seed})")  # fmt: skip
    if matched < len(timings):
        print(f"differing runs kept in {work}")
    return 0 if matched == len(timings) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        sys.exit(main())
