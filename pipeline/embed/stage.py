"""Embed stage: segments -> sentence embeddings (.npy plus a JSON sidecar naming the model, the
device and precision it ran in, and the segments they belong to), cached by model and text
hash; encoded in this process or on Ray actors (param `engine`, pipeline/engine.py)."""

from __future__ import annotations

import pandas as pd

from pipeline.config import Params
from pipeline.encoder import embed_with, model_version
from pipeline.io import ids_hash


def run(params: Params, *, segments: pd.DataFrame, progress: bool = False) -> dict:
    """The stage's node (see `pipeline.stages`): the matrix and its sidecar."""
    opts = params.embed
    matrix = embed_with(segments["text"].tolist(), options=opts, engine=params.engine, progress=progress)
    meta = {
        "model": opts.model,
        "model_version": model_version(opts.model),
        "device": opts.device,
        "precision": opts.model_precision,
        "segment_ids_sha256": ids_hash(segments["segment_id"].tolist()),
    }
    return {"embeddings": (matrix, meta)}
