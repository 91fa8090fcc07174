"""Command line: `python -m pipeline <command>`. Parses arguments, sets up logging and
progress bars, and runs the stages of `pipeline.stages`; nothing else lives here.

Every stage is a command of its own name. With `--root DIR` it reads and writes under an output
folder, as `dvc repro` runs it; otherwise its file options name each input and output, and some
stages also take plain CSV or JSONL files (the contracts in the README)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli_options import (
    CodingsOpt,
    EngineOpt,
    InOpt,
    MaybeIn,
    MaybeOut,
    OutOpt,
    ParamsOpt,
    QuietOpt,
    RootOpt,
    SetOpt,
    StudyOpt,
    TurnsOpt,
    report_paths,
    run_stage_command,
)
from pipeline.config import Params, load_params
from pipeline.errors import UserError
from pipeline.layout import Layout

app = typer.Typer(
    help="NLP-assisted theme discovery for qualitative interview studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("pipeline")
_REPO = Layout(Path("."))  # the DVC project's layout: the report command's defaults


def _params(path: Path, overrides: list[str] | None, engine: str | None = None) -> Params:
    """The params file with --set overrides, then --engine (validated in pipeline.config)."""
    extra = [f"engine={engine}"] if engine is not None else []
    given = path if path.exists() or path != Path("params.yaml") else None
    return load_params(given, [*(overrides or []), *extra])


def _command(*names: str):
    """Register a command under its stage's name and earlier names, and turn user mistakes into
    one line on stderr and exit status 2."""

    def register(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            quiet = kwargs.get("quiet", False)
            logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
            if quiet:  # the model libraries draw their own bars ("Loading weights") unless told
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                os.environ.setdefault("TQDM_DISABLE", "1")
            try:
                result = func(*args, **kwargs)
            except UserError as e:
                typer.echo("error: " + " ".join(str(e).splitlines()), err=True)  # always one line
                raise typer.Exit(2) from None
            if result is not None and not quiet:
                typer.echo(json.dumps(result, default=str)[:2000], err=True)

        app.command(names[0])(wrapper)
        for alias in names[1:]:
            app.command(alias, help=f"Same as `{names[0]}` (its earlier name).", hidden=True)(wrapper)
        return wrapper

    return register


@_command("run")
def run(
    study: Annotated[Path, typer.Option(help="Study folder.")],
    out: Annotated[Path, typer.Option(help="Folder for every stage's outputs.")],
    engine: EngineOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Run every stage on a study folder; outputs land under OUT (same code as the DVC stages)."""
    from pipeline.runner import run_all

    lay = run_all(_params(params, set_, engine), study=study, out=out, progress=not quiet)
    return {"report": str(lay.report)}


