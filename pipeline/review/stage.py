"""The review stage's node: `dvc repro` runs it on every call (DVC refuses a params file that
does not exist), and the report re-runs only when the snapshot changes."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params
from pipeline.theme_review import review_snapshot


def run(params: Params, *, study: Path) -> dict:
    """The stage's node (see `pipeline.stages`)."""
    return {"theme_review": review_snapshot(study)}
