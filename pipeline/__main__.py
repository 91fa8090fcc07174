"""Command line: `python -m pipeline <command>`. Parses arguments, sets up logging and
progress bars, and calls the stage functions; nothing else lives here."""

from __future__ import annotations

import os

# No model hub, no telemetry: everything runs offline from installed packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import Params, load_params
from pipeline.errors import UserError

app = typer.Typer(
    help="NLP-assisted theme discovery for qualitative interview studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("pipeline")

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read (if it exists).")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a param: section.key=value (repeatable).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log lines.")]
InOpt = Annotated[Path, typer.Option("--in", help="Input file.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output file.")]


def _params(path: Path, overrides: list[str] | None) -> Params:
    return load_params(path if path.exists() or path != Path("params.yaml") else None, overrides or [])


def _command(func):
    """Turn user mistakes into one line on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        quiet = kwargs.get("quiet", False)
        logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
        try:
            result = func(*args, **kwargs)
        except UserError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        if result is not None and not quiet:
            typer.echo(json.dumps(result, default=str)[:2000], err=True)

    return wrapper


@app.command()
@_command
def run(
    study: Annotated[Path, typer.Option(help="Study folder.")],
    out: Annotated[Path, typer.Option(help="Folder for every stage's outputs.")],
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Run every stage on a study folder; outputs land under OUT (same code as the DVC stages)."""
    from pipeline.runner import run_all

    lay = run_all(_params(params, set_), study=study, out=out, progress=not quiet)
    return {"report": str(lay.report)}


