"""Stability of a theme partition: ARI between fits (on the units they share), per-theme
best-match Jaccard. A fit on a subsample marks the units it left out MISSING."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from pipeline.schemas import UNASSIGNED

MISSING = -2  # a unit the fit did not see (not the same as unassigned, -1)


def best_match_jaccard(reference: np.ndarray, other: np.ndarray) -> dict[int, float]:
    """For each theme of `reference`, the highest Jaccard overlap with any theme of `other`
    (membership sets over the units both saw; unassigned units, -1, belong to no theme)."""
    reference, other = np.asarray(reference), np.asarray(other)
    shared = (reference != MISSING) & (other != MISSING)
    reference, other = reference[shared], other[shared]
    ref_ids = sorted(set(reference.tolist()) - {UNASSIGNED})
    other_ids = sorted(set(other.tolist()) - {UNASSIGNED})
    if not other_ids:
        return {int(t): 0.0 for t in ref_ids}
    # one contingency table of shared members, not a pass over the units per pair of themes
    both = (reference != UNASSIGNED) & (other != UNASSIGNED)
    inter = np.zeros((len(ref_ids), len(other_ids)), dtype=np.int64)
    np.add.at(inter, (np.searchsorted(ref_ids, reference[both]), np.searchsorted(other_ids, other[both])), 1)
    ref_size = np.bincount(
        np.searchsorted(ref_ids, reference[reference != UNASSIGNED]), minlength=len(ref_ids)
    )
    other_size = np.bincount(np.searchsorted(other_ids, other[other != UNASSIGNED]), minlength=len(other_ids))
    union = ref_size[:, None] + other_size[None, :] - inter
    jaccard = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return {int(t): max(0.0, float(jaccard[i].max())) for i, t in enumerate(ref_ids)}


def _ari(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    shared = (a != MISSING) & (b != MISSING)
    return float(adjusted_rand_score(a[shared], b[shared]))


def stability_report(runs: list[np.ndarray], *, unstable_below: float) -> dict:
    """ARI between every pair of runs (on shared units); per theme of the first run, the mean
    best-match Jaccard over the other runs, and whether that falls below `unstable_below`."""
    if len(runs) < 2:
        return {"runs": len(runs), "ari_mean": None, "ari_min": None, "themes": {}}
    aris = [_ari(np.asarray(a), np.asarray(b)) for a, b in combinations(runs, 2)]
    matches = [best_match_jaccard(runs[0], other) for other in runs[1:]]
    themes = {}
    for t in matches[0]:
        score = float(np.mean([m[t] for m in matches]))
        themes[t] = {"jaccard": score, "unstable": score < unstable_below}
    return {
        "runs": len(runs),
        "ari_mean": float(np.mean(aris)),
        "ari_min": float(np.min(aris)),
        "themes": themes,
    }
