"""Theme cards (``themes.json``): what an analyst reads to judge a candidate theme.

Top level: ``segments`` (units clustered), ``unassigned`` (units in no theme), ``mode``
(how themes were found), ``stability`` ({runs, ari_mean, ari_min}: agreement between fits
with different seeds), ``parents`` (list of {parent_id, label, keywords, theme_ids, size}),
``themes`` (cards, largest first). Each card:

- ``theme_id``, ``label`` (short, readable: top keyphrases), ``keywords`` (c-TF-IDF refined by
  KeyBERT-inspired and MMR), ``size`` (units);
- ``quotes``: exemplars central to the theme and different from each other, each
  {segment_id, transcript_id, participant_id, group, turn_id, text} (pseudonymised text);
- ``prevalence``: {group: {participants (who voice it), of (participants in the group),
  segments}}; ``coverage``: {transcript_id: units};
- ``parent_id``, ``parent_label``: the theme's parent in the two-level hierarchy;
- ``stability``: mean best-match Jaccard of the theme in the other seeds' fits (null with one
  run); ``unstable``: true when that falls below ``themes.unstable_below``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.themes.keywords import theme_label

if TYPE_CHECKING:
    from pipeline.themes.discover import Discovery


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


def theme_cards(
    segments: pd.DataFrame,
    embeddings: np.ndarray,
    assignments: pd.DataFrame,
    found: Discovery,
    *,
    n_quotes: int,
) -> dict:
    """Cards for every theme, largest first. Quotes are pseudonymised segment texts."""
    merged = segments.reset_index(drop=True).assign(theme_id=assignments["theme_id"].to_numpy())
    groups = sorted(merged["group"].unique())
    participants_by_group = merged.groupby("group")["participant_id"].nunique()
    stab = found.stability.get("themes", {})
    parent_labels = {
        p: theme_label(found.parent_keywords.get(p, [])) for p in sorted(set(found.parents.values()))
    }
    cards = []
    for theme_id, rows in merged[merged["theme_id"] != -1].groupby("theme_id"):
        t = int(theme_id)
        words = found.keywords.get(t, [])
        parent = found.parents.get(t)
        cards.append(
            {
                "theme_id": t,
                "label": found.labels.get(t) or theme_label(words),
                "keywords": words,
                **card_body(rows, embeddings, groups, participants_by_group, n_quotes=n_quotes),
                "parent_id": parent,
                "parent_label": (parent_labels.get(parent) if found.parent_keywords else found.labels.get(t)),
                "stability": stab[t]["jaccard"] if t in stab else None,
                "unstable": bool(stab[t]["unstable"]) if t in stab else False,
            }
        )
    cards.sort(key=lambda c: -c["size"])
    parents = []
    for p in sorted(set(found.parents.values())):
        children = [c["theme_id"] for c in cards if c["parent_id"] == p]
        parents.append(
            {
                "parent_id": p,
                "label": parent_labels[p] if found.parent_keywords else cards_label(cards, children),
                "keywords": found.parent_keywords.get(p, []),
                "theme_ids": children,
                "size": int(sum(c["size"] for c in cards if c["parent_id"] == p)),
            }
        )
    return {
        "segments": int(len(merged)),
        "unassigned": int((merged["theme_id"] == -1).sum()),
        "mode": found.mode,
        "stability": {k: found.stability.get(k) for k in ("runs", "ari_mean", "ari_min")},
        "parents": parents,
        "themes": cards,
    }


def cards_label(cards: list[dict], theme_ids: list[int]) -> str:
    """Label of the largest of `theme_ids` (a parent with one child is that child)."""
    for c in cards:
        if c["theme_id"] in theme_ids:
            return c["label"]
    return "unlabelled"
