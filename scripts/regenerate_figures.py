"""Regenerate every measured figure file under docs/ and the README's figure blocks, each from its own command.

    .venv/bin/python scripts/regenerate_figures.py [--out docs] [--readme README.md] [--quick] [--cache FILE]

Runs every command in a scratch project: the raw pages and the committed label files (`git ls-files labels`;
every file of labels/ but the analysts' verdicts.csv outside a git checkout) copied into a temporary folder,
`evidens ingest corpus/raw` there, then each figure's command (as the README names it) with a scratch MLflow
store. The working copy's corpus/, labels/, reports/ and experiments/ are neither read nor written. The files
are written only when every command succeeded, each in one atomic rename. `--quick` runs the evaluation, the flags (with their agreement with the support set) and the themes
only. Then it rewrites, in the `--readme` file, every block marked `<!-- figures:NAME -->` ... `<!-- /figures:NAME
-->` from the figure files in `--out` (`--no-readme` skips that). Benchmarks and screenshots are not figures
here: they measure this machine's speed or look.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.io import atomic_write_text  # noqa: E402  (the script runs from scripts/, the package is above)


@dataclass(frozen=True)
class Figure:
    """One file under docs/: the command that measures it, and where its text comes from."""

    file: str
    command: tuple[str, ...]  # arguments after `python -m`, run in the scratch project; {cache} is filled in
    quick: bool
    output: str = ""  # a file the command writes in the scratch project; empty: the command's stdout


FIGURES = (
    Figure("evaluation.txt", ("pipeline.cli", "evaluate", "--cache", "{cache}"), quick=True),
    Figure(
        "flags_corpus.csv",
        ("pipeline.cli", "flag", "--cache", "{cache}"),
        quick=True,
        output="reports/flags.csv",
    ),
    Figure(
        "flags_support.txt",
        ("pipeline.outputs.support", "reports/flags.csv", "labels/support.csv"),
        quick=True,
    ),
    Figure("themes.txt", ("pipeline.cli", "themes", "--cache", "{cache}"), quick=True),
    Figure("evidence_eval.txt", ("pipeline.evidence.evaluate", "--cache", "{cache}"), quick=False),
    Figure("stated_eval.txt", ("pipeline.judgement.stated_eval", "--cache", "{cache}"), quick=False),
    Figure("themes_eval.txt", ("pipeline.themes.evaluate", "--cache", "{cache}"), quick=False),
    Figure("criteria_alignment.txt", ("pipeline.ingest.alignment",), quick=False),
    Figure("layout_eval.txt", ("pipeline.judgement.layout_eval", "--cache", "{cache}"), quick=False),
)


class FigureError(Exception):
    """A figure could not be made or a README block could not be written: one line for the user."""


def _run(arguments: tuple[str, ...], work: Path, cache: Path) -> str:
    command = [sys.executable, "-m", *(a.format(cache=cache) for a in arguments)]
    environment = {
        **os.environ,
        # this checkout's package, wherever the command runs
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        # a scratch store: the figures never depend on, nor add to, the runs and models of experiments/
        "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
    }
    done = subprocess.run(command, cwd=work, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise FigureError(f"`python -m {' '.join(arguments[:2])}` exited {done.returncode}: {last}")
    return done.stdout


def committed_labels() -> list[Path]:
    """The label files a fresh clone has: git's list, else every file of labels/ but the analysts' verdicts."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "labels"], capture_output=True, text=True, check=False
    )
    if listed.returncode == 0 and listed.stdout.strip():
        return [REPO / line for line in listed.stdout.splitlines()]
    return [p for p in sorted((REPO / "labels").glob("*")) if p.is_file() and p.name != "verdicts.csv"]


def scratch_project(work: Path) -> None:
    """The raw pages and the committed label files in `work`, where every figure command runs."""
    shutil.copytree(REPO / "corpus" / "raw", work / "corpus" / "raw")
    (work / "labels").mkdir()
    for path in committed_labels():
        shutil.copy2(path, work / "labels" / path.name)


