import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline.card_body import exemplar_indices
from pipeline.comparison import best_matching_codes
from pipeline.config import ThemesParams
from pipeline.errors import UserError
from pipeline.themes import discover_themes, theme_cards
from pipeline.themes.cluster import fewest_within, k_grid, outlier_policy, rule_k
from pipeline.themes.discover import Discovery, guide, lexical_view, with_context
from pipeline.themes.hierarchy import parent_themes
from pipeline.themes.keywords import keyword_text
from pipeline.themes.labels import theme_labels
from pipeline.themes.stability import best_match_jaccard, stability_report
from pipeline.themes.stage import turn_context
from pipeline.vectors import nearest_neighbours

WORDS = [
    "referral letter waiting list",
    "training course learning session",
    "funding budget money commissioners",
    "baby mother bonding play",
]


SPACY = ThemesParams().spacy_model


def _blobs(seed=0, per=30, k=4, spread=0.05, sizes=None):
    """`k` separated groups of `per` units (or of `sizes`), each with its own words."""
    sizes = [per] * k if sizes is None else list(sizes)
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[: len(sizes)]
    x = np.vstack([c + spread * rng.standard_normal((n, 16)) for c, n in zip(centres, sizes, strict=True)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    texts = [f"{WORDS[t]} item{i % 7}" for i, t in enumerate(truth)]
    return texts, x, truth


# Fast: PCA (no numba compilation), c-TF-IDF keywords (no model), and a small corpus floor
# low enough that the k-means path runs.
FAST = ThemesParams(
    reducer="pca",
    n_components=4,
    min_themes=2,
    max_themes=8,
    k_rule="silhouette",
    small_corpus=20,
    keywords="ctfidf",
    stability_runs=3,
)


def test_silhouette_picks_the_number_of_separated_groups_and_is_seeded():
    texts, x, truth = _blobs(sizes=(25, 20, 40, 30))
    a = discover_themes(texts, x, options=FAST, seed=1)
    b = discover_themes(texts, x, options=FAST, seed=1)
    assert (a.topics == b.topics).all()
    assert adjusted_rand_score(truth, a.topics) == pytest.approx(1.0)
    assert a.k_scores and max(a.k_scores, key=a.k_scores.get) == 4
    assert "silhouette" in a.mode
    # Themes are numbered by size, theme 0 the largest.
    assert [int((a.topics == t).sum()) for t in range(4)] == [40, 30, 25, 20]
    # Each theme's keywords and its label are its own units' words; labels are unique.
    assert set(a.labels) == set(a.keywords) == {0, 1, 2, 3}
    for t in range(4):
        own = set(WORDS[np.bincount(truth[a.topics == t]).argmax()].split())
        assert a.keywords[t] and all(set(kw.split()) <= own for kw in a.keywords[t])
        assert set(a.labels[t].lower().split()) <= own
    assert len(set(a.labels.values())) == 4


def test_fixed_number_of_themes():
    texts, x, _ = _blobs()
    found = discover_themes(texts, x, options=FAST.model_copy(update={"n_themes": 2}), seed=0)
    assert len(set(found.topics.tolist()) - {-1}) == 2


def test_keywords_name_the_theme():
    texts, x, truth = _blobs()
    found = discover_themes(texts, x, options=FAST, seed=0)
    for t in set(found.topics.tolist()) - {-1}:
        source = WORDS[np.bincount(truth[found.topics == t]).argmax()]
        assert found.keywords[t][0].split()[0] in source


def test_stability_is_reported_per_theme():
    texts, x, _ = _blobs()
    found = discover_themes(texts, x, options=FAST, seed=0)
    assert found.stability["runs"] == 3
    assert found.stability["ari_mean"] == pytest.approx(1.0)
    assert all(
        not t["unstable"] and t["jaccard"] == pytest.approx(1.0) for t in found.stability["themes"].values()
    )


def test_stability_flags_a_theme_that_does_not_reappear():
    a = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    b = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    c = np.array([0, 0, 0, 1, 1, 2, 2, 1, 1])
    assert best_match_jaccard(a, a) == {0: 1.0, 1: 1.0, 2: 1.0}
    assert best_match_jaccard(a, b)[2] == pytest.approx(2 / 3)
    report = stability_report([a, b, c], unstable_below=0.6)
    assert report["runs"] == 3 and report["ari_min"] < report["ari_mean"] <= 1
    assert report["themes"][0] == {"jaccard": 1.0, "unstable": False}
    assert report["themes"][1]["jaccard"] == pytest.approx((3 / 4 + 2 / 5) / 2)
    assert report["themes"][2]["jaccard"] == pytest.approx((2 / 3 + 2 / 5) / 2)
    assert report["themes"][1]["unstable"] and report["themes"][2]["unstable"]
    assert stability_report([a], unstable_below=0.5)["ari_mean"] is None


def test_small_corpus_mode():
    texts, x, truth = _blobs(per=5, k=3)
    found = discover_themes(texts, x, options=ThemesParams(keywords="ctfidf", stability_runs=1), seed=0)
    assert "(k=3 of 2-5, by silhouette)" in found.mode  # a small corpus: every k from 2 to units / 3
    assert adjusted_rand_score(truth, found.topics) == pytest.approx(1.0)


def test_outlier_policy_floor_and_cap():
    x = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0], [0, 0, 1], [0, 0.05, 1]], dtype=float)
    labels = np.array([0, 0, 1, 1, -1, -1])
    kept = outlier_policy(x, labels, floor=0.5, max_share=1.0)
    assert kept.tolist() == [0, 0, 1, 1, -1, -1]  # far from every theme: stay unassigned
    capped = outlier_policy(x, labels, floor=0.5, max_share=0.2)
    assert (capped == -1).sum() == 1  # at most 20% of 6 units unassigned
    assert capped[5] == 1  # the more similar of the two joined its nearest theme
    joined = outlier_policy(x, np.array([0, 0, 1, 1, 1, -1]), floor=-1.0, max_share=0.0)
    assert (joined != -1).all()


