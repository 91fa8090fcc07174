"""REFI-QDA exchange: codebooks and projects validate against the QDA-XML schemas, carry
correct offsets into the pseudonymised sources, keep their GUIDs across runs, and read back
as written."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline.codebook import Code, Codebook
from pipeline.errors import UserError
from pipeline.formats.qdpx import (
    human_codings_to_sources,
    project_qde,
    pseudonymised_sources,
    read_project_cases,
    read_project_qdpx,
    segment_codings,
    write_project_qdpx,
)
from pipeline.formats.readers import read_codebook
from pipeline.formats.refi import (
    MACHINE_CODER,
    codebook_qdc,
    read_codebook_qdc,
    theme_codebook,
    write_codebook_qdc,
)
from pipeline.offsets import original_offset, pseudonymised_offset

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO.parent / "shared" / "refi-qda"
needs_schemas = pytest.mark.skipif(
    not (SCHEMAS / "Project.xsd").exists(), reason="../shared/refi-qda (the QDA-XML schemas) is absent"
)


def validate(xml: bytes, xsd: str) -> None:
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / xsd)))
    doc = etree.fromstring(xml)
    assert schema.validate(doc), schema.error_log.last_error


# Original transcript: two turns; the pseudonymiser replaced "Karen" and "Thatcham".
ORIGINAL = "Interviewer: Who referred you?\nKirsty: Karen did, from Thatcham, quickly.\n"
TURNS = pd.DataFrame(
    [
        {
            "transcript_id": "T1",
            "participant_id": "P1",
            "group": "parent",
            "turn_id": 0,
            "role": "interviewer",
            "start": 13,
            "end": 30,
            "text": "Who referred you?",
            "spans": "[]",
        },
        {
            "transcript_id": "T1",
            "participant_id": "P1",
            "group": "parent",
            "turn_id": 1,
            "role": "participant",
            "start": 39,
            "end": 73,
            "text": "[PERSON_1] did, from [PLACE_1], quickly.",
            "spans": json.dumps(
                [
                    {"start": 0, "end": 5, "label": "PERSON", "replacement": "[PERSON_1]"},
                    {"start": 16, "end": 24, "label": "PLACE", "replacement": "[PLACE_1]"},
                ]
            ),
        },
    ]
)
PARTICIPANTS = pd.DataFrame({"transcript_id": ["T1"], "participant_id": ["P1"], "group": ["parent"]})
CODEBOOK = Codebook(
    (
        Code("working", "Working together", "Grouping code."),
        Code(
            "referral",
            "Referral routes",
            'How families reach the team, e.g. "via the GP".\n\nSecond paragraph.',
            include="Who referred",
            exclude="Waiting times",
            examples=('She said "ring them"\nand I did.', "Plain example"),
            parent="working",
        ),
        Code("place", "Places", "Where things happen", parent="working"),
    )
)


def test_fixture_matches_its_original_text():
    assert ORIGINAL[13:30] == "Who referred you?"
    assert ORIGINAL[39:73] == "Karen did, from Thatcham, quickly."


@pytest.mark.parametrize("position", range(0, 35))
def test_pseudonymised_offset_inverts_original_offset(position):
    spans = json.loads(TURNS["spans"][1])
    mapped = pseudonymised_offset(position, spans)
    inside = any(s["start"] < position < s["end"] for s in spans)
    assert original_offset(mapped, spans) == (
        min(s["start"] for s in spans if s["start"] < position < s["end"]) if inside else position
    )
    # side="end" maps inside a replacement to the placeholder's end
    if inside:
        assert pseudonymised_offset(position, spans, side="end") == mapped + len(
            next(s for s in spans if s["start"] < position < s["end"])["replacement"]
        )


def test_sources_are_pseudonymised_with_turn_offsets():
    sources = pseudonymised_sources(TURNS)
    src = sources["T1"]
    assert src.text == "Interviewer: Who referred you?\nP1: [PERSON_1] did, from [PLACE_1], quickly.\n"
    for turn in TURNS.itertuples():
        off = src.turn_offsets[turn.turn_id]
        assert src.text[off : off + len(turn.text)] == turn.text
    assert "Kirsty" not in src.text and "Karen" not in src.text


def test_human_codings_move_onto_pseudonymised_text():
    sources = pseudonymised_sources(TURNS)
    codings = pd.DataFrame(
        [
            ("T1", "A", "referral", 39, 73),  # the whole turn
            ("T1", "A", "place", 55, 63),  # exactly "Thatcham"
            ("T1", "B", "referral", 31, 48),  # starts in the speaker label "Kirsty: "
            ("T1", "B", "place", 31, 38),  # only the speaker label: nothing to point at
            ("T1", "A", "referral", 17, 48),  # across two turns
        ],
        columns=["transcript_id", "coder", "code", "start", "end"],
    )
    moved, unplaced = human_codings_to_sources(codings, TURNS, sources)
    text = sources["T1"].text
    got = [text[s:e] for s, e in zip(moved["start"], moved["end"], strict=True)]
    assert got == [
        "[PERSON_1] did, from [PLACE_1], quickly.",
        "[PLACE_1]",
        "[PERSON_1] did",
        "referred you?\nP1: [PERSON_1] did",
    ]
    assert unplaced == 1
    assert moved["coder"].tolist() == ["A", "A", "B", "A"]


def test_machine_codings_point_at_segment_text():
    sources = pseudonymised_sources(TURNS)
    segments = pd.DataFrame(
        {"segment_id": ["T1:1:0"], "transcript_id": ["T1"], "turn_id": [1], "start": [21], "end": [40]}
    )
    codes = pd.DataFrame({"segment_id": ["T1:1:0"], "code": ["place"], "score": [0.5]})
    out = segment_codings(segments, codes, sources, code_column="code")
    s, e = out["start"][0], out["end"][0]
    assert sources["T1"].text[s:e] == TURNS["text"][1][21:40] == "[PLACE_1], quickly."
    assert out["coder"][0] == MACHINE_CODER


def _project(tmp_path: Path) -> tuple[Path, pd.DataFrame, dict[str, str]]:
    sources = pseudonymised_sources(TURNS)
    codings = pd.DataFrame(
        [
            ("T1", MACHINE_CODER, "referral", 35, 75),
            ("T1", "A", "referral", 35, 75),
            ("T1", "A", "place", 56, 65),
            ("T1", "B", "place", 56, 65),
        ],
        columns=["transcript_id", "coder", "code", "start", "end"],
    )
    path = tmp_path / "study.qdpx"
    texts = {t: s.text for t, s in sources.items()}
    write_project_qdpx(
        path, study="Tiny", sources=texts, codebook=CODEBOOK, codings=codings, participants=PARTICIPANTS
    )
    return path, codings, texts


def test_project_round_trips(tmp_path):
    path, codings, texts = _project(tmp_path)
    codebook, read_codings, read_sources = read_project_qdpx(path)
    assert codebook == CODEBOOK
    assert read_sources == texts
    key = ["transcript_id", "coder", "code", "start", "end"]
    assert (
        read_codings.sort_values(key)
        .reset_index(drop=True)
        .equals(codings.sort_values(key).reset_index(drop=True).astype({"start": "int64", "end": "int64"}))
    )
    assert read_project_cases(path).to_dict("records") == PARTICIPANTS.to_dict("records")


@pytest.mark.slow  # 100,001 source files written and read back
def test_a_survey_sized_project_round_trips(tmp_path):
    """A national survey's export holds a source file per respondent: 100,001 of them (more
    than the reader once allowed) read back, every text and coding as written."""
    sources = {f"R{i:06d}": f"answer {i}" for i in range(100_001)}
    codings = pd.DataFrame(
        {"transcript_id": ["R000007"], "coder": ["A"], "code": ["c1"], "start": [0], "end": [6]}
    )
    path = tmp_path / "survey.qdpx"
    write_project_qdpx(
        path, study="s", sources=sources, codebook=Codebook((Code("c1", "one"),)), codings=codings
    )
    _, read_codings, read_sources = read_project_qdpx(path)
    assert read_sources == sources
    assert read_codings[["transcript_id", "start", "end"]].values.tolist() == [["R000007", 0, 6]]


@needs_schemas
def test_exports_validate_against_the_schemas(tmp_path):
    path, _, _ = _project(tmp_path)
    with zipfile.ZipFile(path) as z:
        validate(z.read("project.qde"), "Project.xsd")
        names = z.namelist()
    assert len([n for n in names if n.startswith("sources/") and n.endswith(".txt")]) == 1
    validate(codebook_qdc(CODEBOOK, study="Tiny"), "Codebook.xsd")
    demo = read_codebook(REPO / "data" / "demo" / "codebook.yaml")
    validate(codebook_qdc(demo, study="demo"), "Codebook.xsd")


def test_guids_are_stable_and_distinct(tmp_path):
    first, _, _ = _project(tmp_path / "a")
    second, _, _ = _project(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()  # same inputs, same bytes
    qde = zipfile.ZipFile(first).read("project.qde").decode()
    import re

    guids = re.findall(r' guid="([0-9a-f-]{36})"', qde)
    assert len(guids) == len(set(guids))
    # adding a coding changes no existing GUID
    sources = pseudonymised_sources(TURNS)
    texts = {t: s.text for t, s in sources.items()}
    more = pd.DataFrame(
        [("T1", "C", "place", 0, 11)], columns=["transcript_id", "coder", "code", "start", "end"]
    )
    xml, _ = project_qde(
        study="Tiny", sources=texts, codebook=CODEBOOK, codings=more, participants=PARTICIPANTS
    )
    for g in re.findall(r'<(?:\w+:)?(?:Code|TextSource|Case) guid="([0-9a-f-]{36})"', qde):
        assert g in xml.decode()


def test_codebook_round_trips_demo_codebook(tmp_path):
    demo = read_codebook(REPO / "data" / "demo" / "codebook.yaml")
    write_codebook_qdc(demo, tmp_path / "demo.qdc", study="demo")
    back = read_codebook_qdc(tmp_path / "demo.qdc")
    # nesting lists each parent's children after it: same codes, depth-first order
    assert sorted(back.codes, key=lambda c: c.code_id) == sorted(demo.codes, key=lambda c: c.code_id)
    assert [c.code_id for c in back.codes][:2] == ["working_together", "team_cohesion"]
    write_codebook_qdc(CODEBOOK, tmp_path / "tiny.qdc", study="Tiny")
    assert read_codebook_qdc(tmp_path / "tiny.qdc") == CODEBOOK


def test_theme_codebook_carries_labels_keywords_and_quotes(tmp_path):
    cards = {
        "themes": [
            {
                "theme_id": 4,
                "label": "waiting / letters",
                "keywords": ["waiting", "letters"],
                "size": 12,
                "quotes": [
                    {"text": "We waited [DATE].", "transcript_id": "T2", "turn_id": 5, "group": "parent"},
                ],
            }
        ]
    }
    write_codebook_qdc(theme_codebook(cards), tmp_path / "t.qdc", study="x")
    back = read_codebook_qdc(tmp_path / "t.qdc")
    theme = next(c for c in back.codes if c.code_id == "theme_4")
    assert theme.name == "waiting / letters" and theme.parent == "candidate_themes"
    assert "waiting, letters" in theme.definition and "T2 turn 5 (parent)" in theme.definition
    assert theme.examples == ("We waited [DATE].",)


def test_reads_another_packages_codebook(tmp_path):
    """A .qdc from elsewhere: no labelled paragraphs; names serve as ids, nesting as parents."""
    (tmp_path / "other.qdc").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="QualCoder"><Codes>'
        '<Code guid="{11111111-1111-1111-1111-111111111111}" name="Barriers" isCodable="true">'
        "<Description>Things in the way</Description>"
        '<Code guid="22222222-2222-2222-2222-222222222222" name="Waiting" isCodable="true"/>'
        "</Code></Codes></CodeBook>",
        encoding="utf-8",
    )
    cb = read_codebook_qdc(tmp_path / "other.qdc")
    assert cb == Codebook(
        (Code("Barriers", "Barriers", "Things in the way"), Code("Waiting", "Waiting", "", parent="Barriers"))
    )


def test_bad_files_are_user_errors(tmp_path):
    (tmp_path / "bad.qdc").write_text("<CodeBook><Codes>")
    with pytest.raises(UserError, match="not valid XML"):
        read_codebook_qdc(tmp_path / "bad.qdc")
    (tmp_path / "wrong.qdc").write_text('<Project xmlns="urn:QDA-XML:project:1.0" name="x"/>')
    with pytest.raises(UserError, match="expected a REFI-QDA CodeBook"):
        read_codebook_qdc(tmp_path / "wrong.qdc")
    (tmp_path / "nozip.qdpx").write_text("not a zip")
    with pytest.raises(UserError, match="not a .qdpx"):
        read_project_qdpx(tmp_path / "nozip.qdpx")
    with zipfile.ZipFile(tmp_path / "empty.qdpx", "w") as z:
        z.writestr("readme.txt", "x")
    with pytest.raises(UserError, match="no project.qde"):
        read_project_qdpx(tmp_path / "empty.qdpx")
    with pytest.raises(UserError, match="not in the exported codebook"):
        project_qde(
            study="x",
            sources={"T1": "abc"},
            codebook=CODEBOOK,
            codings=pd.DataFrame(
                [("T1", "A", "nope", 0, 1)], columns=["transcript_id", "coder", "code", "start", "end"]
            ),
        )
    with pytest.raises(UserError, match="outside its text"):
        project_qde(
            study="x",
            sources={"T1": "abc"},
            codebook=CODEBOOK,
            codings=pd.DataFrame(
                [("T1", "A", "place", 2, 9)], columns=["transcript_id", "coder", "code", "start", "end"]
            ),
        )
