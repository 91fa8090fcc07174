"""Agreement at every level of a code hierarchy: the human codings and the machine codes rolled
up to each level (`pipeline.hierarchy`), then the same figures as at the leaves (machine vs each
coder, coder vs coder, alpha over all coders)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.hierarchy import level_codes, n_levels, roll_up, roll_up_by_coder

# what each level shows: the figures of the leaf-level report, without intervals or themes
LEVEL_KEYS = (
    "reference_coder",
    "units",
    "overall",
    "per_code",
    "by_coder",
    "human",
    "human_ceiling_pair",
    "humans",
)


def agreement_by_level(
    gold: pd.DataFrame,
    pred: pd.DataFrame | None,
    *,
    codebook: Codebook,
    ids: list[str],
    coverage: dict[str, set[str]] | None,
    figures: Callable[..., dict],
) -> dict:
    """`{"hierarchy": {"levels": n}, "levels": {"1": figures, ..., "n": figures}}`; a flat
    codebook (one level: the report's own figures) gives the first key only.

    `gold`: human codes per unit (`id, coder, code`, parents included); `pred`: the machine's
    (`id, code, score`), leaves only. A parent's machine score is the best of its descendants'.
    `figures`: the stage's `agreement_report`, the one definition of the figures.
    """
    levels = n_levels(codebook)
    out: dict = {"hierarchy": {"levels": levels}}
    if levels == 1:
        return out
    out["levels"] = {}
    for level in range(1, levels + 1):
        rolled, missing = roll_up_by_coder(gold, codebook, level)
        machine = None if pred is None else roll_up(pred, codebook, level)[0]
        codes = level_codes(codebook, level)
        report = figures(rolled, machine, ids=ids, codes=codes, coverage=coverage, exclude=missing)
        out["levels"][str(level)] = {"codes": codes} | {k: report[k] for k in LEVEL_KEYS if k in report}
    return out
