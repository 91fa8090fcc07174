"""The body of a theme card: size, exemplar quotes, prevalence by participant group and
coverage per transcript. Shared by theme discovery (which writes the cards) and theme review
(which rebuilds the card of a theme a decision changed)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def exemplar_indices(vectors: np.ndarray, *, k: int, diversity: float = 0.3) -> list[int]:
    """Maximal marginal relevance: central to the theme, different from each other."""
    centroid = vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    relevance = vectors @ centroid
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < min(k, len(vectors)):
        redundancy = (vectors @ vectors[chosen].T).max(axis=1)
        score = (1 - diversity) * relevance - diversity * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


def _quote(row) -> dict:
    return {
        "segment_id": row["segment_id"],
        "transcript_id": row["transcript_id"],
        "participant_id": row["participant_id"],
        "group": row["group"],
        "turn_id": int(row["turn_id"]),
        "text": row["text"],
    }


def card_body(
    rows: pd.DataFrame,
    embeddings: np.ndarray | None,
    groups: list[str],
    participants_by_group: pd.Series,
    *,
    n_quotes: int,
) -> dict:
    """A theme's size, exemplar quotes (MMR over `embeddings`; the first rows without them),
    prevalence by participant group and coverage per transcript. `rows`: its segments, their
    index pointing into `embeddings`."""
    if embeddings is not None:
        picks = exemplar_indices(embeddings[rows.index.to_numpy()], k=n_quotes)
    else:
        picks = list(range(min(n_quotes, len(rows))))
    voices = rows.groupby("group")["participant_id"].nunique()
    return {
        "size": int(len(rows)),
        "quotes": [_quote(rows.iloc[i]) for i in picks],
        "prevalence": {
            g: {
                "participants": int(voices.get(g, 0)),
                "of": int(participants_by_group.get(g, 0)),
                "segments": int((rows["group"] == g).sum()),
            }
            for g in groups
        },
        "coverage": {str(t): int(n) for t, n in rows["transcript_id"].value_counts().sort_index().items()},
    }
