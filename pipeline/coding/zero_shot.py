"""Zero-shot coding: a codebook applied with no human codings to learn from. Each code is a
prototype of its views; a unit's codes come from centred, neighbour-smoothed similarities and
per-code calibrated thresholds. Method: README, section "Agreement with human coding" (How the
machine codes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook, Embed, code_prototypes
from pipeline.config import CodingParams
from pipeline.vectors import nearest_neighbours, unit_rows

MIN_UNITS = 10  # fewer units: no centring, and calibration pools the codes (see calibrated_scores)
NEIGHBOURS = 5


def calibrated_scores(raw: np.ndarray) -> np.ndarray:
    """Per-code z-scores of raw similarities over the units being coded.

    With fewer than 10 units the per-code spread is meaningless; the pooled spread of all
    codes is used instead (a fixed shift and scale, the same for every code).
    """
    if raw.shape[0] >= 10:
        mu, sd = raw.mean(axis=0, keepdims=True), raw.std(axis=0, keepdims=True)
    else:
        mu, sd = raw.mean(), raw.std()
    return (raw - mu) / np.maximum(sd, 1e-9)


def code_scores(
    emb: np.ndarray, protos: np.ndarray, *, refine: bool = True, exact_below: int | None = None
) -> np.ndarray:
    """Units x codes scores comparable across codes for one unit (centred, smoothed, refined).
    From `exact_below` units on, the nearest units are searched within k-means buckets
    (approximate, linear time: `pipeline.vectors.nearest_neighbours`)."""
    if len(emb) >= MIN_UNITS:  # centred on the units' mean; too few units: as they are
        mean = emb.mean(axis=0)
        emb, protos = unit_rows(emb - mean), unit_rows(protos - mean)
    near = None
    if len(emb) > 2 * NEIGHBOURS:
        near = nearest_neighbours(emb, NEIGHBOURS, exact_below=exact_below, seed=0)

    def smoothed(p: np.ndarray) -> np.ndarray:
        s = emb @ p.T
        return s if near is None else (s + s[near].mean(axis=1)) / 2

    scores = smoothed(protos)
    if not refine:
        return scores
    top = scores.argmax(axis=1)
    moved = [
        unit_rows((0.5 * p + 0.5 * unit_rows(emb[top == j].mean(axis=0, keepdims=True))[0])[None])[0]
        if (top == j).any()
        else p
        for j, p in enumerate(protos)
    ]
    return smoothed(np.vstack(moved))


def zero_shot(
    unit_ids: list[str],
    embeddings: np.ndarray,
    codebook: Codebook,
    *,
    embed: Embed,
    options: CodingParams,
    context: np.ndarray | None = None,
) -> pd.DataFrame:
    """Long table segment_id, code, score, evidence (README, "How the machine codes": the rule).

    `context`: per unit, an embedding of its surroundings (its turn), averaged in.
    """
    ids, protos, views, view_vectors = code_prototypes(codebook, embed=embed)
    emb = unit_rows(np.asarray(embeddings, dtype=np.float64))
    if context is not None:
        emb = unit_rows(emb + unit_rows(np.asarray(context, dtype=np.float64)))
    raw = code_scores(emb, protos, exact_below=options.exact_neighbours_below)
    z = calibrated_scores(raw)
    view_sim = emb @ view_vectors.T
    owner = np.array([v[0] for v in views])
    cols_of = {c: np.nonzero(owner == c)[0] for c in ids}  # each code's views
    top = raw.argmax(axis=1)
    rows = []
    # units whose top code reaches min_z; the others get no code
    for i in np.flatnonzero(~(z[np.arange(len(raw)), top] < options.min_z)):
        uid, best = unit_ids[i], int(top[i])
        chosen = [
            j
            for j in np.argsort(-raw[i], kind="stable")
            if z[i, j] >= options.min_z and raw[i, j] >= raw[i, best] - options.margin
        ][: options.max_codes]
        for j in chosen:
            cols = cols_of[ids[j]]
            near = cols[int(np.argmax(view_sim[i, cols]))]
            score = float((1 + raw[i, j]) / 2)  # the comparable score, in [0, 1]
            rows.append(
                (uid, ids[j], score, f"zero-shot: nearest {views[near][1]} ({view_sim[i, near]:.2f})")
            )
    return pd.DataFrame(rows, columns=["segment_id", "code", "score", "evidence"])
