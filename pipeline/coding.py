"""Code stage: apply a codebook deductively to segments (zero-shot, optionally few-shot).

Each code is represented by a prototype: the mean embedding of its description, its
example quotes and any human-coded training texts. A segment gets every code whose
cosine similarity to the prototype reaches the threshold, best first, at most `max_codes`;
below the threshold for all codes, "no code applies" and the segment gets no row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import CodingParams, Params
from pipeline.embed import embed_texts
from pipeline.errors import UserError
from pipeline.io import read_csv, read_matrix, read_table, write_csv, write_table
from pipeline.schemas import CODES, SEGMENTS
from pipeline.study import Codebook, read_codebook


def code_prototypes(
    codebook: Codebook, *, embed, training: pd.DataFrame | None = None
) -> tuple[list[str], np.ndarray]:
    """(code ids, unit-normalised prototype matrix) for the codebook's leaf codes."""
    ids, rows = [], []
    for code in codebook.leaves:
        texts = [code.description(), *code.examples]
        if training is not None:
            texts += training.loc[training["code"] == code.code_id, "text"].tolist()
        vectors = embed(texts)
        centre = vectors.mean(axis=0)
        ids.append(code.code_id)
        rows.append(centre / (np.linalg.norm(centre) or 1.0))
    return ids, np.vstack(rows)


def apply_codebook(
    segment_ids: list[str],
    embeddings: np.ndarray,
    code_ids: list[str],
    prototypes: np.ndarray,
    *,
    options: CodingParams,
) -> pd.DataFrame:
    """Long table segment_id, code, score of the codes that apply."""
    scores = embeddings @ prototypes.T
    rows = []
    for i, seg in enumerate(segment_ids):
        order = np.argsort(-scores[i])[: options.max_codes]
        rows += [(seg, code_ids[j], float(scores[i, j])) for j in order if scores[i, j] >= options.threshold]
    return pd.DataFrame(rows, columns=["segment_id", "code", "score"])


def _embedder(params: Params, progress: bool):
    def embed(texts: list[str]) -> np.ndarray:
        return embed_texts(
            texts,
            model=params.embed.model,
            batch_size=params.embed.batch_size,
            cache_dir=Path(params.embed.cache_dir),
            progress=progress,
        )

    return embed


def run(
    params: Params, *, segments_path: Path, embeddings_path: Path, codebook: Codebook | None, out: Path
) -> dict:
    segments = read_table(segments_path, SEGMENTS)
    embeddings, _ = read_matrix(embeddings_path)
    if codebook is None:
        codes = pd.DataFrame(columns=CODES.names)
    else:
        code_ids, protos = code_prototypes(codebook, embed=_embedder(params, False))
        codes = apply_codebook(
            segments["segment_id"].tolist(), embeddings, code_ids, protos, options=params.coding
        )
    write_table(out, codes, CODES)
    return {"codes": int(len(codes)), "segments_coded": int(codes["segment_id"].nunique())}


def run_csv(
    params: Params,
    *,
    in_path: Path,
    codebook_path: Path,
    out: Path,
    train: Path | None,
    progress: bool = False,
) -> dict:
    """The CLI contract: `id,text` rows (+ training `id,text,code`) -> `id,code,score` rows."""
    df = read_csv(in_path, ("id", "text"))
    codebook = read_codebook(codebook_path)
    training = read_csv(train, ("id", "text", "code")) if train else None
    if training is not None:
        known = {c.code_id for c in codebook.leaves}
        bad = training.index[~training["code"].isin(known)]
        if len(bad):
            raise UserError(f"{train} line {bad[0] + 2}: code not in the codebook's leaf codes")
    embed = _embedder(params, progress)
    code_ids, protos = code_prototypes(codebook, embed=embed, training=training)
    codes = apply_codebook(
        df["id"].tolist(), embed(df["text"].tolist()), code_ids, protos, options=params.coding
    )
    write_csv(out, codes.rename(columns={"segment_id": "id"}))
    return {"rows": len(df), "codes": len(codes)}
