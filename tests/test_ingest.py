import pytest

from pipeline.errors import UserError
from pipeline.formats.transcripts import parse_turns
from pipeline.ingest import ingest_study, transcript_turns
from pipeline.io import decode_text


def test_turns_with_offsets_into_the_text():
    text = "Interviewer: Hello there.\nAmy: Hi.\nIt was hard, honestly.\n\nInterviewer: Go on.\n"
    turns = parse_turns(text)
    assert [t.speaker for t in turns] == ["Interviewer", "Amy", "Interviewer"]
    amy = turns[1]
    assert text[amy.start : amy.end] == "Hi.\nIt was hard, honestly."


def test_preamble_is_kept_as_a_note_and_times_are_not_labels():
    text = "Interview 3, recorded 10:30 am\nInterviewer: Ready?\nP1: Yes.\n"
    df = transcript_turns(
        text, transcript_id="T", participant_id="P", group="g", interviewer_labels=("Interviewer",)
    )
    assert df["role"].tolist() == ["note", "interviewer", "participant"]
    assert df["text"].iloc[0] == "Interview 3, recorded 10:30 am"


def test_interviewer_labels_are_case_insensitive():
    df = transcript_turns(
        "INTERVIEWER: q?\nSam: a.\n",
        transcript_id="T",
        participant_id="P",
        group="g",
        interviewer_labels=("Interviewer",),
    )
    assert df["role"].tolist() == ["interviewer", "participant"]


def test_bom_and_crlf_are_normalised():
    assert decode_text("\ufeffA: x\r\nB: y\r\n".encode(), "t.txt") == "A: x\nB: y\n"


def test_ingest_counts_everything(study):
    turns, metrics = ingest_study(study)
    assert metrics["files"] == 3
    assert metrics["turns"] == len(turns) == metrics["participant_turns"] + metrics["interviewer_turns"]
    assert set(turns["group"]) == {"parent", "referrer", "commissioner"}
    for row in turns.itertuples():
        text = (study / "transcripts" / f"{row.transcript_id}.txt").read_text()
        assert text[row.start : row.end] == row.text


def test_missing_study_folder(tmp_path):
    with pytest.raises(UserError, match="study folder not found"):
        ingest_study(tmp_path / "nope")


def test_empty_transcripts_folder(study):
    for p in (study / "transcripts").iterdir():
        p.unlink()
    with pytest.raises(UserError, match="no transcripts found"):
        ingest_study(study)


def test_transcript_without_speaker_labels_is_the_participants_with_a_warning(study, caplog):
    (study / "transcripts" / "T2.txt").write_text("just some notes\nwith no speakers\n\nand more\n")
    with caplog.at_level("WARNING"):
        turns, metrics = ingest_study(study)
    t2 = turns[turns["transcript_id"] == "T2"]
    assert t2["role"].tolist() == ["participant", "participant"]
    assert t2["text"].tolist() == ["just some notes\nwith no speakers", "and more"]
    assert metrics["unlabelled_transcripts"] == 1
    assert any("T2.txt: no speaker labels" in r.getMessage() for r in caplog.records)


def test_whitespace_only_transcript_is_an_error(study):
    (study / "transcripts" / "T2.txt").write_text("\n  \n")
    with pytest.raises(UserError, match=r"T2\.txt: empty transcript"):
        ingest_study(study)


def test_participants_missing_a_column(study):
    (study / "participants.csv").write_text("transcript_id,group\nT1,parent\n")
    with pytest.raises(UserError, match="participants.csv: missing column\\(s\\) participant_id"):
        ingest_study(study)


def test_transcript_not_in_participants(study):
    (study / "transcripts" / "T9.txt").write_text("A: b\n")
    with pytest.raises(UserError, match="T9.*no row in participants.csv"):
        ingest_study(study)


def test_unsupported_format(study):
    (study / "transcripts" / "T4.pdf").write_bytes(b"%PDF")
    with pytest.raises(UserError, match="unsupported transcript format"):
        ingest_study(study)
