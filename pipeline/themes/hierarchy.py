"""Two-level hierarchy: themes grouped into parent themes by their centroids (Ward linkage)."""

from __future__ import annotations

import numpy as np

from pipeline.schemas import UNASSIGNED


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Theme ids and their unit-normalised mean embeddings."""
    ids = sorted(set(np.asarray(labels).tolist()) - {UNASSIGNED})
    if not ids:
        return [], np.zeros((0, embeddings.shape[1]))
    c = np.stack([embeddings[labels == t].mean(axis=0) for t in ids])
    c /= np.linalg.norm(c, axis=1, keepdims=True).clip(1e-12)
    return ids, c


def parent_themes(embeddings: np.ndarray, labels: np.ndarray, *, n_parents: int | None) -> dict[int, int]:
    """Parent id per theme id. Fewer than 4 themes: one parent each (no grouping to show)."""
    from sklearn.cluster import AgglomerativeClustering

    ids, c = centroids(embeddings, labels)
    if len(ids) < 4:
        return {t: i for i, t in enumerate(ids)}
    k = n_parents if n_parents is not None else int(round(np.sqrt(len(ids))))
    k = int(np.clip(k, 2, len(ids) - 1))
    parents = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(c)
    # Number parents by their first (largest-id-order) child so ids are stable for equal input.
    order = {p: i for i, p in enumerate(dict.fromkeys(parents.tolist()))}
    return {t: order[int(p)] for t, p in zip(ids, parents, strict=True)}
