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
    segs, metrics = segment_turns(turns, options=SegmentParams(min_words=3))
    assert segs["text"].tolist() == [
        "We met [the team] at [PERSON_1] flat.",
        "It really helped us both a lot.",
    ]
    assert metrics["dropped_short"] == 1  # "Yeah."
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
