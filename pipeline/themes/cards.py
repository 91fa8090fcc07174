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

import numpy as np
import pandas as pd

from pipeline.cards import card_body
from pipeline.themes.discover import Discovery
from pipeline.themes.keywords import theme_label


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
