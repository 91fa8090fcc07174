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

from pipeline.cli_options import CodingsOpt, EngineOpt, InOpt, OutOpt, ParamsOpt, QuietOpt, SetOpt, TurnsOpt
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


def _command(func):
    """Turn user mistakes into one line on stderr and exit status 2."""

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

    return wrapper


@app.command()
@_command
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


@app.command()
@_command
def ingest(
    study: Annotated[Path, typer.Option(help="Study folder.")],
    out: OutOpt,
    codings: Annotated[
        Path, typer.Option(help="Human codings as offsets, no text (.parquet; empty when none).")
    ],
    metrics: Annotated[Path, typer.Option(help="Counts of files, turns and codings read (JSON).")],
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Read transcripts and participants into a turns table, and the human codings into an
    offsets-only table."""
    from pipeline import ingest as stage

    counts = stage.run(_params(params, set_), study=study, out=out, codings=codings, metrics=metrics)
    shown = ("kind", "files", "answers", "turns", "participant_turns", "interviewer_turns", "note_turns")
    return {k: counts[k] for k in shown if k in counts}  # a survey has answers, not files


@app.command()
@_command
def deidentify(
    in_: InOpt,
    out: OutOpt,
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
    from pipeline import deid
    from pipeline.study import require_study

    p = _params(params, set_, engine)
    if study is not None:
        require_study(study)
    if codebook_out is not None and study is None:
        raise UserError("--codebook-out needs --study (the folder whose codebook to scrub)")
    if in_.suffix == ".jsonl":
        if study is not None:
            raise UserError("--study goes with a turns table; give --register/--allow for JSONL input")
        return deid.run_jsonl(
            p, in_path=in_, out=out, register=register, allow=allow, key_store=key_store, progress=not quiet
        )
    if in_.suffix == ".parquet":
        if metrics is None or key_store is None:
            raise UserError("--metrics and --key-store are required when --in is a turns table (.parquet)")
        counts = deid.run(
            p,
            turns_path=in_,
            out=out,
            metrics=metrics,
            key_store=key_store,
            study=study,
            register=register,
            allow=allow,
            codings_in=codings_in,
            codings_out=codings_out,
            progress=not quiet,
        )
        if codebook_out is not None:
            deid.write_scrubbed_codebook(study, codebook_out, deid_params=p.deid)
        return {"replacements": counts["replacements"], "gate_rounds": counts["gate_rounds"]}
    raise UserError(f"{in_}: expected a .jsonl file of {{id, text}} lines or a .parquet turns table")


@app.command()
@_command
def reidentify(
    in_: InOpt,
    out: OutOpt,
    key_store: Annotated[Path, typer.Option(help="The encrypted pseudonym key written by deidentify.")],
    review: Annotated[
        Path | None, typer.Option(help="Also write the review table (holds identifiers: keep it private).")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """For key holders: put original identifiers back into de-identified JSONL or turns."""
    from pipeline import deid

    return deid.reidentify(_params(params, set_), in_path=in_, out=out, key_store=key_store, review=review)


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
    engine: EngineOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Embed segments (cached by model and text hash); writes .npy plus a .json sidecar."""
    from pipeline import embed as stage

    return stage.run(_params(params, set_, engine), segments_path=in_, out=out, progress=not quiet)


@app.command()
@_command
def discover(
    in_: InOpt,
    out: OutOpt,
    embeddings: Annotated[Path | None, typer.Option(help="Segment embeddings (.npy).")] = None,
    cards: Annotated[Path | None, typer.Option(help="Theme cards (JSON).")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Discovery summary (JSON).")] = None,
    codebook: Annotated[
        Path | None,
        typer.Option(
            help="Codebook to guide themes (themes.guided): .yaml, .csv, .qdc, or the deidentify "
            "stage's codebook.json."
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
    from pipeline import themes

    p = _params(params, set_)
    book = _codebook(codebook) if codebook is not None else None
    if in_.suffix == ".csv":
        return themes.run_csv(p, in_path=in_, out=out, codebook=book, progress=not quiet)
    if embeddings is None or cards is None or metrics is None:
        raise UserError("--embeddings, --cards and --metrics are required when --in is a segments table")
    from pipeline.codings import read_codings_table

    return themes.run(
        p,
        segments_path=in_,
        embeddings_path=embeddings,
        out=out,
        cards=cards,
        metrics=metrics,
        codebook=book,
        codings=read_codings_table(codings) if codings is not None else None,
        turns_path=turns,
    )


@app.command()
@_command
def code(
    in_: InOpt,
    out: OutOpt,
    codebook: Annotated[
        Path | None, typer.Option(help="Codebook (.yaml, .csv name,description, or REFI .qdc).")
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
    segments table with --embeddings, --codebook (the deidentify stage's codebook.json) and
    --codings (few-shot cross-fitted on them)."""
    from pipeline import coding
    from pipeline.codings import read_codings_table

    p = _params(params, set_, engine)
    if in_.suffix == ".csv":
        if codebook is None:
            raise UserError("--codebook is required when --in is a CSV")
        return coding.run_csv(
            p, in_path=in_, codebook_path=codebook, out=out, train=train, progress=not quiet
        )
    if embeddings is None or codebook is None or codings is None:
        raise UserError("--embeddings, --codebook and --codings are required when --in is a segments table")
    return coding.run(
        p,
        segments_path=in_,
        embeddings_path=embeddings,
        codebook=_codebook(codebook),
        codings=read_codings_table(codings),
        out=out,
        turns_path=turns,
        metrics=metrics,
        progress=not quiet,
    )


@app.command()
@_command
def agreement(
    out: OutOpt,
    gold: Annotated[Path | None, typer.Option(help="Human codes, long format id,code[,coder].")] = None,
    pred: Annotated[Path | None, typer.Option(help="Machine codes, long format id,code.")] = None,
    codebook: Annotated[
        Path | None, typer.Option(help="Codebook: the deidentify stage's codebook.json (or .yaml/.csv/.qdc).")
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
    from pipeline import agreement as stage

    if gold is not None or pred is not None:
        if gold is None or pred is None:
            raise UserError("--gold and --pred go together")
        p = _params(params, set_)
        report = stage.run_csv(
            gold_path=gold, pred_path=pred, out=out, n_boot=p.agreement.n_boot, seed=p.seed
        )
    else:
        if None in (codebook, codings, segments, themes, codes):
            raise UserError(
                "give --gold and --pred, or --codebook, --codings, --segments, --themes and --codes"
            )
        from pipeline.codings import codings_import_report, read_codings_table

        report = stage.run(
            _params(params, set_),
            confusion=confusion,
            input_report=codings_import_report(ingest_metrics) if ingest_metrics is not None else None,
            segments_path=segments,
            themes_path=themes,
            codes_path=codes,
            codings=read_codings_table(codings),
            codebook=_codebook(codebook),
            out=out,
            plot=plot,
        )
    return report.get("overall", report.get("status"))


@app.command()
@_command
def report(
    out: OutOpt,
    metrics_dir: Annotated[Path, typer.Option(help="Folder of the stages' metrics JSON.")] = _REPO.metrics,
    cards: Annotated[Path, typer.Option(help="Theme cards (JSON).")] = _REPO.cards,
    study: Annotated[
        Path | None, typer.Option(help="Study folder (participants, theme_review.yaml).")
    ] = None,
    assignments: Annotated[Path, typer.Option(help="Theme per segment.")] = _REPO.assignments,
    segments: Annotated[Path, typer.Option(help="Segments table.")] = _REPO.segments,
    embeddings: Annotated[Path, typer.Option(help="Segment embeddings (.npy).")] = _REPO.embeddings,
    codes: Annotated[Path, typer.Option(help="Machine codes table.")] = _REPO.codes,
    turns: Annotated[Path, typer.Option(help="Pseudonymised turns.")] = _REPO.deid_turns,
    codebook: Annotated[
        Path, typer.Option(help="The deidentify stage's scrubbed codebook (JSON).")
    ] = _REPO.codebook,
    codings: Annotated[
        Path, typer.Option(help="Human codings written by ingest (offsets only).")
    ] = _REPO.codings,
    exports: Annotated[Path, typer.Option(help="Folder for the REFI-QDA exports.")] = _REPO.exports,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    quiet: QuietOpt = False,
):
    """Write the HTML report and the REFI-QDA exports, with the study's theme review applied."""
    from pipeline import report as stage
    from pipeline.study import require_study

    p = _params(params, set_)
    study = study if study is not None else Path(p.study)
    require_study(study)
    return stage.run(
        p,
        study=study,
        metrics_dir=metrics_dir,
        cards_path=cards,
        assignments_path=assignments,
        segments_path=segments,
        embeddings_path=embeddings,
        codes_path=codes,
        turns_path=turns,
        codebook_path=codebook,
        codings_path=codings,
        out=out,
        exports_dir=exports,
    ) | {"report": str(out)}


@app.command("review-snapshot")
@_command
def review_snapshot(study: Annotated[Path, typer.Option()], out: OutOpt, quiet: QuietOpt = False):
    """Snapshot the study's theme review decisions for `dvc repro` (see dvc.yaml, stage review)."""
    from pipeline.report.review import write_review_snapshot

    return {"decisions": write_review_snapshot(study, out)}


def _codebook(path: Path):
    """A codebook file given on the command line; None when it is a codebook.json that says the
    study has none."""
    from pipeline.codebook import read_codebook_json
    from pipeline.formats.readers import read_codebook

    return read_codebook_json(path) if path.suffix.lower() == ".json" else read_codebook(path)


def main() -> None:
    app(prog_name="python -m pipeline")


if __name__ == "__main__":
    sys.exit(main())
