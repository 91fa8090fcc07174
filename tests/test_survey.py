"""Survey studies (responses.csv) through ingest, and the study's own words through the gate."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.deid.metadata import rename_ids
from pipeline.deid.spans import Span
from pipeline.errors import UserError
from pipeline.ingest.stage import _ingest, import_codings
from pipeline.ingest.survey import load_responses
from pipeline.study import is_survey


def _survey(tmp_path, rows: str, codings: str | None = None):
    (tmp_path / "study.yaml").write_text("name: Survey\n")
    (tmp_path / "responses.csv").write_text(rows)
    if codings is not None:
        (tmp_path / "codings.csv").write_text(codings)
    return tmp_path


def test_answers_become_turns_with_their_question(tmp_path):
    study = _survey(
        tmp_path,
        "id,text,group,question,age\n"
        "a1,The wait was far too long.,web,What could be better?,40\n"
        "a2,,web,What could be better?,31\n"
        "a3,Kind staff.,,,22\n",
    )
    turns, metrics, texts = _ingest(study)
    assert metrics["kind"] == "survey"
    assert metrics["answers"] == 2 and metrics["empty_answers_skipped"] == 1
    assert metrics["ignored_columns"] == ["age"] and metrics["questions"] == 1
    assert texts == {"a1": "The wait was far too long.", "a3": "Kind staff."}
    a1 = turns[turns["transcript_id"] == "a1"].sort_values("turn_id")
    assert a1["role"].tolist() == ["interviewer", "participant"]
    assert a1["text"].tolist() == ["What could be better?", "The wait was far too long."]
    answer = a1.iloc[1]
    assert texts["a1"][answer["start"] : answer["end"]] == answer["text"]
    a3 = turns[turns["transcript_id"] == "a3"]
    assert a3["role"].tolist() == ["participant"] and a3["group"].tolist() == ["all"]
    assert "study" not in metrics  # the name is shown once deidentify has checked it


def test_survey_codings_of_whole_answers_and_of_spans(tmp_path):
    study = _survey(
        tmp_path,
        "id,text\na1,The wait was far too long.\na2,Kind staff and a long wait.\n",
        "id,coder,code\na1,A,wait\na2,A,staff\nzz,A,wait\n",
    )
    _turns, _metrics, texts = _ingest(study)
    codings, report = import_codings(study, texts)
    assert codings[["transcript_id", "start", "end"]].values.tolist() == [["a1", 0, 26], ["a2", 0, 27]]
    assert report["skipped"] == {"unknown_transcript": 1}
    (study / "codings.csv").write_text("id,coder,code,start,end\na2,A,wait,17,26\n")
    codings, _ = import_codings(study, texts)
    assert texts["a2"][17:26] == "long wait"
    (study / "codings.csv").write_text("id,coder,code,start\na2,A,wait,17\n")
    with pytest.raises(UserError, match="codings.csv: has only one of 'start' and 'end'"):
        import_codings(study, texts)


@pytest.mark.parametrize(
    "rows, message",
    [
        ("id,words\n1,x\n", "missing column"),
        ("id,text\n1,x\n1,y\n", "line 3: id listed twice \\(first on line 2\\)"),
        ("id,text\n1,x\n ,y\n", "line 3: empty 'id'"),
        ("id,text\n1,\n2,  \n", "no answers"),
        ("", "empty file"),
    ],
)
def test_bad_responses_are_one_line_errors_naming_the_file(tmp_path, rows, message):
    path = tmp_path / "responses.csv"
    path.write_text(rows)
    with pytest.raises(UserError, match=message) as e:
        load_responses(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_study_is_a_survey_or_interviews_not_both(tmp_path):
    study = _survey(tmp_path, "id,text\n1,x\n")
    assert is_survey(study)
    (study / "transcripts").mkdir()
    with pytest.raises(UserError, match="both responses.csv and transcripts/"):
        is_survey(study)


def test_ids_and_groups_that_hold_identifiers_are_renamed():
    turns = pd.DataFrame(
        {
            "transcript_id": ["P10_GMT20211130", "T01", "Smith-interview"],
            "participant_id": ["P10", "P01", "P02"],
            "group": ["Newbury parents", "staff", "staff"],
        }
    )

    def dates(text: str) -> list[Span]:  # a stand-in for the rules: 8-digit runs
        import re

        return [Span(m.start(), m.end(), "DATE", "rule", 0.9) for m in re.finditer(r"\d{8}", text)]

    names = rename_ids(
        turns,
        name="[SERVICE_1] study",
        description="",
        entities=[("[PERSON_3]", ["Smith"]), ("[PLACE_1]", ["Newbury"]), ("[PERSON_4]", ["Al"])],
        detect=dates,
    )
    assert names.maps["transcript_id"] == {
        "P10_GMT20211130": "P10_GMTDATE",
        "Smith-interview": "PERSON_3-interview",
    }
    assert names.maps["participant_id"] == {}
    assert names.maps["group"] == {"Newbury parents": "PLACE_1_parents"}
    renamed = names.apply(turns)
    assert renamed["transcript_id"].tolist() == ["P10_GMTDATE", "T01", "PERSON_3-interview"]
    assert names.counts() == {"transcript_id": 2, "participant_id": 0, "group": 1}


def test_many_ids_with_one_new_name_are_numbered_in_order_around_existing_ones():
    # survey respondent ids such as "R000123" read as record numbers: every one gets the same
    # new name, numbered; an existing id that already holds a numbered name is skipped
    import re

    ids = [f"R{i:06d}" for i in range(1, 2001)] + ["ID_NUMBER-3"]
    turns = pd.DataFrame({"transcript_id": ids, "participant_id": ids, "group": ["all"] * len(ids)})

    def numbers(text: str) -> list[Span]:
        return [Span(m.start(), m.end(), "ID_NUMBER", "rule", 0.9) for m in re.finditer(r"R\d{6}", text)]

    names = rename_ids(turns, name="study", description="", entities=[], detect=numbers)
    new = names.maps["transcript_id"]
    assert len(new) == 2000 and len(set(new.values())) == 2000
    assert new["R000001"] == "ID_NUMBER" and new["R000002"] == "ID_NUMBER-2"
    assert new["R000003"] == "ID_NUMBER-4" and new["R002000"] == "ID_NUMBER-2001"
    assert "ID_NUMBER-3" not in new.values()
