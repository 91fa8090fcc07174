"""Figures for the report, drawn with matplotlib and embedded as base64 PNG data URIs so
the report works offline, opened from disk."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display: the report is rendered headless

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.schemas import UNASSIGNED

_DPI = 110


def _data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(label: str, n: int = 38) -> str:
    return label if len(label) <= n else label[: n - 1] + "\u2026"


def segment_map_xy(embeddings: np.ndarray, *, method: str, seed: int) -> np.ndarray:
    """2-D coordinates of segments for the map: t-SNE on 30 PCA components, or PCA alone."""
    from sklearn.decomposition import PCA

    n = len(embeddings)
    if n < 3:
        return np.zeros((n, 2))
    if method == "pca" or n < 10:
        return PCA(n_components=2, random_state=seed).fit_transform(embeddings)
    from sklearn.manifold import TSNE

    reduced = PCA(n_components=min(30, n - 1, embeddings.shape[1]), random_state=seed).fit_transform(
        embeddings
    )
    # 350 iterations and angle 0.8: a readable map in seconds on a laptop, seeded
    return TSNE(
        n_components=2,
        random_state=seed,
        init="pca",
        perplexity=min(30.0, (n - 1) / 3),
        max_iter=350,
        angle=0.8,
    ).fit_transform(reduced)


def map_sample(theme: np.ndarray, *, limit: int, seed: int) -> np.ndarray:
    """Rows of the segments the map shows, ascending: every one up to `limit`; beyond, a seeded
    sample of `limit`, stratified by theme (unassigned included): each theme keeps its share,
    rounded by largest remainder, and at least one point."""
    theme = np.asarray(theme)
    if len(theme) <= limit:
        return np.arange(len(theme))
    ids, counts = np.unique(theme, return_counts=True)
    exact = counts * limit / len(theme)
    quota = np.minimum(np.maximum(np.floor(exact), 1), counts).astype(np.int64)
    while quota.sum() > limit:  # many tiny themes: the largest quotas give way
        quota[np.argmax(quota)] -= 1
    for j in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if quota.sum() >= limit:
            break
        quota[j] += int(quota[j] < counts[j])
    rng = np.random.default_rng(seed)
    rows = [rng.choice(np.flatnonzero(theme == t), q, replace=False) for t, q in zip(ids, quota, strict=True)]
    return np.sort(np.concatenate(rows))


def theme_map(
    xy: np.ndarray, theme: np.ndarray, labels: dict[int, str], *, annotate: int = 12, total: int | None = None
) -> str:
    """Segments as points coloured by theme; the largest themes labelled at their centre.
    `total`: the number of segments when `xy` holds a sample of them (`map_sample`)."""
    fig, ax = plt.subplots(figsize=(9, 7))
    ids = [t for t in pd.Series(theme).value_counts().index if t != UNASSIGNED]
    cmap = plt.get_cmap("tab20")
    un = theme == UNASSIGNED
    if un.any():
        ax.scatter(xy[un, 0], xy[un, 1], s=5, c="#bbbbbb", label="unassigned", alpha=0.6, linewidths=0)
    for k, t in enumerate(ids):
        m = theme == t
        ax.scatter(xy[m, 0], xy[m, 1], s=6, color=cmap(k % 20), alpha=0.8, linewidths=0)
    for t in ids[:annotate]:
        cx, cy = np.median(xy[theme == t], axis=0)
        ax.annotate(
            f"{t}: {_short(labels.get(t, ''), 24)}",
            (cx, cy),
            fontsize=7,
            ha="center",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.75, "lw": 0},
        )
    ax.set_xticks([])
    ax.set_yticks([])
    shown = f"{len(theme)} segments" if total is None else f"a sample of {len(theme)} of {total} segments"
    ax.set_title(f"{shown}, {len(ids)} themes (largest {min(annotate, len(ids))} labelled)")
    return _data_uri(fig)


def prevalence_heatmap(cards: list[dict], groups: list[str]) -> str:
    """Share of each group's participants voicing each theme, with counts in the cells."""
    rows = [c for c in cards if c.get("prevalence")]
    share = np.array(
        [
            [c["prevalence"][g]["participants"] / max(c["prevalence"][g]["of"], 1) for g in groups]
            for c in rows
        ]
    )
    fig, ax = plt.subplots(figsize=(2.2 + 1.3 * len(groups), 1.2 + 0.26 * len(rows)))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, c in enumerate(rows):
        for j, g in enumerate(groups):
            p = c["prevalence"][g]
            ax.text(
                j,
                i,
                f"{p['participants']}/{p['of']}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(len(groups)), groups)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(rows)), [f"{c['theme_id']}: {_short(c['label'])}" for c in rows], fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.5, label="share of the group's participants")
    return _data_uri(fig)


def kappa_chart(rows: list[dict]) -> str:
    """Per code: machine kappa (with its interval when known) and the human ceiling."""
    return _data_uri(kappa_figure(rows))


def kappa_figure(rows: list[dict]):
    """The figure behind `kappa_chart`; its legend sits above the axes, clear of every code's row."""
    rows = list(reversed(rows))
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.38 * len(rows)))
    mk = np.array([np.nan if r["machine"] is None else r["machine"] for r in rows], dtype=float)
    lo = np.array([np.nan if r.get("machine_low") is None else r["machine_low"] for r in rows], dtype=float)
    hi = np.array([np.nan if r.get("machine_high") is None else r["machine_high"] for r in rows], dtype=float)
    has_ci = ~np.isnan(lo) & ~np.isnan(hi)
    if has_ci.any():
        ax.errorbar(
            mk[has_ci],
            y[has_ci],
            xerr=[mk[has_ci] - lo[has_ci], hi[has_ci] - mk[has_ci]],
            fmt="none",
            ecolor="#1f77b4",
            capsize=3,
            lw=1,
        )
    ax.scatter(mk, y, color="#1f77b4", zorder=3, label="machine vs reference coder")
    hk = np.array([np.nan if r["human"] is None else r["human"] for r in rows], dtype=float)
    if not np.isnan(hk).all():
        ax.scatter(
            hk, y, marker="|", s=300, color="#d62728", zorder=3, label="human ceiling (coder vs coder)"
        )
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_yticks(y, [r["code"] for r in rows], fontsize=8)
    ax.set_xlabel("Cohen's kappa")
    ax.set_xlim(min(-0.1, np.nanmin(np.r_[mk, lo, hk, 0.0]) - 0.05), 1.02)
    ax.legend(
        loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, fontsize=8, frameon=False, borderaxespad=0
    )
    return fig


def confusion_heatmap(table: pd.DataFrame) -> str:
    """Theme x code: share of each theme's human-coded segments carrying each code."""
    share = table.div(table.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    fig, ax = plt.subplots(figsize=(2.5 + 0.55 * table.shape[1], 1.5 + 0.24 * table.shape[0]))
    im = ax.imshow(share.to_numpy(), cmap="Purples", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(
        range(table.shape[1]), [_short(str(c), 24) for c in table.columns], rotation=60, ha="left", fontsize=7
    )
    ax.xaxis.tick_top()
    ax.set_yticks(range(table.shape[0]), [_short(str(i)) for i in table.index], fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.5, label="share of the theme's coded segments")
    return _data_uri(fig)


def deid_bars(by_type: dict[str, int]) -> str:
    items = sorted(by_type.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.32 * len(items)))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#6a8caf")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v}", va="center", fontsize=8)
    ax.set_xlabel("replacements")
    return _data_uri(fig)
