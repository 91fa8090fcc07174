"""Every reader of a user's file, as a registry the robustness and fuzz tests run over.

A reader takes the path of one file (named `filename` inside a study folder) and either parses
it or raises a one-line `UserError` naming the file. `valid` is a small file it reads, and
`answer` what `summary` makes of the result; `big` is one with a 1M-character value, which the
result holds whole unless the reader caps values (`refuses_big`: what its error then says).
To cover a new reader, add it with `register(...)`.
"""

from __future__ import annotations

import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.codebook import Code, Codebook
from pipeline.config import load_params
from pipeline.deid.register import read_allow, read_register
from pipeline.formats.qdpx import read_project_cases, read_project_qdpx, write_project_qdpx
from pipeline.formats.readers import read_codebook, read_codings_file
from pipeline.formats.refi import codebook_qdc
from pipeline.formats.taguette import read_taguette_csv
from pipeline.ingest.survey import load_responses
from pipeline.study import load_participants, load_study_info
from pipeline.theme_review import load_review

BIG = 1_000_000
CODEBOOK = Codebook((Code("waiting", "Waiting lists", "Time before help"), Code("cafe", "Café", "A place")))


@dataclass(frozen=True)
class Reader:
    name: str
    filename: str
    read: Callable[[Path], object]
    kind: str  # "csv" | "yaml" | "xml" | "zip" | "sqlite" | "text": what arbitrary input to feed
    valid: Callable[[Path], bytes]  # a readable file (given a scratch folder)
    big: Callable[[Path], bytes]  # one with a 1M-character value
    # the facts of a result (plain tuples, lists and strings), and those of `valid`'s: a known answer
    summary: Callable[[object], object] | None = None
    answer: object = None
    refuses_big: str | None = None


READERS: dict[str, Reader] = {}


def register(reader: Reader) -> Reader:
    READERS[reader.name] = reader
    return reader


def _const(data: bytes) -> Callable[[Path], bytes]:
    return lambda _tmp: data


def _qdpx(
    tmp: Path, text: str = "Interviewer: hello there\nP1: café and waiting lists\n", group: str = "café"
) -> bytes:
    path = tmp / "_built.qdpx"
    codings = pd.DataFrame(
        [("T1", "A", "waiting", 0, 11)], columns=["transcript_id", "coder", "code", "start", "end"]
    )
    cases = pd.DataFrame([("T1", "P1", group)], columns=["transcript_id", "participant_id", "group"])
    write_project_qdpx(
        path, study="s", sources={"T1": text}, codebook=CODEBOOK, codings=codings, participants=cases
    )
    data = path.read_bytes()
    path.unlink()
    return data


TAGUETTE_SCHEMA = """
CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT, description TEXT, created TEXT);
CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT, description TEXT, filename TEXT,
  created TEXT, project_id INTEGER, text_direction TEXT, contents TEXT);
CREATE TABLE tags (id INTEGER PRIMARY KEY, project_id INTEGER, path TEXT, description TEXT);
CREATE TABLE highlights (id INTEGER PRIMARY KEY, document_id INTEGER, start_offset,
  end_offset, snippet TEXT);
CREATE TABLE highlight_tags (highlight_id INTEGER, tag_id INTEGER);
"""


def taguette_db(tmp: Path, contents: str = "<p>Café and waiting</p>", offsets=((0, 3),)) -> bytes:
    path = tmp / "_built.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(TAGUETTE_SCHEMA)
    con.execute("INSERT INTO projects VALUES (1, 'p', '', '')")
    con.execute("INSERT INTO documents VALUES (1, 'T1.odt', '', 'T1.odt', '', 1, 'LTR', ?)", (contents,))
    con.execute("INSERT INTO tags VALUES (1, 1, 'waiting', 'Time before help')")
    for hid, (start, end) in enumerate(offsets, start=1):
        con.execute("INSERT INTO highlights VALUES (?, 1, ?, ?, '')", (hid, start, end))
        con.execute("INSERT INTO highlight_tags VALUES (?, 1)", (hid,))
    con.commit()
    con.close()
    data = path.read_bytes()
    path.unlink()
    return data


