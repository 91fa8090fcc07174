"""Theme cards: label, keywords, size, diverse exemplar quotes with provenance, prevalence."""

from __future__ import annotations

import numpy as np
import pandas as pd


def theme_label(keywords: list[str]) -> str:
    """A short readable label from the top keywords."""
    return " / ".join(keywords[:3]) if keywords else "unlabelled"


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


def theme_cards(
    segments: pd.DataFrame,
    embeddings: np.ndarray,
    assignments: pd.DataFrame,
    keywords: dict[int, list[str]],
    *,
    n_quotes: int,
) -> dict:
    """Cards for every theme, largest first. Quotes are pseudonymised segment texts."""
    merged = segments.reset_index(drop=True).assign(theme_id=assignments["theme_id"].to_numpy())
    groups = sorted(merged["group"].unique())
    participants_by_group = merged.groupby("group")["participant_id"].nunique()
    cards = []
    for theme_id, rows in merged[merged["theme_id"] != -1].groupby("theme_id"):
        idx = rows.index.to_numpy()
        picks = exemplar_indices(embeddings[idx], k=n_quotes)
        quotes = [
            {
                "segment_id": rows.iloc[i]["segment_id"],
                "transcript_id": rows.iloc[i]["transcript_id"],
                "participant_id": rows.iloc[i]["participant_id"],
                "group": rows.iloc[i]["group"],
                "turn_id": int(rows.iloc[i]["turn_id"]),
                "text": rows.iloc[i]["text"],
            }
            for i in picks
        ]
        voices = rows.groupby("group")["participant_id"].nunique()
        words = keywords.get(int(theme_id), [])
        cards.append(
            {
                "theme_id": int(theme_id),
                "label": theme_label(words),
                "keywords": words,
                "size": int(len(rows)),
                "quotes": quotes,
                "prevalence": {
                    g: {
                        "participants": int(voices.get(g, 0)),
                        "of": int(participants_by_group.get(g, 0)),
                        "segments": int((rows["group"] == g).sum()),
                    }
                    for g in groups
                },
                "coverage": {
                    str(t): int(n) for t, n in rows["transcript_id"].value_counts().sort_index().items()
                },
            }
        )
    cards.sort(key=lambda c: -c["size"])
    return {
        "segments": int(len(merged)),
        "unassigned": int((merged["theme_id"] == -1).sum()),
        "themes": cards,
    }
