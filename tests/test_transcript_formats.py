"""Transcript readers: .txt/.md label shapes, .docx, .odt, .vtt, .srt; roles from study.yaml;
bad inputs (one-line errors naming the file, never its text); serdif's real .odt files."""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import zipfile
from pathlib import Path

import docx
import pytest
import srt
from odf.opendocument import OpenDocumentText
from odf.text import H, LineBreak, P, S, Span, Tab
from webvtt import Caption, WebVTT

from pipeline.errors import UserError
from pipeline.formats.transcripts import parse_turns, read_transcript
from pipeline.ingest import ingest_study
from pipeline.study import load_study_info

REPO = Path(__file__).resolve().parents[1]
SERDIF = REPO.parent / "shared" / "datasets" / "serdif-usability"
SECRET = "Zebedee-Quokka"  # transcript text that must never appear in an error message


# ---------------------------------------------------------------- builders (real files)


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None, after: list[str] = ()) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    for text in after:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_odt(paragraphs: list) -> bytes:
    """Each item: a string, or a list of parts (str, ("s", n), "TAB", "BR") for one paragraph."""
    document = OpenDocumentText()
    for item in paragraphs:
        para = P()
        for part in [item] if isinstance(item, str) else item:
            if part == "TAB":
                para.addElement(Tab())
            elif part == "BR":
                para.addElement(LineBreak())
            elif isinstance(part, tuple):
                para.addElement(S(c=part[1]))
            else:
                para.addElement(Span(text=part))
        document.text.addElement(para)
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def make_vtt(cues: list[tuple[float, float, str]]) -> bytes:
    def stamp(s: float) -> str:
        return f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}:{s % 60:06.3f}"

    out = io.StringIO()
    WebVTT(captions=[Caption(stamp(a), stamp(b), text) for a, b, text in cues]).write(out)
    return out.getvalue().encode()


def make_srt(cues: list[tuple[float, float, str]]) -> bytes:
    subs = [
        srt.Subtitle(i + 1, dt.timedelta(seconds=a), dt.timedelta(seconds=b), text)
        for i, (a, b, text) in enumerate(cues)
    ]
    return srt.compose(subs).encode()


def read(data: bytes, suffix: str, **kw):
    return read_transcript(data, f"T1{suffix}", suffix=suffix, **kw)


def check_offsets(transcript, expected: list[tuple[str, str, float | None]]):
    got = [(t.speaker, transcript.text[t.start : t.end], t.time) for t in transcript.turns if not t.preamble]
    assert got == expected


# ---------------------------------------------------------------- formats


def test_docx_paragraphs_and_table_cells_in_body_order():
    data = make_docx(
        ["Interviewer: How did it start?", "Amy: Slowly.", "It took months."],
        table=[["Interviewer: And then?", "Amy: Better."]],
        after=["Interviewer: Thanks."],
    )
    t = read(data, ".docx")
    assert t.text == (
        "Interviewer: How did it start?\nAmy: Slowly.\nIt took months.\n"
        "Interviewer: And then?\nAmy: Better.\nInterviewer: Thanks."
    )
    check_offsets(
        t,
        [
            ("Interviewer", "How did it start?", None),
            ("Amy", "Slowly.\nIt took months.", None),
            ("Interviewer", "And then?", None),
            ("Amy", "Better.", None),
            ("Interviewer", "Thanks.", None),
        ],
    )


def test_odt_spaces_tabs_and_line_breaks():
    data = make_odt(
        [
            "Interviewer: Ready?",
            ["Amy:", ("s", 1), "one", ("s", 3), "two", "TAB", "three", "BR", "four"],
            ["TAB", "Interviewer: Go on."],
        ]
    )
    t = read(data, ".odt")
    assert t.text == "Interviewer: Ready?\nAmy: one   two\tthree\nfour\n\tInterviewer: Go on."
    check_offsets(
        t,
        [
            ("Interviewer", "Ready?", None),
            ("Amy", "one   two\tthree\nfour", None),
            ("Interviewer", "Go on.", None),
        ],
    )


def test_odt_headings_count_as_paragraphs():
    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Session 1"))
    document.text.addElement(P(text="Interviewer: Hello."))
    document.text.addElement(P(text="Amy: Hi."))
    out = io.BytesIO()
    document.write(out)
    t = read(out.getvalue(), ".odt")
    assert t.text == "Session 1\nInterviewer: Hello.\nAmy: Hi."
    assert t.turns[0].preamble and t.text[t.turns[0].start : t.turns[0].end] == "Session 1"


