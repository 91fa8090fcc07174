"""Survey studies: `responses.csv` (id, text[, group, question, respondent]) -> turns.

Each answer is read as a one-answer transcript whose text is the answer (codings.csv offsets
count characters in it; rows without offsets code the whole answer). The question, when the
file has one, goes before the answer as an interviewer turn of no length in that text, so
that coding and theme discovery read it as they read an interviewer's question. Empty
answers are skipped and counted; other columns are ignored and named in the metrics.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.errors import UserError
from pipeline.io import read_csv
from pipeline.study import RESPONSES

OPTIONAL = ("group", "question", "respondent")
QUESTION_SPEAKER = "Question"


def load_responses(path: Path) -> tuple[pd.DataFrame, dict]:
    """(answers with columns id, text, group, question, respondent; counts) of responses.csv."""
    df = read_csv(path, ("id", "text"))
    for col in OPTIONAL:
        if col not in df.columns:
            df[col] = ""
    df["id"] = df["id"].str.strip()
    blank = df.index[df["id"] == ""]
    if len(blank):
        raise UserError(f"{path} line {blank[0] + 2}: empty 'id'")
    dup = df.index[df["id"].duplicated()]
    if len(dup):
        first = df.index[df["id"] == df.at[dup[0], "id"]][0]
        raise UserError(f"{path} line {dup[0] + 2}: id listed twice (first on line {first + 2})")
    for col in ("group", "question", "respondent"):
        df[col] = df[col].str.strip()
    df["group"] = df["group"].where(df["group"] != "", "all")
    df["respondent"] = df["respondent"].where(df["respondent"] != "", df["id"])
    empty = df["text"].str.strip() == ""
    counts = {
        "answers": int((~empty).sum()),
        "empty_answers_skipped": int(empty.sum()),
        "questions": int(df.loc[~empty, "question"].replace("", pd.NA).nunique()),
        "ignored_columns": sorted(set(df.columns) - {"id", "text", *OPTIONAL}),
    }
    if not counts["answers"]:
        raise UserError(f"{path}: no answers (every 'text' is empty)")
    return df.loc[~empty, ["id", "text", "group", "question", "respondent"]].reset_index(drop=True), counts


def survey_turns(answers: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """(turns table in the TURNS columns, answer text by id) of loaded answers."""
    asked = answers["question"].to_numpy() != ""
    answer_rows = pd.DataFrame(
        {
            "transcript_id": answers["id"],
            "participant_id": answers["respondent"],
            "group": answers["group"],
            "turn_id": asked.astype("int64"),
            "role": "participant",
            "speaker": "",
            "start": 0,
            "end": answers["text"].str.len().astype("int64"),
            "time": float("nan"),
            "text": answers["text"],
        }
    )
    question_rows = answer_rows[asked].assign(
        turn_id=0, role="interviewer", speaker=QUESTION_SPEAKER, end=0, text=answers.loc[asked, "question"]
    )
    turns = pd.concat([question_rows, answer_rows], ignore_index=True)
    turns = turns.sort_values(["transcript_id", "turn_id"], kind="stable").reset_index(drop=True)
    return turns, dict(zip(answers["id"], answers["text"], strict=True))


def ingest_survey(study: Path) -> tuple[pd.DataFrame, dict, dict[str, str]]:
    """(turns, counts for metrics, answer texts by id) of a survey study."""
    answers, counts = load_responses(study / RESPONSES)
    turns, texts = survey_turns(answers)
    metrics = {
        "kind": "survey",
        **counts,
        "turns": int(len(turns)),
        "participant_turns": int((turns["role"] == "participant").sum()),
        "interviewer_turns": int((turns["role"] == "interviewer").sum()),
        "note_turns": 0,
    }
    return turns, metrics, texts