def test_guidance_pulls_units_towards_codes():
    texts, x, _ = _blobs(per=10, k=2)
    protos = np.eye(16)[[0]]
    nudged = guide(x, protos, weight=0.5, floor=0.5)
    assert (nudged[:10] @ protos[0] > x[:10] @ protos[0]).all()
    assert np.allclose(nudged[10:], x[10:])  # not near any code: untouched
    assert np.allclose(np.linalg.norm(nudged, axis=1), 1)
    guided = FAST.model_copy(update={"guided": True})
    found = discover_themes(texts, x, options=guided, seed=0, prototypes=np.eye(16)[:3])
    assert len(set(found.topics.tolist())) >= 3  # at least one theme per code
    assert "guided by 3 codes" in found.mode


def test_sqrt_rule_scales_k_with_units_within_bounds():
    assert rule_k(800, lo=8, hi=60) == 20
    assert rule_k(4000, lo=8, hi=60) == 45
    assert rule_k(50, lo=8, hi=60) == 8
    assert rule_k(100000, lo=8, hi=60) == 60
    texts, x, _ = _blobs(per=50, k=4)  # 200 units: k = 10
    sqrt = FAST.model_copy(update={"k_rule": "sqrt", "max_themes": 20})
    found = discover_themes(texts, x, options=sqrt, seed=0)
    assert "k=10, sqrt rule" in found.mode
    assert len(set(found.topics.tolist()) - {-1}) == 10


def _turns(per_turn=5, n_turns=40, seed=0):
    """Segments of turns: a turn's segments are noisy views of the turn's topic (4 topics)."""
    rng = np.random.default_rng(seed)
    topic = np.arange(n_turns) % 4
    centre = np.eye(16)[topic].repeat(per_turn, axis=0)
    x = centre + 0.9 * rng.standard_normal(centre.shape)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    segs = pd.DataFrame(
        {
            "transcript_id": ["t1"] * (per_turn * n_turns),
            "turn_id": np.arange(n_turns).repeat(per_turn),
            "text": [f"{WORDS[t]} item{i}" for i, t in enumerate(topic.repeat(per_turn))],
        }
    )
    return segs, x, topic.repeat(per_turn)


def test_turn_context_is_the_turn_mean_and_respects_the_option():
    segs, x, _ = _turns()
    ctx = turn_context(segs, x, options=FAST)
    mean = x[:5].mean(axis=0)
    assert np.allclose(ctx[:5], mean / np.linalg.norm(mean))
    assert turn_context(segs, x, options=FAST.model_copy(update={"context": "none"})) is None
    assert turn_context(segs.drop(columns="turn_id"), x, options=FAST) is None
    both = with_context(x, ctx)
    assert np.allclose(np.linalg.norm(both, axis=1), 1)


