"""Evidence-stage speed on this machine. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_evidence.py [--corpus corpus] [--repeat 3]

1. sentences per second of each embedder alone (the corpus's non-heading sentences, passage role);
2. the whole stage (segment + embed + retrieve, `find_evidence`, cold cache) over the corpus, as a ratio to
   embedding the page sentences and the criteria alone (target: at most 2.0, since the stage also embeds the
   late interaction's windows and phrases);
3. the stage on a warm cache against a cold one (target: at least 20 times faster).
Imports and model loading are done before any timing: they are a fixed cost per process, reported apart.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pipeline.corpus import load_efforts
from pipeline.embed import get_embedder
from pipeline.evidence.retrieval import criterion_queries, find_evidence
from pipeline.evidence.segment import segment_efforts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # scaffolding lives with the tests
from scaffolding import build_tiny_sentence_transformer


def best_of(repeat: int, function) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    efforts = load_efforts(args.corpus)
    sentences = [s.text for s in segment_efforts(efforts) if not s.is_heading]
    get_embedder("e5-offline").embed(["opvarmning"], "passage")  # load the model
    print(f"start-up (imports, corpus, e5 model load): {time.perf_counter() - start:.2f} s")

    with tempfile.TemporaryDirectory() as scratch:
        tiny = build_tiny_sentence_transformer(Path(scratch), sentences)
        embedders = {"e5-offline": get_embedder("e5-offline"), "tfidf": get_embedder("tfidf").fit(sentences)}
        embedders["st:<tiny local model>"] = get_embedder(f"st:{tiny}")
        embedders["st:<tiny local model>"].embed(["opvarmning"], "passage")
        print(f"\n1. embedders alone, {len(sentences)} sentences (best of {args.repeat}):")
        for name, embedder in embedders.items():
            seconds = best_of(args.repeat, lambda e=embedder: e.embed(sentences, "passage"))
            print(f"   {name:24} {len(sentences) / seconds:9.0f} sentences/s  ({seconds:.2f} s)")

    labelled = [e for e in efforts if e.tests]
    passages = [s.text for s in segment_efforts(labelled) if not s.is_heading]
    queries = list(dict.fromkeys(q for e in labelled for _, q in criterion_queries(e)))
    e5 = get_embedder("e5-offline")

    def embed_alone() -> None:
        e5.embed(passages, "passage")
        e5.embed(queries, "query")

    alone = best_of(args.repeat, embed_alone)
    cold_times, warm_times = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch:
            cache = Path(scratch) / "cache.sqlite"
            cold_times.append(best_of(1, lambda c=cache: find_evidence(efforts, "e5-offline", cache=c)))
            warm_times.append(best_of(1, lambda c=cache: find_evidence(efforts, "e5-offline", cache=c)))
    cold, warm = min(cold_times), min(warm_times)
    print(
        f"\n2. evidence stage over the corpus ({len(efforts)} efforts, {len(labelled)} labelled; "
        f"{len(passages)} candidate sentences, {len(queries)} criteria):"
    )
    print(f"   e5 embedding of those texts alone: {alone:.2f} s")
    print(f"   whole stage, cold cache:           {cold:.2f} s  -> ratio {cold / alone:.2f} (target <= 2.0)")
    print(f"\n3. warm cache: {warm:.3f} s vs cold {cold:.2f} s -> {cold / warm:.1f}x faster (target >= 20x)")

    # A batch scores many pages against the same standard criteria: their phrases are embedded once and cached,
    # and each new page costs its sentences and windows. Measured here by warming only the criteria's texts.
    from pipeline.embed import CachedEmbedder
    from pipeline.evidence.late_interaction import load_vocabulary, phrases

    vocabulary = load_vocabulary()
    criteria_texts = queries + list(dict.fromkeys(p for q in queries for p in phrases(q, vocabulary)))
    page_times = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch:
            cache = Path(scratch) / "cache.sqlite"
            CachedEmbedder(e5, cache).embed(criteria_texts, "query")
            page_times.append(best_of(1, lambda c=cache: find_evidence(efforts, "e5-offline", cache=c)))
    pages_alone = best_of(args.repeat, lambda: e5.embed(passages, "passage"))
    page = min(page_times)
    print(
        f"\n4. new pages, the criteria's texts cached (a batch after its first page): {page:.2f} s against "
        f"{pages_alone:.2f} s for the pages' sentences alone -> ratio {page / pages_alone:.2f} (target <= 2.0)"
    )


if __name__ == "__main__":
    main()
