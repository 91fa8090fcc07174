"""Bad input never gives a traceback (issue 14, point 4): every reader of a user's file either
parses it or raises a one-line UserError that names the file (and the line, key or column);
text encodings that Windows tools write are read, not refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from reader_registry import READERS, X, _zip, taguette_db

from pipeline.errors import UserError
from pipeline.formats.qdpx import read_project_qdpx
from pipeline.formats.readers import read_codebook, read_codings_file
from pipeline.io import read_csv, read_yaml

TEXT_READERS = [r for r in READERS.values() if r.kind in ("csv", "yaml")]


def _write(tmp_path: Path, reader, data: bytes) -> Path:
    path = tmp_path / reader.filename
    path.write_bytes(data)
    return path


def parses_or_user_error(reader, path: Path):
    """The reader's result, or None when it raised a proper UserError."""
    try:
        return reader.read(path)
    except UserError as e:
        message = str(e)
        assert str(path) in message, message
        assert len(message.splitlines()) == 1, message
        return None


def _comparable(value):
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value.reset_index(drop=True).to_dict("list")
    if isinstance(value, tuple) and not hasattr(value, "__dataclass_fields__"):
        return tuple(_comparable(v) for v in value)
    return value


def _strings(value) -> list[str]:
    """Every string in a summary (nested tuples, lists and dicts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("name", sorted(READERS))
def test_valid_file_reads_to_its_known_answer(tmp_path, name):
    reader = READERS[name]
    assert reader.summary is not None, f"register {name} with a summary and the answer for its valid file"
    assert reader.summary(reader.read(_write(tmp_path, reader, reader.valid(tmp_path)))) == reader.answer


@pytest.mark.parametrize("name", sorted(READERS))
def test_empty_file(tmp_path, name):
    reader = READERS[name]
    parses_or_user_error(reader, _write(tmp_path, reader, b""))


@pytest.mark.parametrize("name", sorted(READERS))
@pytest.mark.parametrize("garbage", [bytes(range(256)) * 8, b"\x00" * 100, b"PK\x03\x04" + bytes(500)])
def test_binary_garbage_is_refused(tmp_path, name, garbage):
    reader = READERS[name]
    path = _write(tmp_path, reader, garbage)
    with pytest.raises(UserError) as e:
        reader.read(path)
    assert str(path) in str(e.value) and len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16", "utf-8-sig+crlf", "utf-32"])
@pytest.mark.parametrize("name", sorted(r.name for r in TEXT_READERS))
def test_windows_encodings_read_as_utf8(tmp_path, name, encoding):
    reader = READERS[name]
    utf8 = reader.valid(tmp_path).decode("utf-8")
    expected = _comparable(reader.read(_write(tmp_path, reader, utf8.encode())))
    if encoding == "utf-8-sig+crlf":
        data = utf8.replace("\n", "\r\n").encode("utf-8-sig")
    else:
        data = utf8.encode(encoding)
    assert _comparable(reader.read(_write(tmp_path, reader, data))) == expected


@pytest.mark.parametrize("name", sorted(READERS))
def test_a_million_character_value_is_kept_whole_or_refused_by_name(tmp_path, name):
    reader = READERS[name]
    path = _write(tmp_path, reader, reader.big(tmp_path))
    if reader.refuses_big:
        with pytest.raises(UserError) as e:
            reader.read(path)
        message = str(e.value)
        assert str(path) in message and reader.refuses_big in message and len(message.splitlines()) == 1
    else:
        assert any(X in s for s in _strings(reader.summary(reader.read(path))))


BAD = [
    # (reader, file content, what the message must say)
    ("participants", b"transcript_id,participant_id\nT1,P1\n", "missing column(s) group"),
    (
        "participants",
        b"transcript_id,participant_id,group\nT1,P1,a\nT1,P2,b\n",
        "line 3: transcript_id listed twice",
    ),
    ("participants", b"transcript_id,participant_id,group\nT1,P1,a,extra,more\n", "line 2: more fields"),
    ("participants", b"transcript_id,participant_id,group\nT1,P1,a\nT2,P2,b,c\n", "line 3"),
    ("participants", b"transcript_id,participant_id,group\nT1,,a\n", "line 2: empty 'participant_id'"),
    (
        "participants",
        b"transcript_id, group,participant_id,group\nT1,a,P1,b\n",
        "column 'group' appears twice",
    ),
    ("participants", b'transcript_id,participant_id,group\nT1,P1,"unclosed\n', "not a readable CSV"),
    ("study", b"- name\n- x\n", "expected a mapping with a 'name' string"),
    ("study", b"name: 42\n", "'name' string"),
    ("study", b"name: s\ninterviewer_labels: Interviewer\n", "'interviewer_labels' must be a non-empty list"),
    ("study", b"name: s\n7: x\n", "unknown key '7'"),
    ("study", b"name: s\ndescription: [a, b]\n", "'description' must be text"),
    ("study", b"name: s\nwhen: 2024-13-45\n", "not valid YAML"),
    ("study", b"name: [unclosed\n", "line 2: not valid YAML"),
    ("codebook_yaml", b"codes: {a: b}\n", "expected a mapping with a 'codes' list"),
    ("codebook_yaml", b"codes:\n  - id: 5\n", "codes[0]: expected a mapping with an 'id' string"),
    ("codebook_yaml", b"codes:\n  - id: a\n  - id: a\n", "code id 'a' appears twice"),
    ("codebook_yaml", b"codes:\n  - id: a\n    1: x\n    b: y\n", "codes[0]: unknown key '1'"),
    ("codebook_yaml", b"codes:\n  - id: a\n    definition: {x: 1}\n", "'definition' must be text"),
    ("codebook_yaml", b"codes:\n  - id: a\n    examples: quote\n", "'examples' must be a list"),
    ("codebook_csv", b"name\nA\n", "missing column(s) description"),
    ("codebook_csv", b"name,description\nA,x\nA,y\n", "code id 'A' appears twice"),
    ("codebook_csv", b"name,description\n,x\n", "line 2: empty 'name'"),
    ("codings_csv", b"transcript_id,coder\nT1,A\n", "missing column(s) code"),
    ("taguette_csv", b"document,tag\nT1,x\n", "missing column(s) content"),
    ("register", b"- Helen\n", "expected sections"),
    ("register", b"people: Helen\n", "'people' must be a list"),
    ("register", b"people:\n  - {name: Helen, 3: x, b: y}\n", "people[0]: unknown key '3'"),
    ("register", b"people:\n  - {name: 12}\n", "people[0]: expected a name"),
    ("register", b"people:\n  - {name: Helen, aliases: Nell}\n", "'aliases' must be a list"),
    ("register", f"people: [{X}]\n".encode(), "longer than 200 characters"),
    ("allow", b"allow: NHS\n", "'allow' must be a list"),
    ("allow", b"allow: [1, 2]\n", "'allow' must be a list"),
    ("theme_review", b"decisions: {merge: [1, 2]}\n", "one key, 'decisions'"),
    ("theme_review", b"decisions:\n  - merge: 3\n", "decisions[0]: 'merge' takes a list"),
    ("theme_review", b"decisions:\n  - drop: three\n", "decisions[0]: expected a theme id"),
    ("theme_review", b"decisions:\n  - split: 1\n    into: 5\n", "decisions[0]: 'into' must be a list"),
    ("theme_review", b"decisions:\n  - drop: 1\n    2: x\n", "decisions[0]: unknown key '2'"),
    ("params", b"- seed\n", "expected a mapping of sections"),
    ("params", b"seed: many\n", "bad value for 'seed'"),
    ("params", b"themes: 5\n", "themes"),
    ("params", b"themes:\n  min_themes: [3]\n", "bad value for 'themes.min_themes'"),
    ("params", b"colour: blue\n", "unknown key 'colour'"),
]


@pytest.mark.parametrize(("name", "data", "says"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_wrong_shapes_and_types_are_named(tmp_path, name, data, says):
    reader = READERS[name]
    path = _write(tmp_path, reader, data)
    with pytest.raises(UserError) as e:
        reader.read(path)
    message = str(e.value)
    assert str(path) in message and says in message and len(message.splitlines()) == 1


# --- REFI-QDA XML and zips -------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE CodeBook [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes><Code guid="1" name="&xxe;"/></Codes></CodeBook>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes><Code guid="1" name="&lol3;"/></Codes></CodeBook>"""


