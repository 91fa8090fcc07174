"""Theme cards (``themes.json``): what an analyst reads to judge a candidate theme.

Top level: ``segments`` (units clustered), ``unassigned`` (units in no theme), ``mode``
(how themes were found), ``stability`` ({runs, ari_mean, ari_min}: agreement between fits
with different seeds), ``parents`` (list of {parent_id, label, keywords, theme_ids, size}),
``themes`` (cards, largest first). Each card:

- ``theme_id``, ``label`` (a phrase of the theme's own units, see `pipeline.themes.labels`),
  ``keywords`` (class-based TF-IDF; `keywords: keybert_mmr` refines them), ``size`` (units);
- ``procedure``: true when the theme is interview procedure (consent, recording, goodbyes), not
  a finding; ``best_code`` (studies with human codings): {code, f1, coder}, the reference
  coder's code whose segments the theme matches best;
- ``quotes``: exemplars central to the theme and different from each other, each
  {segment_id, transcript_id, participant_id, group, turn_id, text} (pseudonymised text);
- ``prevalence``: {group: {participants (who voice it), of (participants in the group),
  segments}}; ``coverage``: {transcript_id: units};
- ``parent_id``, ``parent_label``: the theme's parent in the two-level hierarchy (labelled as
  its largest theme);
- ``stability``: mean best-match Jaccard of the theme in the other seeds' fits (null with one
  run); ``unstable``: true when that falls below ``themes.unstable_below``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.card_body import card_body
from pipeline.schemas import UNASSIGNED
from pipeline.themes.discover import Discovery


def theme_cards(
    segments: pd.DataFrame,
    embeddings: np.ndarray,
    assignments: pd.DataFrame,
    found: Discovery,
    *,
    n_quotes: int,
    best_codes: dict[int, dict] | None = None,
) -> dict:
    """Cards for every theme, largest first. Quotes are pseudonymised segment texts.
    `best_codes`: per theme, the human code that matches it best ({code, f1, coder})."""
    merged = segments.reset_index(drop=True).assign(theme_id=assignments["theme_id"].to_numpy())
    groups = sorted(merged["group"].unique())
    participants_by_group = merged.groupby("group")["participant_id"].nunique()
    stab = found.stability.get("themes", {})
    cards = []
    for theme_id, rows in merged[merged["theme_id"] != UNASSIGNED].groupby("theme_id"):
        t = int(theme_id)
        cards.append(
            {
                "theme_id": t,
                "label": found.labels[t],
                "keywords": found.keywords.get(t, []),
                **card_body(rows, embeddings, groups, participants_by_group, n_quotes=n_quotes),
                "parent_id": found.parents.get(t),
                "procedure": bool(found.procedure.get(t, False)),
                "stability": stab[t]["jaccard"] if t in stab else None,
                "unstable": bool(stab[t]["unstable"]) if t in stab else False,
                **({"best_code": best_codes.get(t)} if best_codes is not None else {}),
            }
        )
    cards.sort(key=lambda c: -c["size"])
    parents = []
    for p in sorted(set(found.parents.values())):
        children = [c["theme_id"] for c in cards if c["parent_id"] == p]
        parents.append(
            {
                "parent_id": p,
                "label": cards_label(cards, children),
                "keywords": found.parent_keywords.get(p, []),
                "theme_ids": children,
                "size": int(sum(c["size"] for c in cards if c["parent_id"] == p)),
            }
        )
    labels = {p["parent_id"]: p["label"] for p in parents}
    for c in cards:
        c["parent_label"] = labels.get(c["parent_id"])
    return {
        "segments": int(len(merged)),
        "unassigned": int((merged["theme_id"] == UNASSIGNED).sum()),
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
