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
NEIGHBOURS = 10  # each unit's scores are propagated over its nearest units
PROPAGATION_STEPS = 3
PROPAGATION_WEIGHT = 0.5  # the neighbours' share at each step; the unit's own scores keep the rest


def calibrated_scores(raw: np.ndarray) -> np.ndarray:
    """Per-code z-scores of raw similarities against the code's background: the units whose
    top code is another. A common code's own units do not raise its bar, so on a skewed set its
    units are not dropped (z-scores over all units cost agreement there). A code with fewer
    than `MIN_UNITS` background units is scored against all units; with fewer than
    `MIN_UNITS` units the per-code spread is meaningless and the pooled spread of all codes is
    used (a fixed shift and scale, the same for every code)."""
    if raw.shape[0] < MIN_UNITS:
        return (raw - raw.mean()) / max(float(raw.std()), 1e-9)
    top = raw.argmax(axis=1)
    z = np.empty_like(raw)
    for j in range(raw.shape[1]):
        background = raw[top != j, j]
        if len(background) < MIN_UNITS:
            background = raw[:, j]
        z[:, j] = (raw[:, j] - background.mean()) / max(float(background.std()), 1e-9)
    return z


def balanced_mean(emb: np.ndarray, protos: np.ndarray) -> np.ndarray:
    """What every unit shares, estimated with each code weighing the same: the mean of the
    codes' mean units (each unit to its nearest prototype). The units' plain mean leans to the
    largest code and, subtracted, penalises it (on skewed sets it cost 0.05 kappa)."""
    top = (emb @ protos.T).argmax(axis=1)
    return np.mean([emb[top == j].mean(axis=0) for j in np.unique(top)], axis=0)


def _confident(scores: np.ndarray) -> np.ndarray:
    """Each unit's top code, or -1 outside the more confident half (by the margin over the
    second code) of the units that code won: what refinement moves a prototype towards."""
    top = scores.argmax(axis=1)
    ranked = np.sort(scores, axis=1)
    margin = ranked[:, -1] - ranked[:, -2] if scores.shape[1] > 1 else ranked[:, -1]
    keep = np.full(len(top), -1)
    for j in np.unique(top):
        won = np.flatnonzero(top == j)
        best = won[np.argsort(-margin[won], kind="stable")[: max(1, len(won) // 2)]]
        keep[best] = j
    return keep


def code_scores(
    emb: np.ndarray, protos: np.ndarray, *, refine: bool = True, exact_below: int | None = None
) -> np.ndarray:
    """Units x codes scores comparable across codes for one unit (centred, propagated,
    refined). From `exact_below` units on, the nearest units are searched within k-means
    buckets (approximate, linear time: `pipeline.vectors.nearest_neighbours`)."""
    if len(emb) >= MIN_UNITS:  # centred on what the units share; too few units: as they are
        mean = balanced_mean(emb, protos)
        emb, protos = unit_rows(emb - mean), unit_rows(protos - mean)
    near = None
    if len(emb) > 2 * NEIGHBOURS:
        near = nearest_neighbours(emb, NEIGHBOURS, exact_below=exact_below, seed=0)

    def propagated(p: np.ndarray) -> np.ndarray:
        first = emb @ p.T
        if near is None:
            return first
        s = first
        for _ in range(PROPAGATION_STEPS):
            s = PROPAGATION_WEIGHT * s[near].mean(axis=1) + (1 - PROPAGATION_WEIGHT) * first
        return s

    scores = propagated(protos)
    if not refine:
        return scores
    top = _confident(scores)
    moved = [
        unit_rows((0.5 * p + 0.5 * unit_rows(emb[top == j].mean(axis=0, keepdims=True))[0])[None])[0]
        if (top == j).any()
        else p
        for j, p in enumerate(protos)
    ]
    return propagated(np.vstack(moved))


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