def test_vtt_voices_merge_consecutive_cues_and_keep_times():
    data = make_vtt(
        [
            (1.0, 2.0, "<v Dr J Smith>Hello there</v>"),
            (2.5, 4.0, "<v Dr J Smith>and welcome."),
            (65.25, 67.0, "<v Amy>Thanks &amp; hi."),
            (67.5, 69.0, "More from Amy."),  # no voice: continues Amy
            (70.0, 71.0, "<v Dr J Smith>Good."),
        ]
    )
    t = read(data, ".vtt")
    assert (
        t.text == "Dr J Smith: Hello there and welcome.\nAmy: Thanks & hi. More from Amy.\nDr J Smith: Good."
    )
    check_offsets(
        t,
        [
            ("Dr J Smith", "Hello there and welcome.", 1.0),
            ("Amy", "Thanks & hi. More from Amy.", 65.25),
            ("Dr J Smith", "Good.", 70.0),
        ],
    )


def test_vtt_name_prefix_as_zoom_writes_it():
    data = make_vtt([(0.5, 1.0, "Interviewer: Hi."), (1.5, 3.0, "Amy: Hello,\nnice to meet you.")])
    check_offsets(read(data, ".vtt"), [("Interviewer", "Hi.", 0.5), ("Amy", "Hello, nice to meet you.", 1.5)])


def test_srt_name_prefixes_and_times():
    data = make_srt(
        [
            (1.0, 2.0, "Interviewer: So, how was it?"),
            (2.0, 3.0, "Amy: Fine,"),
            (3.0, 4.5, "<i>really</i> fine."),
            (10.0, 11.0, "INTERVIEWER: Great."),
        ]
    )
    t = read(data, ".srt")
    assert t.text == "Interviewer: So, how was it?\nAmy: Fine, really fine.\nINTERVIEWER: Great."
    check_offsets(
        t,
        [
            ("Interviewer", "So, how was it?", 1.0),
            ("Amy", "Fine, really fine.", 2.0),
            ("INTERVIEWER", "Great.", 10.0),
        ],
    )


def test_plain_srt_is_the_participants_split_at_pauses():
    data = make_srt(
        [(0.0, 2.0, "I started"), (2.1, 4.0, "at the clinic."), (9.0, 10.0, "Later on, it changed.")]
    )
    t = read(data, ".srt")
    assert not t.labelled
    check_offsets(t, [("", "I started at the clinic.", 0.0), ("", "Later on, it changed.", 9.0)])


# ---------------------------------------------------------------- label shapes in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Amy: Hi.\nIt was hard.", [("Amy", "Hi.\nIt was hard.", None)]),
        ("AMY SMITH: Hi.", [("AMY SMITH", "Hi.", None)]),
        ("[00:01:02] Amy: Hi.", [("Amy", "Hi.", 62.0)]),
        ("(00:01:02) Dr J Smith: Hi.", [("Dr J Smith", "Hi.", 62.0)]),
        ("Amy  00:01:02\nHi there.\nSecond line.", [("Amy", "Hi there.\nSecond line.", 62.0)]),
        (
            "Speaker 1  0:05\nHello.\n\nSpeaker 2  1:07:03\nHi.",
            [("Speaker 1", "Hello.", 5.0), ("Speaker 2", "Hi.", 4023.0)],
        ),
        ("Speaker 1: Hello.", [("Speaker 1", "Hello.", None)]),
        ("Amy (00:00:07.5):\nHi.", [("Amy", "Hi.", 7.5)]),
        ("Amy (02:03): Hi.", [("Amy", "Hi.", 123.0)]),
    ],
)
def test_label_shapes(text, expected):
    turns = parse_turns(text)
    assert [(t.speaker, text[t.start : t.end], t.time) for t in turns] == expected


@pytest.mark.parametrize("line", ["Recorded at 10:30 am", "10:30", "The time was 10:30: late", "Note:"])
def test_times_and_bare_colons_are_not_labels(line):
    turns = parse_turns(f"{line}\nInterviewer: Hi.\n")
    assert turns[0].preamble and turns[1].speaker == "Interviewer"


