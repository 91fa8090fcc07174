"""Row-wise vector helpers shared by every stage that compares embeddings."""

from __future__ import annotations

import numpy as np

# Approximate nearest neighbours (`bucketed_neighbours`): rows are put in buckets around
# k-means centres (BUCKET_ROWS rows a bucket on average, the centres fitted in
# BUCKET_ITERATIONS steps on a seeded sample of BUCKET_SAMPLE rows a bucket) and each row is
# compared with every row of the PROBES buckets whose centres are nearest to it.
BUCKET_ROWS = 1000
PROBES = 3
BUCKET_ITERATIONS = 10
BUCKET_SAMPLE = 40
BLOCK = 1 << 22  # similarities held at once (16 to 32 MB)


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (rows of zeros stay zero)."""
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def nearest_neighbours(
    x: np.ndarray, k: int, *, chunk: int = 2048, exact_below: int | None = None, seed: int = 0
) -> np.ndarray:
    """Indices of each row's `k` most cosine-similar other rows: exact (in chunks of rows so
    that memory stays at chunk x rows; ties by index) for fewer than `exact_below` rows (None:
    always), else approximate, in time linear in the rows (`bucketed_neighbours`, seeded)."""
    if exact_below is not None and len(x) >= exact_below:
        return bucketed_neighbours(x, k, seed=seed)
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


def neighbour_mean(x: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Per row, the mean of the rows `near` names (as `x[near].mean(axis=1)`, in blocks of rows:
    never the rows x neighbours x columns array)."""
    out = np.empty(x.shape, dtype=x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
    step = max(1, BLOCK // max(1, near.shape[1] * x.shape[1]))
    for start in range(0, len(x), step):
        out[start : start + step] = x[near[start : start + step]].mean(axis=1)
    return out


def bucketed_neighbours(
    x: np.ndarray, k: int, *, seed: int, bucket_rows: int = BUCKET_ROWS, probes: int = PROBES
) -> np.ndarray:
    """Approximately each row's `k` most cosine-similar other rows, most similar first: the
    exact neighbours among the rows of the `probes` buckets (k-means cells of about
    `bucket_rows` rows) nearest to the row. Time and memory grow linearly with the rows for a
    given bucket size; a row whose buckets hold fewer than `k` others is searched exactly.
    Similarities in single precision: twice as fast, and ample to rank neighbours."""
    unit = unit_rows(np.asarray(x, dtype=np.float64)).astype(np.float32)
    n = len(unit)
    centres = _bucket_centres(unit, max(1, -(-n // bucket_rows)), seed=seed)
    near = _nearest_centres(unit, centres, min(probes, len(centres)))
    best_idx = np.full((n, near.shape[1] * k), -1, dtype=np.int64)
    best_sim = np.full((n, near.shape[1] * k), -np.inf, dtype=np.float32)
    by_probe = [_groups(near[:, p], len(centres)) for p in range(near.shape[1])]
    for b, members in enumerate(by_probe[0]):  # a bucket's rows, then every row that probes it
        queries = [groups[b] for groups in by_probe]
        found = _search(unit, np.concatenate(queries), members, k)
        if found is None:
            continue
        start, width = 0, found[0].shape[1]
        for p, rows in enumerate(queries):
            best_idx[rows, p * k : p * k + width] = found[0][start : start + len(rows)]
            best_sim[rows, p * k : p * k + width] = found[1][start : start + len(rows)]
            start += len(rows)
    order = np.argsort(-best_sim, axis=1, kind="stable")[:, :k]
    out = np.take_along_axis(best_idx, order, axis=1)
    short = np.flatnonzero((np.take_along_axis(best_sim, order, axis=1) == -np.inf).any(axis=1))
    if len(short):
        out[short] = _exact_rows(unit, short, k)
    return out


def _bucket_centres(unit: np.ndarray, n_buckets: int, *, seed: int) -> np.ndarray:
    """Unit centres of spherical k-means on a seeded sample of the rows."""
    rng = np.random.default_rng(seed)
    sample = unit[np.sort(rng.choice(len(unit), min(len(unit), BUCKET_SAMPLE * n_buckets), replace=False))]
    centres = sample[np.sort(rng.choice(len(sample), n_buckets, replace=False))]
    for _ in range(BUCKET_ITERATIONS):
        cell = np.argmax(sample @ centres.T, axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, cell, sample)
        filled = np.bincount(cell, minlength=n_buckets) > 0
        centres = np.where(filled[:, None], unit_rows(sums), centres)  # an empty cell keeps its centre
    return centres


def _nearest_centres(unit: np.ndarray, centres: np.ndarray, probes: int) -> np.ndarray:
    """Per row, its `probes` most similar centres, most similar first."""
    out = np.empty((len(unit), probes), dtype=np.int64)
    step = max(1, BLOCK // len(centres))
    for start in range(0, len(unit), step):
        sims = unit[start : start + step] @ centres.T
        top = np.argpartition(sims, -probes, axis=1)[:, -probes:]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[start : start + step] = np.take_along_axis(top, order, axis=1)
    return out


def _groups(labels: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices (ascending) per label 0..n_groups-1."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_groups + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]


def _search(
    unit: np.ndarray, queries: np.ndarray, members: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(indices, similarities) of each query's `k` (or all, when fewer) most similar `members`.
    The first queries are the members themselves, in order: each is left out of its own list
    (similarity -inf). None: nothing to find."""
    kk = min(k, len(members))
    if not len(queries) or kk <= 0:
        return None
    idx = np.empty((len(queries), kk), dtype=np.int64)
    sim = np.empty((len(queries), kk), dtype=unit.dtype)
    step = max(1, BLOCK // len(members))
    candidates = unit[members].T
    for start in range(0, len(queries), step):
        sims = unit[queries[start : start + step]] @ candidates
        own = np.arange(start, min(start + len(sims), len(members)))
        sims[own - start, own] = -np.inf
        top = np.argpartition(sims, -kk, axis=1)[:, -kk:]
        idx[start : start + step] = members[top]
        sim[start : start + step] = np.take_along_axis(sims, top, axis=1)
    return idx, sim


def _exact_rows(unit: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The exact `k` nearest other rows of the rows `rows`, most similar first."""
    out = np.empty((len(rows), k), dtype=np.int64)
    step = max(1, BLOCK // len(unit))
    for start in range(0, len(rows), step):
        part = rows[start : start + step]
        sims = unit[part] @ unit.T
        sims[np.arange(len(part)), part] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[start : start + step] = np.take_along_axis(top, order, axis=1)
    return out
