"""Evidence-stage speed on this machine. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_evidence.py [--corpus corpus] [--repeat 3] [--threads 1]

Times are the process's CPU seconds (user + system, every thread: `time.process_time`), so that other load on
the machine does not move the ratios; with --threads 1 (OMP_NUM_THREADS for e5, set by re-running the script
with it) threads that wait for a busy core add nothing either.

1. sentences per CPU second of each embedder alone (the corpus's non-heading sentences, passage role);
2. the whole stage (segment + embed + retrieve, `find_evidence`, cold cache) over the corpus, as a ratio to
   embedding the page sentences and the criteria alone (target: at most 2.0, since the stage also embeds the
   late interaction's windows and phrases);
3. the stage on a warm cache against a cold one (target: at least 20 times faster);
4. new pages with the criteria's texts cached, against the pages' sentences alone;
5. where the time goes: e5's CPU time per token and per text on the corpus's sentences and on their windows,
   and the tokens of each kind of text the stage embeds for the labelled pages: the floor under the ratios
   above (python -m pipeline.judgement.layout_eval: what a cheaper cut would cost the detector).
Imports and model loading are done before any timing: they are a fixed cost per process, reported apart.
"""

from __future__ import annotations

import argparse
import os
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
    """The least CPU time (seconds, every thread of this process) of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for e5")
    args = parser.parse_args()
    if args.threads is not None and os.environ.get("OMP_NUM_THREADS") != str(args.threads):
        # OpenMP reads it once, when a library first starts its threads: run again with it set
        environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)
    print(f"CPU seconds of this process; threads for e5: {os.environ.get('OMP_NUM_THREADS', 'all')}")

    start = time.perf_counter()
    efforts = load_efforts(args.corpus)
    sentences = [s.text for s in segment_efforts(efforts) if not s.is_heading]
    get_embedder("e5-offline").embed(["opvarmning"], "passage")  # load the model
    print(f"start-up (imports, corpus, e5 model load): {time.perf_counter() - start:.2f} s wall")

    with tempfile.TemporaryDirectory() as scratch:
        tiny = build_tiny_sentence_transformer(Path(scratch), sentences)
        embedders = {"e5-offline": get_embedder("e5-offline"), "tfidf": get_embedder("tfidf").fit(sentences)}
        embedders["st:<tiny local model>"] = get_embedder(f"st:{tiny}")
        embedders["st:<tiny local model>"].embed(["opvarmning"], "passage")
        print(f"\n1. embedders alone, {len(sentences)} sentences (best of {args.repeat}):")
        for name, embedder in embedders.items():
            seconds = best_of(args.repeat, lambda e=embedder: e.embed(sentences, "passage"))
            print(f"   {name:24} {len(sentences) / seconds:9.0f} sentences per CPU s  ({seconds:.2f} s)")

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
    where_the_time_goes(efforts, labelled, queries, criteria_texts[len(queries) :], args.repeat)


def where_the_time_goes(
    efforts, labelled, queries: list[str], criterion_phrases: list[str], repeat: int
) -> None:
    """e5's CPU time per token on sentences and on windows, and the tokens the stage embeds per kind of text."""
    from pipeline.embed.e5_offline import token_count
    from pipeline.evidence.late_interaction import load_vocabulary, windows
    from pipeline.textnorm import normalise_text

    e5 = get_embedder("e5-offline")
    vocabulary = load_vocabulary()

    def texts_of(chosen) -> tuple[list[str], list[str]]:
        body = [s for s in segment_efforts(chosen) if not s.is_heading]
        return [normalise_text(s.text) for s in body], windows(body, vocabulary)[0]

    print(f"\n5. where the time goes (best of {repeat} runs)")
    for name, texts in zip(("sentences", "windows"), texts_of(efforts), strict=True):
        cpu = best_of(repeat, lambda t=texts: e5.embed(t, "passage"))
        count = token_count(texts, "passage")
        print(
            f"   the corpus's {name:9} {len(texts):5} texts {count:6} tokens: {1000 * cpu / count:.2f} ms/token, "
            f"{1000 * cpu / len(texts):.1f} ms/text"
        )
    sentences, page_windows = texts_of(labelled)
    kinds = {
        "page sentences": token_count(sentences, "passage"),
        "page windows": token_count(page_windows, "passage"),
        "criteria": token_count(queries, "query"),
        "criteria's phrases": token_count(criterion_phrases, "query"),
    }
    per_sentence = {k: v / kinds["page sentences"] for k, v in kinds.items()}
    print("   tokens the stage embeds for the labelled pages (x the page sentences' tokens):")
    for kind, count in kinds.items():
        print(f"     {kind:20} {count:6}  {per_sentence[kind]:.2f}")
    print(
        f"   floor of ratio 2 (all four / sentences and criteria): {sum(kinds.values()) / (kinds['page sentences'] + kinds['criteria']):.2f}; "
        f"floor of ratio 4 (sentences and windows / sentences): {1 + per_sentence['page windows']:.2f}"
    )


if __name__ == "__main__":
    main()