def test_turn_context_recovers_turn_topics_and_counts_turns_for_k():
    segs, x, truth = _turns()
    # the embeddings' context only (the texts name their topic: the lexical view would too)
    fixed = FAST.model_copy(
        update={"n_themes": 4, "stability_runs": 1, "lexical_weights": (0.0,), "smooth_neighbors": 0}
    )
    alone = discover_themes(segs["text"].tolist(), x, options=fixed, seed=0)
    ctx = turn_context(segs, x, options=FAST)
    joint = discover_themes(segs["text"].tolist(), x, options=fixed, seed=0, context=ctx)
    assert adjusted_rand_score(truth, joint.topics) > adjusted_rand_score(truth, alone.topics) + 0.15
    # 200 segments but 40 turns: the sqrt rule counts the turns (k = sqrt(20) -> 4).
    sqrt = FAST.model_copy(update={"k_rule": "sqrt", "min_themes": 2})
    found = discover_themes(segs["text"].tolist(), x, options=sqrt, seed=0, context=ctx)
    assert "k=4, sqrt rule" in found.mode
    with pytest.raises(UserError, match="context"):
        discover_themes(segs["text"].tolist(), x, options=sqrt, seed=0, context=ctx[:10])


def test_hierarchy_groups_near_themes():
    texts, x, _ = _blobs(k=4)
    labels = np.repeat(np.arange(4), 30)
    x = x.copy()
    x[60:, 0] += 3  # themes 2 and 3 lean towards theme 0 ... but each other most
    x[60:, 1] += 0
    x[60:90, 3] += 2
    x[90:, 2] += 2
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    parents = parent_themes(x, labels, n_parents=2)
    assert parents[2] == parents[3] and len(set(parents.values())) == 2
    assert parent_themes(x[:60], labels[:60], n_parents=None) == {0: 0, 1: 1}


def test_too_few_texts():
    with pytest.raises(UserError, match="at least"):
        discover_themes(["a", "b"], np.eye(2), options=FAST, seed=0)


def test_placeholders_and_fillers_are_not_keywords():
    texts, x, _ = _blobs()
    texts = [t + " [PERSON_1] [PLACE_2] [PERSON: health visitor] yeah wasn't doing [laughs]" for t in texts]
    found = discover_themes(texts, x, options=FAST, seed=0)
    words = {w for kws in found.keywords.values() for k in kws for w in k.split()}
    assert not words & {"person", "place", "health", "visitor", "yeah", "wasn", "doing", "laughs"}


def test_keyword_text_drops_transcribers_notes_and_placeholders():
    text = "so [laughs] it's [PERSON_1] fine [inaudible 00:12] at [PERSON: health visitor] clinic"
    assert keyword_text(text).split() == ["so", "it", "fine", "at", "clinic"]
    text = "well (laughs) the (Inaudible 00:12) clinic (NHS) she laughs (long pause)"
    assert keyword_text(text).split() == ["well", "the", "clinic", "(NHS)", "she", "laughs"]


def test_labels_are_phrases_typical_of_their_theme_and_unique():
    texts = [
        "We talked about families in team meetings every week.",
        "The team meetings were where we talked about families.",
        "Talking about families in team meetings helped [PERSON_2] a lot.",
        "I was waiting for a referral letter for months.",
        "The referral letter took weeks, I kept waiting for a referral.",
        "Waiting for a referral was the hardest part, um, yeah.",
        "Mm, yeah, well, you know.",
        "Yeah, I mean, you know, sort of.",
    ]
    topics = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    vectors = np.eye(8)
    labels, procedure = theme_labels(texts, vectors, topics, model=SPACY, fallback={2: ["yeah", "mean"]})
    assert labels[0].lower() in {"team meetings", "talked about families", "talking about families"}
    assert "referral" in labels[1].lower()
    assert len(set(labels.values())) == 3  # unique
    for label in labels.values():
        assert 2 <= len(label.split()) <= 10 and label[0].isupper()
        assert "[" not in label and "person" not in label.lower()
    assert labels[2].startswith("About ")  # no phrase of its own: what its keywords say, as a phrase
    assert not any(procedure.values())


