"""The command line's shared options (`python -m pipeline <command> ...`), as typer annotations,
and how a command runs its stage from them. Values are checked where params are:
pipeline/config.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.layout import Layout

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
MaybeIn = Annotated[Path | None, typer.Option("--in", help="Input file.")]
MaybeOut = Annotated[Path | None, typer.Option("--out", help="Output file.")]
RootOpt = Annotated[
    Path | None,
    typer.Option(
        help="Output folder: read the stage's inputs and write its outputs under it, as `dvc repro` "
        "does (paths: pipeline/layout.py). The file options are then not needed."
    ),
]
StudyOpt = Annotated[Path | None, typer.Option(help="Study folder (default: params `study`).")]


def summary(outputs: dict[str, Any]) -> dict:
    """What a stage made, for the terminal: its metrics' counts (never text), else its outputs."""
    shown = {
        k: {m: x for m, x in v.items() if not isinstance(x, dict | list)}
        for k, v in outputs.items()
        if k.endswith("_metrics") and isinstance(v, dict)
    }
    if "embeddings" in outputs:
        shown["embeddings"] = {"shape": list(outputs["embeddings"][0].shape)}
    return shown or {"outputs": sorted(outputs)}


def run_stage_command(
    name: str,
    p: Params,
    *,
    root: Path | None,
    study: Path | None,
    paths: dict[str, tuple[str, Path | None]],
    quiet: bool,
    **options,
) -> dict:
    """Run a stage over an output folder (`--root`) or over the files named on the command line
    (`paths`: key -> (its option, the file or None))."""
    from pipeline.stages import STUDY, layout_paths, run_stage, stage_named

    stage = stage_named(name)
    if root is not None:  # as dvc repro runs it: the study of params unless given
        given = layout_paths(stage, Layout(root), study=study if study is not None else Path(p.study))
    else:
        needed = [k for k in stage.inputs if k not in stage.optional and k != STUDY] + [stage.outputs[0]]
        missing = [paths[k][0] for k in needed if k in paths and paths[k][1] is None]
        if (STUDY in stage.inputs and STUDY not in stage.optional and study is None) or missing:
            flags = ["--study"] * (STUDY in stage.inputs and study is None) + missing
            raise UserError(f"{name}: give --root, or {', '.join(flags)}")
        given = {k: v for k, (_, v) in paths.items() if v is not None}
        given |= {STUDY: study} if STUDY in stage.inputs and study is not None else {}
    if STUDY in given:
        from pipeline.study import require_study

        require_study(given[STUDY])
        p = p.model_copy(update={"study": str(given[STUDY])})
    return summary(run_stage(stage, p, paths=given, progress=not quiet, options=options))


def report_paths(metrics_dir: Path, files: dict[str, tuple[str, Path]]) -> dict[str, tuple[str, Path]]:
    from pipeline.layout import METRIC_STAGES, metric_file

    return {f"{s}_metrics": ("--metrics-dir", metric_file(metrics_dir, s)) for s in METRIC_STAGES} | files
