"""The whole pipeline in order, as the DVC stages run it, over one output folder (`Layout`)."""

from __future__ import annotations

from pathlib import Path

from pipeline import agreement, coding, deid, embed, ingest, segment, themes
from pipeline import report as report_stage
from pipeline.config import Params
from pipeline.layout import Layout

__all__ = ["Layout", "prepare_segments", "run_all", "run_report"]
from pipeline.codebook import read_codebook_json
from pipeline.codings import codings_import_report, read_codings_table


def run_all(params: Params, *, study: Path, out: Path, progress: bool = False) -> Layout:
    """Every stage, in order, exactly as the DVC stages call them."""
    lay = Layout(out)
    prepare_segments(params, study=study, lay=lay, progress=progress)
    # from here on, no stage reads the study's codebook or codings: only these two outputs
    codebook, codings = read_codebook_json(lay.codebook), read_codings_table(lay.codings)
    embed.run(params, segments_path=lay.segments, out=lay.embeddings, progress=progress)
    themes.run(
        params,
        segments_path=lay.segments,
        embeddings_path=lay.embeddings,
        out=lay.assignments,
        cards=lay.cards,
        metrics=lay.metric("themes"),
        codebook=codebook,
        codings=codings,
        turns_path=lay.deid_turns,
    )
    coding.run(
        params,
        segments_path=lay.segments,
        embeddings_path=lay.embeddings,
        codebook=codebook,
        codings=codings,
        out=lay.codes,
        turns_path=lay.deid_turns,
        metrics=lay.metric("coding"),
    )
    agreement.run(
        params,
        segments_path=lay.segments,
        themes_path=lay.assignments,
        codes_path=lay.codes,
        codings=codings,
        codebook=codebook,
        out=lay.metric("agreement"),
        plot=lay.agreement_plot,
        confusion=lay.confusion_plot,
        input_report=codings_import_report(lay.metric("ingest")),
    )
    run_report(params, study=study, lay=lay)
    return lay


def prepare_segments(params: Params, *, study: Path, lay: Layout, progress: bool = False) -> None:
    """The ingest, deidentify and segment stages: a study's pseudonymised segments under `lay`,
    with its codings (offsets only) and scrubbed codebook, as `dvc repro` makes them."""
    ingest.run(params, study=study, out=lay.turns, codings=lay.codings_ingested, metrics=lay.metric("ingest"))
    deid.run(
        params,
        turns_path=lay.turns,
        out=lay.deid_turns,
        metrics=lay.metric("deid"),
        key_store=lay.key_store,
        study=study,
        codings_in=lay.codings_ingested,
        codings_out=lay.codings,
        progress=progress,
    )
    deid.write_scrubbed_codebook(study, lay.codebook, deid_params=params.deid)  # part of the deid stage
    segment.run(params, turns_path=lay.deid_turns, out=lay.segments, metrics=lay.metric("segment"))


def run_report(
    params: Params, *, study: Path, lay: Layout, out: Path | None = None, exports_dir: Path | None = None
) -> dict:
    """The report stage over a layout's outputs (e.g. again after a theme review)."""
    return report_stage.run(
        params,
        study=study,
        metrics_dir=lay.metrics,
        cards_path=lay.cards,
        assignments_path=lay.assignments,
        segments_path=lay.segments,
        embeddings_path=lay.embeddings,
        codes_path=lay.codes,
        turns_path=lay.deid_turns,
        codebook_path=lay.codebook,
        codings_path=lay.codings,
        out=out or lay.report,
        exports_dir=exports_dir or lay.exports,
    )
