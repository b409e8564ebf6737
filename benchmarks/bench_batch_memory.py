"""Where a batch's memory goes: peak resident size per stage of `evidens batch`, 200 and 1,000 pages, in minutes.

    .venv/bin/python benchmarks/bench_batch_memory.py [--sizes 200 1000]

The pages are bench_batch.py's (tests/scaffolding.py). The model is trained on the corpus with the tf-idf
embedder, not e5, so that a 1,000-page batch takes minutes: e5's cost is per page and its memory the same at
every size, and what grows with the pages is the rest. Each batch runs in its own process, which reads its peak
resident size since the previous stage's end at each stage's end (VmHWM in /proc/self/status, then reset through
/proc/self/clear_refs; Linux only):

- pages: reading, ingesting and scoring each page into OUT/.pages, the pruning and the plan;
- data files: efforts.jsonl, predictions.csv, flags.csv and rejected.jsonl, from the stored page results;
- changes: this run's flags against the previous run's, changes.json;
- report: report.html;
- state: OUT/.run.json and the manifest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # scaffolding lives with the tests
from scaffolding import write_varied_pages

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "corpus" / "raw"
STAGES = ("pages", "data files", "changes", "report", "state")

ONE_BATCH = """
import json, sys
from pathlib import Path
import pipeline.batch.run as run
import pipeline.outputs.report as report
from pipeline import tracking

peaks = {}

def stage_ends(stage):
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    peaks[stage] = int(status["VmHWM"].split()[0]) / 1024
    Path("/proc/self/clear_refs").write_text("5")

def before(stage, function):
    def wrapped(*args, **kwargs):
        stage_ends(stage)
        return function(*args, **kwargs)
    return wrapped

def after(stage, function):
    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        stage_ends(stage)
        return result
    return wrapped

run.write_outputs = before("pages", run.write_outputs)
run.flag_changes = before("data files", run.flag_changes)
report.write_report = after("report", before("changes", report.write_report))
input_dir, out, cache, uri = sys.argv[1:]
tracking.configure(uri, create=False)
run.run_batch(Path(input_dir), Path(out), "models:/evidens/1", Path(cache))
stage_ends("state")
print(json.dumps(peaks))
"""


def stage_peaks(pages: Path, out: Path, cache: Path, uri: str) -> dict[str, float]:
    """Peak RSS (MB) of each stage of one batch, in its own process."""
    done = subprocess.run(
        [sys.executable, "-c", ONE_BATCH, str(pages), str(out), str(cache), uri],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    args = parser.parse_args()
    evidens = [sys.executable, "-m", "pipeline.cli"]
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        uri = f"sqlite:///{scratch / 'mlflow.db'}"
        corpus, labels = str(scratch / "corpus"), str(scratch / "labels")
        subprocess.run(
            [*evidens, "ingest", str(RAW), "--out", corpus, "--labels", labels],
            check=True,
            capture_output=True,
        )
        train = ["train", "--corpus", corpus, "--labels", labels, "--embedder", "tfidf"]
        cache = str(scratch / "train.sqlite")
        subprocess.run(
            [*evidens, *train, "--tracking-uri", uri, "--cache", cache], check=True, capture_output=True
        )
        rows = {}
        for size in args.sizes:
            pages = scratch / f"in-{size}"
            write_varied_pages(sorted(RAW.glob("*.txt")), pages, size, seed=size)
            rows[size] = stage_peaks(pages, scratch / f"out-{size}", scratch / f"cache-{size}.sqlite", uri)
    print("peak RSS (MB) of each stage of `evidens batch`, tf-idf model\n")
    print(f"| pages | {' | '.join(STAGES)} | peak |")
    print("|---|" + "---|" * (len(STAGES) + 1))
    for size, peaks in rows.items():
        print(f"| {size} | {' | '.join(f'{peaks[s]:.0f}' for s in STAGES)} | {max(peaks.values()):.0f} |")
    first, last = min(rows), max(rows)
    growth = max(rows[last].values()) / max(rows[first].values()) - 1
    print(f"\npeak memory {first} -> {last} pages: {100 * growth:+.1f}%")


if __name__ == "__main__":
    main()
