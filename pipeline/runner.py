"""Where every stage's outputs land under one output folder, and the whole pipeline in order.

`dvc.yaml` mirrors this layout with the output folder set to the repository root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline import agreement, coding, deid, embed, ingest, segment, themes
from pipeline import report as report_stage
from pipeline.config import Params
from pipeline.study import (
    codings_import_report,
    read_codebook_json,
    read_codings_table,
)


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def turns(self) -> Path:
        return self.root / "outputs" / "turns.parquet"

    @property
    def codings(self) -> Path:
        """Human codings as offsets into the transcripts (no text), imported by ingest."""
        return self.root / "outputs" / "codings.parquet"

    @property
    def codebook(self) -> Path:
        """The study's codebook with identifiers scrubbed, written by deidentify."""
        return self.root / "outputs" / "codebook.json"

    @property
    def deid_turns(self) -> Path:
        return self.root / "outputs" / "turns_deid.parquet"

    @property
    def key_store(self) -> Path:
        """The encrypted pseudonym key: never a DVC output, git-ignored."""
        return self.root / "private" / "deid_key.enc"

    @property
    def segments(self) -> Path:
        return self.root / "outputs" / "segments.parquet"

    @property
    def embeddings(self) -> Path:
        return self.root / "outputs" / "embeddings.npy"

    @property
    def assignments(self) -> Path:
        return self.root / "outputs" / "themes.parquet"

    @property
    def cards(self) -> Path:
        return self.root / "outputs" / "themes.json"

    @property
    def codes(self) -> Path:
        return self.root / "outputs" / "codes.parquet"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def report(self) -> Path:
        return self.root / "reports" / "index.html"

    @property
    def exports(self) -> Path:
        """REFI-QDA exports: candidate_themes.qdc and study.qdpx (pseudonymised text)."""
        return self.root / "exports"


def run_all(params: Params, *, study: Path, out: Path, progress: bool = False) -> Layout:
    """Every stage, in order, exactly as the DVC stages call them."""
    lay = Layout(out)
    ingest.run(params, study=study, out=lay.turns, codings=lay.codings, metrics=lay.metrics / "ingest.json")
    deid.run(
        params,
        turns_path=lay.turns,
        out=lay.deid_turns,
        metrics=lay.metrics / "deid.json",
        key_store=lay.key_store,
        study=study,
        progress=progress,
    )
    deid.write_scrubbed_codebook(study, lay.codebook, deid_params=params.deid)  # part of the deid stage
    # from here on, no stage reads the study's codebook or codings: only these two outputs
    codebook, codings = read_codebook_json(lay.codebook), read_codings_table(lay.codings)
    segment.run(params, turns_path=lay.deid_turns, out=lay.segments, metrics=lay.metrics / "segment.json")
    embed.run(params, segments_path=lay.segments, out=lay.embeddings, progress=progress)
    themes.run(
        params,
        segments_path=lay.segments,
        embeddings_path=lay.embeddings,
        out=lay.assignments,
        cards=lay.cards,
        metrics=lay.metrics / "themes.json",
        codebook=codebook,
    )
    coding.run(
        params,
        segments_path=lay.segments,
        embeddings_path=lay.embeddings,
        codebook=codebook,
        codings=codings,
        out=lay.codes,
        turns_path=lay.deid_turns,
        metrics=lay.metrics / "coding.json",
    )
    agreement.run(
        params,
        segments_path=lay.segments,
        themes_path=lay.assignments,
        codes_path=lay.codes,
        codings=codings,
        codebook=codebook,
        out=lay.metrics / "agreement.json",
        plot=lay.plots / "agreement_per_code.json",
        confusion=lay.plots / "theme_code_confusion.json",
        input_report=codings_import_report(lay.metrics / "ingest.json"),
    )
    run_report(params, study=study, lay=lay)
    return lay


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
