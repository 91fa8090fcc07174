"""Cluster unit embeddings into candidate themes: seeded, reproducible, with an outlier policy.

Method (defaults, and why):
0. Context (interviews, ``context: turn``): each segment is clustered as the mean of its own
   unit embedding and its turn's mean embedding. Coders code passages (often a whole answer),
   not 3-sentence windows; on the demo study it raises the AMI against coder A from 0.14 to
   0.22 (bench/themes.py). Keywords, quotes and the cards still use each segment's own
   embedding.
   Lexical view (``lexical_weight``, default 0.6): beside the embedding, each unit (with
   turn context: read with its turn) is represented by a latent semantic analysis of its
   words: TF-IDF over words found in at least two documents (turns, each counted once, with
   turn context; else the units), stop words, spoken fillers and bracketed text
   (placeholders, "[laughs]") left out, reduced to ``LEXICAL_DIMS`` dimensions by truncated
   SVD, unit-normalised and scaled by the weight. MiniLM embeddings group by what is talked
   about only loosely; the shared vocabulary of a code (a service's name, "commissioning",
   "supervision") is sharper evidence. The outlier policy (step 3) then measures similarity
   in this joined space. Figures: README, "Theme discovery".
1. Reduce: ``n_views`` UMAP projections (cosine, min_dist 0, seeds ``seed``, ``seed+1``...) side
   by side. One UMAP run is what BERTopic does; its layout moves with the seed, and clusters
   with it. Several views averaged out by one clustering give themes that survive a new seed.
   ``reducer: pca`` is the deterministic, fast alternative.
2. Cluster: k-means with k = sqrt(units / 2) (the classic rule of thumb, Mardia et al. 1979),
   clipped to ``min_themes``..``max_themes``. Human codebooks grow with the data (a dozen codes
   for a few hundred interview passages, dozens for thousands of survey comments), and AMI
   against them rises with k up to well past the true number of codes, while the silhouette
   (``k_rule: silhouette``) of a UMAP space favours the fewest, broadest clusters. With turn
   context (step 0) the units are the turns: segments of one turn share most of their vector.
   Every unit is placed, unlike HDBSCAN, which on short texts leaves 25-50% as noise.
   ``clusterer: hdbscan`` gives BERTopic's density clustering.
3. Outliers, explicitly: a unit stays in its theme (or, for HDBSCAN noise, joins its nearest
   theme) when the cosine similarity to the theme's centroid reaches ``outlier_threshold``;
   if more than ``max_unassigned`` of the units would then be unassigned, the most similar of
   them are assigned anyway, so the unassigned share never exceeds it.
4. Small corpora (fewer than ``small_corpus`` texts): UMAP neighbourhoods and densities are
   unreliable, so PCA + agglomerative (Ward) clustering, k by silhouette in 2..min(max_themes, n/3).
5. Codebook guidance (optional, off by default): each unit whose embedding is close to a code's
   prototype (mean of its name, definition, criteria and example embeddings, as in coding;
   similarity >= ``outlier_threshold``) is pulled towards it by ``guide_weight`` before
   clustering, as BERTopic's seeded topics do; k is then at least the number of codes. Zero-shot
   similarity to code descriptions is weak evidence (macro F1 ~0.27 on the demo), and on the demo
   guidance, semi-supervised UMAP on calibrated pseudo-labels alike, lowered agreement with
   coder A once turn context was used, hence off by default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params, ThemesParams
from pipeline.embed import embed_with, read_embeddings
from pipeline.errors import UserError
from pipeline.io import read_csv, read_table, write_csv, write_json, write_table
from pipeline.schemas import ASSIGNMENTS, SEGMENTS
from pipeline.themes.cards import theme_cards
from pipeline.themes.hierarchy import parent_themes
from pipeline.themes.keywords import WORD_PATTERN, keyword_text, stop_words, theme_keywords, theme_label
from pipeline.themes.stability import stability_report

log = logging.getLogger(__name__)

MIN_TEXTS = 3
KMEANS_RESTARTS = 50
LEXICAL_DIMS = 40  # latent dimensions of the lexical view (step 0)


@dataclass(frozen=True)
class Discovery:
    topics: np.ndarray  # theme id per unit, -1 = unassigned
    keywords: dict[int, list[str]]
    mode: str
    labels: dict[int, str] = field(default_factory=dict)
    parents: dict[int, int] = field(default_factory=dict)  # theme id -> parent id
    parent_keywords: dict[int, list[str]] = field(default_factory=dict)
    stability: dict = field(default_factory=dict)
    k_scores: dict[int, float] = field(default_factory=dict)  # silhouette per candidate k


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def guide(embeddings: np.ndarray, prototypes: np.ndarray, *, weight: float, floor: float) -> np.ndarray:
    """Pull each unit close to a code (similarity >= floor) towards that code's prototype."""
    x = _normalise(embeddings.astype(np.float64))
    p = _normalise(prototypes.astype(np.float64))
    sims = x @ p.T
    best = sims.argmax(axis=1)
    near = sims[np.arange(len(x)), best] >= floor
    x[near] = (1 - weight) * x[near] + weight * p[best[near]]
    return _normalise(x)


