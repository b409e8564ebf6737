"""Shared fixtures: the real corpus pages, the corpus ingested once per session, and generated test pages.

Pages built by `make_effort_page` are generated fixtures, never real data: they exist to exercise parsing rules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.corpus import write_corpus
from pipeline.embed import register_embedder
from pipeline.ingest import IngestResult, ingest_paths
from pipeline.ingest.criteria import CriteriaCatalogue, save_answers
from pipeline.records import Effort

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "corpus" / "raw"
TAARNBY = RAW / "taarnby_flere_skal_med_2.txt"
ODSHERRED = RAW / "odsherred_tidlig_jobrettet_indsats.txt"
THEME = RAW / "kl_tema_virksomhedsrettede_indsatser.txt"
REPORT = RAW / "jobfirst_delrapport_3_organisering.txt"


class FakeEmbedder:
    """A registered fake (test fixture): deterministic unit vectors from the text's character trigrams, so that
    similar texts are close. Fast, needs no model, and makes no claim about quality."""

    needs_fit = False
    cacheable = False
    embedder_id = "fake:trigram-32"

    def embed(self, texts, role):
        import zlib

        import numpy as np

        from pipeline.embed import l2_normalise

        rows = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            lower = f"  {text.lower()} "
            for i in range(len(lower) - 2):
                rows[row, zlib.crc32(lower[i : i + 3].encode()) % 32] += 1.0
        return l2_normalise(rows) if len(texts) else rows


@register_embedder("fake")
def make_fake_embedder(argument: str) -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def labelled_efforts(ingested) -> list[Effort]:
    return [e for e in ingested.efforts if e.tests]


@pytest.fixture(scope="session")
def fake_model(labelled_efforts):
    """An EvidensModel on the fake embedder (default rules head), fitted on the two labelled pages."""
    from pipeline.judgement.model import EvidensModel

    return EvidensModel(embedder="fake").fit(labelled_efforts)


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory) -> Path:
    """One embedding cache for the session: e5 vectors are deterministic, so tests may share them."""
    return tmp_path_factory.mktemp("embedding-cache") / "embeddings.sqlite"


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> IngestResult:
    """The real corpus pages, ingested with criterion ids assigned from the shipped catalogue
    (labels/criteria.csv): every item there matches by its core, so no embedder is needed (the fake stands by)."""
    result = ingest_paths([RAW])
    shipped_catalogue().assign(result.efforts)
    return result


def shipped_catalogue() -> CriteriaCatalogue:
    return CriteriaCatalogue.load(REPO / "labels" / "criteria.csv", embedder=FakeEmbedder())


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory, ingested) -> Path:
    """A corpus folder as `evidens ingest corpus/raw` writes it (efforts, rejected, dataset, labels)."""
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(ingested.efforts, ingested.rejected, out)
    catalogue = shipped_catalogue()
    catalogue.assign([e.model_copy(deep=True) for e in ingested.efforts])
    catalogue.save(out / "labels" / "criteria.csv")
    save_answers(ingested.efforts, out / "labels" / "answers.csv")
    return out


@pytest.fixture
def labels_copy(corpus_dir, tmp_path) -> Path:
    """A writable copy of the session corpus's labels folder (criteria.csv, answers.csv)."""
    target = tmp_path / "labels"
    shutil.copytree(corpus_dir / "labels", target)
    return target


@pytest.fixture(scope="session")
def trained_model(corpus_dir, tmp_path_factory, embedding_cache) -> str:
    """A tracking URI holding models:/evidens/1, trained on the corpus."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    arguments = ["train", "--corpus", str(corpus_dir), "--labels", str(corpus_dir / "labels")]
    done = CliRunner().invoke(app, [*arguments, "--tracking-uri", uri, "--cache", str(embedding_cache)])
    assert done.exit_code == 0, done.output
    return uri


@pytest.fixture(scope="session")
def efforts_by_municipality(ingested) -> dict[str, Effort]:
    return {e.municipality: e for e in ingested.efforts if e.municipality}


def make_effort_page(
    municipality: str,
    answers: list[tuple[str, str]],
    title: str = "Genereret testindsats",
    description: str = "Generated test page. Borgerne har samtaler hver 14. dag.",
    test_heading: str = "Evidenstest vedr. genererede testborgere",
) -> str:
    """A generated effort page in the corpus's text layout (generated fixture, not real data)."""
    bullets = "\n".join(f" • {label}: {item}" for label, item in answers)
    return (
        f"{municipality}\n\n4,0\nEvidenstest\n\n{title}\n\n • Genererede testborgere\n\n"
        f"Kommunens beskrivelse af indsatsen\n\n{description}\n\nErfaringer og resultater\n\nGode erfaringer.\n\n"
        f"Krav til organisering\n\nEt team.\n\nGode råd\n\nHold fokus.\n\nLedelsens anbefaling\n\n"
        f"Evidenstest\n\n4,0\nEvidenstest\n\n{test_heading}\n\n{bullets}\nSe færre svar\n\nDokumenter\n"
    )


def outside_references(html: str) -> list[str]:
    """Every href or src of an HTML file that points outside it (anything but an anchor or inline data)."""
    targets = [part.split('"', 1)[0] for marker in ('href="', 'src="') for part in html.split(marker)[1:]]
    return [t for t in targets if not t.startswith(("#", "data:image/png;base64,"))]


def evidens(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `evidens ARGV`, run in-process through the installed program's entry."""
    from pipeline.cli import entry

    monkeypatch.setattr(sys, "argv", ["evidens", *argv])
    with pytest.raises(SystemExit) as stop:
        entry()
    out, err = capsys.readouterr()
    code = stop.value.code
    return (code if isinstance(code, int) else 0), out, err


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `evidens ...` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def raw_copy(tmp_path) -> Path:
    """A writable copy of the real corpus pages."""
    target = tmp_path / "raw"
    shutil.copytree(RAW, target)
    return target


def batch_outputs(out: Path) -> dict[str, bytes]:
    """A batch's outputs, byte for byte, but for report.html's identity: that of its folder, by design (it keys
    the analyst's decisions in the browser), so two folders' reports differ in it and only in it."""
    from pipeline.batch.run import OUTPUTS
    from pipeline.outputs.report import report_identity

    identity = report_identity(out).encode("ascii")
    return {
        name: (out / name).read_bytes().replace(identity, b"<report id>")
        if name == "report.html"
        else (out / name).read_bytes()
        for name in OUTPUTS
    }
