"""Keywords and readable labels for themes: c-TF-IDF, refined by KeyBERT-inspired and MMR.

BERTopic computes the representations in its "manual" mode: the clustering is ours (passed
as labels), BERTopic only builds the class-based TF-IDF and the representation models on top.
The embedding model behind KeyBERTInspired and MaximalMarginalRelevance is pipeline.embed
(an installed package, never a download).
"""

from __future__ import annotations

import re

import numpy as np

from pipeline.schemas import UNASSIGNED

# Spoken-English fillers that c-TF-IDF would otherwise rank as keywords.
FILLERS = frozenset(
    """
    um er erm uh mm hmm yeah yes oh okay ok like know mean sort kind just really actually think
    thing things got get bit lot don didn doesn isn wasn weren ve ll re going gonna said say
    right well quite probably maybe guess stuff way did does doing done want wanted make
    made come came went go goes little sure lots able pretty definitely especially
    """.split()
)

_CLITIC = re.compile(r"(?<=\w)['\u2019]\w+")
# What is not speech: anything in square brackets (de-identification placeholders such as
# "[PERSON_2]" or "[PERSON: health visitor]", transcribers' notes such as "[laughs]"), and the
# usual transcribers' notes in parentheses ("(laughs)", "(inaudible 00:12)").
_NOT_SPEECH = re.compile(
    r"\[[^\[\]\n]+\]|\((?:laughs?|laughter|laughing|pause[sd]?|long pause|sighs?|coughs?|inaudible"
    r"|unclear|indistinct|crosstalk|overlapping|silence|background noise)\b[^()\n]{0,20}\)",
    re.IGNORECASE,
)


def keyword_text(text: str) -> str:
    """Text for keyword extraction: placeholders, transcribers' notes and clitics ("'s",
    "n't") removed."""
    return _CLITIC.sub("", _NOT_SPEECH.sub(" ", text))


WORD_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"  # words of two or more letters


def vectorizer():
    """Unigrams and bigrams without stop words and fillers.

    c-TF-IDF counts over one document per theme, so ``min_df`` must stay 1: a higher floor
    would drop exactly the words found in one theme only, the ones that name it.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(stop_words=stop_words(), ngram_range=(1, 2), min_df=1, token_pattern=WORD_PATTERN)


def stop_words() -> list[str]:
    """English stop words and spoken fillers: never keywords, nor evidence of a theme."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(ENGLISH_STOP_WORDS | FILLERS)


class PipelineEmbedder:
    """A BERTopic embedding backend that calls pipeline.embed (no model download)."""

    def __new__(cls, model: str, batch_size: int = 64):
        from bertopic.backend import BaseEmbedder

        class _Embedder(BaseEmbedder):
            def embed(self, documents, verbose=False):  # noqa: ARG002 - BERTopic's signature
                from pipeline.encoder import embed_texts

                return embed_texts(list(documents), model=model, batch_size=batch_size, cache_dir=None)

        return _Embedder()


def theme_keywords(
    texts: list[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    top_n: int,
    method: str,
    embed_model: str | None,
    seed: int,
) -> dict[int, list[str]]:
    """Keywords per theme id (unassigned units, -1, are left out)."""
    from bertopic import BERTopic
    from bertopic.cluster import BaseCluster
    from bertopic.dimensionality import BaseDimensionalityReduction

    labels = np.asarray(labels)
    themes = sorted(set(labels.tolist()) - {UNASSIGNED})
    if not themes:
        return {}
    docs = [keyword_text(t) for t in texts]
    representation = None
    embedder = None
    if method == "keybert_mmr" and embed_model is not None:
        from bertopic.representation import KeyBERTInspired, MaximalMarginalRelevance

        embedder = PipelineEmbedder(embed_model)
        # KeyBERT-inspired re-ranks c-TF-IDF candidates by similarity to the theme's
        # representative texts; MMR then removes near-synonyms so the keywords differ.
        representation = [
            KeyBERTInspired(top_n_words=2 * top_n, nr_candidate_words=40, random_state=seed),
            MaximalMarginalRelevance(diversity=0.3, top_n_words=top_n),
        ]
    model = BERTopic(
        embedding_model=embedder,
        umap_model=BaseDimensionalityReduction(),
        hdbscan_model=BaseCluster(),
        vectorizer_model=vectorizer(),
        representation_model=representation,
        top_n_words=max(top_n, 10),
        calculate_probabilities=False,
    )
    try:
        assigned = np.asarray(model.fit_transform(docs, embeddings=embeddings, y=labels)[0])
    except ValueError:
        # Every text reduced to stop words (e.g. "yes", "no idea"): nothing to rank.
        return {t: [] for t in themes}
    # BERTopic renumbers topics by size, breaking ties its own way: find each theme's topic
    # through its units (themes of equal size had swapped keywords before).
    out = {}
    for t in themes:
        ids, counts = np.unique(assigned[labels == t], return_counts=True)
        topic = int(ids[np.argmax(counts)])
        out[int(t)] = [w for w, _ in (model.get_topic(topic) or []) if w][:top_n]
    return out
