"""One seeded partition of units into themes: reduce (none, PCA or UMAP views), cluster (Ward's
linkage refined by k-means, k by silhouette; or k-means, agglomerative, HDBSCAN), then the
outlier policy. Method: README, section "Theme discovery"."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from pipeline.config import ThemesParams
from pipeline.schemas import UNASSIGNED
from pipeline.themes.hierarchy import centroids
from pipeline.vectors import unit_rows

KMEANS_RESTARTS = 50  # clusterer "kmeans": many near-equal optima with dozens of themes
GRID_RATIO = 1.25  # candidate numbers of themes: a geometric grid
SILHOUETTE_SAMPLE = 3000


def reduce(x: np.ndarray, *, options: ThemesParams, seed: int) -> np.ndarray:
    """The space clustering runs in (`reducer`)."""
    if options.reducer == "none":
        return x
    n_components = max(1, min(options.n_components, len(x) - 2, x.shape[1]))
    if options.reducer == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=n_components, random_state=seed).fit_transform(x)
    from umap import UMAP

    views = [
        UMAP(
            n_neighbors=min(options.n_neighbors, len(x) - 1),
            n_components=n_components,
            min_dist=0.0,
            metric="cosine",
            random_state=seed + v,
            n_jobs=1,  # a seeded UMAP runs single-threaded anyway; say so to avoid its warning
        ).fit_transform(x)
        for v in range(options.n_views)
    ]
    return np.hstack(views)


def fitter(z: np.ndarray, *, clusterer: str, seed: int, ward_sample: int) -> Callable[..., np.ndarray]:
    """A function k -> labels for one space. "ward_kmeans": Ward's tree is built once (on at most
    `ward_sample` units, a seeded sample) and cut at k; its groups' centres start k-means over
    every unit, which places the rest and settles the borders (no restarts needed); or, given
    `on` (rows), over those rows only (labels of those rows: choosing k on a sample of a large corpus)."""
    from sklearn.cluster import AgglomerativeClustering, KMeans

    if clusterer == "agglomerative":
        return lambda k: AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(z)
    if clusterer == "kmeans":
        return lambda k: KMeans(n_clusters=k, random_state=seed, n_init=KMEANS_RESTARTS).fit_predict(z)
    from scipy.cluster.hierarchy import fcluster, linkage

    rows = np.arange(len(z))
    if len(z) > ward_sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(z), ward_sample, replace=False))
    sample = z[rows]
    tree = linkage(sample, method="ward")

    def fit(k: int, on: np.ndarray | None = None) -> np.ndarray:
        cut = fcluster(tree, k, criterion="maxclust") - 1
        start = np.vstack([sample[cut == c].mean(axis=0) for c in range(cut.max() + 1)])
        placed = z if on is None else z[on]
        return KMeans(n_clusters=len(start), init=start, n_init=1, random_state=seed).fit_predict(placed)

    return fit


def k_grid(units: int, *, options: ThemesParams, min_k: int = 2) -> list[int]:
    """Candidate numbers of themes: every k from 2 to units / 3 for a small corpus; else a
    geometric grid from `min_themes` to `max_themes` (default: units / 10, themes of ten units
    on average), no fewer than `min_k`."""
    if units < options.small_corpus:
        hi = max(2, min(units // 3, units - 1))
        return list(range(min(max(2, min_k), hi), hi + 1))
    hi = options.max_themes if options.max_themes is not None else max(options.min_themes, units // 10)
    hi = max(2, min(hi, units - 1))
    k, grid = float(min(max(options.min_themes, min_k), hi)), []
    while round(k) < hi:
        grid.append(round(k))
        k *= GRID_RATIO
    return sorted(set(grid) | {hi})


def choose_k(
    z: np.ndarray, grid: list[int], fit: Callable[[int], np.ndarray], *, tolerance: float, seed: int
) -> tuple[np.ndarray, dict[int, float]]:
    """Fit each k of the grid; keep the fewest themes whose silhouette reaches `tolerance` of
    the best (1.0: the best silhouette)."""
    from sklearn.metrics import silhouette_score

    fits, scores = {}, {}
    for k in grid:
        labels = fit(k)
        if len(set(labels.tolist())) < 2:
            continue
        # a seeded sample keeps this affordable on large corpora
        sample = min(len(z), SILHOUETTE_SAMPLE)
        scores[k] = float(silhouette_score(z, labels, sample_size=sample, random_state=seed))
        fits[k] = labels
    if not scores:
        return np.zeros(len(z), dtype=int), scores
    k = fewest_within(scores, tolerance)
    return (fits[k] if k in fits else fit(k)), scores


def fewest_within(scores: dict[int, float], tolerance: float) -> int:
    """The number of themes where the score curve first reaches `tolerance` of the best score
    (the best, if not positive), read between grid points: linearly in log k between the last
    k below that floor and the first k at or above it. Rounded to a grid point, the choice
    would jump a whole grid step (a quarter more themes) whenever a subsample nudged one score
    across the floor; read between them it moves as little as the curve does."""
    best = max(scores.values())
    floor = tolerance * best if best > 0 else best
    ks = sorted(scores)
    first = next(i for i, k in enumerate(ks) if scores[k] >= floor)
    if first == 0:
        return ks[0]
    lo, hi = ks[first - 1], ks[first]
    share = (floor - scores[lo]) / (scores[hi] - scores[lo])
    return int(np.clip(round(lo * (hi / lo) ** share), lo + 1, hi))


def rule_k(units: int, *, lo: int, hi: int) -> int:
    """k = round(sqrt(units / 2)) clipped to [lo, hi] (`k_rule: sqrt`)."""
    return int(min(max(round(np.sqrt(units / 2)), lo), hi))


def cluster(
    embeddings: np.ndarray, *, options: ThemesParams, seed: int, min_k: int = 2, units: int | None = None
) -> tuple[np.ndarray, str, dict[int, float]]:
    """Theme id per unit (-1 = noise, HDBSCAN only), the mode used, silhouette per k tried.

    `units`: how many independent units the data hold, for the number of themes (default: rows).
    """
    n = len(embeddings) if units is None else units
    z = reduce(embeddings, options=options, seed=seed)
    if options.clusterer == "hdbscan":
        from hdbscan import HDBSCAN

        labels = HDBSCAN(min_cluster_size=options.min_cluster_size, metric="euclidean").fit_predict(z)
        return labels, "hdbscan", {}
    small = n < options.small_corpus
    clusterer = "agglomerative" if small and options.clusterer != "ward_kmeans" else options.clusterer
    fit = fitter(z, clusterer=clusterer, seed=seed, ward_sample=options.ward_sample)
    if options.n_themes is not None:
        k = min(options.n_themes, len(z) - 1)
        return fit(k), f"{clusterer} (k={k})", {}
    if len(z) > options.fit_sample and clusterer in ("ward_kmeans", "kmeans"):
        return sampled_k(z, n, fit, clusterer=clusterer, options=options, seed=seed, min_k=min_k)
    grid = k_grid(n, options=options, min_k=min_k)
    if options.k_rule == "sqrt" and not small:
        k = rule_k(n, lo=grid[0], hi=grid[-1])
        return fit(k), f"{clusterer} (k={k}, sqrt rule)", {}
    labels, scores = choose_k(z, grid, fit, tolerance=options.silhouette_tolerance, seed=seed)
    k = len(set(labels.tolist()))
    return labels, f"{clusterer} (k={k} of {grid[0]}-{grid[-1]}, by silhouette)", scores


def sampled_k(
    z: np.ndarray,
    units: int,
    fit: Callable[..., np.ndarray],
    *,
    clusterer: str,
    options: ThemesParams,
    seed: int,
    min_k: int,
) -> tuple[np.ndarray, str, dict[int, float]]:
    """A large corpus (more than `fit_sample` rows): k is chosen on a seeded sample of
    `fit_sample` rows, over the grid for the units they stand for, so that its cost does not
    grow with the corpus; then `fit` places every unit at that k."""
    rows = np.sort(np.random.default_rng(seed).choice(len(z), options.fit_sample, replace=False))
    sample_units = max(3, round(units * options.fit_sample / len(z)))
    grid = k_grid(sample_units, options=options, min_k=min_k)
    note = f"on a sample of {options.fit_sample} of {len(z)} units"
    if options.k_rule == "sqrt":
        k = rule_k(units, lo=grid[0], hi=grid[-1])
        return fit(k), f"{clusterer} (k={k}, sqrt rule, at most {grid[-1]} as {note})", {}
    if clusterer == "ward_kmeans":  # the same Ward tree (fit_sample = ward_sample: the same rows)
        on_sample = partial(fit, on=rows)
    else:
        on_sample = fitter(z[rows], clusterer=clusterer, seed=seed, ward_sample=options.ward_sample)
    _, scores = choose_k(z[rows], grid, on_sample, tolerance=options.silhouette_tolerance, seed=seed)
    if not scores:
        return (
            np.zeros(len(z), dtype=int),
            f"{clusterer} (one theme: no k of {grid[0]}-{grid[-1]} {note})",
            {},
        )
    labels = fit(fewest_within(scores, options.silhouette_tolerance))
    k = len(set(labels.tolist()))
    return labels, f"{clusterer} (k={k} of {grid[0]}-{grid[-1]}, by silhouette {note})", scores


def outlier_policy(
    embeddings: np.ndarray, labels: np.ndarray, *, floor: float, max_share: float
) -> np.ndarray:
    """Place units by similarity to theme centroids (the outlier policy)."""
    ids, c = centroids(unit_rows(embeddings), labels)
    if not ids:
        return labels.copy()
    sims = unit_rows(embeddings) @ c.T
    nearest = np.asarray(ids)[sims.argmax(axis=1)]
    best = sims.max(axis=1)
    column = np.searchsorted(ids, np.where(labels == UNASSIGNED, ids[0], labels))  # ids are sorted
    own = np.where(labels == UNASSIGNED, -np.inf, sims[np.arange(len(labels)), column])
    out = np.where(labels == UNASSIGNED, nearest, labels)
    sim = np.where(labels == UNASSIGNED, best, own)
    out[sim < floor] = UNASSIGNED
    cap = int(np.floor(max_share * len(labels)))
    unassigned = np.flatnonzero(out == UNASSIGNED)
    if len(unassigned) > cap:
        # Assign the most similar of them until only `cap` remain unassigned.
        order = unassigned[np.argsort(-best[unassigned], kind="stable")]
        take = order[: len(unassigned) - cap]
        out[take] = nearest[take]
    return out


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Theme ids 0.. by decreasing size (ties by first unit), -1 kept."""
    ids = [t for t in pd.Series(labels[labels != UNASSIGNED]).value_counts(sort=True).index.tolist()]
    first = {t: int(np.flatnonzero(labels == t)[0]) for t in ids}
    sizes = {t: int((labels == t).sum()) for t in ids}
    order = sorted(ids, key=lambda t: (-sizes[t], first[t]))
    mapping = {t: i for i, t in enumerate(order)} | {UNASSIGNED: UNASSIGNED}
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
