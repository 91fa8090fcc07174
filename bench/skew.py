"""Zipf-skewed resamplings of single-label dev sets (`<set>-zipf`): real codebooks are skewed, the
largest code often holding a third of the units, while the dev sets are near balanced.

Code sizes follow rank^-s (at least `FLOOR` units each), with s chosen so that the largest code
holds `TARGET` of the units (within `SHARE_RANGE`); units are drawn without replacement, one
resampling per seed. Which code takes which rank is drawn per seed too, the codes with more
units tending to the top ranks (a code cannot give more units than it has).
"""

from __future__ import annotations

import numpy as np

FLOOR = 3
TARGET = 0.375
SHARE_RANGE = (0.35, 0.40)
SEEDS = 5


def zipf_sizes(available: np.ndarray, s: float, *, floor: int = FLOOR) -> np.ndarray:
    """Sizes by rank (`available`: units each ranked code has, in rank order): rank^-s shares,
    scaled as large as every code's units allow, at least `floor` each."""
    p = np.arange(1, len(available) + 1, dtype=np.float64) ** -s
    p /= p.sum()
    scale = float(np.min(available / p))
    return np.minimum(np.maximum(np.floor(scale * p).astype(int), floor), available)


def zipf_indices(primary: list[str], *, seed: int) -> np.ndarray:
    """Sorted indices of a Zipf-skewed resampling of units whose primary codes are `primary`
    (units with no code are left out). Raises ValueError when no exponent reaches the share."""
    codes = sorted({c for c in primary if c})
    pools = {c: np.flatnonzero(np.array(primary) == c) for c in codes}
    if any(len(pools[c]) < FLOOR for c in codes):
        raise ValueError(f"every code needs at least {FLOOR} units for a skewed resampling")
    rng = np.random.default_rng(seed)
    weight = np.array([len(pools[c]) for c in codes]) * rng.uniform(0.5, 1.5, len(codes))
    ranked = [codes[i] for i in np.argsort(-weight, kind="stable")]
    available = np.array([len(pools[c]) for c in ranked])

    def share(s: float) -> float:
        sizes = zipf_sizes(available, s)
        return sizes[0] / sizes.sum()

    lo, hi = 0.0, 8.0  # the largest code's share grows with s
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share(mid) < TARGET else (lo, mid)
    s = hi
    if not SHARE_RANGE[0] <= share(s) <= SHARE_RANGE[1]:
        raise ValueError(f"no Zipf exponent gives the largest code {TARGET:.0%} of the units")
    sizes = zipf_sizes(available, s)
    picked = [rng.choice(pools[c], size=n, replace=False) for c, n in zip(ranked, sizes, strict=True)]
    return np.sort(np.concatenate(picked))
