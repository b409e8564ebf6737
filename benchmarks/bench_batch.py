"""Batch throughput and memory on this machine, 200 to 1,000 pages. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_batch.py [--sizes 200 1000] [--threads 1]

Pages are generated variants of the four corpus pages (tests/scaffolding.py: a fictitious municipality,
answers shuffled within each test, one sentence dropped from each multi-sentence paragraph, a marker sentence),
taken round-robin, so half are effort pages with a self-assessment and every page has new text to embed.
Each batch runs `evidens batch` in its own process: once on an empty embedding cache (cold) and once more into
a fresh output folder with the cache the cold run filled (warm: everything is recomputed except the
embeddings; --no-warm skips it). Beside it, a fresh process embeds with e5 and nothing else (model load
excluded) the distinct non-heading sentences of the pages the batch scores (those with a self-assessment; the
others are ingested and listed, not scored): what the batch costs beyond embedding those sentences once.

Time per page is the process's CPU time (user + system) over the pages, so that other load on the machine
does not move it; with --threads 1 (OMP_NUM_THREADS for e5) a busy machine does not inflate it with threads
that wait. Wall-clock seconds and peak memory (max RSS) are printed beside. A model is trained first on the
corpus, into a scratch MLflow store.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # scaffolding lives with the tests
from scaffolding import write_varied_pages

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "corpus" / "raw"


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one command run in a child of a fresh wrapper process."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss, r.returncode)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True, env=env
    )
    wall, cpu, kilobytes, code = out.stdout.split()
    if code not in ("0", "1"):  # 1: some generated page was rejected, which the batch reports and goes on
        raise SystemExit(f"{' '.join(command)} exited {code}")
    return float(wall), float(cpu), int(kilobytes) / 1024


EMBED_ALONE = """
import resource, sys, time
from pipeline.corpus import load_efforts
from pipeline.embed import get_embedder
from pipeline.evidence.segment import segment_efforts
from pathlib import Path
judged = [e for e in load_efforts(Path(sys.argv[1])) if e.tests]  # the pages the batch scores
texts = sorted({s.text for s in segment_efforts(judged) if not s.is_heading})
e5 = get_embedder("e5-offline")
e5.embed(["opvarmning"], "passage")
cpu = time.process_time(); wall = time.perf_counter()
e5.embed(texts, "passage")
print(len(texts), time.perf_counter() - wall, time.process_time() - cpu)
"""


def embedding_alone(out: Path, env: dict[str, str]) -> tuple[int, float, float]:
    """(distinct sentences, wall s, CPU s) of e5 embedding the non-heading sentences a batch's OUT holds."""
    result = subprocess.run(
        [sys.executable, "-c", EMBED_ALONE, str(out)], capture_output=True, text=True, check=True, env=env
    )
    count, wall, cpu = result.stdout.split()
    return int(count), float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the measured runs")
    parser.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
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
            cold = measured([*base, "--out", str(scratch / f"cold-{size}")], env)
            warm = measured([*base, "--out", str(scratch / f"warm-{size}")], env) if args.warm else None
            alone = embedding_alone(scratch / f"cold-{size}", env)
            rows.append((size, cold, warm, alone))
            print(
                f"  {size} pages: cold, warm, alone = {rows[-1][1:]} ({time.strftime('%H:%M:%S')})",
                file=sys.stderr,
            )
    threads = env.get("OMP_NUM_THREADS", "the library's default")
    print(f"threads for e5: {threads}; CPU = user + system seconds of the process\n")
    print(
        "| pages | cold: CPU s/page | cold: wall s | warm: CPU s/page | warm: wall s | peak RSS cold / warm (MB) "
        "| e5 on the pages' sentences alone: sentences, CPU s | cold CPU / that |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size, (cold_wall, cold_cpu, cold_mb), warm, (count, _, alone_cpu) in rows:
        warm_wall, warm_cpu, warm_mb = warm or (float("nan"),) * 3
        print(
            f"| {size} | {cold_cpu / size:.3f} | {cold_wall:.0f} | {warm_cpu / size:.3f} | {warm_wall:.0f} "
            f"| {cold_mb:.0f} / {warm_mb:.0f} | {count}, {alone_cpu:.0f} | {cold_cpu / alone_cpu:.2f} |"
        )
    first, last = rows[0], rows[-1]
    per_page = {size: cold[1] / size for size, cold, _, _ in rows}
    peak = {size: cold[2] for size, cold, _, _ in rows}
    print(
        f"\ncold CPU time per page {first[0]} -> {last[0]} pages: "
        f"{100 * (per_page[last[0]] / per_page[first[0]] - 1):+.1f}% (target: within 20%); "
        f"peak memory: {100 * (peak[last[0]] / peak[first[0]] - 1):+.1f}% (target: within 10%)"
    )
    print("each run's fixed start-up (imports, model load) is inside its times")


if __name__ == "__main__":
    main()
