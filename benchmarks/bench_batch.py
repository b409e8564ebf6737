"""Batch throughput and memory on this machine. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_batch.py [--sizes 50 100 200]

Pages are generated variants of the four corpus pages (pipeline/synthetic.py: a fictitious municipality,
answers shuffled within each test, one sentence dropped from each multi-sentence paragraph, a marker sentence),
taken round-robin, so half are effort pages with a self-assessment and every page has new text to embed.
Each batch runs `evidens batch` in its own process (peak memory = that process's max RSS): once on an empty
embedding cache (cold) and once more into a fresh output folder with the cache the cold run filled (warm:
everything is recomputed except the embeddings). A model is trained first on the corpus, into a scratch
MLflow store.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # scaffolding lives with the tests
from scaffolding import write_varied_pages

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "corpus" / "raw"


def measured(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one command run in a child of a fresh wrapper process."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True
    )
    seconds, kilobytes, code = out.stdout.split()
    if code != "0":
        raise SystemExit(f"{' '.join(command)} exited {code}")
    return float(seconds), int(kilobytes) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    args = parser.parse_args()
    evidens = [sys.executable, "-m", "pipeline.cli"]
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        uri = f"sqlite:///{scratch / 'mlflow.db'}"
        training_cache = str(scratch / "training-cache.sqlite")
        subprocess.run(
            [
                *evidens,
                "ingest",
                str(RAW),
                "--out",
                str(scratch / "corpus"),
                "--labels",
                str(scratch / "labels"),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *evidens,
                "train",
                "--corpus",
                str(scratch / "corpus"),
                "--labels",
                str(scratch / "labels"),
                "--tracking-uri",
                uri,
                "--cache",
                training_cache,
            ],
            check=True,
            capture_output=True,
        )
        sources = sorted(RAW.glob("*.txt"))
        rows = []
        for size in args.sizes:
            pages = scratch / f"in-{size}"
            write_varied_pages(sources, pages, size, seed=size)
            cache = str(scratch / f"cache-{size}.sqlite")
            base = [*evidens, "batch", str(pages), "--tracking-uri", uri, "--cache", cache]
            cold_s, cold_mb = measured([*base, "--out", str(scratch / f"cold-{size}")])
            warm_s, warm_mb = measured([*base, "--out", str(scratch / f"warm-{size}")])
            rows.append((size, cold_s, cold_mb, warm_s, warm_mb))
            print(f"  {size} pages done ({time.strftime('%H:%M:%S')})", file=sys.stderr)
    print(
        "| pages | cold: s | cold: pages/min | warm: s | warm: pages/min | peak RSS cold (MB) | peak RSS warm (MB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for size, cold_s, cold_mb, warm_s, warm_mb in rows:
        print(
            f"| {size} | {cold_s:.0f} | {60 * size / cold_s:.0f} | {warm_s:.0f} | {60 * size / warm_s:.0f} | {cold_mb:.0f} | {warm_mb:.0f} |"
        )
    (first, *_), (last, *_) = rows[0], rows[-1]
    cold = {size: s for size, s, *_ in rows}
    peak = {size: mb for size, _, mb, *_ in rows}
    print(
        f"\ntime {first} -> {last} pages: x{cold[last] / cold[first]:.2f} for x{last / first:.0f} the pages "
        f"(linear: x{last / first:.0f}); peak memory {first} -> {last}: {100 * (peak[last] / peak[first] - 1):+.1f}% "
        f"(target: < +10%)"
    )
    print("fixed start-up per run (imports, model load: ~10 s) is inside these times")


if __name__ == "__main__":
    main()