@app.command()
@_command
def ingest(
    study: Annotated[Path, typer.Option(help="Study folder.")],
    out: OutOpt,
    metrics: Annotated[Path, typer.Option(help="Counts of files and turns read (JSON).")],
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Read transcripts and participants into a turns table."""
    from pipeline import ingest as stage

    counts = stage.run(_params(params, set_), study=study, out=out, metrics=metrics)
    return {k: counts[k] for k in ("files", "turns", "participant_turns", "interviewer_turns", "note_turns")}


@app.command()
@_command
def deidentify(
    in_: InOpt,
    out: OutOpt,
    register: Annotated[Path | None, typer.Option(help="register.yaml of known identifiers.")] = None,
    study: Annotated[
        Path | None, typer.Option(help="Study folder: use its register.yaml when it has one.")
    ] = None,
    metrics: Annotated[Path | None, typer.Option(help="Counts by type (turns tables only).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Pseudonymise texts: JSONL lines {"id","text"}, or the ingest stage's turns table (.parquet)."""
    from pipeline import deid
    from pipeline.study import require_study

    p = _params(params, set_)
    if study is not None and register is None:
        require_study(study)
        register = study / "register.yaml" if (study / "register.yaml").exists() else None
    if in_.suffix == ".jsonl":
        return deid.run_jsonl(p, in_path=in_, out=out, register=register, progress=not quiet)
    if in_.suffix == ".parquet":
        if metrics is None:
            raise UserError("--metrics is required when --in is a turns table (.parquet)")
        counts = deid.run(p, turns_path=in_, out=out, metrics=metrics, register=register, progress=not quiet)
        return {"replacements": counts["replacements"]}
    raise UserError(f"{in_}: expected a .jsonl file of {{id, text}} lines or a .parquet turns table")


@app.command()
@_command
def segment(
    in_: InOpt,
    out: OutOpt,
    metrics: Annotated[Path, typer.Option(help="Segment counts (JSON).")],
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Split pseudonymised turns into units of analysis with provenance."""
    from pipeline import segment as stage

    return stage.run(_params(params, set_), turns_path=in_, out=out, metrics=metrics)


@app.command()
@_command
def embed(
    in_: InOpt,
    out: OutOpt,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Embed segments (cached by model and text hash); writes .npy plus a .json sidecar."""
    from pipeline import embed as stage

    return stage.run(_params(params, set_), segments_path=in_, out=out, progress=not quiet)


@app.command()
@_command
def discover(
    in_: InOpt,
    out: OutOpt,
    embeddings: Annotated[Path | None, typer.Option(help="Segment embeddings (.npy).")] = None,
    cards: Annotated[Path | None, typer.Option(help="Theme cards (JSON).")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Discovery summary (JSON).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Find candidate themes: a CSV `id,text[,group]` -> `id,theme_id,theme_label`,
    or the segments table with --embeddings, --cards and --metrics."""
    from pipeline import themes

    p = _params(params, set_)
    if in_.suffix == ".csv":
        return themes.run_csv(p, in_path=in_, out=out, progress=not quiet)
    if embeddings is None or cards is None or metrics is None:
        raise UserError("--embeddings, --cards and --metrics are required when --in is a segments table")
    return themes.run(p, segments_path=in_, embeddings_path=embeddings, out=out, cards=cards, metrics=metrics)


@app.command()
@_command
def code(
    in_: InOpt,
    out: OutOpt,
    codebook: Annotated[Path | None, typer.Option(help="Codebook (.yaml, or .csv name,description).")] = None,
    train: Annotated[Path | None, typer.Option(help="Human-coded examples `id,text,code`.")] = None,
    embeddings: Annotated[Path | None, typer.Option(help="Segment embeddings (.npy).")] = None,
    study: Annotated[Path | None, typer.Option(help="Study folder (its codebook is used).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Apply a codebook: a CSV `id,text` -> `id,code,score`, or the segments table with
    --embeddings and --study."""
    from pipeline import coding
    from pipeline.study import load_codebook, require_study

    p = _params(params, set_)
    if in_.suffix == ".csv":
        if codebook is None:
            raise UserError("--codebook is required when --in is a CSV")
        return coding.run_csv(
            p, in_path=in_, codebook_path=codebook, out=out, train=train, progress=not quiet
        )
    if embeddings is None or study is None:
        raise UserError("--embeddings and --study are required when --in is a segments table")
    require_study(study)
    return coding.run(
        p, segments_path=in_, embeddings_path=embeddings, codebook=load_codebook(study), out=out
    )


@app.command()
@_command
def agreement(
    out: OutOpt,
    gold: Annotated[Path | None, typer.Option(help="Human codes, long format id,code[,coder].")] = None,
    pred: Annotated[Path | None, typer.Option(help="Machine codes, long format id,code.")] = None,
    study: Annotated[Path | None, typer.Option(help="Study folder (codebook and codings).")] = None,
    segments: Annotated[Path | None, typer.Option(help="Segments table.")] = None,
    themes: Annotated[Path | None, typer.Option(help="Theme assignments table.")] = None,
    codes: Annotated[Path | None, typer.Option(help="Machine codes table.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Per-code kappa rows for `dvc plots` (JSON).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Agreement figures: --gold/--pred CSVs, or the study's codings vs the pipeline's outputs."""
    from pipeline import agreement as stage

    if gold is not None or pred is not None:
        if gold is None or pred is None:
            raise UserError("--gold and --pred go together")
        report = stage.run_csv(gold_path=gold, pred_path=pred, out=out)
    else:
        if None in (study, segments, themes, codes):
            raise UserError("give --gold and --pred, or --study, --segments, --themes and --codes")
        from pipeline.runner import human_codings

        codebook, codings = human_codings(study)
        report = stage.run(
            _params(params, set_),
            segments_path=segments,
            themes_path=themes,
            codes_path=codes,
            codings=codings,
            codebook=codebook,
            out=out,
            plot=plot,
        )
    return report.get("overall", report.get("status"))


@app.command()
@_command
def report(
    out: OutOpt,
    metrics_dir: Annotated[Path, typer.Option(help="Folder of the stages' metrics JSON.")] = Path("metrics"),
    cards: Annotated[Path, typer.Option(help="Theme cards (JSON).")] = Path("outputs/themes.json"),
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Write the HTML report."""
    from pipeline import report as stage

    stage.run(_params(params, set_), metrics_dir=metrics_dir, cards_path=cards, out=out)
    return {"report": str(out)}


def main() -> None:
    app(prog_name="python -m pipeline")


if __name__ == "__main__":
    sys.exit(main())
