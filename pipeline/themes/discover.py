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

from dataclasses import dataclass, field

import numpy as np

from pipeline.config import ThemesParams
from pipeline.errors import UserError
from pipeline.themes.cluster import partition
from pipeline.themes.hierarchy import parent_themes
from pipeline.themes.keywords import WORD_PATTERN, keyword_text, stop_words, theme_keywords, theme_label
from pipeline.themes.stability import stability_report
from pipeline.vectors import unit_rows

MIN_TEXTS = 3


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
    space, and the number of distinct contexts is the unit count of the k rule;
    `context_texts` (one per unit, e.g. its turn's text) join the units' own in the lexical view.
    """
    n = len(texts)
    if n < MIN_TEXTS:
        raise UserError(f"theme discovery needs at least {MIN_TEXTS} texts, got {n}")
    if embeddings.shape[0] != n:
        raise UserError(f"embeddings have {embeddings.shape[0]} rows for {n} texts")
    space, units, min_k, notes = clustering_space(
        texts,
        embeddings,
        options=options,
        seed=seed,
        prototypes=prototypes,
        context=context,
        context_texts=context_texts,
    )
    topics, mode, scores = partition(space, options=options, seed=seed, min_k=min_k, units=units)
    mode += "".join(notes)
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
    parents = parent_themes(unit_rows(embeddings), topics, n_parents=options.n_parents)
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


def clustering_space(
    texts: list[str],
    embeddings: np.ndarray,
    *,
    options: ThemesParams,
    seed: int,
    prototypes: np.ndarray | None,
    context: np.ndarray | None,
    context_texts: list[str] | None,
) -> tuple[np.ndarray, int | None, int, list[str]]:
    """The space the units are clustered in (module docstring, steps 0 and 5): (vectors, the
    unit count of the k rule (None: rows), the least k, notes for the mode)."""
    n = len(texts)
    space, units = embeddings, None
    if context is not None:
        if context.shape != embeddings.shape:
            raise UserError(f"context has shape {context.shape}, embeddings {embeddings.shape}")
        space = with_context(embeddings, context)
        units = len(np.unique(np.round(context, 6), axis=0))
    if context_texts is not None and len(context_texts) != n:
        raise UserError(f"context_texts has {len(context_texts)} rows for {n} texts")
    min_k, notes = 2, []
    if options.guided and prototypes is not None and len(prototypes):
        space = guide(space, prototypes, weight=options.guide_weight, floor=options.outlier_threshold)
        min_k = len(prototypes)
        notes.append(f", guided by {len(prototypes)} codes")
    if options.lexical_weight > 0:
        read, fit_on = texts, None
        if context_texts is not None:  # each unit read with its context; each context counted once
            read = [f"{t} {c}" for t, c in zip(texts, context_texts, strict=True)]
            fit_on = sorted(set(context_texts))
        lexical = lexical_view(read, seed=seed, fit_on=fit_on)
        if lexical is not None:
            space = np.hstack([unit_rows(space), options.lexical_weight * lexical])
            notes.append(f", with the words' LSA view (weight {options.lexical_weight:g})")
    return space, units, min_k, notes


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
    return unit_rows(svd.transform(vectorizer.transform([keyword_text(t) for t in texts])))


def with_context(embeddings: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Unit vectors of (own + context) / 2: each unit seen with its surroundings."""
    return unit_rows(unit_rows(embeddings.astype(np.float64)) + unit_rows(context.astype(np.float64)))
