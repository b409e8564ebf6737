"""The `evidens` command line: parse arguments, call the stages, print. No stage logic lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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


if __name__ == "__main__":
    app()
