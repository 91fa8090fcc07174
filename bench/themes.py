"""`python -m bench themes`: theme discovery against human codes, the pipeline beside k-means with
the true k and BERTopic's defaults, on the same embeddings. Methods and figures: README, section
"Theme discovery" (Benchmark).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np

from bench import data

METHODS = ("pipeline", "kmeans_true_k", "bertopic_defaults")
SUBSAMPLES = 5
SUBSAMPLE_SHARE = 0.9


def embed(texts: list[str], params, *, cache: bool) -> np.ndarray:
    """MiniLM embeddings as the embed stage makes them (cache off: every text encoded)."""
    from pipeline.encoder import embed_texts

    cache_dir = data.ROOT / "cache" / "embeddings" if cache else None
    return embed_texts(
        texts,
        model=params.embed.model,
        batch_size=params.embed.batch_size,
        cache_dir=cache_dir,
        precision=params.embed.precision,
    )


def _pipeline_inputs(units: data.Units, emb: np.ndarray, params):
    """Turn context, as the themes stage gives it (segments of a turn: the demo only)."""
    from pipeline.context import turn_texts
    from pipeline.themes.stage import turn_context

    if units.segments is None:
        return None, None
    ctx = turn_context(units.segments, emb, options=params.themes)
    return ctx, (None if ctx is None else turn_texts(units.segments))


def fit(method: str, units: data.Units, emb: np.ndarray, params, *, full: bool = True) -> np.ndarray:
    """Theme id per unit (-1: unassigned). `full`: the pipeline as the stage runs it (keywords,
    labels, hierarchy); else only its partition, chosen as the stage chooses it (what subsample
    stability compares)."""
    if method == "kmeans_true_k":
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import normalize

        k = len(set(units.primary) - {""})
        return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(normalize(emb))
    if method == "bertopic_defaults":
        from bertopic import BERTopic

        topics, _ = BERTopic().fit_transform(units.texts, embeddings=emb)
        return np.asarray(topics)
    if method != "pipeline":
        raise ValueError(f"unknown method {method}")
    ctx, ctx_texts = _pipeline_inputs(units, emb, params)
    if full:
        from pipeline.themes.discover import discover_themes

        return discover_themes(
            units.texts,
            emb,
            options=params.themes,
            seed=params.seed,
            embed_model=params.embed.model,
            context=ctx,
            context_texts=ctx_texts,
        ).topics
    from pipeline.themes.discover import select_partition

    chosen, _ = select_partition(
        units.texts, emb, options=params.themes, seed=params.seed, context=ctx, context_texts=ctx_texts
    )
    return chosen["topics"]


def _subset(units: data.Units, keep: np.ndarray) -> data.Units:
    pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
    segments = None if units.segments is None else units.segments.iloc[keep].reset_index(drop=True)
    return data.Units(
        name=units.name,
        ids=pick(units.ids),
        texts=pick(units.texts),
        codes=pick(units.codes),
        primary=pick(units.primary),
        groups=pick(units.groups),
        codebook=units.codebook,
        segments=segments,
    )


def stability(method: str, units: data.Units, emb: np.ndarray, params) -> float:
    """Mean ARI between fits on random 90% subsamples, over the units each pair shares."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(0)
    n = len(units.ids)
    fits = []
    for _ in range(SUBSAMPLES):
        keep = np.sort(rng.choice(n, size=int(SUBSAMPLE_SHARE * n), replace=False))
        labels = np.full(n, -2)
        labels[keep] = fit(method, _subset(units, keep), emb[keep], params, full=False)
        fits.append(labels)
    aris = []
    for a, b in combinations(fits, 2):
        shared = (a != -2) & (b != -2)
        aris.append(adjusted_rand_score(a[shared], b[shared]))
    return float(np.mean(aris))


def scores(topics: np.ndarray, units: data.Units) -> dict:
    """Agreement with the primary human codes over every coded unit (-1: one cluster)."""
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

    coded = np.array([p != "" for p in units.primary])
    gold, found = np.array(units.primary)[coded], np.asarray(topics)[coded]
    return {
        "ami": float(adjusted_mutual_info_score(gold, found)),
        "ari": float(adjusted_rand_score(gold, found)),
        "nmi": float(normalized_mutual_info_score(gold, found)),
        "unassigned_share": float(np.mean(np.asarray(topics) == -1)),
        "themes": len(set(np.asarray(topics).tolist()) - {-1}),
    }


def worker(name: str, method: str, out: Path, overrides: tuple[str, ...]) -> None:
    """One timed fit in this (fresh) process: embed every text without a cache, fit, save."""
    params = data.bench_params(overrides)
    units = data.load(name, overrides)
    emb = embed(units.texts, params, cache=False)
    topics = fit(method, units, emb, params)
    np.save(out / f"{method}.npy", topics)
    np.save(out / "embeddings.npy", emb)


def run(names: list[str], overrides: tuple[str, ...]) -> dict:
    params = data.bench_params(overrides)
    results: dict = {"datasets": {}, "skipped": {}}
    for name in names:
        why = data.available(name)
        if why:
            results["skipped"][name] = why
            continue
        units = data.load(name, overrides)  # the demo prepared once, before the timed processes
        entry = {"units": len(units.ids), "codes": len(set(units.primary) - {""}), "methods": {}}
        with tempfile.TemporaryDirectory() as tmp:
            for method in METHODS:
                start = time.perf_counter()
                cmd = [sys.executable, "-m", "bench", "fit-themes", name, method, tmp]
                subprocess.run([*cmd, *[a for o in overrides for a in ("--set", o)]], check=True)
                seconds = time.perf_counter() - start
                topics = np.load(Path(tmp) / f"{method}.npy")
                emb = np.load(Path(tmp) / "embeddings.npy")
                entry["methods"][method] = scores(topics, units) | {
                    "seconds": round(seconds, 1),
                    "stability_ari": stability(method, units, emb, params),
                }
                print(name, method, json.dumps(entry["methods"][method]), file=sys.stderr)
        results["datasets"][name] = entry
    return results


def table(results: dict) -> str:
    """The README table: one row per dataset and method."""
    lines = [
        "| data | units | codes | method | AMI | ARI | NMI | unassigned | themes | seconds | stability ARI |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in results["datasets"].items():
        for method, m in entry["methods"].items():
            lines.append(
                f"| {name} | {entry['units']} | {entry['codes']} | {method} | {m['ami']:.3f} "
                f"| {m['ari']:.3f} | {m['nmi']:.3f} | {m['unassigned_share']:.1%} | {m['themes']} "
                f"| {m['seconds']:.0f} | {m['stability_ari']:.2f} |"
            )
    lines += [f"\n{name}: skipped, {why}" for name, why in results.get("skipped", {}).items()]
    return "\n".join(lines)
