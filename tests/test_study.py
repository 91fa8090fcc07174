"""Study folder loading: codebooks in three formats, codings skipped and reported, never dropped."""

import zipfile
from pathlib import Path

import pytest

from pipeline.codebook import Code, Codebook
from pipeline.errors import UserError
from pipeline.formats.readers import read_codebook
from pipeline.formats.refi import write_codebook_qdc
from pipeline.ingest.codings_files import read_codings
from pipeline.study import load_codebook

BOOK = Codebook((Code("a", "Alpha", definition="first"), Code("b", "Beta", definition="second")))
IDS = {"T1", "T2"}


def write_codings(study: Path, rows: list[str]) -> None:
    (study / "codings.csv").write_text("transcript_id,coder,code,start,end\n" + "\n".join(rows) + "\n")


def test_codebook_csv_yaml_and_qdc(tmp_path):
    (tmp_path / "book.csv").write_text('name,description\nAlpha,"first, with a comma"\nBeta,second\n')
    book = read_codebook(tmp_path / "book.csv")
    assert [(c.code_id, c.definition) for c in book.codes] == [
        ("Alpha", "first, with a comma"),
        ("Beta", "second"),
    ]
    # Taguette's codebook export: tag,description,number of highlights
    (tmp_path / "tags.csv").write_text('tag,description,number of highlights\nAlpha,"first",3\n')
    assert [(c.name, c.definition) for c in read_codebook(tmp_path / "tags.csv").codes] == [
        ("Alpha", "first")
    ]
    write_codebook_qdc(BOOK, tmp_path / "book.qdc", study="s")
    back = read_codebook(tmp_path / "book.qdc")
    assert [c.name for c in back.codes] == ["Alpha", "Beta"]
    (tmp_path / "study").mkdir()
    write_codebook_qdc(BOOK, tmp_path / "study" / "codebook.qdc", study="s")
    assert [c.name for c in load_codebook(tmp_path / "study").codes] == ["Alpha", "Beta"]


def test_codebook_errors_name_the_file(tmp_path):
    (tmp_path / "book.csv").write_text("name,description\n,missing name\n")
    with pytest.raises(UserError, match="book.csv line 2: empty 'name'"):
        read_codebook(tmp_path / "book.csv")
    (tmp_path / "book.csv").write_text("code,meaning\nA,b\n")
    with pytest.raises(UserError, match="book.csv: missing column.s. name, description"):
        read_codebook(tmp_path / "book.csv")
    (tmp_path / "book.qdc").write_text("<not xml")
    with pytest.raises(UserError, match="book.qdc"):
        read_codebook(tmp_path / "book.qdc")


def test_bad_rows_are_skipped_and_counted(tmp_path):
    write_codings(
        tmp_path,
        [
            "T1,A,a,0,10",
            "T1,A,a,5,20",  # overlaps the row above: merged into it
            "T1,A,a,0,10",  # exact duplicate of the first row
            "T1,A,zzz,0,10",  # not in the codebook
            "T9,A,a,0,10",  # unknown transcript
            "T1,A,b,10,5",  # reversed
            "T1,A,b,x,5",  # not an integer
            "T2,A,b,0,50",  # past the end of T2 (40 characters)
            "T2,B,b,0,10",
            "T2,C,zzz,0,10",  # coder C's only row is unusable
        ],
    )
    codings, report = read_codings(tmp_path, IDS, BOOK, texts={"T1": "x" * 100, "T2": "y" * 40})
    r = report.as_dict()
    assert r["rows_in"] == 10 and r["rows_in"] == r["used"] + r["skipped_total"]
    assert r["skipped"] == {
        "code_not_in_codebook": 2,
        "duplicate_row": 1,
        "empty_or_reversed_span": 1,
        "offsets_not_integers": 1,
        "overlaps_same_code_span_merged": 1,
        "span_past_end_of_transcript": 1,
        "unknown_transcript": 1,
    }
    assert codings[["transcript_id", "coder", "code", "start", "end"]].values.tolist() == [
        ["T1", "A", "a", 0, 20],
        ["T2", "B", "b", 0, 10],
    ]
    assert "T1,A" not in str(r["skipped_examples"])  # lines are named, their content is not
    assert r["skipped_examples"]["unknown_transcript"] == ["codings.csv line 6"]
    text = " ".join(r["warnings"])
    assert "coder 'C' has no usable codings" in text
    assert "code 'a' is used once" in text and "code 'b' is used once" in text


def test_unreadable_files_still_raise(tmp_path):
    (tmp_path / "codings.csv").write_text("transcript_id,coder,code\nT1,A,a\n")
    with pytest.raises(UserError, match="missing column"):
        read_codings(tmp_path, IDS, BOOK)


def test_a_qdpx_that_fails_the_refi_schema_is_a_user_error(tmp_path):
    (tmp_path / "codings.csv").unlink(missing_ok=True)
    with zipfile.ZipFile(tmp_path / "project.qdpx", "w") as z:
        z.writestr("project.qde", "<Project xmlns='urn:wrong'/>")
    with pytest.raises(UserError, match="project.qdpx"):
        read_codings(tmp_path, IDS, BOOK)


def test_taguette_database_in_the_study_folder(tmp_path):
    from tests.test_taguette import make_db

    make_db(tmp_path / "project.sqlite3", "<p>Café crashed</p>", [(0, 5, [1]), (6, 13, [2]), (0, 2, [])])
    book = load_codebook(tmp_path)
    assert [c.code_id for c in book.codes] == ["Crash", "Praise"]
    codings, report = read_codings(tmp_path, {"S1"}, book)
    assert codings[["code", "start", "end"]].values.tolist() == [["Crash", 5, 12], ["Praise", 0, 4]]
    assert report.rows_in == report.used + sum(report.skipped.values()) == 3
    assert report.skipped == {"untagged_highlight": 1}
