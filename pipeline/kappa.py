"""Cohen's kappa: one home for the binary form (used by the agreement figures, their bootstrap,
and the few-shot coder's threshold search) and scikit-learn's for any number of categories."""

from __future__ import annotations

import math
import warnings

import numpy as np


def kappa_from_counts(n, a, b, ab) -> np.ndarray:
    """Binary Cohen's kappa from counts, vectorised: `n` units, `a` and `b` positives of each
    rater, `ab` units both call positive (arrays broadcast). NaN where undefined (chance
    agreement is 1: one category only). The arithmetic is scikit-learn's (1 - observed over
    expected disagreement), so a single pair gives `cohen_kappa_score` to the last bit."""
    n, a, b, ab = (np.asarray(x, dtype=np.float64) for x in (n, a, b, ab))
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (b - ab) + (a - ab)
        expected = (n - a) * b / n + a * (n - b) / n
        k = 1 - observed / expected
    return np.where(expected <= 1e-12 * n, np.nan, k)


def binary_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa of two 0/1 vectors; None when undefined (no units, or one category only)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return None
    k = float(kappa_from_counts(len(a), int(a.sum()), int(b.sum()), int((a * b).sum())))
    return None if math.isnan(k) else k


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa over any categories (scikit-learn's); None when undefined."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0 or (len(set(a.tolist()) | set(b.tolist())) < 2):
        return None  # one category only: chance agreement is 1, kappa undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        k = float(cohen_kappa_score(a, b))
    return k if math.isfinite(k) else None