def measure(figures: tuple[Figure, ...], cache: Path) -> dict[str, str]:
    """Ingest the raw pages in a scratch project, run every figure's command there and return each file's text
    (nothing written yet)."""
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="evidens-figures-") as scratch:
        work = Path(scratch)
        scratch_project(work)
        _run(("pipeline.cli", "ingest", "corpus/raw"), work, cache)
        for figure in figures:
            started = time.perf_counter()
            stdout = _run(figure.command, work, cache)
            texts[figure.file] = (
                (work / figure.output).read_text(encoding="utf-8") if figure.output else stdout
            )
            print(f"measured {figure.file} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return texts


# --- the README's blocks, each rendered from the figure files -------------------------------------------------


def markdown_tables(text: str) -> list[str]:
    """The text's markdown tables, each as its lines joined."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current))
            current = []
    return tables


def _table(file: str, index: int) -> Callable[[Path], str]:
    def render(figures: Path) -> str:
        tables = markdown_tables(_read(figures / file))
        if index >= len(tables):
            raise FigureError(f"{figures / file}: expected at least {index + 1} tables, found {len(tables)}")
        return tables[index]

    return render


def _first_line(file: str) -> Callable[[Path], str]:
    def render(figures: Path) -> str:
        lines = _read(figures / file).splitlines()
        if not lines:
            raise FigureError(f"{figures / file}: empty, expected the figure's summary line")
        return lines[0]

    return render


def _flag_counts(figures: Path) -> str:
    """`31 flags: 28 unsupported_claim, 2 score_mismatch, 1 model_disagrees` (most frequent reason first)."""
    rows = list(csv.DictReader(io.StringIO(_read(figures / "flags_corpus.csv"), newline="")))
    if rows and "reason" not in rows[0]:
        raise FigureError(f"{figures / 'flags_corpus.csv'}: expected a column 'reason'")
    counts = Counter(row["reason"] for row in rows)
    reasons = ", ".join(
        f"{n} `{reason}`" for reason, n in sorted(counts.items(), key=lambda c: (-c[1], c[0]))
    )
    return f"{sum(counts.values())} flags: {reasons}"


SUPPORT_LINE = re.compile(
    r"(?P<flagged>\d+) items flagged; precision (?P<precision>[\d.]+|nan), recall (?P<recall>[\d.]+|nan) "
    r"\(over-claimed alone: (?P<over>[\d.]+|nan)\)"
)


def _support(field: str) -> Callable[[Path], str]:
    def render(figures: Path) -> str:
        found = SUPPORT_LINE.search(_read(figures / "flags_support.txt"))
        if not found:
            raise FigureError(f"{figures / 'flags_support.txt'}: no line '<n> items flagged; precision ...'")
        return found[field]

    return render


BLOCKS: dict[str, Callable[[Path], str]] = {
    "criteria_alignment": _table("criteria_alignment.txt", 0),
    "evidence": _table("evidence_eval.txt", 0),
    "stated_eval": _table("stated_eval.txt", 0),
    "layout_eval": _table("layout_eval.txt", 0),
    "evaluation": _table("evaluation.txt", 0),
    "flags": _flag_counts,
    "support_flagged": _support("flagged"),
    "support_precision": _support("precision"),
    "support_recall": _support("recall"),
    "support_recall_over_claimed": _support("over"),
    "themes": _first_line("themes.txt"),
    "themes_units": _table("themes_eval.txt", 0),
    "themes_methods": _table("themes_eval.txt", 1),
    "themes_keywords": _table("themes_eval.txt", 2),
}

BLOCK = re.compile(r"<!-- figures:(?P<name>[\w-]+) -->(?P<body>.*?)<!-- /figures:(?P=name) -->", re.DOTALL)
OPENING = re.compile(r"<!-- figures:(?P<name>[\w-]+) -->")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise FigureError(
            f"{path}: {error.strerror or error} (measure it first: run without --no-measure)"
        ) from None


def rewrite_blocks(text: str, figures: Path, source: str = "README") -> str:
    """Every marked block of text rewritten from the figure files in `figures`. A block on one line stays on
    one line (a figure inside a sentence or a table cell); a block on its own lines gets the rendered lines."""
    closed = {match.start() for match in BLOCK.finditer(text)}
    for opening in OPENING.finditer(text):
        line = text.count("\n", 0, opening.start()) + 1
        name = opening["name"]
        if name not in BLOCKS:
            raise FigureError(
                f"{source}: line {line}: unknown figure block {name!r} (expected one of {', '.join(sorted(BLOCKS))})"
            )
        if opening.start() not in closed:
            raise FigureError(
                f"{source}: line {line}: block {name!r} has no closing <!-- /figures:{name} -->"
            )

    def render(match: re.Match[str]) -> str:
        rendered = BLOCKS[match["name"]](figures)
        body = f"\n{rendered}\n" if "\n" in match["body"] else rendered
        return f"<!-- figures:{match['name']} -->{body}<!-- /figures:{match['name']} -->"

    return BLOCK.sub(render, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder of the figure files")
    parser.add_argument(
        "--readme", type=Path, default=REPO / "README.md", help="file whose blocks to rewrite"
    )
    parser.add_argument("--no-readme", action="store_true", help="write the figure files only")
    parser.add_argument("--no-measure", action="store_true", help="rewrite the README from --out only")
    parser.add_argument("--quick", action="store_true", help="evaluation, flags and themes only")
    parser.add_argument(
        "--cache", type=Path, default=REPO / ".cache" / "embeddings.sqlite", help="embedding cache"
    )
    args = parser.parse_args(argv)
    try:
        if not args.no_measure:
            figures = tuple(f for f in FIGURES if f.quick or not args.quick)
            texts = measure(figures, args.cache.resolve())
            for name, text in texts.items():
                atomic_write_text(args.out / name, text)
                print(f"wrote {args.out / name}", file=sys.stderr)
        if not args.no_readme:
            before = _read(args.readme)
            after = rewrite_blocks(before, args.out, str(args.readme))
            if after != before:
                atomic_write_text(args.readme, after)
            print(f"{args.readme}: {'rewritten' if after != before else 'unchanged'}", file=sys.stderr)
    except FigureError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
