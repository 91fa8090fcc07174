"""Ingest stage: study folder -> turns table (raw text; read only by de-identification),
plus the study's human codings as an offsets-only table (no text: later stages may read it).

Codings are imported here because placing and checking them needs the raw transcript text:
spans past the end of a transcript are skipped, and quote-only codings (a Taguette tag
export) are located in the text. What was used and skipped, and why, goes into the ingest
metrics under `codings` (counts and file lines, never text)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.formats.transcripts import parse_turns, read_text
from pipeline.ingest.codings import read_codings
from pipeline.io import write_json, write_table
from pipeline.schemas import CODINGS, TURNS
from pipeline.study import load_codebook, load_participants, load_study_info, transcript_files


def transcript_turns(
    text: str,
    *,
    transcript_id: str,
    participant_id: str,
    group: str,
    interviewer_labels: tuple[str, ...],
) -> pd.DataFrame:
    """Turns of one transcript with roles and offsets into `text`."""
    interviewers = {label.casefold() for label in interviewer_labels}
    rows: list[dict[str, object]] = []
    for turn in parse_turns(text):
        role = (
            "note"
            if turn.preamble
            else "interviewer"
            if turn.speaker.casefold() in interviewers
            else "participant"
        )
        rows.append({"speaker": turn.speaker, "role": role, "start": turn.start, "end": turn.end})
    df = pd.DataFrame(rows, columns=["speaker", "role", "start", "end"])
    df["text"] = [text[s:e] for s, e in zip(df["start"], df["end"], strict=True)]
    df.insert(0, "turn_id", range(len(df)))
    df.insert(0, "group", group)
    df.insert(0, "participant_id", participant_id)
    df.insert(0, "transcript_id", transcript_id)
    return df


def ingest_study(study: Path) -> tuple[pd.DataFrame, dict]:
    """Read every transcript of a study; return the turns and counts for metrics."""
    turns, metrics, _texts = _ingest(study)
    return turns, metrics


def import_codings(study: Path, texts: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    """The study's human codings (schema CODINGS; empty when it has none) and the import
    report (rows in = used + skipped, by reason), checked against the ingested `texts`."""
    codings, report = read_codings(study, set(texts), load_codebook(study), texts=texts)
    return CODINGS.conform(codings, source=str(study)), report.as_dict()


def _ingest(study: Path) -> tuple[pd.DataFrame, dict, dict[str, str]]:
    """(turns, counts, transcript texts by id) of a study."""
    info = load_study_info(study)
    participants = load_participants(study)
    files = transcript_files(study)
    by_id = {p.stem: p for p in files}
    if len(by_id) != len(files):
        raise UserError(f"{study / 'transcripts'}: two files share a name (transcript_id)")
    listed = set(participants["transcript_id"])
    unlisted = sorted(set(by_id) - listed)
    if unlisted:
        raise UserError(f"{by_id[unlisted[0]]}: transcript '{unlisted[0]}' has no row in participants.csv")
    missing = sorted(listed - set(by_id))
    if missing:
        raise UserError(
            f"{study / 'participants.csv'}: transcript_id '{missing[0]}' has no file in transcripts/"
        )
    tables, per_transcript, texts = [], {}, {}
    for row in participants.sort_values("transcript_id").itertuples():
        path = by_id[row.transcript_id]
        try:
            text = read_text(path.read_bytes())
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from e
        turns = transcript_turns(
            text,
            transcript_id=row.transcript_id,
            participant_id=row.participant_id,
            group=row.group,
            interviewer_labels=info.interviewer_labels,
        )
        speaking = turns[turns["role"] != "note"]
        if speaking.empty:
            raise UserError(f"{path}: no 'Speaker: words' turns found")
        if not (speaking["role"] == "participant").any():
            labels = ", ".join(info.interviewer_labels)
            raise UserError(f"{path}: every turn is by an interviewer ({labels}); no participant speech")
        tables.append(turns)
        texts[row.transcript_id] = text
        per_transcript[row.transcript_id] = {
            role: int((turns["role"] == role).sum()) for role in ("participant", "interviewer", "note")
        }
    turns = pd.concat(tables, ignore_index=True)
    metrics = {
        "study": info.name,
        "files": len(files),
        "turns": int(len(turns)),
        "participant_turns": int((turns["role"] == "participant").sum()),
        "interviewer_turns": int((turns["role"] == "interviewer").sum()),
        "note_turns": int((turns["role"] == "note").sum()),
        "groups": {str(k): int(v) for k, v in participants["group"].value_counts().sort_index().items()},
        "per_transcript": per_transcript,
    }
    return turns, metrics, texts


def run(params: Params, *, study: Path, out: Path, codings: Path, metrics: Path) -> dict:
    turns, counts, texts = _ingest(study)
    table, report = import_codings(study, texts)
    write_table(out, turns, TURNS)
    write_table(codings, table, CODINGS)
    counts["codings"] = report
    write_json(metrics, counts)
    return counts