def test_unlabelled_lines_as_the_participants():
    text = (
        "Task 1 read the page\nMODERATOR: Start with task 1?\nOkay, reading.\nIt is clear.\n"
        "MODERATOR: Next.\nDone."
    )
    turns = parse_turns(text, unlabelled="participant")
    got = [(t.speaker, text[t.start : t.end], t.preamble) for t in turns]
    assert got == [
        ("", "Task 1 read the page", False),
        ("MODERATOR", "Start with task 1?", False),
        ("", "Okay, reading.\nIt is clear.", False),
        ("MODERATOR", "Next.", False),
        ("", "Done.", False),
    ]


# ---------------------------------------------------------------- study folder: roles, times, metrics


def _study(tmp_path: Path, files: dict[str, bytes], yaml: str) -> Path:
    study = tmp_path / "study"
    (study / "transcripts").mkdir(parents=True)
    for name, data in files.items():
        (study / "transcripts" / name).write_bytes(data)
    ids = sorted({Path(n).stem for n in files})
    rows = "".join(f"{t},P{i},g\n" for i, t in enumerate(ids))
    (study / "participants.csv").write_text("transcript_id,participant_id,group\n" + rows)
    (study / "study.yaml").write_text(yaml)
    return study


def test_ingest_every_format_with_speaker_roles(tmp_path, caplog):
    files = {
        "A.docx": make_docx(["Dr J Smith: Hello.", "Amy: Hi there."]),
        "B.odt": make_odt(["Dr J Smith: Hello.", "Ben: Hi."]),
        "C.vtt": make_vtt([(1, 2, "<v Dr J Smith>Hello."), (3, 4, "<v Cat>Hi.")]),
        "D.srt": make_srt([(1, 2, "Dr J Smith: Hello."), (3, 4, "Dan: Hi.")]),
        "E.txt": "[00:00:01] Dr J Smith: Hello.\n[00:00:03] Eve: Hi.\n".encode("utf-16"),
        "F.md": b"Just notes, no speakers.\n",
    }
    yaml = (
        'name: s\ninterviewer_labels: [Interviewer]\nspeakers:\n  "Dr J Smith": interviewer\n'
        "  Amy: participant\n"
    )
    study = _study(tmp_path, files, yaml)
    with caplog.at_level("WARNING"):
        turns, metrics = ingest_study(study)
    for row in turns.itertuples():  # offsets into each file's canonical text
        assert row.text.strip() and row.end - row.start == len(row.text)
    assert metrics["files"] == 6 and metrics["unlabelled_transcripts"] == 1
    assert any("F.md: no speaker labels" in r.getMessage() for r in caplog.records)
    roles = turns.groupby("transcript_id")["role"].agg(list).to_dict()
    assert all(roles[t] == ["interviewer", "participant"] for t in "ABCDE") and roles["F"] == ["participant"]
    times = turns.set_index(["transcript_id", "turn_id"])["time"]
    assert times[("C", 1)] == 3.0 and times[("E", 0)] == 1.0 and math.isnan(times[("A", 0)])
    assert turns["time"].dtype == "float64"


def test_speakers_map_validation(tmp_path):
    study = _study(tmp_path, {"A.txt": b"I: q\nA: a\n"}, "name: s\nspeakers:\n  Bob: boss\n")
    with pytest.raises(
        UserError, match=r"study\.yaml: key 'speakers\.Bob' must be interviewer or participant"
    ):
        load_study_info(study)
    (study / "study.yaml").write_text("name: s\nspeakers: [Bob]\n")
    with pytest.raises(UserError, match=r"study\.yaml: 'speakers' must map"):
        load_study_info(study)
    (study / "study.yaml").write_text("name: s\ninterviewer_labels: [Bob]\nspeakers: {bob: participant}\n")
    with pytest.raises(UserError, match=r"speakers\.bob' is participant but is listed in interviewer_labels"):
        load_study_info(study)
    (study / "study.yaml").write_text("name: s\nunlabelled_lines: maybe\n")
    with pytest.raises(UserError, match=r"key 'unlabelled_lines' must be one of continue, participant"):
        load_study_info(study)


def test_same_stem_in_two_formats_names_both_files(tmp_path):
    study = _study(tmp_path, {"T01.txt": b"I: q\nA: a\n", "T01.md": b"I: q\nA: a\n"}, "name: s\n")
    with pytest.raises(UserError) as err:
        ingest_study(study)
    assert "T01.md" in str(err.value) and "T01.txt" in str(err.value)


