"""Zero-shot coding: a codebook applied with no human codings to learn from.

**Zero-shot** (no human codings to learn from). Each leaf code is a prototype: the mean of
the unit-normalised embeddings of its views -- the name, "name: definition", the
definition, the inclusion criteria and each example quote. A segment's raw score for a code
is its cosine similarity with the prototype. Raw cosines are not comparable across codes
(some descriptions sit close to everything), so thresholds are CALIBRATED per code from the
score distribution over the segments being coded: z = (cosine - mean_code) / sd_code.
Rule: a segment gets its best code if that code's z reaches `coding.min_z`, and further
codes (at most `coding.max_codes` in all) whose z also reaches `min_z` and whose cosine is
within `coding.margin` of the best code's. "No code applies" when no code reaches `min_z`.
The default, half an SD, was chosen on the two coded datasets we have: a stricter 1.5 left a
third of serdif-usability's highlights (all coded by the team) without a code, and lowered
kappa on both (demo macro 0.28 -> 0.20, serdif top code 0.20 -> 0.17).
Evidence: the codebook view (e.g. "example 2") nearest to the segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook, Embed, code_prototypes
from pipeline.config import CodingParams
from pipeline.vectors import unit_rows


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


def zero_shot(
    unit_ids: list[str],
    embeddings: np.ndarray,
    codebook: Codebook,
    *,
    embed: Embed,
    options: CodingParams,
    context: np.ndarray | None = None,
) -> pd.DataFrame:
    """Long table segment_id, code, score, evidence (see the module docstring for the rule).

    `context`: per unit, an embedding of its surroundings (its turn), averaged in.
    """
    ids, protos, views, view_vectors = code_prototypes(codebook, embed=embed)
    emb = unit_rows(np.asarray(embeddings, dtype=np.float64))
    if context is not None:
        emb = unit_rows(emb + unit_rows(np.asarray(context, dtype=np.float64)))
    raw = emb @ protos.T
    z = calibrated_scores(raw)
    view_sim = emb @ view_vectors.T
    owner = np.array([v[0] for v in views])
    rows = []
    for i, uid in enumerate(unit_ids):
        best = int(np.argmax(z[i]))
        if z[i, best] < options.min_z:
            continue  # no code applies
        chosen = [
            j
            for j in np.argsort(-z[i])
            if z[i, j] >= options.min_z and raw[i, j] >= raw[i, best] - options.margin
        ][: options.max_codes]
        for j in chosen:
            cols = np.nonzero(owner == ids[j])[0]
            near = cols[int(np.argmax(view_sim[i, cols]))]
            score = float(1 / (1 + np.exp(-(z[i, j] - options.min_z))))  # 0.5 at the threshold
            rows.append(
                (uid, ids[j], score, f"zero-shot: nearest {views[near][1]} ({view_sim[i, near]:.2f})")
            )
    return pd.DataFrame(rows, columns=["segment_id", "code", "score", "evidence"])
