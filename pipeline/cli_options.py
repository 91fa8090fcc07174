"""The command line's shared options (`python -m pipeline <command> ...`), as typer annotations.
Values are checked where params are: pipeline/config.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read (if it exists).")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a param: section.key=value (repeatable).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log lines.")]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where the work runs: local (this process) or ray (Ray actors; a running cluster, "
        "else one started here). Same as --set engine=...; the outputs are the same bytes.",
    ),
]
InOpt = Annotated[Path, typer.Option("--in", help="Input file.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output file.")]
CodingsOpt = Annotated[
    Path | None, typer.Option(help="Human codings table written by ingest (.parquet, offsets only).")
]
TurnsOpt = Annotated[Path | None, typer.Option(help="Pseudonymised turns (.parquet): the questions asked.")]
