"""Themes per question: each question's answers clustered apart, the results side by side."""

from __future__ import annotations

import numpy as np

from pipeline.themes.discover import Discovery
from pipeline.themes.per_question import MIN_UNITS, OTHER, discover_per_question, question_groups
from pipeline.themes.stage import summary


def _fake(idx: np.ndarray) -> Discovery:
    """Two themes per group (by parity of the unit number), one parent, label "Waiting" on the
    first theme of every group, and one unit left unassigned."""
    topics = (idx % 2).astype(int)
    topics[0] = -1
    return Discovery(
        topics=topics,
        keywords={0: ["wait"], 1: [f"w{len(idx)}"]},
        mode="k-means",
        labels={0: "Waiting", 1: f"Theme of {len(idx)} answers"},
        parents={0: 0, 1: 0},
        parent_keywords={0: ["p"]},
        stability={
            "runs": 5,
            "ari_mean": 0.5 if len(idx) > 40 else 0.8,
            "ari_min": 0.4,
            "themes": {0: {"unstable": False}, 1: {"unstable": True}},
        },
        procedure={0: False, 1: len(idx) > 40},
    )


def test_questions_group_and_small_ones_pool():
    big = ["q1"] * (MIN_UNITS + 5) + ["q2"] * MIN_UNITS
    groups, rest = question_groups(big + ["q3"] * 3)
    assert [q for q, _ in groups] == ["q1", "q2"] and rest.tolist() == list(range(len(big), len(big) + 3))
    groups, rest = question_groups(["q1"] * MIN_UNITS + ["a"] * (MIN_UNITS // 2) + ["b"] * (MIN_UNITS // 2))
    assert [q for q, _ in groups] == ["q1", OTHER] and len(rest) == 0
    assert groups[1][1].tolist() == list(range(MIN_UNITS, 2 * MIN_UNITS))


def test_themes_of_each_question_side_by_side():
    questions = ["How was the wait?"] * 50 + ["What helped?"] * 30 + ["Other?"] * 4
    found, parts = discover_per_question(questions, _fake)
    assert sorted(found.keywords) == [0, 1, 2, 3]
    first, second = np.arange(50), np.arange(50, 80)
    assert set(found.topics[first]) == {-1, 0, 1} and set(found.topics[second]) == {-1, 2, 3}
    assert (found.topics[80:] == -1).all()  # too few answers to cluster, even pooled: counted
    assert found.labels == {
        0: "Waiting on question 1",
        1: "Theme of 50 answers",
        2: "Waiting on question 2",
        3: "Theme of 30 answers",
    }
    assert found.parents == {0: 0, 1: 0, 2: 1, 3: 1} and sorted(found.parent_keywords) == [0, 1]
    assert found.procedure == {0: False, 1: True, 2: False, 3: False}
    assert found.stability["ari_mean"] == np.average([0.5, 0.8], weights=[50, 30])
    assert found.stability["ari_min"] == 0.4 and sorted(found.stability["themes"]) == [0, 1, 2, 3]
    assert [(p["number"], p["units"], p["themes"]) for p in parts] == [
        (1, 50, [0, 1]),
        (2, 30, [2, 3]),
        (None, 4, []),
    ]
    rows = summary(found, len(questions), parts)["per_question"]
    assert rows == [
        {"number": 1, "units": 50, "themes": 2},
        {"number": 2, "units": 30, "themes": 2},
        {"number": None, "units": 4, "themes": 0},
    ]
    assert summary(found, len(questions), parts)["unstable_themes"] == 2
    assert "How was the wait" not in str(summary(found, len(questions), parts))  # no text in metrics
