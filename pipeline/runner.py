"""The whole pipeline in order over one output folder (`Layout`), as `dvc repro` runs it: every
stage of the registry (`pipeline.stages`), each reading the outputs of those before it."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params
from pipeline.layout import Layout
from pipeline.stages import STAGES, layout_paths, run_in_layout, run_stage, stage_named

__all__ = ["Layout", "prepare_segments", "run_all", "run_report"]


def run_all(params: Params, *, study: Path, out: Path, progress: bool = False) -> Layout:
    """Every stage, in order, exactly as the DVC stages run them (params' `study` is `study`)."""
    return run_stages([s.name for s in STAGES], params, study=study, out=out, progress=progress)


def prepare_segments(params: Params, *, study: Path, lay: Layout, progress: bool = False) -> None:
    """The ingest, deid and segment stages: a study's pseudonymised segments under `lay`, with its
    codings (offsets only) and scrubbed codebook."""
    run_stages(["ingest", "deid", "segment"], params, study=study, out=lay.root, progress=progress)


def run_report(
    params: Params, *, study: Path, lay: Layout, out: Path | None = None, exports_dir: Path | None = None
) -> None:
    """The review and report stages over a layout's outputs (e.g. again after a theme review);
    the report and exports go to `out` and `exports_dir` when given."""
    params = params.model_copy(update={"study": str(study)})
    run_in_layout("review", params, study=study, lay=lay)
    report = stage_named("report")
    paths = layout_paths(report, lay, study=study)
    paths |= {"report": out or lay.report, "exports": exports_dir or lay.exports}
    run_stage(report, params, paths=paths)


def run_stages(names: list[str], params: Params, *, study: Path, out: Path, progress: bool = False) -> Layout:
    lay = Layout(out)
    params = params.model_copy(update={"study": str(study)})
    for name in names:
        run_in_layout(name, params, study=study, lay=lay, progress=progress)
    return lay