@pytest.mark.parametrize("xml", [XXE, LAUGHS], ids=["external-entity", "billion-laughs"])
def test_xml_entities_are_refused_in_codebooks_and_projects(tmp_path, xml):
    (tmp_path / "codebook.qdc").write_bytes(xml)
    with pytest.raises(UserError, match="DTD or entities is refused"):
        read_codebook(tmp_path / "codebook.qdc")
    (tmp_path / "p.qdpx").write_bytes(_zip({"project.qde": xml.replace(b"CodeBook", b"Project")}))
    with pytest.raises(UserError, match="DTD or entities is refused"):
        read_project_qdpx(tmp_path / "p.qdpx")


def test_qdc_codes_without_names_or_duplicated_are_named(tmp_path):
    ns = b'xmlns="urn:QDA-XML:codebook:1.0"'
    path = tmp_path / "codebook.qdc"
    path.write_bytes(b"<CodeBook " + ns + b'><Codes><Code guid="1"/></Codes></CodeBook>')
    with pytest.raises(UserError, match=f"{path}: a Code has no name"):
        read_codebook(path)
    path.write_bytes(b"<CodeBook " + ns + b'><Codes><Code name="a"/><Code name="a"/></Codes></CodeBook>')
    with pytest.raises(UserError, match=f"{path}: two codes share the id or name 'a'"):
        read_codebook(path)
    deep = b'<Code name="a">' * 5000 + b"</Code>" * 5000
    path.write_bytes(b"<CodeBook " + ns + b"><Codes>" + deep + b"</Codes></CodeBook>")
    with pytest.raises(UserError, match=str(path)):
        read_codebook(path)


