"""Taguette import: UTF-8 byte offsets into the HTML-stripped text become character offsets."""

import sqlite3
from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.formats.taguette import html_to_text, locate_quotes, read_taguette_csv, read_taguette_db

SERDIF = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "serdif-usability"

SCHEMA = """
CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT, description TEXT, created TEXT);
CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT, description TEXT, filename TEXT,
  created TEXT, project_id INTEGER, text_direction TEXT, contents TEXT);
CREATE TABLE tags (id INTEGER PRIMARY KEY, project_id INTEGER, path TEXT, description TEXT);
CREATE TABLE highlights (id INTEGER PRIMARY KEY, document_id INTEGER, start_offset INTEGER,
  end_offset INTEGER, snippet TEXT);
CREATE TABLE highlight_tags (highlight_id INTEGER, tag_id INTEGER);
"""


def make_db(path: Path, contents: str, highlights: list[tuple[int, int, list[int]]]) -> None:
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.execute("INSERT INTO projects VALUES (1, 'p', '', '')")
    con.execute("INSERT INTO documents VALUES (1, 'S1.odt', '', 'S1.odt', '', 1, 'LTR', ?)", (contents,))
    con.execute("INSERT INTO tags VALUES (1, 1, 'Praise', 'Positive remarks')")
    con.execute("INSERT INTO tags VALUES (2, 1, 'Crash', 'System issue')")
    for hid, (start, end, tags) in enumerate(highlights, start=1):
        con.execute("INSERT INTO highlights VALUES (?, 1, ?, ?, '')", (hid, start, end))
        for t in tags:
            con.execute("INSERT INTO highlight_tags VALUES (?, ?)", (hid, t))
    con.commit()
    con.close()


def test_byte_offsets_become_character_offsets(tmp_path):
    html = "<p>Café &amp; naïve</p><p>It crashed – again.</p>"
    text = html_to_text(html)
    assert text == "Café & naïve" + "It crashed – again."
    raw = text.encode("utf-8")
    b_start = raw.index(b"It crashed")
    b_end = b_start + len("It crashed – again.".encode())
    make_db(
        tmp_path / "t.sqlite3", html, [(0, len("Café".encode()), [1]), (b_start, b_end, [2, 1]), (0, 3, [])]
    )
    book, codings, texts, counts = read_taguette_db(tmp_path / "t.sqlite3")
    assert [c.code_id for c in book.codes] == ["Crash", "Praise"]
    assert book.codes[0].definition == "System issue"
    quotes = [texts[r.transcript_id][r.start : r.end] for r in codings.itertuples()]
    assert quotes == ["Café", "It crashed – again.", "It crashed – again."]
    assert sorted(codings["code"]) == ["Crash", "Praise", "Praise"]
    assert counts == {
        "rows_in": 4,
        "used": 3,
        "skipped_untagged_highlight": 1,
        "skipped_offsets_out_of_range": 0,
    }


def test_offsets_outside_the_text_or_inside_a_character_are_skipped(tmp_path):
    html = "<p>Café</p>"
    make_db(tmp_path / "t.sqlite3", html, [(0, 99, [1]), (0, 4, [1]), (0, 5, [1])])
    _, codings, _, counts = read_taguette_db(tmp_path / "t.sqlite3")
    # byte 4 is inside the two-byte "é"; byte 5 is its end
    assert len(codings) == 1 and counts["skipped_offsets_out_of_range"] == 2
    assert counts["rows_in"] == counts["used"] + 2


def test_not_a_database_is_a_user_error(tmp_path):
    bad = tmp_path / "x.sqlite3"
    bad.write_text("hello")
    with pytest.raises(UserError, match="not a readable Taguette database"):
        read_taguette_db(bad)


def test_csv_export_quotes_are_located(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text('id,document,tag,content\n1,S1.odt,Crash,"It   crashed"\n2,S1.odt,Crash,missing words\n')
    rows = read_taguette_csv(path)
    placed, counts = locate_quotes(rows, {"S1": "Fine. It crashed\nthen."})
    assert placed[["start", "end"]].values.tolist() == [[6, 16]]
    assert counts["rows_in"] == counts["used"] + counts["skipped_quote_not_found"] == 2


@pytest.mark.skipif(not SERDIF.is_dir(), reason=f"{SERDIF} absent (shared datasets not mounted)")
def test_real_taguette_project_lines_up_with_its_snippets():
    book, codings, texts, counts = read_taguette_db(SERDIF / "taguette.sqlite3")
    assert len(book.codes) == 22 and len(texts) == 17
    assert counts["rows_in"] == counts["used"] + counts["skipped_untagged_highlight"] == 1931
    con = sqlite3.connect(SERDIF / "taguette.sqlite3")
    snippets = [html_to_text(s).strip() for (s,) in con.execute("SELECT snippet FROM highlights ORDER BY id")]
    quotes = {texts[r.transcript_id][r.start : r.end].strip() for r in codings.itertuples()}
    assert quotes <= set(snippets)
