import numpy as np
import pandas as pd
import pytest

from pipeline.config import ThemesParams
from pipeline.errors import UserError
from pipeline.themes import discover_themes, theme_cards
from pipeline.themes.cards import exemplar_indices


def _blobs(seed=0, per=12):
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:3]
    x = np.vstack([c + 0.05 * rng.standard_normal((per, 8)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    words = ["referral letter waiting", "training course learning", "funding budget money"]
    texts = [f"{words[i // per]} item {i}" for i in range(3 * per)]
    return texts, x, np.repeat([0, 1, 2], per)


FAST = ThemesParams(reducer="pca", clusterer="kmeans", n_clusters=3, n_components=3, min_cluster_size=2)


def test_kmeans_recovers_separated_groups_and_is_seeded():
    texts, x, truth = _blobs()
    a = discover_themes(texts, x, options=FAST, seed=1)
    b = discover_themes(texts, x, options=FAST, seed=1)
    assert (a.topics == b.topics).all()
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, a.topics) == pytest.approx(1.0)
    assert all(kw for kw in a.keywords.values())


def test_small_corpus_mode():
    texts, x, _ = _blobs(per=4)
    found = discover_themes(texts, x, options=ThemesParams(), seed=0)
    assert found.mode.startswith("small-corpus")
    assert (found.topics >= 0).all()


def test_too_few_texts():
    with pytest.raises(UserError, match="at least"):
        discover_themes(["a", "b"], np.eye(2), options=FAST, seed=0)


def test_placeholders_are_not_keywords():
    texts, x, _ = _blobs()
    texts = [t + " [PERSON_1] [PLACE_2]" for t in texts]
    found = discover_themes(texts, x, options=FAST, seed=0)
    assert not any("person" in k or "place" in k for kws in found.keywords.values() for k in kws)


def test_exemplars_are_central_and_diverse():
    x = np.array([[1, 0], [0.99, 0.141], [0.98, 0.199], [0.6, 0.8]], dtype=float)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    picks = exemplar_indices(x, k=2, diversity=0.5)
    assert picks[0] in (1, 2)  # the most central
    assert picks[1] == 3  # the most different, not its near-duplicate neighbour


def test_cards_report_prevalence_by_group():
    segs = pd.DataFrame(
        {
            "segment_id": ["a", "b", "c", "d"],
            "transcript_id": ["T1", "T1", "T2", "T3"],
            "participant_id": ["P1", "P1", "P2", "P3"],
            "group": ["parent", "parent", "referrer", "parent"],
            "turn_id": [0, 1, 0, 0],
            "text": ["w", "x", "y", "z"],
        }
    )
    assign = pd.DataFrame({"segment_id": list("abcd"), "theme_id": [0, 0, 0, -1], "theme_label": ["t"] * 4})
    cards = theme_cards(segs, np.eye(4), assign, {0: ["alpha", "beta"]}, n_quotes=2)
    card = cards["themes"][0]
    assert cards["unassigned"] == 1
    assert card["size"] == 3 and card["label"] == "alpha / beta"
    assert card["prevalence"]["parent"] == {"participants": 1, "of": 2, "segments": 2}
    assert card["coverage"] == {"T1": 2, "T2": 1}
    assert len(card["quotes"]) == 2
