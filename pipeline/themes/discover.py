"""Cluster segment embeddings into candidate themes with BERTopic (seeded, reproducible)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params, ThemesParams
from pipeline.errors import UserError
from pipeline.io import read_csv, read_matrix, read_table, write_csv, write_json, write_table
from pipeline.schemas import ASSIGNMENTS, SEGMENTS
from pipeline.themes.cards import theme_cards, theme_label

log = logging.getLogger(__name__)

# Spoken-English fillers that c-TF-IDF would otherwise rank as keywords.
FILLERS = (
    "um",
    "er",
    "erm",
    "uh",
    "mm",
    "hmm",
    "yeah",
    "yes",
    "oh",
    "okay",
    "ok",
    "like",
    "know",
    "mean",
    "sort",
    "kind",
    "just",
    "really",
    "actually",
    "think",
    "thing",
    "things",
    "got",
    "bit",
    "lot",
    "don",
    "didn",
    "doesn",
    "ve",
    "ll",
    "re",
    "going",
    "gonna",
    "said",
    "say",
    "right",
    "well",
    "quite",
    "probably",
    "maybe",
    "guess",
    "stuff",
    "way",
)
_PLACEHOLDER = re.compile(r"\[[A-Z_]+(?:_\d+)?\]")
MIN_TEXTS = 3


@dataclass(frozen=True)
class Discovery:
    topics: np.ndarray  # theme id per segment, -1 = unassigned
    keywords: dict[int, list[str]]
    mode: str


_CLITIC = re.compile(r"(?<=\w)['\u2019]\w+")


def keyword_text(text: str) -> str:
    """Text for keyword extraction: placeholders and clitics ("'s", "n't") removed."""
    return _CLITIC.sub("", _PLACEHOLDER.sub(" ", text))


def _vectorizer(n_docs: int):
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    return CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | set(FILLERS)),
        ngram_range=(1, 2),
        min_df=2 if n_docs >= 50 else 1,
    )


def _models(n_docs: int, *, options: ThemesParams, seed: int):
    """(reducer, clusterer, mode) for a corpus of `n_docs` texts."""
    from hdbscan import HDBSCAN
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    n_components = min(options.n_components, n_docs - 2)
    small = n_docs < 5 * options.min_cluster_size
    if options.clusterer == "kmeans" or small:
        # Density clustering needs more texts than this; k-means with k ~ sqrt(n/2) instead.
        k = (
            options.n_clusters
            if not small
            else int(np.clip(round(np.sqrt(n_docs / 2)), 2, options.n_clusters))
        )
        k = min(k, n_docs - 1)
        clusterer = KMeans(n_clusters=k, random_state=seed, n_init=10)
        mode = "kmeans" if not small else f"small-corpus kmeans (k={k})"
    else:
        clusterer = HDBSCAN(
            min_cluster_size=options.min_cluster_size, metric="euclidean", prediction_data=True
        )
        mode = "hdbscan"
    if options.reducer == "umap" and not small:
        from umap import UMAP

        reducer = UMAP(
            n_neighbors=min(options.n_neighbors, n_docs - 1),
            n_components=n_components,
            min_dist=0.0,
            metric="cosine",
            random_state=seed,
        )
    else:
        reducer = PCA(n_components=n_components, random_state=seed)
    return reducer, clusterer, mode


def discover_themes(
    texts: list[str], embeddings: np.ndarray, *, options: ThemesParams, seed: int
) -> Discovery:
    """Fit BERTopic on precomputed embeddings; reassign outliers above a similarity floor."""
    from bertopic import BERTopic

    n = len(texts)
    if n < MIN_TEXTS:
        raise UserError(f"theme discovery needs at least {MIN_TEXTS} texts, got {n}")
    if embeddings.shape[0] != n:
        raise UserError(f"embeddings have {embeddings.shape[0]} rows for {n} texts")
    reducer, clusterer, mode = _models(n, options=options, seed=seed)
    texts = [keyword_text(t) for t in texts]
    model = BERTopic(
        umap_model=reducer,
        hdbscan_model=clusterer,
        vectorizer_model=_vectorizer(n),
        top_n_words=options.top_n_words,
        calculate_probabilities=False,
    )
    topics, _ = model.fit_transform(texts, embeddings=embeddings)
    topics = np.asarray(topics)
    if options.reduce_outliers and (topics == -1).any() and (topics != -1).any():
        new = model.reduce_outliers(
            texts,
            topics.tolist(),
            strategy="embeddings",
            embeddings=embeddings,
            threshold=options.outlier_threshold,
        )
        topics = np.asarray(new)
        model.update_topics(
            texts, topics=topics.tolist(), vectorizer_model=_vectorizer(n), top_n_words=options.top_n_words
        )
    keywords = {
        int(t): [w for w, _ in (model.get_topic(t) or []) if w][: options.top_n_words]
        for t in sorted(set(topics.tolist()))
        if t != -1
    }
    return Discovery(topics=topics, keywords=keywords, mode=mode)


def assignments_table(ids: list[str], found: Discovery) -> pd.DataFrame:
    labels = [theme_label(found.keywords.get(int(t), [])) if t != -1 else "unassigned" for t in found.topics]
    return pd.DataFrame({"segment_id": ids, "theme_id": found.topics, "theme_label": labels})


def run(
    params: Params, *, segments_path: Path, embeddings_path: Path, out: Path, cards: Path, metrics: Path
) -> dict:
    segments = read_table(segments_path, SEGMENTS)
    embeddings, _ = read_matrix(embeddings_path)
    found = discover_themes(segments["text"].tolist(), embeddings, options=params.themes, seed=params.seed)
    assignments = assignments_table(segments["segment_id"].tolist(), found)
    write_table(out, assignments, ASSIGNMENTS)
    write_json(
        cards, theme_cards(segments, embeddings, assignments, found.keywords, n_quotes=params.themes.n_quotes)
    )
    summary = {
        "mode": found.mode,
        "themes": len(found.keywords),
        "segments": int(len(segments)),
        "unassigned_share": float(np.mean(found.topics == -1)) if len(found.topics) else 0.0,
    }
    write_json(metrics, summary)
    return summary


def run_csv(params: Params, *, in_path: Path, out: Path, progress: bool = False) -> dict:
    """The CLI contract: `id,text[,group]` rows -> `id,theme_id,theme_label` rows."""
    from pipeline.embed import embed_texts

    df = read_csv(in_path, ("id", "text"))
    if df["id"].duplicated().any():
        line = int(df.index[df["id"].duplicated()][0]) + 2
        raise UserError(f"{in_path} line {line}: duplicate id")
    embeddings = embed_texts(
        df["text"].tolist(),
        model=params.embed.model,
        batch_size=params.embed.batch_size,
        cache_dir=Path(params.embed.cache_dir),
        progress=progress,
    )
    found = discover_themes(df["text"].tolist(), embeddings, options=params.themes, seed=params.seed)
    table = assignments_table(df["id"].tolist(), found).rename(columns={"segment_id": "id"})
    write_csv(out, table)
    return {"rows": len(table), "themes": len(found.keywords), "mode": found.mode}
