"""Human codings and the codebook cross the de-identification boundary as typed outputs:
ingest imports the codings as offsets only (`codings.parquet`), deidentify writes the
codebook scrubbed (`codebook.json`), and no later stage reads the study folder's own files."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import FAST, TRANSCRIPTS, _codings, make_study
from typer.testing import CliRunner

from pipeline.__main__ import app
from pipeline.codebook import Code, Codebook, read_codebook_json, write_codebook_json
from pipeline.codings import read_codings_table
from pipeline.config import load_params
from pipeline.errors import UserError
from pipeline.formats.readers import read_codebook
from pipeline.io import read_json
from pipeline.runner import Layout
from pipeline.schemas import CODINGS
from pipeline.stages import run_stage

SETS = [a for s in FAST for a in ("--set", s)]


def invoke(*args: object) -> str:
    """Run one CLI command in-process (models stay loaded between commands)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def one_line_error(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def ingest_to(study: Path, out: Path) -> Layout:
    lay = Layout(out)
    paths = {
        "study": study,
        "turns": lay.turns,
        "codings_ingested": lay.codings,
        "ingest_metrics": lay.metric("ingest"),
    }
    run_stage("ingest", load_params(None, FAST), paths=paths)
    return lay


def test_codings_table_has_offsets_and_no_text(tmp_path, study):
    lay = ingest_to(study, tmp_path / "out")
    raw = pd.read_parquet(lay.codings)
    assert list(raw.columns) == CODINGS.names == ["transcript_id", "coder", "code", "start", "end"]
    expected = pd.read_csv(io.StringIO(_codings(TRANSCRIPTS)), dtype={"start": "int64", "end": "int64"})
    key = CODINGS.names
    got = read_codings_table(lay.codings).sort_values(key).reset_index(drop=True)
    assert got.equals(expected.astype({"transcript_id": str}).sort_values(key).reset_index(drop=True))
    # the offsets point into the ingested transcript text
    row = got[(got["transcript_id"] == "T3") & (got["code"] == "funding")].iloc[0]
    assert "funding" in TRANSCRIPTS["T3"][row["start"] : row["end"]]
    report = read_json(lay.metrics / "ingest.json")["codings"]
    assert report["sources"] == ["codings.csv"] and report["used"] == len(got)
    assert report["rows_in"] == report["used"] + report["skipped_total"]


def test_a_study_without_codings_gets_an_empty_table(tmp_path, study):
    (study / "codings.csv").unlink()
    lay = ingest_to(study, tmp_path / "out")
    table = read_codings_table(lay.codings)
    assert table.empty and list(table.columns) == CODINGS.names
    assert str(table["start"].dtype) == "int64"
    assert read_json(lay.metrics / "ingest.json")["codings"]["rows_in"] == 0


def test_bad_rows_are_counted_at_ingest_and_reported_by_agreement(tmp_path, study):
    """Codes the codebook lacks and spans past the end of a transcript are skipped and
    counted (rows in = used + skipped), not errors; the agreement stage repeats the report."""
    with open(study / "codings.csv", "a") as f:
        f.write(f"T1,A,no_such_code,0,10\nT2,A,funding,0,{len(TRANSCRIPTS['T2']) + 5}\n")
    lay = ingest_to(study, tmp_path / "out")
    report = read_json(lay.metrics / "ingest.json")["codings"]
    assert report["skipped"] == {"code_not_in_codebook": 1, "span_past_end_of_transcript": 1}
    assert report["rows_in"] == report["used"] + 2
    n = len(_codings(TRANSCRIPTS).splitlines()) - 1
    assert report["used"] == n == len(read_codings_table(lay.codings))
    assert "no_such_code" not in json.dumps(report["skipped_examples"])  # lines, not content


def test_taguette_tag_export_is_placed_in_the_transcript_text(tmp_path, study):
    (study / "codings.csv").unlink()
    quote = "The consultation helps me think about the baby"
    reflowed = "Sometimes I send a referral\n and hear   nothing back"
    (study / "tags.csv").write_text(
        "id,document,tag,content\n"
        f'1,T2.odt,consultation,"{quote}"\n'
        f'2,T2.odt,communication,"{reflowed}"\n'
        "3,T2.odt,communication,words nobody said\n"
        "4,T9.odt,communication,an unknown transcript\n"
    )
    lay = ingest_to(study, tmp_path / "out")
    table = read_codings_table(lay.codings)
    spans = {r.code: TRANSCRIPTS["T2"][r.start : r.end] for r in table.itertuples()}
    assert spans["consultation"] == quote
    assert spans["communication"] == "Sometimes I send a referral and hear nothing back"
    assert set(table["coder"]) == {"taguette"}
    report = read_json(lay.metrics / "ingest.json")["codings"]
    assert report["skipped"] == {"quote_not_found": 1, "unknown_transcript": 1}
    assert report["skipped_examples"] == {
        "quote_not_found": ["tags.csv record 3"],  # record 2's quote spans two lines
        "unknown_transcript": ["tags.csv record 4"],
    }
    assert report["rows_in"] == report["used"] + report["skipped_total"] == 4


def test_codebook_json_round_trips_and_says_when_there_is_none(tmp_path):
    book = Codebook(
        (
            Code("g", "Group"),
            Code(
                "a", "Alpha", definition="first", include="i", exclude="e", examples=("q1", "q2"), parent="g"
            ),
        )
    )
    write_codebook_json(tmp_path / "book.json", book)
    assert read_codebook_json(tmp_path / "book.json") == book
    assert read_codebook(tmp_path / "book.json") == book  # the CSV contract's --codebook takes it too
    write_codebook_json(tmp_path / "none.json", None)
    assert json.loads((tmp_path / "none.json").read_text()) == {"codes": None}
    assert read_codebook_json(tmp_path / "none.json") is None
    with pytest.raises(UserError, match="none.json: holds no codebook"):
        read_codebook(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"codes": [{"name": "no id"}]}')
    with pytest.raises(UserError, match=r"bad.json: codes\[0\]"):
        read_codebook_json(tmp_path / "bad.json")


def qdpx_study(root: Path) -> Path:
    """The tiny study with its codebook and codings in a REFI project instead of YAML/CSV."""
    from pipeline.formats.qdpx import write_project_qdpx

    study = make_study(root)
    book = read_codebook(study / "codebook.yaml")
    codings = pd.read_csv(study / "codings.csv", dtype={"transcript_id": str, "coder": str, "code": str})
    write_project_qdpx(
        study / "project.qdpx", study="Tiny", sources=TRANSCRIPTS, codebook=book, codings=codings
    )
    (study / "codings.csv").unlink()
    (study / "codebook.yaml").unlink()
    return study


@pytest.mark.slow  # every stage command in turn, with the real models
def test_qdpx_study_stages_after_deidentify_never_read_the_study_folder(tmp_path):
    study = qdpx_study(tmp_path)
    lay = Layout(tmp_path / "out")
    m = lay.metrics
    invoke(
        "ingest",
        "--study",
        study,
        "--out",
        lay.turns,
        "--codings",
        lay.codings,
        "--metrics",
        m / "ingest.json",
        "-q",
    )
    invoke(
        "deidentify", "--in", lay.turns, "--out", lay.deid_turns, "--metrics", m / "deid.json",
        "--study", study, "--key-store", lay.key_store, "--codebook-out", lay.codebook, "-q",
    )  # fmt: skip
    assert [c.code_id for c in read_codebook_json(lay.codebook).codes] == [
        "communication",
        "consultation",
        "engagement",
        "funding",
    ]
    # the study folder (and the raw-text project in it) is gone: the later stages must not need it
    shutil.rmtree(study)
    invoke(
        "segment", "--in", lay.deid_turns, "--out", lay.segments, "--metrics", m / "segment.json", *SETS, "-q"
    )
    invoke("embed", "--in", lay.segments, "--out", lay.embeddings, *SETS, "-q")
    invoke(
        "discover", "--in", lay.segments, "--embeddings", lay.embeddings, "--out", lay.assignments,
        "--cards", lay.cards, "--metrics", m / "themes.json", "--codebook", lay.codebook, *SETS, "-q",
    )  # fmt: skip
    invoke(
        "code", "--in", lay.segments, "--embeddings", lay.embeddings, "--codebook", lay.codebook,
        "--codings", lay.codings, "--out", lay.codes, "--metrics", m / "coding.json", *SETS, "-q",
    )  # fmt: skip
    coding = read_json(m / "coding.json")  # no --turns: coded with the turn only, and it says so
    assert coding["context"] == "turn" and "no interviewer questions" in coding["context_note"]
    invoke(
        "agreement", "--codebook", lay.codebook, "--codings", lay.codings,
        "--ingest-metrics", m / "ingest.json", "--segments", lay.segments,
        "--themes", lay.assignments, "--codes", lay.codes,
        "--out", m / "agreement.json", *SETS, "--set", "agreement.min_shared_units=1", "-q",
    )  # fmt: skip
    result = read_json(m / "agreement.json")
    assert result["coders"] == ["A", "B"] and "funding" in result["per_code"]
    assert result["input"]["sources"] == ["project.qdpx"]
    assert result["input"]["rows_in"] == result["input"]["used"] + result["input"]["skipped_total"]
    # the human ceiling (the tiny study's coders share fewer units than the default 30)
    assert "cohen_kappa" in result["human"]["A_vs_B"]["per_code"]["funding"]


def test_stage_commands_give_one_line_errors(tmp_path, study):
    lay = ingest_to(study, tmp_path / "out")
    line = one_line_error(
        "code", "--in", lay.turns, "--embeddings", "e.npy", "--codebook", "c.json", "--out", "x"
    )
    assert "--codings" in line
    line = one_line_error("agreement", "--codings", lay.codings, "--out", tmp_path / "m.json")
    assert "--codebook" in line
    (tmp_path / "book.json").write_text("{not json")
    line = one_line_error(
        "agreement", "--codebook", tmp_path / "book.json", "--codings", lay.codings, "--segments", "s",
        "--themes", "t", "--codes", "c", "--out", tmp_path / "m.json",
    )  # fmt: skip
    assert "s: file not found" in line  # the first input read
    (tmp_path / "units.csv").write_text("id,text\n1,We waited for weeks.\n")
    line = one_line_error(
        "themes",
        "--in",
        tmp_path / "units.csv",
        "--codebook",
        tmp_path / "book.json",
        "--out",
        tmp_path / "o.csv",
    )
    assert "book.json line 1: not valid JSON" in line
    line = one_line_error(
        "deidentify", "--in", lay.turns, "--out", "x", "--codebook-out", tmp_path / "c.json"
    )
    assert "--codebook-out needs --study" in line
    (study / "codings.csv").write_text("transcript_id,coder,code\nT1,A,funding\n")
    line = one_line_error(
        "ingest", "--study", study, "--out", tmp_path / "t.parquet", "--codings", tmp_path / "c.parquet",
        "--metrics", tmp_path / "i.json",
    )  # fmt: skip
    assert "codings.csv: missing column(s) start, end" in line
    assert not (tmp_path / "t.parquet").exists() and not (tmp_path / "c.parquet").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe{", "not valid UTF-16-LE text"),  # a BOM says UTF-16
        (b'{"codes": [{"id": "a", "parent": ["x"]}]}', "codes[0]: 'parent' must be text"),
        (b'{"codes": [{"id": "a", "name": {"x": 1}}]}', "codes[0]: 'name' must be text"),
        (b'{"codes": [{"id": "a", "examples": [["q"]]}]}', "'examples' must be a list of quotes"),
    ],
)
def test_malformed_codebook_json_is_a_one_line_error(tmp_path, content, message):
    from pipeline.codebook import read_codebook_json

    path = tmp_path / "codebook.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=re.escape(message)):
        read_codebook_json(path)
