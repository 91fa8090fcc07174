"""Machine output against human coding, as both the agreement stage and the report read it:
the mapping of candidate themes to codes (recomputed by the report for reviewed themes) and
the human ceiling in an agreement report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.schemas import UNASSIGNED


def theme_code_mapping(themes: list[int], labels: list[str], *, codes: list[str], cover_min: float) -> dict:
    """Hungarian one-to-one and many-to-one mappings of themes to codes, and what is left over.

    Units: segments with a human code (the reference coder's strongest) and a theme;
    unassigned segments (theme -1) are left out. A code "covers" a theme when it holds at
    least `cover_min` of the theme's units.
    """
    from scipy.optimize import linear_sum_assignment

    df = pd.DataFrame({"theme": themes, "code": labels})
    df = df[df["theme"] != UNASSIGNED]
    if df.empty:
        return {"units": 0, "undefined_reason": "no segment has both a theme and a human code"}
    table = pd.crosstab(df["theme"], df["code"])
    rows, cols = linear_sum_assignment(-table.to_numpy())
    one_to_one = {str(table.index[r]): table.columns[c] for r, c in zip(rows, cols, strict=True)}
    matched = sum(int(table.iat[r, c]) for r, c in zip(rows, cols, strict=True))
    share = table.div(table.sum(axis=1), axis=0)
    many_to_one = {str(t): share.columns[int(np.argmax(share.loc[t]))] for t in share.index}
    covered = {c for t in share.index for c in share.columns if share.at[t, c] >= cover_min}
    return {
        "units": int(len(df)),
        "one_to_one": one_to_one,
        "one_to_one_accuracy": matched / len(df),
        "many_to_one": many_to_one,
        "many_to_one_accuracy": float(table.max(axis=1).sum() / len(df)),
        "codes_no_theme_covers": [c for c in codes if c not in covered],
        "themes_no_code_covers": [str(t) for t in share.index if share.loc[t].max() < cover_min],
        "cover_min": cover_min,
    }


def human_ceiling_per_code(agreement: dict) -> dict:
    """Per-code figures of the human ceiling's coder pair in an agreement report (the pair with
    figures sharing the most units; reports before it named one: the first pair); {} when the
    study has one coder or no pair shares enough units."""
    human = agreement.get("human", {})
    if "human_ceiling_pair" in agreement:
        return human.get(agreement["human_ceiling_pair"] or "", {}).get("per_code", {})
    return next(iter(human.values()), {}).get("per_code", {})


def best_matching_codes(topics: np.ndarray, segment_ids: list[str], gold: pd.DataFrame) -> dict[int, dict]:
    """Per theme, the code (long table `id`, `code`, one coder) whose segments it matches best:
    {code, f1}, F1 between the theme's segments and the code's."""
    coded = {c: set(g["id"]) for c, g in gold.groupby("code")}
    out: dict[int, dict] = {}
    ids = np.asarray(segment_ids)
    for t in sorted(set(np.asarray(topics).tolist()) - {UNASSIGNED}):
        members = set(ids[np.asarray(topics) == t].tolist())
        scores = {c: 2 * len(members & s) / (len(members) + len(s)) for c, s in coded.items()}
        if scores:
            code = max(sorted(scores), key=lambda c: scores[c])
            out[int(t)] = {"code": code, "f1": round(float(scores[code]), 4)}
    return out