@_command("ingest")
def ingest(
    study: StudyOpt = None,
    root: RootOpt = None,
    out: MaybeOut = None,
    codings: Annotated[
        Path | None, typer.Option(help="Human codings as offsets, no text (.parquet).")
    ] = None,
    metrics: Annotated[
        Path | None, typer.Option(help="Counts of files, turns and codings read (JSON).")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Read transcripts and participants into a turns table, and the human codings into an
    offsets-only table."""
    paths = {
        "turns": ("--out", out),
        "codings_ingested": ("--codings", codings),
        "ingest_metrics": ("--metrics", metrics),
    }
    return run_stage_command(
        "ingest", _params(params, set_), root=root, study=study, paths=paths, quiet=quiet
    )


@_command("deid", "deidentify")
def deid(
    in_: MaybeIn = None,
    out: MaybeOut = None,
    root: RootOpt = None,
    register: Annotated[Path | None, typer.Option(help="register.yaml of known identifiers.")] = None,
    allow: Annotated[Path | None, typer.Option(help="allow.yaml: terms never replaced.")] = None,
    study: Annotated[
        Path | None, typer.Option(help="Study folder: use its register.yaml and allow.yaml when present.")
    ] = None,
    key_store: Annotated[
        Path | None, typer.Option(help="Encrypted pseudonym key to write (keep it under private/).")
    ] = None,
    metrics: Annotated[Path | None, typer.Option(help="Counts by type (turns tables only).")] = None,
    codebook_out: Annotated[
        Path | None,
        typer.Option(help="Write the study's codebook, identifiers scrubbed, here (JSON; needs --study)."),
    ] = None,
    codings_in: Annotated[
        Path | None, typer.Option(help="The ingest stage's codings (.parquet), to rename their ids.")
    ] = None,
    codings_out: Annotated[
        Path | None, typer.Option(help="The codings under the pseudonymised ids (.parquet).")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    engine: EngineOpt = None,
    quiet: QuietOpt = False,
):
    """Pseudonymise texts: JSONL lines {"id","text"}, or the ingest stage's turns table (.parquet)."""
    p = _params(params, set_, engine)
    if root is None and in_ is not None and in_.suffix == ".jsonl":
        from pipeline import deid as stage

        if study is not None:
            raise UserError("--study goes with a turns table; give --register/--allow for JSONL input")
        return stage.run_jsonl(
            p, in_path=in_, out=out, register=register, allow=allow, key_store=key_store, progress=not quiet
        )
    if root is None and in_ is not None and in_.suffix != ".parquet":
        raise UserError(f"{in_}: expected a .jsonl file of {{id, text}} lines or a .parquet turns table")
    if codebook_out is not None and study is None:
        raise UserError("--codebook-out needs --study (the folder whose codebook to scrub)")
    if (codings_in is None) != (codings_out is None):
        raise UserError("--codings-in and --codings-out go together")
    paths = {
        "turns": ("--in", in_),
        "deid_turns": ("--out", out),
        "deid_metrics": ("--metrics", metrics),
        "key_store": ("--key-store", key_store),
        "codings_ingested": ("--codings-in", codings_in),
        "codings": ("--codings-out", codings_out),
        "codebook": ("--codebook-out", codebook_out),
    }
    explicit = {
        k: v for k, v in paths.items() if v[1] is not None or k in ("turns", "deid_turns", "key_store")
    }
    return run_stage_command(
        "deid", p, root=root, study=study, paths=explicit, quiet=quiet, register=register, allow=allow
    )


@_command("reidentify")
def reidentify(
    in_: InOpt,
    out: OutOpt,
    key_store: Annotated[Path, typer.Option(help="The encrypted pseudonym key written by deid.")],
    review: Annotated[
        Path | None, typer.Option(help="Also write the review table (holds identifiers: keep it private).")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """For key holders: put original identifiers back into de-identified JSONL or turns."""
    from pipeline import deid as stage

    return stage.reidentify(_params(params, set_), in_path=in_, out=out, key_store=key_store, review=review)


@_command("segment")
def segment(
    in_: MaybeIn = None,
    out: MaybeOut = None,
    metrics: Annotated[Path | None, typer.Option(help="Segment counts (JSON).")] = None,
    root: RootOpt = None,
    study: StudyOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Split pseudonymised turns into units of analysis with provenance."""
    paths = {
        "deid_turns": ("--in", in_),
        "segments": ("--out", out),
        "segment_metrics": ("--metrics", metrics),
    }
    return run_stage_command(
        "segment", _params(params, set_), root=root, study=study, paths=paths, quiet=quiet
    )


@_command("embed")
def embed(
    in_: MaybeIn = None,
    out: MaybeOut = None,
    root: RootOpt = None,
    study: StudyOpt = None,
    engine: EngineOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Embed segments (cached by model and text hash); writes .npy plus a .json sidecar."""
    paths = {"segments": ("--in", in_), "embeddings": ("--out", out)}
    return run_stage_command(
        "embed", _params(params, set_, engine), root=root, study=study, paths=paths, quiet=quiet
    )


@_command("themes", "discover")
def themes(
    in_: MaybeIn = None,
    out: MaybeOut = None,
    root: RootOpt = None,
    study: StudyOpt = None,
    embeddings: Annotated[Path | None, typer.Option(help="Segment embeddings (.npy).")] = None,
    cards: Annotated[Path | None, typer.Option(help="Theme cards (JSON).")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Discovery summary (JSON).")] = None,
    codebook: Annotated[
        Path | None,
        typer.Option(
            help="Codebook to guide themes (themes.guided): .yaml, .csv, .qdc, or deid's codebook.json."
        ),
    ] = None,
    codings: CodingsOpt = None,
    turns: TurnsOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Find candidate themes: a CSV `id,text[,group]` -> `id,theme_id,theme_label`,
    or the segments table with --embeddings, --cards and --metrics."""
    p = _params(params, set_)
    if root is None and in_ is not None and in_.suffix == ".csv":
        from pipeline import themes as stage
        from pipeline.stages import read_input

        book = read_input("codebook", codebook) if codebook is not None else None
        return stage.run_csv(p, in_path=in_, out=out, codebook=book, progress=not quiet)
    paths = {
        "segments": ("--in", in_),
        "embeddings": ("--embeddings", embeddings),
        "assignments": ("--out", out),
        "cards": ("--cards", cards),
        "themes_metrics": ("--metrics", metrics),
        "codebook": ("--codebook", codebook),
        "codings": ("--codings", codings),
        "deid_turns": ("--turns", turns),
    }
    return run_stage_command("themes", p, root=root, study=study, paths=paths, quiet=quiet)


@_command("coding", "code")
def coding(
    in_: MaybeIn = None,
    out: MaybeOut = None,
    root: RootOpt = None,
    study: StudyOpt = None,
    codebook: Annotated[
        Path | None, typer.Option(help="Codebook (.yaml, .csv name,description, REFI .qdc, or deid's .json).")
    ] = None,
    train: Annotated[Path | None, typer.Option(help="Human-coded examples `id,text,code`.")] = None,
    embeddings: Annotated[Path | None, typer.Option(help="Segment embeddings (.npy).")] = None,
    codings: CodingsOpt = None,
    turns: TurnsOpt = None,
    metrics: Annotated[
        Path | None, typer.Option(help="How the segments were coded: method, context, counts (JSON).")
    ] = None,
    engine: EngineOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Apply a codebook: a CSV `id,text` -> `id,code,score` (few-shot with --train), or the
    segments table with --embeddings, --codebook (deid's codebook.json) and --codings (few-shot
    cross-fitted on them)."""
    p = _params(params, set_, engine)
    if root is None and in_ is not None and in_.suffix == ".csv":
        from pipeline import coding as stage

        if codebook is None:
            raise UserError("--codebook is required when --in is a CSV")
        return stage.run_csv(p, in_path=in_, codebook_path=codebook, out=out, train=train, progress=not quiet)
    paths = {
        "segments": ("--in", in_),
        "embeddings": ("--embeddings", embeddings),
        "codebook": ("--codebook", codebook),
        "codings": ("--codings", codings),
        "deid_turns": ("--turns", turns),
        "codes": ("--out", out),
    }
    paths |= {"coding_metrics": ("--metrics", metrics)} if metrics is not None else {}
    return run_stage_command("coding", p, root=root, study=study, paths=paths, quiet=quiet)


@_command("agreement")
def agreement(
    out: MaybeOut = None,
    root: RootOpt = None,
    study: StudyOpt = None,
    gold: Annotated[Path | None, typer.Option(help="Human codes, long format id,code[,coder].")] = None,
    pred: Annotated[Path | None, typer.Option(help="Machine codes, long format id,code.")] = None,
    codebook: Annotated[
        Path | None, typer.Option(help="Codebook: deid's codebook.json (or .yaml/.csv/.qdc).")
    ] = None,
    codings: CodingsOpt = None,
    ingest_metrics: Annotated[
        Path | None, typer.Option(help="The ingest metrics (JSON): their codings import report is repeated.")
    ] = None,
    segments: Annotated[Path | None, typer.Option(help="Segments table.")] = None,
    themes: Annotated[Path | None, typer.Option(help="Theme assignments table.")] = None,
    codes: Annotated[Path | None, typer.Option(help="Machine codes table.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Per-code kappa rows for `dvc plots` (JSON).")] = None,
    confusion: Annotated[
        Path | None, typer.Option(help="Theme x code rows for a `dvc plots` confusion matrix (JSON).")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Agreement figures: --gold/--pred CSVs, or the human codings vs the pipeline's outputs."""
    p = _params(params, set_)
    if root is None and (gold is not None or pred is not None):
        from pipeline import agreement as stage

        if gold is None or pred is None or out is None:
            raise UserError("--gold, --pred and --out go together")
        report = stage.run_csv(p, gold_path=gold, pred_path=pred, out=out)
        return report.get("overall", report.get("status"))
    paths = {
        "segments": ("--segments", segments),
        "assignments": ("--themes", themes),
        "codes": ("--codes", codes),
        "codebook": ("--codebook", codebook),
        "codings": ("--codings", codings),
        "ingest_metrics": ("--ingest-metrics", ingest_metrics),
        "agreement_metrics": ("--out", out),
        "agreement_plot": ("--plot", plot),
        "confusion_plot": ("--confusion", confusion),
    }
    return run_stage_command("agreement", p, root=root, study=study, paths=paths, quiet=quiet)


@_command("review", "review-snapshot")
def review(
    study: StudyOpt = None,
    root: RootOpt = None,
    out: MaybeOut = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Snapshot the study's theme review decisions (theme_review.yaml) for the report."""
    return run_stage_command(
        "review",
        _params(params, set_),
        root=root,
        study=study,
        paths={"theme_review": ("--out", out)},
        quiet=quiet,
    )


@_command("report")
def report(
    out: Annotated[Path, typer.Option(help="The HTML report.")] = _REPO.report,
    root: RootOpt = None,
    study: StudyOpt = None,
    metrics_dir: Annotated[Path, typer.Option(help="Folder of the stages' metrics JSON.")] = _REPO.metrics,
    cards: Annotated[Path, typer.Option(help="Theme cards (JSON).")] = _REPO.cards,
    assignments: Annotated[Path, typer.Option(help="Theme per segment.")] = _REPO.assignments,
    segments: Annotated[Path, typer.Option(help="Segments table.")] = _REPO.segments,
    embeddings: Annotated[Path, typer.Option(help="Segment embeddings (.npy).")] = _REPO.embeddings,
    codes: Annotated[Path, typer.Option(help="Machine codes table.")] = _REPO.codes,
    turns: Annotated[Path, typer.Option(help="Pseudonymised turns.")] = _REPO.deid_turns,
    codebook: Annotated[Path, typer.Option(help="deid's scrubbed codebook (JSON).")] = _REPO.codebook,
    codings: Annotated[Path, typer.Option(help="Human codings as offsets (from deid).")] = _REPO.codings,
    review: Annotated[Path, typer.Option(help="The review stage's snapshot (JSON).")] = _REPO.theme_review,
    exports: Annotated[Path, typer.Option(help="Folder for the REFI-QDA exports.")] = _REPO.exports,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Write the HTML report and the REFI-QDA exports, with the study's theme review applied."""
    files = {
        "cards": ("--cards", cards),
        "assignments": ("--assignments", assignments),
        "segments": ("--segments", segments),
        "embeddings": ("--embeddings", embeddings),
        "codes": ("--codes", codes),
        "deid_turns": ("--turns", turns),
        "codebook": ("--codebook", codebook),
        "codings": ("--codings", codings),
        "theme_review": ("--review", review),
        "report": ("--out", out),
        "exports": ("--exports", exports),
    }
    paths = report_paths(metrics_dir, files)
    return run_stage_command(
        "report", _params(params, set_), root=root, study=study, paths=paths, quiet=quiet
    )


def main() -> None:
    app(prog_name="python -m pipeline")


if __name__ == "__main__":
    sys.exit(main())
