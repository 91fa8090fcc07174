"""Embed stage: segments -> sentence embeddings (.npy plus a JSON sidecar naming the model, the
device and precision it ran in, and the segments they belong to), cached by model and text
hash; encoded in this process or on Ray actors (param `engine`, pipeline/engine.py)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params
from pipeline.encoder import embed_with, ids_hash, model_version
from pipeline.io import read_table, write_matrix
from pipeline.schemas import SEGMENTS


def run(params: Params, *, segments_path: Path, out: Path, progress: bool = False) -> dict:
    segments = read_table(segments_path, SEGMENTS)
    opts = params.embed
    matrix = embed_with(segments["text"].tolist(), options=opts, engine=params.engine, progress=progress)
    meta = {
        "model": opts.model,
        "model_version": model_version(opts.model),
        "device": opts.device,
        "precision": opts.model_precision,
        "segment_ids_sha256": ids_hash(segments["segment_id"].tolist()),
    }
    write_matrix(out, matrix, meta)
    return {
        "segments": len(segments),
        "dim": int(matrix.shape[1]) if matrix.size else 0,
        "device": opts.device,
        "precision": opts.model_precision,
    }
