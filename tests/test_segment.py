import json

import pandas as pd

from pipeline.config import SegmentParams
from pipeline.segment import segment_turns


def _turns():
    original = "Yeah. We met [the team] at Kirsty's flat. It really helped us both a lot."
    # "Kirsty's" (27..35) replaced by "[PERSON_1]"
    spans = [{"start": 27, "end": 35, "label": "PERSON", "replacement": "[PERSON_1]", "detector": "x"}]
    text = original[:27] + "[PERSON_1]" + original[35:]
    return original, pd.DataFrame(
        {
            "transcript_id": ["T1", "T1"],
            "participant_id": ["P1", "P1"],
            "group": ["parent", "parent"],
            "turn_id": [0, 1],
            "role": ["interviewer", "participant"],
            "start": [0, 100],
            "end": [10, 100 + len(original)],
            "text": ["Tell me more.", text],
            "spans": ["[]", json.dumps(spans)],
        }
    )


def test_sentences_of_participant_turns_with_original_offsets():
    original, turns = _turns()
    segs, metrics = segment_turns(turns, options=SegmentParams(unit="sentence", min_words=3))
    assert segs["text"].tolist() == [
        "We met [the team] at [PERSON_1] flat.",
        "It really helped us both a lot.",
    ]
    assert metrics["dropped_backchannel"] == 1  # "Yeah."
    assert set(segs["role"]) == {"participant"}
    for row in segs.itertuples():
        assert original[row.orig_start - 100 : row.orig_end - 100].startswith(row.text[:6])
    assert original[segs.orig_end.iloc[1] - 100 - 1] == "."
    assert segs["segment_id"].is_unique


def test_turn_units_and_interviewer_option():
    _, turns = _turns()
    segs, _ = segment_turns(turns, options=SegmentParams(unit="turn", min_words=1, include_interviewer=True))
    assert segs["role"].tolist() == ["interviewer", "participant"]
    assert segs["orig_start"].tolist() == [0, 100]


def _turn(text, role="participant", turn_id=0):
    return {
        "transcript_id": "T1",
        "participant_id": "P1",
        "group": "parent",
        "turn_id": turn_id,
        "role": role,
        "start": 0,
        "end": len(text),
        "text": text,
        "spans": "[]",
    }


def test_backchannels_and_fillers_are_dropped_and_counted():
    from pipeline.speech import is_backchannel

    assert is_backchannel("Yeah, right, okay.")
    assert is_backchannel("Mm-hm.") and is_backchannel("Uh-huh, yeah yeah.")
    assert not is_backchannel("Yeah, the waiting list was long.")
    turns = pd.DataFrame(
        [
            _turn("Mm-hm."),
            _turn("Yeah, okay, right.", turn_id=1),
            _turn("The waiting list was far too long.", turn_id=2),
        ]
    )
    segs, metrics = segment_turns(turns, options=SegmentParams(unit="turn", min_words=1))
    assert segs["text"].tolist() == ["The waiting list was far too long."]
    assert metrics["dropped_backchannel"] == 2 and metrics["dropped_short"] == 0


def test_windows_group_sentences_within_a_turn_with_offsets():
    text = (
        "We rang the team. Yeah. They came the next week. "
        "The visit helped a lot. It was joined up. We felt heard by them. Yeah."
    )
    turns = pd.DataFrame(
        [_turn(text), _turn("Tell me more about that please.", role="interviewer", turn_id=1)]
    )
    segs, metrics = segment_turns(turns, options=SegmentParams(unit="window", window=2, min_words=3))
    assert segs["text"].tolist() == [
        "We rang the team. Yeah. They came the next week.",
        "The visit helped a lot. It was joined up.",
        "We felt heard by them.",
    ]
    for row in segs.itertuples():
        assert text[row.orig_start : row.orig_end] == row.text
    # the last "Yeah." is dropped; the first stays inside its window's text, so is not counted
    assert metrics["dropped_backchannel"] == 1
    assert set(segs["role"]) == {"participant"}  # interviewer turns are context only
    # A 1-sentence remainder shorter than half a window joins the previous window.
    three = pd.DataFrame([_turn("One two three four. Five six seven eight. Nine ten eleven twelve.")])
    segs, _ = segment_turns(three, options=SegmentParams(unit="window", window=2, min_words=3))
    assert len(segs) == 2
    segs, _ = segment_turns(three, options=SegmentParams(unit="window", window=3, min_words=3))
    assert len(segs) == 1
    four = pd.DataFrame([_turn("One two three four. Five six seven eight. Nine ten eleven twelve. We left.")])
    segs, _ = segment_turns(four, options=SegmentParams(unit="window", window=3, min_words=1))
    assert len(segs) == 1 and segs["text"].iloc[0].endswith("We left.")