# ---------------------------------------------------------------- bad inputs


def _one_line_error(data: bytes, suffix: str, match: str) -> None:
    with pytest.raises(UserError) as err:
        read(data, suffix)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"T1{suffix}: ") and SECRET not in message
    assert match in message, message


@pytest.mark.parametrize("suffix", [".txt", ".md", ".docx", ".odt", ".vtt", ".srt"])
def test_empty_file(suffix):
    _one_line_error(b"", suffix, "empty")


@pytest.mark.parametrize("suffix", [".txt", ".md", ".docx", ".odt", ".vtt", ".srt"])
def test_binary_garbage(suffix):
    garbage = bytes(range(256)) * 8 + SECRET.encode()
    _one_line_error(garbage, suffix, "not" if suffix in (".docx", ".odt") else "binary")


def test_cp1252_utf16_and_bom_crlf_text():
    text = f"Interviewer: Café?\r\nAmy: Oui – {SECRET}.\r\n"
    for data in (text.encode("cp1252"), text.encode("utf-16"), b"\xef\xbb\xbf" + text.encode()):
        t = read(data, ".txt")
        assert t.text == text.replace("\r\n", "\n")
        check_offsets(t, [("Interviewer", "Café?", None), ("Amy", f"Oui – {SECRET}.", None)])


@pytest.mark.parametrize("suffix", [".docx", ".odt"])
def test_truncated_and_corrupt_archives(suffix):
    good = make_docx([f"Amy: {SECRET}"]) if suffix == ".docx" else make_odt([f"Amy: {SECRET}"])
    _one_line_error(good[: len(good) // 2], suffix, "not")
    archive = zipfile.ZipFile(io.BytesIO(good))
    part = "word/document.xml" if suffix == ".docx" else "content.xml"
    info = archive.getinfo(part)
    at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 2
    corrupt = bytearray(good)
    corrupt[at : at + 8] = b"\xff" * 8  # inside the compressed bytes of the main part
    _one_line_error(bytes(corrupt), suffix, "corrupt")


def _rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info.filename)))
        for name, content in replace.items():
            if name not in src.namelist():
                dst.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize("suffix", [".docx", ".odt"])
def test_zip_bomb_is_refused_from_the_directory(suffix):
    good = make_docx(["Amy: hi"]) if suffix == ".docx" else make_odt(["Amy: hi"])
    bomb = _rezip(good, {"padding.bin": b"\0" * (8 * 1024 * 1024)})  # ratio ~1000:1
    _one_line_error(bomb, suffix, "zip bomb")


@pytest.mark.parametrize("suffix", [".docx", ".odt"])
def test_xml_entities_are_refused(suffix, tmp_path):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    good = make_docx(["Amy: hi"]) if suffix == ".docx" else make_odt(["Amy: hi"])
    part = "word/document.xml" if suffix == ".docx" else "content.xml"
    xml = zipfile.ZipFile(io.BytesIO(good)).read(part).decode()
    head, body = xml.split("?>", 1)
    evil = f'{head}?><!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret_file}">]>{body}'
    evil = evil.replace("Amy: hi", "Amy: &x;")
    _one_line_error(_rezip(good, {part: evil.encode()}), suffix, "DOCTYPE or ENTITY")


@pytest.mark.parametrize("suffix", [".docx", ".odt"])
def test_well_formed_xml_that_is_no_document_is_a_one_line_error(suffix):
    good = make_docx(["Amy: hi"]) if suffix == ".docx" else make_odt(["Amy: hi"])
    part = "word/document.xml" if suffix == ".docx" else "content.xml"
    _one_line_error(_rezip(good, {part: b'<?xml version="1.0"?><root/>'}), suffix, "not readable")


@pytest.mark.parametrize("suffix", [".txt", ".docx", ".odt", ".vtt"])
def test_a_million_character_turn(suffix):
    words = "word " * 200_000
    if suffix == ".txt":
        data = f"Interviewer: Hi.\nAmy: {words}\n".encode()
    elif suffix == ".docx":
        data = make_docx(["Interviewer: Hi.", f"Amy: {words}"])
    elif suffix == ".odt":
        data = make_odt(["Interviewer: Hi.", f"Amy: {words}"])
    else:
        data = make_vtt([(0, 1, "<v Interviewer>Hi."), (1, 2, f"<v Amy>{words}")])
    t = read(data, suffix)
    amy = t.turns[-1]
    assert amy.speaker == "Amy" and t.text[amy.start : amy.end] == words.strip()