def reduce(embeddings: np.ndarray, *, options: ThemesParams, seed: int, small: bool) -> np.ndarray:
    """The space clustering runs in (see the module docstring, step 1)."""
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
    """k = round(sqrt(units / 2)) clipped to [lo, hi] (module docstring, step 2)."""
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
    """Place units by similarity to theme centroids (module docstring, step 3)."""
    from pipeline.themes.hierarchy import centroids

    ids, c = centroids(_normalise(embeddings), labels)
    if not ids:
        return labels.copy()
    sims = _normalise(embeddings) @ c.T
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


def discover_themes(
    texts: list[str],
    embeddings: np.ndarray,
    *,
    options: ThemesParams,
    seed: int,
    prototypes: np.ndarray | None = None,
    embed_model: str | None = None,
    context: np.ndarray | None = None,
    context_texts: list[str] | None = None,
) -> Discovery:
    """Candidate themes for `texts`: partition, keywords, labels, hierarchy, stability.

    `prototypes` (one embedding per codebook code) guide the clustering when
    `options.guided`; `embed_model` lets keywords be refined with KeyBERT-inspired + MMR;
    `context` (one embedding per unit, e.g. its turn's mean) is averaged into the clustering
    space, and the number of distinct contexts is the unit count of the k rule;
    `context_texts` (one per unit, e.g. its turn's text) join the units' own in the lexical view.
    """
    n = len(texts)
    if n < MIN_TEXTS:
        raise UserError(f"theme discovery needs at least {MIN_TEXTS} texts, got {n}")
    if embeddings.shape[0] != n:
        raise UserError(f"embeddings have {embeddings.shape[0]} rows for {n} texts")
    space, units = embeddings, None
    if context is not None:
        if context.shape != embeddings.shape:
            raise UserError(f"context has shape {context.shape}, embeddings {embeddings.shape}")
        space = with_context(embeddings, context)
        units = len(np.unique(np.round(context, 6), axis=0))
    if context_texts is not None and len(context_texts) != n:
        raise UserError(f"context_texts has {len(context_texts)} rows for {n} texts")
    min_k = 2
    if options.guided and prototypes is not None and len(prototypes):
        space = guide(space, prototypes, weight=options.guide_weight, floor=options.outlier_threshold)
        min_k = len(prototypes)
    lexical = None
    if options.lexical_weight > 0:
        read, fit_on = texts, None
        if context_texts is not None:  # each unit read with its context; each context counted once
            read = [f"{t} {c}" for t, c in zip(texts, context_texts, strict=True)]
            fit_on = sorted(set(context_texts))
        lexical = lexical_view(read, seed=seed, fit_on=fit_on)
        if lexical is not None:
            space = np.hstack([_normalise(space), options.lexical_weight * lexical])
    topics, mode, scores = partition(space, options=options, seed=seed, min_k=min_k, units=units)
    if options.guided and prototypes is not None and len(prototypes):
        mode += f", guided by {len(prototypes)} codes"
    if lexical is not None:
        mode += f", with the words' LSA view (weight {options.lexical_weight:g})"
    runs = [topics]
    for r in range(1, options.stability_runs):
        # Seeds far apart so the views of different runs never share a UMAP seed.
        runs.append(partition(space, options=options, seed=seed + 1000 * r, min_k=min_k, units=units)[0])
    stability = stability_report(runs, unstable_below=options.unstable_below)
    keywords = theme_keywords(
        texts,
        embeddings,
        topics,
        top_n=options.top_n_words,
        method=options.keywords,
        embed_model=embed_model,
        seed=seed,
    )
    parents = parent_themes(_normalise(embeddings), topics, n_parents=options.n_parents)
    parent_of_unit = np.array([parents.get(int(t), -1) for t in topics])
    parent_keywords = (
        theme_keywords(
            texts,
            embeddings,
            parent_of_unit,
            top_n=options.top_n_words,
            method="ctfidf",
            embed_model=None,
            seed=seed,
        )
        if len(set(parents.values())) < len(parents)
        else {}
    )
    labels = {t: theme_label(kw) for t, kw in keywords.items()}
    return Discovery(
        topics=topics,
        keywords=keywords,
        mode=mode,
        labels=labels,
        parents=parents,
        parent_keywords=parent_keywords,
        stability=stability,
        k_scores=scores,
    )


def assignments_table(ids: list[str], found: Discovery) -> pd.DataFrame:
    labels = [found.labels.get(int(t), "unassigned") if t != -1 else "unassigned" for t in found.topics]
    return pd.DataFrame({"segment_id": ids, "theme_id": found.topics, "theme_label": labels})


