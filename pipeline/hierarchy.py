"""Code hierarchies: a code's ancestors and depth, the codes of each level, and long `id, code`
tables rolled up to a level. Rules: README, section "Agreement with human coding" (Code
hierarchies).

Level 1 holds the top codes; level L the codes at depth L, plus the leaves shallower than L
(a leaf stays itself further down), so the deepest level is the codebook's leaves. At a level,
a code deeper than it counts as its ancestor there; a parent (a code with children) coded at a
shallower level counts at its own level and is missing, not negative, for its descendants.
"""

from __future__ import annotations

import pandas as pd

from pipeline.codebook import Codebook


def parents(codebook: Codebook) -> dict[str, str | None]:
    """code id -> its parent's id (None: a top code)."""
    return {c.code_id: c.parent or None for c in codebook.codes}


def ancestors(codebook: Codebook, code_id: str) -> tuple[str, ...]:
    """The code's ancestors, its parent first (the codebook is checked free of cycles)."""
    up = parents(codebook)
    out: list[str] = []
    parent = up[code_id]
    while parent is not None:
        out.append(parent)
        parent = up[parent]
    return tuple(out)


def depth(codebook: Codebook, code_id: str) -> int:
    """1 for a top code, 2 for its children, and so on."""
    return len(ancestors(codebook, code_id)) + 1


def n_levels(codebook: Codebook) -> int:
    """The depth of the deepest code (1: a flat codebook)."""
    return max(depth(codebook, c.code_id) for c in codebook.codes)


def level_codes(codebook: Codebook, level: int) -> list[str]:
    """The codes of `level`, in codebook order: those at that depth and the shallower leaves."""
    leaves = {c.code_id for c in codebook.leaves}
    return [
        c.code_id
        for c in codebook.codes
        if (d := depth(codebook, c.code_id)) == level or (d < level and c.code_id in leaves)
    ]


def at_level(codebook: Codebook, code_id: str, level: int) -> str | None:
    """What `code_id` counts as at `level`: its ancestor at that depth (itself at its own
    depth, or when it is a leaf shallower than the level); None for a parent shallower than
    the level (its descendants there are missing)."""
    chain = (code_id, *ancestors(codebook, code_id))  # the code, then up to its top code
    d = len(chain)
    if d >= level:
        return chain[d - level]
    return code_id if code_id in {c.code_id for c in codebook.leaves} else None


def descendants_at_level(codebook: Codebook, code_id: str, level: int) -> list[str]:
    """The codes of `level` below `code_id`."""
    return [c for c in level_codes(codebook, level) if code_id in ancestors(codebook, c)]


def roll_up(long: pd.DataFrame, codebook: Codebook, level: int) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """One coder's (or the machine's) long table `id, code[, score, ...]` at `level`, and the
    ids missing per code there.

    Each row's code becomes its representative at the level; rows of one id that land on the
    same code become one, keeping the highest score (a parent's score is the best of its
    descendants', or its own). A parent coded above the level makes the id missing for the
    parent's descendants at the level, except those the id is coded with anyway.
    """
    known = {c.code_id for c in codebook.codes}
    of = {c: at_level(codebook, c, level) if c in known else None for c in set(long["code"])}
    below = {c: descendants_at_level(codebook, c, level) for c, m in of.items() if m is None and c in known}
    mapped = [of[c] for c in long["code"]]
    rolled = long.assign(code=mapped)
    rolled = rolled[rolled["code"].notna()]
    if "score" in rolled.columns:
        rolled = rolled.sort_values("score", ascending=False, kind="stable")
    rolled = rolled.drop_duplicates(["id", "code"]).sort_index().reset_index(drop=True)
    positives = set(zip(rolled["id"], rolled["code"], strict=True))
    missing: dict[str, set[str]] = {}
    for i, code, m in zip(long["id"], long["code"], mapped, strict=True):
        if m is None:
            for child in below.get(code, ()):
                if (i, child) not in positives:
                    missing.setdefault(child, set()).add(i)
    return rolled, missing


def top_code_per_level(codes: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """The machine's top code at each level: `segment_id, level, code, score` per coded
    segment and level, the code whose rolled-up score is highest (ties: codebook order)."""
    rows: list[pd.DataFrame] = []
    order = {c.code_id: k for k, c in enumerate(codebook.codes)}
    long = codes.rename(columns={"segment_id": "id"})[["id", "code", "score"]]
    for level in range(1, n_levels(codebook) + 1):
        rolled, _ = roll_up(long, codebook, level)
        rolled = rolled.assign(rank=rolled["code"].map(order))
        top = rolled.sort_values(["id", "score", "rank"], ascending=[True, False, True], kind="stable")
        top = top.drop_duplicates("id")
        rows.append(
            pd.DataFrame(
                {"segment_id": top["id"], "level": level, "code": top["code"], "score": top["score"]}
            )
        )
    out = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=["segment_id", "level", "code", "score"])
    )
    return out.sort_values(["segment_id", "level"], kind="stable").reset_index(drop=True)


def roll_up_by_coder(
    gold: pd.DataFrame, codebook: Codebook, level: int
) -> tuple[pd.DataFrame, dict[str, dict[str, set[str]]]]:
    """`roll_up` of each coder's rows of a long table `id, coder, code[, ...]`: the rolled
    table, and per coder the ids missing per code."""
    parts, missing = [], {}
    for coder, rows in gold.groupby("coder", sort=True):
        rolled, missing[str(coder)] = roll_up(rows, codebook, level)
        parts.append(rolled)
    rolled = pd.concat(parts, ignore_index=True) if parts else gold.iloc[0:0]
    return rolled, missing


def merge_missing(*missing: dict[str, set[str]] | None) -> dict[str, set[str]]:
    """code -> ids missing in any of the given maps (two coders compared: missing for either)."""
    out: dict[str, set[str]] = {}
    for m in missing:
        for code, ids in (m or {}).items():
            out.setdefault(code, set()).update(ids)
    return out
