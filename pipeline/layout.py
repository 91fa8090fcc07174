"""Where every stage's outputs land under one output folder: each path named once, here.

`dvc.yaml` mirrors this layout with the output folder set to the repository root; the stage
registry (`pipeline.stages`), the report and the notebooks take their paths from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

METRIC_STAGES = ("ingest", "deid", "segment", "themes", "coding", "agreement")


def metric_file(metrics_dir: Path, stage: str) -> Path:
    """The metrics file of `stage` (one of METRIC_STAGES) in a metrics folder."""
    if stage not in METRIC_STAGES:
        raise ValueError(f"no metrics file for stage '{stage}'")
    return metrics_dir / f"{stage}.json"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def turns(self) -> Path:
        return self.root / "outputs" / "turns.parquet"

    @property
    def codings_ingested(self) -> Path:
        """Human codings as ingest imported them: offsets, under the study's own ids."""
        return self.root / "outputs" / "codings_ingested.parquet"

    @property
    def codings(self) -> Path:
        """Human codings as offsets into the transcripts (no text), under the ids deidentify gave."""
        return self.root / "outputs" / "codings.parquet"

    @property
    def coverage_ingested(self) -> Path:
        """What each coder reviewed (spans, no text), under the study's own ids, from ingest."""
        return self.root / "outputs" / "coverage_ingested.parquet"

    @property
    def coverage(self) -> Path:
        """What each coder reviewed, under the ids deidentify gave."""
        return self.root / "outputs" / "coverage.parquet"

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
    def codes_levels(self) -> Path:
        """The machine's top code at each level of the codebook (schema CODES_LEVELS)."""
        return self.root / "outputs" / "codes_levels.parquet"

    @property
    def theme_review(self) -> Path:
        """The study's theme review decisions, checked and snapshot by the review stage."""
        return self.root / "outputs" / "theme_review.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    def metric(self, stage: str) -> Path:
        """A stage's metrics file (see `metric_file`)."""
        return metric_file(self.metrics, stage)

    def path(self, key: str) -> Path:
        """The path of an output named by its key: a property's name, or `<stage>_metrics`."""
        if key.endswith("_metrics"):
            return self.metric(key.removesuffix("_metrics"))
        value = getattr(type(self), key, None)
        if not isinstance(value, property):
            raise KeyError(f"no output named '{key}' in the layout")
        return getattr(self, key)

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def agreement_plot(self) -> Path:
        """Per-code machine kappa with its interval and the human kappa (`dvc plots`)."""
        return self.plots / "agreement_per_code.json"

    @property
    def confusion_plot(self) -> Path:
        """Theme x code rows for a `dvc plots` confusion matrix."""
        return self.plots / "theme_code_confusion.json"

    @property
    def report(self) -> Path:
        return self.root / "reports" / "index.html"

    @property
    def exports(self) -> Path:
        """REFI-QDA exports: candidate_themes.qdc and study.qdpx (pseudonymised text)."""
        return self.root / "exports"
