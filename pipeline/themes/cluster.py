"""One seeded partition of units into themes: reduce (UMAP views or PCA), cluster (k-means with
the k rule, k by silhouette, agglomerative for small corpora, or HDBSCAN), then the outlier
policy. The method and its defaults are explained in `pipeline.themes.discover` (steps 1-4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import ThemesParams
from pipeline.themes.hierarchy import centroids
from pipeline.vectors import unit_rows

KMEANS_RESTARTS = 50


def reduce(embeddings: np.ndarray, *, options: ThemesParams, seed: int, small: bool) -> np.ndarray:
    """The space clustering runs in (`pipeline.themes.discover`, step 1)."""
    from sklearn.decomposition import PCA

    n = len(embeddings)
    n_components = max(1, min(options.n_components, n - 2, embeddings.shape[1]))
    if small or options.reducer == "pca":
        return PCA(n_components=n_components, random_state=seed).fit_transform(embeddings)
    from umap import UMAP

    views = [
        UMAP(
            n_neighbors=min(options.n_neighbors, n - 1),
            n_components=n_components,
            min_dist=0.0,
            metric="cosine",
            random_state=seed + v,
            n_jobs=1,  # a seeded UMAP runs single-threaded anyway; say so to avoid its warning
        ).fit_transform(embeddings)
        for v in range(options.n_views)
    ]
    return np.hstack(views)


def _fit(z: np.ndarray, k: int, *, algorithm: str, seed: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering, KMeans

    if algorithm == "agglomerative":
        return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(z)
    # Many restarts: with dozens of themes k-means has many near-equal local optima, and the
    # best of 50 is found again under another seed far more often than the best of 10 (demo:
    # ARI between seeds 0.75 -> 0.80); each restart costs milliseconds on a reduced space.
    return KMeans(n_clusters=k, random_state=seed, n_init=KMEANS_RESTARTS).fit_predict(z)


def choose_k(z: np.ndarray, ks: range, *, algorithm: str, seed: int) -> tuple[np.ndarray, dict[int, float]]:
    """Fit each k in `ks`; keep the partition with the highest silhouette score."""
    from sklearn.metrics import silhouette_score

    scores: dict[int, float] = {}
    best: tuple[float, np.ndarray] | None = None
    for k in ks:
        labels = _fit(z, k, algorithm=algorithm, seed=seed)
        if len(set(labels.tolist())) < 2:
            continue
        # A sample keeps this affordable on large corpora; seeded, so reproducible.
        score = float(silhouette_score(z, labels, sample_size=min(len(z), 3000), random_state=seed))
        scores[k] = score
        if best is None or score > best[0]:
            best = (score, labels)
    if best is None:
        return np.zeros(len(z), dtype=int), scores
    return best[1], scores


def rule_k(units: int, *, lo: int, hi: int) -> int:
    """k = round(sqrt(units / 2)) clipped to [lo, hi] (`pipeline.themes.discover`, step 2)."""
    return int(min(max(round(np.sqrt(units / 2)), lo), hi))


def cluster(
    embeddings: np.ndarray, *, options: ThemesParams, seed: int, min_k: int = 2, units: int | None = None
) -> tuple[np.ndarray, str, dict[int, float]]:
    """Theme id per unit (-1 = noise, HDBSCAN only), the mode used, silhouette per k tried.

    `units`: how many independent units the data hold, for the k rule (default: rows).
    """
    n = len(embeddings)
    small = n < options.small_corpus
    z = reduce(embeddings, options=options, seed=seed, small=small)
    if small:
        hi = max(2, min(options.max_themes, n // 3, n - 1))
        lo = min(max(2, min_k), hi)
        labels, scores = choose_k(z, range(lo, hi + 1), algorithm="agglomerative", seed=seed)
        return labels, f"small-corpus agglomerative (k={len(set(labels.tolist()))}, by silhouette)", scores
    if options.clusterer == "hdbscan":
        from hdbscan import HDBSCAN

        labels = HDBSCAN(min_cluster_size=options.min_cluster_size, metric="euclidean").fit_predict(z)
        return labels, "hdbscan", {}
    if options.n_themes is not None:
        k = min(options.n_themes, n - 1)
        return _fit(z, k, algorithm=options.clusterer, seed=seed), f"{options.clusterer} (k={k})", {}
    hi = max(2, min(options.max_themes, n - 1))
    lo = min(max(options.min_themes, min_k), hi)
    if options.k_rule == "sqrt":
        k = rule_k(n if units is None else units, lo=lo, hi=hi)
        return (
            _fit(z, k, algorithm=options.clusterer, seed=seed),
            f"{options.clusterer} (k={k}, sqrt rule)",
            {},
        )
    labels, scores = choose_k(z, range(lo, hi + 1), algorithm=options.clusterer, seed=seed)
    return labels, f"{options.clusterer} (k={len(set(labels.tolist()))}, by silhouette)", scores


def outlier_policy(
    embeddings: np.ndarray, labels: np.ndarray, *, floor: float, max_share: float
) -> np.ndarray:
    """Place units by similarity to theme centroids (`pipeline.themes.discover`, step 3)."""
    ids, c = centroids(unit_rows(embeddings), labels)
    if not ids:
        return labels.copy()
    sims = unit_rows(embeddings) @ c.T
    nearest = np.asarray(ids)[sims.argmax(axis=1)]
    best = sims.max(axis=1)
    own = np.array([sims[i, ids.index(t)] if t != -1 else -np.inf for i, t in enumerate(labels)])
    out = np.where(labels == -1, nearest, labels)
    sim = np.where(labels == -1, best, own)
    out[sim < floor] = -1
    cap = int(np.floor(max_share * len(labels)))
    unassigned = np.flatnonzero(out == -1)
    if len(unassigned) > cap:
        # Assign the most similar of them until only `cap` remain unassigned.
        order = unassigned[np.argsort(-best[unassigned], kind="stable")]
        take = order[: len(unassigned) - cap]
        out[take] = nearest[take]
    return out


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Theme ids 0.. by decreasing size (ties by first unit), -1 kept."""
    ids = [t for t in pd.Series(labels[labels != -1]).value_counts(sort=True).index.tolist()]
    first = {t: int(np.flatnonzero(labels == t)[0]) for t in ids}
    sizes = {t: int((labels == t).sum()) for t in ids}
    order = sorted(ids, key=lambda t: (-sizes[t], first[t]))
    mapping = {t: i for i, t in enumerate(order)} | {-1: -1}
    return np.array([mapping[t] for t in labels.tolist()], dtype=np.int64)


def partition(
    embeddings: np.ndarray, *, options: ThemesParams, seed: int, min_k: int = 2, units: int | None = None
) -> tuple[np.ndarray, str, dict[int, float]]:
    """One seeded fit: clustering plus the outlier policy, themes numbered by size."""
    labels, mode, scores = cluster(embeddings, options=options, seed=seed, min_k=min_k, units=units)
    labels = outlier_policy(
        embeddings, labels, floor=options.outlier_threshold, max_share=options.max_unassigned
    )
    return _renumber(labels), mode, scores