def test_interview_procedure_is_marked():
    texts = [
        "Yes, I read the information sheet and I signed the consent form.",
        "I signed the consent form and sent it back to you.",
        "That's fine, you can start recording now.",
        "The health visitor rang the duty line about the baby.",
        "We rang the duty line when the baby would not settle.",
        "The duty line called us back the same day.",
    ]
    topics = np.array([0, 0, 0, 1, 1, 1])
    labels, procedure = theme_labels(texts, np.eye(6), topics, model=SPACY, fallback={})
    assert procedure == {0: True, 1: False}
    assert "duty line" in labels[1].lower()


def test_exemplars_are_central_and_diverse():
    x = np.array([[1, 0], [0.99, 0.141], [0.98, 0.199], [0.6, 0.8]], dtype=float)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    picks = exemplar_indices(x, k=2, diversity=0.5)
    assert picks[0] in (1, 2)  # the most central
    assert picks[1] == 3  # the most different, not its near-duplicate neighbour


def test_cards_report_prevalence_hierarchy_and_stability():
    segs = pd.DataFrame(
        {
            "segment_id": ["a", "b", "c", "d", "e"],
            "transcript_id": ["T1", "T1", "T2", "T3", "T3"],
            "participant_id": ["P1", "P1", "P2", "P3", "P3"],
            "group": ["parent", "parent", "referrer", "parent", "parent"],
            "turn_id": [0, 1, 0, 0, 1],
            "text": ["v", "w", "x", "y", "z"],
        }
    )
    topics = np.array([0, 0, 0, 1, -1])
    assign = pd.DataFrame({"segment_id": list("abcde"), "theme_id": topics, "theme_label": ["t"] * 5})
    found = Discovery(
        topics=topics,
        keywords={0: ["alpha", "beta"], 1: ["gamma"]},
        mode="test",
        labels={0: "Alpha, beta", 1: "Gamma"},
        parents={0: 0, 1: 0},
        parent_keywords={0: ["omega"]},
        stability={
            "runs": 2,
            "ari_mean": 0.7,
            "ari_min": 0.7,
            "themes": {0: {"jaccard": 0.9, "unstable": False}, 1: {"jaccard": 0.2, "unstable": True}},
        },
    )
    cards = theme_cards(segs, np.eye(5), assign, found, n_quotes=2)
    json.dumps(cards)  # serialisable as it is written
    card = cards["themes"][0]
    assert cards["unassigned"] == 1 and cards["stability"]["ari_mean"] == 0.7
    assert card["size"] == 3 and card["label"] == "Alpha, beta"
    assert card["prevalence"]["parent"] == {"participants": 1, "of": 2, "segments": 2}
    assert card["coverage"] == {"T1": 2, "T2": 1}
    assert len(card["quotes"]) == 2 and set(card["quotes"][0]) == {
        "segment_id",
        "transcript_id",
        "participant_id",
        "group",
        "turn_id",
        "text",
    }
    # a parent is labelled as its largest theme (a readable phrase, not a keyword list)
    assert card["parent_id"] == 0 and card["parent_label"] == "Alpha, beta"
    assert not card["unstable"] and cards["themes"][1]["unstable"]
    assert card["procedure"] is False and "best_code" not in card
    assert cards["parents"] == [
        {"parent_id": 0, "label": "Alpha, beta", "keywords": ["omega"], "theme_ids": [0, 1], "size": 4}
    ]
    coded = theme_cards(segs, np.eye(5), assign, found, n_quotes=2, best_codes={0: {"code": "c", "f1": 0.8}})
    assert (
        coded["themes"][0]["best_code"] == {"code": "c", "f1": 0.8}
        and coded["themes"][1]["best_code"] is None
    )


