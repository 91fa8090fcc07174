"""Row-wise vector helpers shared by every stage that compares embeddings."""

from __future__ import annotations

import numpy as np


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (rows of zeros stay zero)."""
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