def _zip(members: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _rows(table: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in table.itertuples(index=False)]


def _codes(book: Codebook) -> list[tuple[str, str, str]]:
    return [(c.code_id, c.name, c.definition) for c in book.codes]


X = "x" * BIG
for _r in (
    Reader(
        "participants",
        "participants.csv",
        lambda p: load_participants(p.parent),
        "csv",
        _const("transcript_id,participant_id,group\nT1,P1,café\nT2,P2,clinician\n".encode()),
        _const(f"transcript_id,participant_id,group\nT1,P1,{X}\n".encode()),
        _rows,
        [("T1", "P1", "café"), ("T2", "P2", "clinician")],
    ),
    Reader(
        "study",
        "study.yaml",
        lambda p: load_study_info(p.parent),
        "yaml",
        _const("name: Café study\ndescription: Interviews\ninterviewer_labels: [Interviewer]\n".encode()),
        _const(f"name: s\ndescription: {X}\n".encode()),
        lambda s: (s.name, s.description, s.interviewer_labels),
        ("Café study", "Interviews", ("Interviewer",)),
    ),
    Reader(
        "codebook_yaml",
        "codebook.yaml",
        read_codebook,
        "yaml",
        _const("codes:\n  - id: cafe\n    name: Café\n    definition: A place\n".encode()),
        _const(f"codes:\n  - id: a\n    definition: {X}\n".encode()),
        _codes,
        [("cafe", "Café", "A place")],
    ),
    Reader(
        "codebook_csv",
        "codebook.csv",
        read_codebook,
        "csv",
        _const("name,description\nCafé,A place\nWaiting,Time\n".encode()),
        _const(f"name,description\nA,{X}\n".encode()),
        _codes,
        [("Café", "Café", "A place"), ("Waiting", "Waiting", "Time")],
    ),
    Reader(
        "codebook_qdc",
        "codebook.qdc",
        read_codebook,
        "xml",
        _const(codebook_qdc(CODEBOOK, study="s")),
        _const(codebook_qdc(Codebook((Code("a", "A", X),)), study="s")),
        _codes,
        [("waiting", "Waiting lists", "Time before help"), ("cafe", "Café", "A place")],
    ),
    Reader(
        "codings_csv",
        "codings.csv",
        read_codings_file,
        "csv",
        _const(b"transcript_id,coder,code,start,end\nT1,A,cafe,0,5\nT1,B,cafe,x,5\n"),
        _const(f"transcript_id,coder,code,start,end\nT1,A,{X},0,5\n".encode()),
        lambda r: _rows(r[1]),
        [("T1", "A", "cafe", "0", "5"), ("T1", "B", "cafe", "x", "5")],  # offsets checked later
    ),
    Reader(
        "codings_survey_csv",
        "codings.csv",
        read_codings_file,
        "csv",
        _const(b"id,coder,code\nA1,A,cafe\nA2,B,waiting\n"),
        _const(f"id,coder,code\nA1,A,{X}\n".encode()),
        lambda r: _rows(r[1]),
        [("A1", "A", "cafe", "0", ""), ("A2", "B", "waiting", "0", "")],  # whole answers
    ),
    Reader(
        "responses",
        "responses.csv",
        load_responses,
        "csv",
        _const("id,text,group,question\n1,The café was shut.,web,Why?\n2,,app,Why?\n".encode()),
        _const(f"id,text\n1,{X}\n".encode()),
        lambda r: (_rows(r[0]), r[1]),
        (
            [("1", "The café was shut.", "web", "Why?", "1")],
            {"answers": 1, "empty_answers_skipped": 1, "questions": 1, "ignored_columns": []},
        ),
    ),
    Reader(
        "qdpx",
        "project.qdpx",
        read_project_qdpx,
        "zip",
        _qdpx,
        lambda t: _qdpx(t, "P1: " + X),
        lambda r: (_codes(r[0]), _rows(r[1]), r[2]),
        (
            [("waiting", "Waiting lists", "Time before help"), ("cafe", "Café", "A place")],
            [("T1", "A", "waiting", 0, 11)],
            {"T1": "Interviewer: hello there\nP1: café and waiting lists\n"},
        ),
    ),
    Reader(
        "qdpx_cases",
        "cases.qdpx",
        read_project_cases,
        "zip",
        _qdpx,
        lambda t: _qdpx(t, group=X),
        _rows,
        [("T1", "P1", "café")],
    ),
    Reader(
        "taguette_db",
        "taguette.sqlite3",
        read_codings_file,
        "sqlite",
        taguette_db,
        lambda t: taguette_db(t, "<p>" + X + "</p>"),
        lambda r: (_codes(r[0]), _rows(r[1]), r[2], r[3]),
        (
            [("waiting", "waiting", "Time before help")],
            [("T1", "taguette", "waiting", 0, 3)],
            {"T1": "Café and waiting"},
            {
                "rows_in": 1,
                "used": 1,
                "skipped_untagged_highlight": 0,
                "skipped_offsets_out_of_range": 0,
            },
        ),
    ),
    Reader(
        "taguette_csv",
        "tags.csv",
        read_taguette_csv,
        "csv",
        _const("id,document,tag,content\n1,T1.odt,waiting,café\n".encode()),
        _const(f"id,document,tag,content\n1,T1.odt,waiting,{X}\n".encode()),
        _rows,
        [("T1", "taguette", "waiting", "café")],
    ),
    Reader(
        "register",
        "register.yaml",
        read_register,
        "yaml",
        _const(
            "people:\n  - {name: Zoë Okafor, aliases: [Zoë], role: parent}\nplaces: [Thatcham]\n".encode()
        ),
        _const(f"people:\n  - {X}\n".encode()),
        lambda r: [(e.name, e.label, e.role, e.aliases) for e in r.entries],
        [("Zoë Okafor", "PERSON", "parent", ("Zoë",)), ("Thatcham", "PLACE", None, ())],
        "longer than 200 characters",
    ),
    Reader(
        "allow",
        "allow.yaml",
        read_allow,
        "yaml",
        _const("allow: [NHS England, Café Nero]\n".encode()),
        _const(f"allow: [{X}]\n".encode()),
        sorted,
        ["café nero", "nhs england"],  # matched without case
    ),
    Reader(
        "theme_review",
        "theme_review.yaml",
        load_review,
        "yaml",
        _const("decisions:\n  - merge: [1, 2]\n    label: Café\n  - drop: 3\n".encode()),
        _const(f"decisions:\n  - rename: 1\n    label: {X}\n".encode()),
        lambda r: [(d.action, d.themes, d.label) for d in r.decisions],
        [("merge", (1, 2), "Café"), ("drop", (3,), None)],
    ),
    Reader(
        "params",
        "params.yaml",
        load_params,
        "yaml",
        _const("seed: 7\nthemes:\n  min_themes: 3\nstudy: café\n".encode()),
        _const(f"study: {X}\n".encode()),
        lambda p: (p.seed, p.study, p.themes.min_themes),
        (7, "café", 3),
    ),
):
    register(_r)


def transcript_reader() -> Callable[[Path], object] | None:
    """The function that reads one transcript file, where pipeline.formats has one."""
    try:
        from pipeline.formats import transcripts
    except ImportError:
        return None
    return getattr(transcripts, "read_transcript", None)
