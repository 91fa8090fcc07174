"""Property-based robustness of every reader in `reader_registry` (issue 14, point 4): whatever
the file holds (arbitrary text, arbitrary bytes, well-formed YAML/CSV/XML of the wrong shape,
zips of arbitrary members, databases of arbitrary rows) the reader parses it or raises a
UserError whose message is one line naming the file. Any other exception fails."""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reader_registry import READERS, TAGUETTE_SCHEMA, Reader, transcript_reader

from pipeline.errors import UserError

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _with_transcripts() -> dict[str, Reader]:
    """The registry plus the transcript readers, where pipeline.formats has one."""
    readers = dict(READERS)
    read = transcript_reader()
    if read is not None:
        for suffix, kind in (
            (".txt", "text"),
            (".vtt", "text"),
            (".srt", "text"),
            (".docx", "zip"),
            (".odt", "zip"),
        ):
            readers[f"transcript{suffix}"] = Reader(
                f"transcript{suffix}",
                f"T1{suffix}",
                lambda p, s=suffix: read(p.read_bytes(), str(p), suffix=s),
                kind,
                lambda _t: b"",
                lambda _t: b"",
            )
    return readers


ALL = _with_transcripts()
NAMES = sorted(ALL)


def check(reader: Reader, folder: Path, data: bytes) -> None:
    path = folder / reader.filename
    path.write_bytes(data)
    try:
        reader.read(path)
    except UserError as e:
        message = str(e)
        assert str(path) in message, message
        assert len(message.splitlines()) == 1, message


# words a reader looks for, so generated structures sometimes come close to valid files
KEYS = [
    "name",
    "description",
    "interviewer_labels",
    "codes",
    "id",
    "definition",
    "include",
    "exclude",
    "examples",
    "parent",
    "people",
    "places",
    "services",
    "titles",
    "aliases",
    "role",
    "allow",
    "decisions",
    "merge",
    "rename",
    "drop",
    "split",
    "into",
    "label",
    "segments",
    "keywords",
    "note",
    "seed",
    "study",
    "themes",
    "min_themes",
    "deid",
    "gate_rounds",
    "embed",
    "batch_size",
]
COLUMNS = [
    "transcript_id",
    "participant_id",
    "group",
    "coder",
    "code",
    "start",
    "end",
    "quote",
    "name",
    "description",
    "tag",
    "document",
    "content",
    "id",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(KEYS),
)
TREES = st.recursive(
    SCALARS,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.integers(0, 9), st.text(max_size=5)), kids, max_size=5
        )
    ),
    max_leaves=20,
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"])


@st.composite
def yaml_files(draw) -> bytes:
    text = yaml.safe_dump(draw(TREES), allow_unicode=True)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text.encode(draw(ENCODINGS), errors="replace")


@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.lists(st.sampled_from(COLUMNS) | st.text(max_size=8), min_size=1, max_size=7))
    cell = st.one_of(st.text(max_size=15), st.integers(-5, 500).map(str), st.sampled_from(["", "NA", "None"]))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=len(header) + 2), max_size=6))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(draw(ENCODINGS), errors="replace")


TAGS = [
    "CodeBook",
    "Project",
    "Codes",
    "Code",
    "Description",
    "Users",
    "User",
    "Sources",
    "TextSource",
    "PlainTextContent",
    "PlainTextSelection",
    "Coding",
    "CodeRef",
    "Cases",
    "Case",
    "Variables",
    "Variable",
    "VariableValue",
    "VariableRef",
    "TextValue",
    "SourceRef",
    "CodeBook/Codes",
]
ATTRS = ["guid", "name", "startPosition", "endPosition", "targetGUID", "creatingUser", "plainTextPath"]
NAMESPACES = ["urn:QDA-XML:codebook:1.0", "urn:QDA-XML:project:1.0", ""]


@st.composite
def xml_elements(draw, depth: int = 0) -> ET.Element:
    ns = draw(st.sampled_from(NAMESPACES))
    tag = draw(st.sampled_from(TAGS)).split("/")[0]
    attrs = draw(
        st.dictionaries(
            st.sampled_from(ATTRS),
            st.text(max_size=10) | st.sampled_from(["g", "1", "-3", "internal://g.txt"]),
            max_size=3,
        )
    )
    el = ET.Element(f"{{{ns}}}{tag}" if ns else tag, attrs)
    el.text = draw(st.none() | st.text(max_size=20))
    if depth < 3:
        for child in draw(st.lists(xml_elements(depth + 1), max_size=3)):
            el.append(child)
    return el


def _xml_bytes(el: ET.Element) -> bytes:
    try:
        return ET.tostring(el, encoding="utf-8", xml_declaration=True)
    except ValueError:  # a control character in generated text: not XML at all
        return b"<"


@st.composite
def zip_files(draw) -> bytes:
    names = st.sampled_from(
        [
            "project.qde",
            "x/project.qde",
            "sources/g.txt",
            "sources/G.TXT",
            "word/document.xml",
            "content.xml",
            "[Content_Types].xml",
            "mimetype",
            "META-INF/manifest.xml",
        ]
    ) | st.text(min_size=1, max_size=12)
    content = st.binary(max_size=200) | xml_elements().map(_xml_bytes) | st.text(max_size=50).map(str.encode)
    members = draw(st.dictionaries(names, content, max_size=5))
    buf = io.BytesIO()
    with zipfile.ZipFile(
        buf, "w", compression=draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    ) as z:
        for name, data in members.items():
            try:
                z.writestr(name, data)
            except (ValueError, IndexError):  # a name zipfile cannot store
                pass
    data = buf.getvalue()
    cut = draw(st.none() | st.integers(0, len(data)))
    return data if cut is None else data[:cut]


VALUES = st.one_of(
    st.none(), st.integers(-5, 50), st.floats(allow_nan=True), st.text(max_size=12), st.binary(max_size=6)
)


@st.composite
def taguette_files(draw) -> bytes:
    """A database with Taguette's tables holding values of any type."""
    tables = {"projects": 4, "documents": 8, "tags": 4, "highlights": 5, "highlight_tags": 2}
    con = sqlite3.connect(":memory:")
    con.executescript(TAGUETTE_SCHEMA)
    for table, n in tables.items():
        rest = [st.integers(0, 3)] if table == "highlight_tags" else [VALUES] * (n - 1)
        for row in draw(st.lists(st.tuples(st.integers(0, 3), *rest), max_size=3)):
            con.execute(f"INSERT OR IGNORE INTO {table} VALUES ({', '.join('?' * n)})", row)
    con.commit()
    data = con.serialize()
    con.close()
    return data


STRUCTURED = {
    "csv": csv_files(),
    "yaml": yaml_files(),
    "xml": xml_elements().map(_xml_bytes),
    "zip": zip_files(),
    "sqlite": taguette_files(),
    "text": st.text(max_size=300).map(str.encode),
}


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(text=st.text(max_size=400))
def test_arbitrary_text(tmp_path, name, text):
    check(ALL[name], tmp_path, text.encode("utf-8"))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes(tmp_path, name, data):
    check(ALL[name], tmp_path, data)


@pytest.mark.parametrize("name", NAMES)
@settings(FUZZ, max_examples=60)
@given(st.data())
def test_files_of_the_right_kind_and_the_wrong_shape(tmp_path, name, data):
    """YAML and CSV of any shape and encoding, XML of REFI-QDA's elements in any arrangement,
    zips of arbitrary members (possibly truncated), Taguette tables of values of any type."""
    reader = ALL[name]
    check(reader, tmp_path, data.draw(STRUCTURED[reader.kind]))
