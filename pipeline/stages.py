"""The stage registry: each of the pipeline's stages declared once (name, node, inputs and outputs
as `Layout` keys, the params it reads), and the one place where stage inputs are read and
outputs written.

A stage's name is its package (`pipeline/<name>/`), its command (`python -m pipeline <name>`),
its DVC stage, its params section and its metrics file (`metrics/<name>.json`). Its node,
`pipeline.<name>.run`, takes the params and the loaded inputs (keyword arguments named by
their keys) and returns the outputs by key; it reads and writes no file of the run. The runner,
the CLI, `bench scale` and `dvc.yaml` (checked by tests/test_architecture.py) follow this table.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.codebook import read_codebook_json, write_codebook_json
from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.io import (
    atomic_path,
    ids_hash,
    read_json,
    read_matrix,
    read_table,
    write_json,
    write_matrix,
    write_table,
    write_text,
)
from pipeline.layout import Layout
from pipeline.schemas import (
    ASSIGNMENTS,
    CODES,
    CODES_LEVELS,
    CODINGS,
    COVERAGE,
    DEID_TURNS,
    SEGMENTS,
    TURNS,
    Schema,
)

STUDY = "study"  # the study folder itself: read by ingest, deid (and review: its theme_review.yaml)


@dataclass(frozen=True)
class Stage:
    name: str
    inputs: tuple[str, ...]  # Layout keys (or STUDY), passed to the node by key
    outputs: tuple[str, ...]  # Layout keys, returned by the node
    params: tuple[str, ...]  # params sections or keys it reads (dvc.yaml `params`)
    aliases: tuple[str, ...] = ()  # earlier command names, still accepted
    optional: tuple[str, ...] = ()  # inputs a command may leave out (the node gets None)
    progress: bool = False  # the node draws progress bars when asked
    digests: bool = False  # the node shows its input files' digests (the report's provenance)

    def command(self, *, study: str, root: str) -> list[str]:
        """Its command line over an output folder, as `dvc.yaml` runs it."""
        return ["python", "-m", "pipeline", self.name, "--quiet", "--study", study, "--root", root]

    def node(self) -> Callable[..., dict[str, Any]]:
        """`pipeline.<name>.run`, imported on demand: a stage loads only its own package."""
        return importlib.import_module(f"pipeline.{self.name}").run


def _stage(name: str, inputs: str, outputs: str, params: str, **kw: Any) -> Stage:
    return Stage(name, tuple(inputs.split()), tuple(outputs.split()), tuple(params.split()), **kw)


EMBED_PARAMS = "embed.model embed.batch_size embed.precision embed.device"
STAGES: tuple[Stage, ...] = (
    _stage("ingest", "study", "turns codings_ingested coverage_ingested ingest_metrics", ""),
    _stage(
        "deid",
        "study turns codings_ingested coverage_ingested",
        "deid_turns codings coverage codebook key_store deid_metrics",
        "deid engine",
        aliases=("deidentify",),
        optional=("study", "codings_ingested", "coverage_ingested"),  # the command line's turns-only mode
        progress=True,
    ),
    _stage("segment", "deid_turns", "segments segment_metrics", "segment"),
    _stage("embed", "segments", "embeddings", f"engine {EMBED_PARAMS}", progress=True),
    _stage(
        "themes",
        "segments embeddings codebook codings deid_turns",
        "assignments cards themes_metrics",
        f"seed themes agreement.min_overlap {EMBED_PARAMS}",
        aliases=("discover",),
        optional=("codebook", "codings", "deid_turns"),
    ),
    _stage(
        "coding",
        "segments embeddings codebook codings coverage deid_turns",
        "codes codes_levels coding_metrics",
        f"seed engine coding agreement.min_overlap {EMBED_PARAMS}",
        aliases=("code",),
        optional=("deid_turns", "coverage"),  # no coverage: the default rule (`pipeline.codings`)
        progress=True,
    ),
    _stage(
        "agreement",
        "segments assignments codes codebook codings coverage ingest_metrics",
        "agreement_metrics agreement_plot confusion_plot",
        "seed agreement",
        optional=("ingest_metrics", "coverage"),
    ),
    _stage("review", "study", "theme_review", "", aliases=("review-snapshot",)),
    _stage(
        "report",
        "ingest_metrics deid_metrics segment_metrics themes_metrics agreement_metrics coding_metrics "
        "cards assignments segments embeddings codes deid_turns codebook codings theme_review",
        "report exports",
        "seed embed.model embed.precision embed.device deid.spacy_model agreement.min_overlap "
        "agreement.cover_min report",
        optional=("coding_metrics",),  # runs made before the coding stage wrote one
        digests=True,
    ),
)
BY_NAME = {s.name: s for s in STAGES}
ALIASES = {a: s.name for s in STAGES for a in s.aliases}


def stage_named(name: str) -> Stage:
    """A stage by its name or an earlier command name."""
    found = BY_NAME.get(ALIASES.get(name, name))
    if found is None:
        raise UserError(f"no stage named '{name}' (stages: {', '.join(BY_NAME)})")
    return found


# ---- reading and writing: each key's file format, in one table ----
def _table(schema: Schema) -> tuple[Callable, Callable]:
    return (lambda p: read_table(p, schema)), (lambda p, v: write_table(p, v, schema))


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        tmp.chmod(0o600)  # the key store: the owner's only


def _write_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    for name, data in files.items():
        with atomic_path(folder / name) as tmp:
            tmp.write_bytes(data)


def _read_codebook(path: Path):
    """deid's codebook.json; on the command line also a study's .yaml, .csv or .qdc (read by
    `pipeline.formats.readers`, imported by name: no stage's `dvc repro` run reads one)."""
    if path.suffix.lower() == ".json":
        return read_codebook_json(path)
    return importlib.import_module("pipeline.formats.readers").read_codebook(path)


def _unreadable(path: Path):
    raise UserError(f"{path}: not an input of any stage")


_JSON = (read_json, write_json)
_FORMATS: dict[str, tuple[Callable, Callable]] = {
    "turns": _table(TURNS),
    "codings_ingested": _table(CODINGS),
    "codings": _table(CODINGS),
    "coverage_ingested": _table(COVERAGE),
    "coverage": _table(COVERAGE),
    "deid_turns": _table(DEID_TURNS),
    "segments": _table(SEGMENTS),
    "assignments": _table(ASSIGNMENTS),
    "codes": _table(CODES),
    "codes_levels": _table(CODES_LEVELS),
    "codebook": (_read_codebook, write_codebook_json),
    "embeddings": (read_matrix, lambda p, v: write_matrix(p, *v)),
    "key_store": (_unreadable, _write_bytes),
    "report": (_unreadable, write_text),
    "exports": (_unreadable, _write_folder),
}


def read_input(key: str, path: Path) -> Any:
    if key == STUDY:
        return path
    return _FORMATS.get(key, _JSON)[0](path)


def write_output(key: str, path: Path, value: Any) -> None:
    _FORMATS.get(key, _JSON)[1](path, value)


def _check_embeddings(inputs: dict[str, Any], paths: Mapping[str, Path]) -> None:
    """Embeddings read beside segments belong to those segments, in order."""
    if inputs.get("embeddings") is None or inputs.get("segments") is None:
        return
    meta = inputs["embeddings"][1]
    if meta.get("segment_ids_sha256") != ids_hash(inputs["segments"]["segment_id"].tolist()):
        raise UserError(
            f"{paths['embeddings']}: embeddings are of other segments than the segments table "
            "(re-run `embed`)"
        )


def _digest(path: Path) -> tuple[str, str, int]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return str(path), h.hexdigest(), path.stat().st_size


def run_stage(
    stage: Stage | str,
    params: Params,
    *,
    paths: Mapping[str, Path],
    progress: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read a stage's inputs from `paths` (by key), run its node, write each output that has a
    path; returns the outputs. An optional input without a path, or whose file
    does not exist, reaches the node as None. `options`: the command line's extra options for
    the node (None values left out)."""
    stage = stage_named(stage) if isinstance(stage, str) else stage
    missing = [k for k in stage.inputs if k not in paths and k not in stage.optional]
    if missing:
        raise UserError(f"stage {stage.name}: no path given for input(s) {', '.join(missing)}")
    given = {
        k: paths[k] for k in stage.inputs if k in paths and (k not in stage.optional or paths[k].exists())
    }
    inputs = {k: read_input(k, given[k]) if k in given else None for k in stage.inputs}
    _check_embeddings(inputs, paths)
    extra: dict[str, Any] = {"progress": progress} if stage.progress else {}
    if stage.digests:
        extra["digests"] = {k: _digest(p) for k, p in given.items() if k != STUDY}
    extra |= {k: v for k, v in (options or {}).items() if v is not None}
    outputs = stage.node()(params, **inputs, **extra)
    if set(outputs) != set(stage.outputs):
        raise RuntimeError(f"stage {stage.name} returned {sorted(outputs)}, declared {list(stage.outputs)}")
    for key in stage.outputs:
        if key in paths:
            write_output(key, paths[key], outputs[key])
    return outputs


def layout_paths(stage: Stage, lay: Layout, *, study: Path) -> dict[str, Path]:
    """Every input and output of `stage` under an output folder."""
    return {k: study if k == STUDY else lay.path(k) for k in (*stage.inputs, *stage.outputs)}


def run_in_layout(
    stage: Stage | str, params: Params, *, study: Path, lay: Layout, progress: bool = False
) -> dict[str, Any]:
    stage = stage_named(stage) if isinstance(stage, str) else stage
    return run_stage(stage, params, paths=layout_paths(stage, lay, study=study), progress=progress)