def codebook_prototypes(codebook, *, params: Params) -> np.ndarray | None:
    """One embedding per applied (leaf) code: its name, definition, criteria and examples."""
    if codebook is None or not params.themes.guided:
        return None
    if not codebook.leaves:
        return None
    from pipeline.coding import code_prototypes

    return code_prototypes(codebook, embed=lambda texts: embed_with(texts, options=params.embed))[1]


def lexical_view(
    texts: list[str], *, seed: int, fit_on: list[str] | None = None, dims: int = LEXICAL_DIMS
) -> np.ndarray | None:
    """Unit vectors of a latent semantic analysis of the texts' words (module docstring, step
    0); None when the documents share too few words for one. `fit_on`: the documents whose
    words and document frequencies define the analysis (default `texts`), e.g. each turn once
    when `texts` are segments read with their turn."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        sublinear_tf=True, stop_words=stop_words(), token_pattern=WORD_PATTERN, min_df=2
    )
    docs = [keyword_text(t) for t in (texts if fit_on is None else fit_on)]
    try:
        fitted = vectorizer.fit_transform(docs)
    except ValueError:  # no word occurs in two documents
        return None
    n_components = min(dims, fitted.shape[1] - 1, fitted.shape[0] - 1)
    if n_components < 2:
        return None
    svd = TruncatedSVD(n_components, random_state=seed).fit(fitted)
    return _normalise(svd.transform(vectorizer.transform([keyword_text(t) for t in texts])))


def with_context(embeddings: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Unit vectors of (own + context) / 2: each unit seen with its surroundings."""
    return _normalise(_normalise(embeddings.astype(np.float64)) + _normalise(context.astype(np.float64)))


def turn_context(
    segments: pd.DataFrame, embeddings: np.ndarray, *, options: ThemesParams
) -> np.ndarray | None:
    """Each segment's turn mean embedding, when `options.context` is "turn" and turns are known."""
    if options.context != "turn" or "turn_id" not in segments.columns:
        return None
    from pipeline.coding import turn_means

    return turn_means(segments, embeddings)


def _discover(
    texts: list[str],
    embeddings: np.ndarray,
    *,
    params: Params,
    codebook,
    context: np.ndarray | None = None,
    context_texts: list[str] | None = None,
) -> Discovery:
    return discover_themes(
        texts,
        embeddings,
        options=params.themes,
        seed=params.seed,
        prototypes=codebook_prototypes(codebook, params=params),
        embed_model=params.embed.model,
        context=context,
        context_texts=context_texts,
    )


def summary(found: Discovery, n: int) -> dict:
    """Figures for metrics/themes.json (counts and scores only, never text)."""
    stab = found.stability
    return {
        "mode": found.mode,
        "themes": len(found.keywords),
        "parent_themes": len(set(found.parents.values())),
        "segments": int(n),
        "unassigned_share": float(np.mean(found.topics == -1)) if n else 0.0,
        "silhouette_by_k": {str(k): round(v, 4) for k, v in found.k_scores.items()},
        "stability_runs": stab.get("runs", 1),
        "stability_ari_mean": stab.get("ari_mean"),
        "stability_ari_min": stab.get("ari_min"),
        "unstable_themes": sum(t["unstable"] for t in stab.get("themes", {}).values()),
    }


def run(
    params: Params,
    *,
    segments_path: Path,
    embeddings_path: Path,
    out: Path,
    cards: Path,
    metrics: Path,
    codebook=None,
) -> dict:
    segments = read_table(segments_path, SEGMENTS)
    embeddings, _ = read_embeddings(embeddings_path, segments["segment_id"].tolist())
    from pipeline.coding import turn_texts

    context = turn_context(segments, embeddings, options=params.themes)
    found = _discover(
        segments["text"].tolist(),
        embeddings,
        params=params,
        codebook=codebook,
        context=context,
        context_texts=None if context is None else turn_texts(segments),
    )
    assignments = assignments_table(segments["segment_id"].tolist(), found)
    write_table(out, assignments, ASSIGNMENTS)
    write_json(cards, theme_cards(segments, embeddings, assignments, found, n_quotes=params.themes.n_quotes))
    figures = summary(found, len(segments))
    write_json(metrics, figures)
    return figures


def run_csv(params: Params, *, in_path: Path, out: Path, codebook=None, progress: bool = False) -> dict:
    """The CLI contract: `id,text[,group]` rows -> `id,theme_id,theme_label` rows."""
    df = read_csv(in_path, ("id", "text"))
    if df["id"].duplicated().any():
        line = int(df.index[df["id"].duplicated()][0]) + 2
        raise UserError(f"{in_path} line {line}: duplicate id")
    embeddings = embed_with(df["text"].tolist(), options=params.embed, progress=progress)
    found = _discover(df["text"].tolist(), embeddings, params=params, codebook=codebook)
    table = assignments_table(df["id"].tolist(), found).rename(columns={"segment_id": "id"})
    write_csv(out, table)
    return summary(found, len(df))
