"""Candidate themes (as reviewed) against the reference coder's codes: a theme x code table,
each theme's top code, codes that no theme covers and emergent themes (no code covers them).

Recomputed from the reviewed assignments with the agreement stage's own mapping, so that a
review decision (merge, drop, split) shows in the report without re-running discovery or
agreement.
"""

from __future__ import annotations

import pandas as pd

from pipeline.codings import primary_codes
from pipeline.comparison import theme_code_mapping
from pipeline.schemas import UNASSIGNED


def theme_code_table(assignments: pd.DataFrame, gold: pd.DataFrame, *, codes: list[str]) -> pd.DataFrame:
    """Counts of segments per (theme, code) for one coder's segment codes (`id`, `code`).

    Rows: theme ids (unassigned -1 included when present); columns: `codes` in order.
    """
    merged = assignments[["segment_id", "theme_id"]].merge(
        gold[["id", "code"]], left_on="segment_id", right_on="id"
    )
    table = pd.crosstab(merged["theme_id"], merged["code"]).reindex(columns=codes, fill_value=0)
    themes = sorted(assignments["theme_id"].unique())
    return table.reindex(index=themes, fill_value=0).astype("int64")


def theme_rows(assignments: pd.DataFrame, gold: pd.DataFrame, table: pd.DataFrame) -> list[dict]:
    """Per theme: size, share of its segments the coder coded, its top code and that code's share."""
    size = assignments[assignments["theme_id"] != UNASSIGNED].groupby("theme_id").size()
    coded = (
        assignments[assignments["segment_id"].isin(set(gold["id"]))]
        .groupby("theme_id")
        .size()
        .reindex(size.index, fill_value=0)
    )
    rows = []
    for t in size.index:
        row = table.loc[t] if t in table.index else pd.Series(dtype="int64")
        top = str(row.idxmax()) if len(row) and row.max() > 0 else None
        rows.append(
            {
                "theme_id": int(t),
                "size": int(size[t]),
                "coded_share": float(coded[t] / size[t]) if size[t] else 0.0,
                "top_code": top,
                "top_code_share": float(row.max() / row.sum()) if top is not None else 0.0,
            }
        )
    return rows


def reviewed_mapping(
    assignments: pd.DataFrame, gold: pd.DataFrame, *, codes: list[str], cover_min: float
) -> dict:
    """The agreement stage's theme -> code mapping (codes no theme covers, themes no code
    covers), recomputed for the reviewed themes."""
    labelled = assignments.merge(primary_codes(gold), left_on="segment_id", right_on="id")
    return theme_code_mapping(
        labelled["theme_id"].astype(int).tolist(), labelled["code"].tolist(), codes=codes, cover_min=cover_min
    )


def code_disagreements(
    segments: pd.DataFrame, machine: pd.DataFrame, gold: pd.DataFrame, code: str, *, limit: int = 10
) -> pd.DataFrame:
    """Segments where the machine (`segment_id`, `code`) and a coder (`id`, `code`) disagree
    about one code: `missed` (coder only) and `extra` (machine only), pseudonymised text."""
    by_machine = set(machine.loc[machine["code"] == code, "segment_id"])
    by_coder = set(gold.loc[gold["code"] == code, "id"])
    rows = segments[["segment_id", "group", "transcript_id", "turn_id", "text"]]
    missed = rows[rows["segment_id"].isin(by_coder - by_machine)].head(limit).assign(disagreement="missed")
    extra = rows[rows["segment_id"].isin(by_machine - by_coder)].head(limit).assign(disagreement="extra")
    return pd.concat([missed, extra], ignore_index=True)
