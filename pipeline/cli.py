"""The `evidens` command line: parse arguments, call the stages, print. No stage logic lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.embed.base import DEFAULT_EMBEDDER
from pipeline.embed.cache import DEFAULT_CACHE

app = typer.Typer(
    help="evidens: evidence for the self-assessments on Danish employment-effort pages.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_REJECTED = 1


@app.callback()
def main() -> None:
    """Keeps `evidens` a group of commands (typer would otherwise fold a single command into the app)."""


def _err(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Page files (.txt, .html) or folders of them.", exists=True)
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for efforts.jsonl, rejected.jsonl and the dataset.")
    ] = Path("corpus"),
    labels: Annotated[Path, typer.Option(help="Folder for criteria.csv and answers.csv.")] = Path("labels"),
) -> None:
    """Read pages into validated Effort records, the criteria catalogue and the labelled answers.

    Exit code 0 when every input was ingested, 1 when some were rejected (the rest is still written)."""
    from pipeline.corpus import write_corpus
    from pipeline.ingest import ingest_paths
    from pipeline.ingest.criteria import CriteriaCatalogue, save_answers

    result = ingest_paths(paths)
    catalogue = CriteriaCatalogue.load(labels / "criteria.csv")
    catalogue.assign(result.efforts)
    write_corpus(result.efforts, result.rejected, out)
    catalogue.save(labels / "criteria.csv")
    save_answers(result.efforts, labels / "answers.csv")

    for effort in result.efforts:
        answers = sum(len(t.answers) for t in effort.tests)
        _err(f"  {effort.effort_id:32} {effort.kind:16} {effort.municipality or '-':15} {answers:3} answers")
        for warning in effort.warnings:
            _err(f"      warning: {warning}")
    for source, first in result.duplicates:
        _err(f"  duplicate: {source} has the same content as {first}")
    for rejection in result.rejected:
        _err(f"  rejected: {rejection.reason}")
    _err(
        f"ingested {len(result.efforts)} efforts from {result.files_read} files: "
        f"{len(result.rejected)} rejected, {len(result.duplicates)} duplicates; "
        f"{len(catalogue.criteria)} criteria -> {out}/, {labels}/"
    )
    if result.rejected:
        raise typer.Exit(EXIT_REJECTED)


EVIDENCE_COLUMNS = (
    "effort_id",
    "criterion_id",
    "rank",
    "score",
    "documented",
    "documented_score",
    "section",
    "sentence",
)


@app.command()
def evidence(
    effort_ids: Annotated[
        list[str] | None, typer.Argument(help="Efforts to show (default: all labelled).")
    ] = None,
    corpus: Annotated[Path, typer.Option(help="Folder written by `evidens ingest`.")] = Path("corpus"),
    embedder: Annotated[
        str, typer.Option(help="e5-offline, tfidf or st:<model or folder>.")
    ] = DEFAULT_EMBEDDER,
    k: Annotated[int, typer.Option(min=1, help="Evidence sentences per criterion.")] = 5,
    out: Annotated[Path | None, typer.Option(help="Write rows to .jsonl or .csv (by extension).")] = None,
    cache: Annotated[Path, typer.Option(help="Embedding cache (SQLite).")] = DEFAULT_CACHE,
) -> None:
    """Rank the sentences of each page by how well they evidence each criterion of its self-assessment."""
    from pipeline.corpus import load_efforts
    from pipeline.evidence import find_evidence, load_ranking_settings
    from pipeline.tables import write_table

    if out is not None and out.suffix.lower() not in (".jsonl", ".csv"):
        raise typer.BadParameter(f"{out}: expected a .jsonl or .csv file", param_hint="--out")
    efforts = load_efforts(corpus)
    known = {e.effort_id for e in efforts}
    if unknown := [i for i in effort_ids or [] if i not in known]:
        raise typer.BadParameter(
            f"unknown effort id(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    if not load_ranking_settings(embedder)[1]:
        _err(f"note: {embedder} has no calibration of its own; the documented flag uses the lexical score")
    rows = find_evidence(efforts, embedder, k, cache, effort_ids or None)
    items = {(e.effort_id, a.criterion_id): a.item for e in efforts for t in e.tests for a in t.answers}
    for row in rows:
        if row.rank == 1:
            flag = "documented" if row.documented else "not documented"
            typer.echo(f"\n{row.effort_id}  {row.criterion_id}  {flag} ({row.documented_score:.2f})")
            typer.echo(f"  {items[(row.effort_id, row.criterion_id)]}")
        typer.echo(f"    {row.rank}. {row.score:.3f}  [{row.section}] {row.sentence}")
    if out is not None:
        write_table(out, [r.model_dump() for r in rows], EVIDENCE_COLUMNS)
        _err(f"wrote {len(rows)} evidence rows to {out}")


if __name__ == "__main__":
    app()