def test_truncated_and_corrupt_projects_are_user_errors(tmp_path):
    good = READERS["qdpx"].valid(tmp_path)
    path = tmp_path / "p.qdpx"
    for cut in (10, len(good) // 2, len(good) - 30):
        path.write_bytes(good[:cut])
        with pytest.raises(UserError, match=str(path)):
            read_project_qdpx(path)
    # flip bytes inside the first member's compressed data: a CRC or inflate error
    z = zipfile.ZipFile(io.BytesIO(good))
    info = z.infolist()[0]
    at = info.header_offset + 30 + len(info.filename.encode()) + 5
    path.write_bytes(good[:at] + bytes(b ^ 0xFF for b in good[at : at + 20]) + good[at + 20 :])
    with pytest.raises(UserError, match=f"{path}: .*corrupt|{path}: not valid XML"):
        read_project_qdpx(path)


def test_zip_bomb_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.qdpx"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("project.qde", "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):  # 300 MiB of zeros, about 300 KiB packed
                f.write(chunk)
    path.write_bytes(buf.getvalue())
    with pytest.raises(UserError, match="zip bomb"):
        read_project_qdpx(path)


def test_missing_source_member_and_bad_offsets_are_named(tmp_path):
    ns = 'xmlns="urn:QDA-XML:project:1.0"'
    qde = f'<Project {ns}><Sources><TextSource guid="g" name="T1" plainTextPath="internal://g.txt"/></Sources></Project>'
    path = tmp_path / "p.qdpx"
    path.write_bytes(_zip({"project.qde": qde.encode()}))
    with pytest.raises(UserError, match=f"{path}: source file 'g.txt'"):
        read_project_qdpx(path)
    qde = (
        f'<Project {ns}><Sources><TextSource guid="g" name="T1"><PlainTextContent>hi</PlainTextContent>'
        '<PlainTextSelection guid="s" startPosition="one" endPosition="2"/></TextSource></Sources></Project>'
    )
    path.write_bytes(_zip({"project.qde": qde.encode()}))
    with pytest.raises(UserError, match=f"{path}: a selection in 'T1' lacks integer"):
        read_project_qdpx(path)


# --- Taguette --------------------------------------------------------------------------------


def test_taguette_offsets_of_the_wrong_type_are_counted_not_fatal(tmp_path):
    path = tmp_path / "taguette.sqlite3"
    path.write_bytes(taguette_db(tmp_path, offsets=((0, 3), ("zero", 4), (1.5, 3), (None, 2), (2, 99))))
    _book, codings, _texts, counts = read_codings_file(path)
    assert len(codings) == 1
    assert counts["skipped_offsets_out_of_range"] == 4


def test_taguette_database_missing_tables_is_named(tmp_path):
    import sqlite3

    path = tmp_path / "taguette.sqlite3"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE projects (id INTEGER)")
    con.execute("INSERT INTO projects VALUES (1)")
    con.commit()
    con.close()
    with pytest.raises(UserError, match=f"{path}: not a readable Taguette database"):
        read_codings_file(path)


# --- shared helpers --------------------------------------------------------------------------


def test_read_csv_and_read_yaml_report_lines(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\n5,6,7\n")
    with pytest.raises(UserError, match=f"{path} line 4: not a readable CSV"):
        read_csv(path, ("a", "b"))
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: 1\nb: [\n")
    with pytest.raises(UserError, match=f"{path} line 3: not valid YAML"):
        read_yaml(path)
    path.write_bytes(b"[" * 5000)
    with pytest.raises(UserError, match=str(path)):
        read_yaml(path)


def test_user_error_is_always_one_line():
    message = str(UserError("codebook.csv: code id 'a\nb\r\nc' appears twice"))
    assert message == "codebook.csv: code id 'a b c' appears twice"
    assert len(str(UserError("f: " + "x" * 10**6))) <= 2000
