"""Row-wise vector helpers shared by every stage that compares embeddings."""

from __future__ import annotations

import numpy as np


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (rows of zeros stay zero)."""
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def nearest_neighbours(x: np.ndarray, k: int, *, chunk: int = 2048) -> np.ndarray:
    """Indices of each row's `k` most cosine-similar other rows (exact, in chunks of rows so
    that memory stays at chunk x rows; ties by index)."""
    unit = unit_rows(np.asarray(x, dtype=np.float64))
    out = np.empty((len(unit), k), dtype=np.int64)
    for start in range(0, len(unit), chunk):
        sims = unit[start : start + chunk] @ unit.T
        rows = np.arange(start, min(start + chunk, len(unit)))
        sims[rows - start, rows] = -np.inf  # not its own neighbour
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[rows] = np.take_along_axis(top, order, axis=1)
    return out
