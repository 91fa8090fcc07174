"""Cluster unit embeddings into candidate themes: seeded and reproducible, with an outlier policy,
each choice made by a criterion computed without labels and reported in `metrics/themes.json`.

Method and defaults: README, section "Theme discovery".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.config import ThemesParams
from pipeline.errors import UserError
from pipeline.schemas import UNASSIGNED
from pipeline.themes.cluster import partition
from pipeline.themes.hierarchy import parent_themes
from pipeline.themes.keywords import WORD_PATTERN, keyword_text, stop_words, theme_keywords
from pipeline.themes.labels import theme_labels
from pipeline.themes.stability import MISSING, stability_report
from pipeline.vectors import nearest_neighbours, neighbour_mean, unit_rows

MIN_TEXTS = 3
SUBSAMPLE_SHARE = 0.9  # share of the units each stability refit sees
LEXICAL_DIMS = 40  # latent dimensions of the words' view


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
    candidates: list[dict] = field(default_factory=list)  # representations tried (lexical_weights)
    procedure: dict[int, bool] = field(default_factory=dict)  # theme id -> interview procedure


def guide(embeddings: np.ndarray, prototypes: np.ndarray, *, weight: float, floor: float) -> np.ndarray:
    """Pull each unit close to a code (similarity >= floor) towards that code's prototype."""
    x = unit_rows(embeddings.astype(np.float64))
    p = unit_rows(prototypes.astype(np.float64))
    sims = x @ p.T
    best = sims.argmax(axis=1)
    near = sims[np.arange(len(x)), best] >= floor
    x[near] = (1 - weight) * x[near] + weight * p[best[near]]
    return unit_rows(x)


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
    space, and the number of distinct contexts is the unit count for the number of themes;
    `context_texts` (one per unit, e.g. its turn's text) join the units' own in the words' view.
    """
    n = len(texts)
    if n < MIN_TEXTS:
        raise UserError(f"theme discovery needs at least {MIN_TEXTS} texts, got {n}")
    if embeddings.shape[0] != n:
        raise UserError(f"embeddings have {embeddings.shape[0]} rows for {n} texts")
    if context is not None and context.shape != embeddings.shape:
        raise UserError(f"context has shape {context.shape}, embeddings {embeddings.shape}")
    if context_texts is not None and len(context_texts) != n:
        raise UserError(f"context_texts has {len(context_texts)} rows for {n} texts")
    chosen, tried = select_partition(
        texts,
        embeddings,
        options=options,
        seed=seed,
        prototypes=prototypes,
        context=context,
        context_texts=context_texts,
    )
    topics = chosen["topics"]
    keywords = theme_keywords(
        texts,
        embeddings,
        topics,
        top_n=options.top_n_words,
        method=options.keywords,
        embed_model=embed_model,
        seed=seed,
    )
    parents = parent_themes(unit_rows(embeddings), topics, n_parents=options.n_parents)
    parent_of_unit = np.array([parents.get(int(t), UNASSIGNED) for t in topics])
    parent_keywords = {}
    if len(set(parents.values())) < len(parents):
        parent_keywords = theme_keywords(
            texts,
            embeddings,
            parent_of_unit,
            top_n=options.top_n_words,
            method="ctfidf",
            embed_model=None,
            seed=seed,
        )
    labels, procedure = theme_labels(
        texts, unit_rows(embeddings), topics, model=options.spacy_model, fallback=keywords
    )
    return Discovery(
        topics=topics,
        keywords=keywords,
        mode=chosen["mode"],
        labels=labels,
        procedure=procedure,
        parents=parents,
        parent_keywords=parent_keywords,
        stability=chosen["stability"],
        k_scores=chosen["scores"],
        candidates=[{k: t[k] for k in ("lexical_weight", "themes", "stability_ari")} for t in tried],
    )


def select_partition(
    texts: list[str],
    embeddings: np.ndarray,
    *,
    options: ThemesParams,
    seed: int,
    prototypes: np.ndarray | None = None,
    context: np.ndarray | None = None,
    context_texts: list[str] | None = None,
) -> tuple[dict, list[dict]]:
    """(the chosen candidate, every candidate tried): one partition per weight of the words'
    view, the steadiest across subsamples kept (ties: the first)."""
    inputs = {"prototypes": prototypes, "context": context, "context_texts": context_texts}
    weights = dict.fromkeys(options.lexical_weights)
    tried = [
        candidate(texts, embeddings, options=options, seed=seed, lexical_weight=w, **inputs) for w in weights
    ]
    tried = [t for t in tried if t is not None]
    if not tried:  # no weight asked for could be used: the words' view cannot be built here
        tried = [candidate(texts, embeddings, options=options, seed=seed, lexical_weight=0.0, **inputs)]
    return max(tried, key=lambda t: t["stability_ari"] or 0.0), tried


def candidate(
    texts: list[str],
    embeddings: np.ndarray,
    *,
    options: ThemesParams,
    seed: int,
    lexical_weight: float,
    **inputs,
) -> dict | None:
    """One representation's partition and its stability across subsamples; None
    when the words' view asked for cannot be built (too few shared words). `inputs`: the
    prototypes, context and context texts of `clustering_space`."""
    space, units, min_k, notes = clustering_space(
        texts, embeddings, options=options, seed=seed, lexical_weight=lexical_weight, **inputs
    )
    if lexical_weight > 0 and not any("words" in note for note in notes):
        return None
    topics, mode, scores = partition(space, options=options, seed=seed, min_k=min_k, units=units)
    stability = stability_report(
        [topics, *subsample_fits(space, topics, options=options, seed=seed)],
        unstable_below=options.unstable_below,
    )
    if len(space) > options.fit_sample and stability.get("ari_mean") is not None:  # a large corpus
        pool = stability_pool(len(space), options=options, seed=seed)
        stability |= {"pool": len(pool), "refit_units": int(SUBSAMPLE_SHARE * len(pool))}
    return {
        "lexical_weight": lexical_weight,
        "topics": topics,
        "mode": mode + "".join(notes),
        "scores": scores,
        "stability": stability,
        "themes": len(set(topics.tolist()) - {UNASSIGNED}),
        "stability_ari": stability.get("ari_mean"),
    }


def subsample_fits(
    space: np.ndarray, topics: np.ndarray, *, options: ThemesParams, seed: int
) -> list[np.ndarray]:
    """The partition fitted again, at its number of themes, on `stability_runs - 1` random
    subsamples of SUBSAMPLE_SHARE of the units (on a large corpus, of the units of
    `stability_pool`); units left out are MISSING."""
    fixed = options.model_copy(update={"n_themes": max(2, len(set(topics.tolist()) - {UNASSIGNED}))})
    n, runs = len(space), []
    pool = stability_pool(n, options=options, seed=seed)
    for r in range(1, options.stability_runs):
        draw = np.random.default_rng(seed + r).choice(
            len(pool), int(SUBSAMPLE_SHARE * len(pool)), replace=False
        )
        keep = pool[np.sort(draw)]
        labels = np.full(n, MISSING, dtype=np.int64)
        labels[keep] = partition(space[keep], options=fixed, seed=seed)[0]
        runs.append(labels)
    return runs


def stability_pool(n: int, *, options: ThemesParams, seed: int) -> np.ndarray:
    """The units the stability refits subsample: every unit; above `fit_sample` units, a
    seeded sample of `fit_sample` / SUBSAMPLE_SHARE of them, so that every refit costs the same
    whatever the corpus, and two refits share most of their units."""
    if n <= options.fit_sample:
        return np.arange(n)
    size = min(n, int(np.ceil(options.fit_sample / SUBSAMPLE_SHARE)))
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def clustering_space(
    texts: list[str],
    embeddings: np.ndarray,
    *,
    options: ThemesParams,
    seed: int,
    prototypes: np.ndarray | None,
    context: np.ndarray | None,
    context_texts: list[str] | None,
    lexical_weight: float,
) -> tuple[np.ndarray, int | None, int, list[str]]:
    """The space the units are clustered in (context, centring, guidance, words, neighbours): (vectors, the
    unit count for the number of themes (None: rows), the least k, notes for the mode)."""
    space, units = unit_rows(np.asarray(embeddings, dtype=np.float64)), None
    notes: list[str] = []
    if context is not None:
        space = with_context(embeddings, context)
        units = len(np.unique(np.round(context, 6), axis=0))
    if options.center:
        space = unit_rows(space - space.mean(axis=0))
        notes.append(", centred")
    min_k = 2
    if options.guided and prototypes is not None and len(prototypes):
        space = guide(space, prototypes, weight=options.guide_weight, floor=options.outlier_threshold)
        min_k = len(prototypes)
        notes.append(f", guided by {len(prototypes)} codes")
    if lexical_weight > 0:
        read, fit_on = texts, None
        if context_texts is not None:  # each unit read with its context; each context counted once
            read = [f"{t} {c}" for t, c in zip(texts, context_texts, strict=True)]
            fit_on = sorted(set(context_texts))
        lexical = lexical_view(read, seed=seed, fit_on=fit_on)
        if lexical is not None:
            space = np.hstack([space, lexical_weight * lexical])
            notes.append(f", with the words' LSA view (weight {lexical_weight:g})")
    if options.smooth_neighbors and len(space) > options.smooth_neighbors + 1:
        exact = len(space) < options.exact_neighbours_below  # else bucketed (a large corpus)
        near = nearest_neighbours(
            space, options.smooth_neighbors, exact_below=options.exact_neighbours_below, seed=seed
        )
        space = (space + neighbour_mean(space, near)) / 2
        where = "" if exact else " (searched within k-means buckets)"
        notes.append(f", each unit averaged with its {options.smooth_neighbors} nearest{where}")
    return space, units, min_k, notes


def lexical_view(
    texts: list[str], *, seed: int, fit_on: list[str] | None = None, dims: int = LEXICAL_DIMS
) -> np.ndarray | None:
    """Unit vectors of a latent semantic analysis of the texts' words (`lexical_weights`);
    None when the documents share too few words for one. `fit_on`: the documents whose
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
    return unit_rows(svd.transform(vectorizer.transform([keyword_text(t) for t in texts])))


def with_context(embeddings: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Unit vectors of (own + context) / 2: each unit seen with its surroundings."""
    return unit_rows(unit_rows(embeddings.astype(np.float64)) + unit_rows(context.astype(np.float64)))
