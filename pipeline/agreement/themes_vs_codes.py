"""Candidate themes against one coder's codes, as partitions: ARI, NMI, AMI, harmonic purity,
and the rows of the theme x code confusion plot (the mapping of themes to codes, which the
report recomputes for reviewed themes, is in `pipeline.comparison`)."""

from __future__ import annotations

import pandas as pd


def partition_agreement(themes: list[int], labels: list[str]) -> dict[str, float]:
    """Clustering agreement between candidate themes and single human labels."""
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

    return {
        "ari": float(adjusted_rand_score(labels, themes)),
        "nmi": float(normalized_mutual_info_score(labels, themes)),
        "ami": float(adjusted_mutual_info_score(labels, themes)),
        "harmonic_purity": harmonic_purity(themes, labels),
        "units": len(labels),
    }


def harmonic_purity(themes: list, labels: list) -> float:
    """Harmonic mean of purity (themes' majority code share) and inverse purity (codes'
    majority theme share): 1 only when themes and codes coincide."""
    table = pd.crosstab(pd.Series(themes, name="t"), pd.Series(labels, name="c")).to_numpy()
    n = table.sum()
    purity = table.max(axis=1).sum() / n
    inverse = table.max(axis=0).sum() / n
    return float(2 * purity * inverse / (purity + inverse)) if purity + inverse else 0.0


def theme_code_confusion(themes: list[int], labels: list[str]) -> list[dict]:
    """Rows {theme, code} for a DVC confusion plot (one row per unit)."""
    return [{"theme": str(t), "code": c} for t, c in zip(themes, labels, strict=True)]