# ---------------------------------------------------------------- serdif's real .odt files


@pytest.mark.skipif(not (SERDIF / "transcripts").is_dir(), reason="serdif dataset not in ../shared/datasets")
def test_serdif_odt_transcripts():
    files = sorted((SERDIF / "transcripts").glob("*.odt"))
    assert len(files) == 17
    moderator = 0
    for path in files:
        t = read_transcript(path.read_bytes(), str(path), suffix=".odt", unlabelled="participant")
        assert t.labelled or "MODERATOR" not in t.text
        for turn in t.turns:
            assert t.text[turn.start : turn.end].strip() == t.text[turn.start : turn.end]
            assert turn.end > turn.start
        moderator += sum(turn.speaker == "MODERATOR" for turn in t.turns)
        assert any(turn.speaker == "" for turn in t.turns)  # the participant's words
        assert "\t" in t.text  # ODT tabs kept as tabs
    assert moderator >= 150


# ---------------------------------------------------------------- serdif end to end (slow)


def _normalised(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.slow
@pytest.mark.skipif(
    not (SERDIF / "taguette.sqlite3").is_file(), reason="serdif dataset not in ../shared/datasets"
)
def test_serdif_end_to_end_with_taguette_codings(tmp_path):
    import json
    import shutil

    from conftest import FAST

    from pipeline.codings import read_codings_table
    from pipeline.config import load_params
    from pipeline.formats.taguette import read_taguette_db
    from pipeline.runner import run_all

    study = tmp_path / "serdif"
    shutil.copytree(SERDIF / "transcripts", study / "transcripts")
    shutil.copy(SERDIF / "taguette.sqlite3", study / "taguette.sqlite3")
    ids = sorted(p.stem for p in (study / "transcripts").glob("*.odt"))
    rows = "".join(f"{t},{t.split('_')[0]},health data researcher\n" for t in ids)
    (study / "participants.csv").write_text("transcript_id,participant_id,group\n" + rows)
    # the moderator is labelled; everything else is the participant thinking aloud
    (study / "study.yaml").write_text(
        "name: SERDIF usability\ninterviewer_labels: [MODERATOR]\nunlabelled_lines: participant\n"
    )
    params = load_params(None, [*FAST, "agreement.n_boot=0", "coding.folds=3"])
    lay = run_all(params, study=study, out=tmp_path / "out")

    ingest = json.loads((lay.metrics / "ingest.json").read_text())
    report = ingest["codings"]
    assert report["sources"] == ["taguette.sqlite3"]
    assert report["rows_in"] == report["used"] + report["skipped_total"]
    agreement = json.loads((lay.metrics / "agreement.json").read_text())
    assert agreement["per_code"], "the agreement report has no per-code figures"

    # does each Taguette highlight land on the text it quotes in our ODT text?
    _book, highlights, tool_texts, _counts = read_taguette_db(SERDIF / "taguette.sqlite3")
    ours = {
        p.stem: read_transcript(p.read_bytes(), str(p), suffix=".odt", unlabelled="participant").text
        for p in (study / "transcripts").glob("*.odt")
    }
    # the file names' session dates (P10_GMT20211130) never reach the outputs after deidentify
    renamed = read_codings_table(lay.codings)
    assert len(renamed) and not any(re.search(r"20\d{6}", t) for t in renamed["transcript_id"])
    landed = read_codings_table(lay.codings_ingested)  # under the study's own ids, as ingested
    spans: dict[tuple[str, str], list[str]] = {}
    for r in landed.itertuples():
        spans.setdefault((r.transcript_id, r.code), []).append(
            _normalised(ours[r.transcript_id][r.start : r.end])
        )
    hits = sum(
        any(
            _normalised(tool_texts[h.transcript_id][h.start : h.end]) in s
            for s in spans.get((h.transcript_id, h.code), [])
        )
        for h in highlights.itertuples()
    )
    share = hits / len(highlights)
    print(f"serdif: {hits} of {len(highlights)} Taguette highlights land on their quoted text ({share:.1%})")
    assert share >= 0.95