def test_lexical_view_reads_shared_words_and_never_placeholders():
    texts, _, truth = _blobs(per=5)
    view = lexical_view(texts, seed=0)
    assert np.allclose(np.linalg.norm(view, axis=1), 1.0)
    sims = view @ view.T
    same = truth[:, None] == truth[None, :]
    assert sims[same].min() > sims[~same].max()
    # only placeholders and transcribers' notes in common: no shared vocabulary, no view
    shared = "[PERSON] [PLACE] [PERSON: health visitor] [laughs] [pause] [inaudible]"
    assert lexical_view([f"{shared} {w}" for w in ("alpha", "beta", "gamma")], seed=0) is None
    # document frequencies from the documents it is fitted on: each turn counted once
    turns = ["alpha beta gamma delta", "alpha beta epsilon zeta", "gamma delta epsilon zeta"]
    assert lexical_view(["alpha", "beta"], seed=0) is None
    assert lexical_view(["alpha", "beta"], seed=0, fit_on=turns).shape == (2, 2)


def test_words_separate_themes_the_embeddings_cannot():
    texts, _, truth = _blobs()
    noise = np.random.default_rng(3).standard_normal((len(texts), 16))
    opts = FAST.model_copy(update={"n_themes": 4, "k_rule": "sqrt"})
    without = discover_themes(
        texts, noise, options=opts.model_copy(update={"lexical_weights": (0.0,)}), seed=0
    )
    with_words = discover_themes(
        texts, noise, options=opts.model_copy(update={"lexical_weights": (2.0,)}), seed=0
    )
    assert adjusted_rand_score(truth, without.topics) < 0.2
    assert adjusted_rand_score(truth, with_words.topics) > 0.9
    assert "LSA view (weight 2)" in with_words.mode and "LSA" not in without.mode
    with pytest.raises(UserError, match="context_texts"):
        discover_themes(texts, noise, options=opts, seed=0, context_texts=texts[:5])


def test_the_grid_of_theme_counts_grows_with_the_units_and_has_no_fixed_cap():
    grid = k_grid(3080, options=ThemesParams())
    assert grid[0] == 8 and grid[-1] == 308 and 77 < grid[-1]  # banking77: 77 categories fit
    assert all(b / a <= 1.4 for a, b in zip(grid, grid[1:], strict=False))
    assert k_grid(3080, options=ThemesParams(max_themes=40))[-1] == 40
    assert k_grid(30, options=ThemesParams()) == list(range(2, 11))  # a small corpus: 2 to units / 3


def test_silhouette_tolerance_takes_the_fewest_themes_near_the_best():
    curve = {8: 0.10, 16: 0.185, 32: 0.195, 64: 0.20}
    # the floor 0.18 is crossed 94% of the way from 8 to 16 in log k: 8 * 2 ** 0.94 = 15.4
    assert fewest_within(curve, 0.9) == 15 and fewest_within(curve, 1.0) == 64
    assert fewest_within({8: 0.10, 16: 0.17, 32: 0.20}, 0.9) == 20  # a third of the way to 32
    # a nudge across the floor moves k by one theme, not by a grid step (16 -> 32)
    assert [fewest_within({8: 0.10, 16: s, 32: 0.20}, 0.9) for s in (0.179, 0.181)] == [17, 16]

    assert fewest_within({8: 0.073, 12: 0.072, 83: 0.078}, 0.9) == 8  # a flat curve: the fewest
    assert fewest_within({4: -0.2, 8: -0.1}, 0.9) == 8  # nothing positive: the best


def test_nearest_neighbours_are_exact_and_exclude_the_unit_itself():
    x = np.random.default_rng(0).normal(size=(300, 5))
    near = nearest_neighbours(x, 4, chunk=64)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    assert (near == np.argsort(-sims, axis=1)[:, :4]).all()


def test_the_steadiest_representation_is_chosen_and_reported():
    texts, x, _ = _blobs()
    found = discover_themes(texts, x, options=FAST.model_copy(update={"lexical_weights": (0.0, 0.6)}), seed=0)
    tried = {c["lexical_weight"]: c["stability_ari"] for c in found.candidates}
    assert set(tried) == {0.0, 0.6}
    best = max(tried, key=lambda w: tried[w])
    assert ("LSA view" in found.mode) == (best > 0)
    assert found.stability["ari_mean"] == tried[best]


def test_best_matching_code_per_theme():
    gold = pd.DataFrame({"id": ["a", "b", "c", "d"], "code": ["x", "x", "y", "y"]})
    best = best_matching_codes(np.array([0, 0, 1, -1]), ["a", "b", "c", "d"], gold)
    assert best == {0: {"code": "x", "f1": 1.0}, 1: {"code": "y", "f1": round(2 / 3, 4)}}
