"""Ingest stage: study folder -> turns table (raw text; read only by de-identification),
plus the study's human codings as an offsets-only table (no text: later stages may read it).

Codings are imported here because placing and checking them needs the raw transcript text:
spans past the end of a transcript are skipped, and quote-only codings (a Taguette tag
export) are located in the text. What was used and skipped, and why, goes into the ingest
metrics under `codings` (counts and file lines, never text).

Transcripts come as .txt, .md, .docx, .odt, .vtt or .srt (`pipeline.formats.transcripts`, which
also defines each format's canonical text). A transcript with no speaker label anywhere is
read as the participant's alone, with a warning and a count (`unlabelled_transcripts`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipeline.codings import whole_transcript_coverage
from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.formats.transcripts import RawTurn, parse_turns, read_transcript
from pipeline.ingest.codings_files import read_codings
from pipeline.ingest.coverage import COVERAGE_FILE, check_coders, read_coverage
from pipeline.ingest.survey import ingest_survey
from pipeline.schemas import CODINGS
from pipeline.study import (
    StudyInfo,
    is_survey,
    load_codebook,
    load_participants,
    load_study_info,
    transcript_files,
)

log = logging.getLogger(__name__)


def transcript_turns(
    text: str,
    *,
    transcript_id: str,
    participant_id: str,
    group: str,
    interviewer_labels: tuple[str, ...],
    speakers: Mapping[str, str] | None = None,
    turns: list[RawTurn] | None = None,
) -> pd.DataFrame:
    """Turns of one transcript with roles, offsets into `text` and times (seconds; NaN when
    unknown). `turns`: as a reader found them (default: `parse_turns(text)`). A speaker's role:
    from `speakers` (label -> interviewer | participant), else interviewer when the label is in
    `interviewer_labels`, else participant; labels match case-insensitively."""
    roles = {label.casefold(): "interviewer" for label in interviewer_labels}
    roles.update({label.casefold(): role for label, role in (speakers or {}).items()})
    rows: list[dict[str, object]] = []
    for turn in parse_turns(text) if turns is None else turns:
        role = "note" if turn.preamble else roles.get(turn.speaker.casefold(), "participant")
        time = float("nan") if turn.time is None else float(turn.time)
        rows.append(
            {"speaker": turn.speaker, "role": role, "start": turn.start, "end": turn.end, "time": time}
        )
    df = pd.DataFrame(rows, columns=["speaker", "role", "start", "end", "time"]).astype({"time": "float64"})
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
    report (see `import_human_coding`)."""
    codings, _coverage, report = import_human_coding(study, texts)
    return codings, report


def import_human_coding(study: Path, texts: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The study's human codings (schema CODINGS; empty when it has none), what each coder
    reviewed (schema COVERAGE: coverage.csv, else the whole of every transcript a coder coded
    in) and the import report (rows in = used + skipped, by reason), checked against the
    ingested `texts`."""
    stated = read_coverage(study, texts)
    codings, report = read_codings(
        study,
        set(texts),
        load_codebook(study),
        texts=texts,
        coverage=None if stated is None else stated.spans,
    )
    if stated is not None:
        check_coders(stated, checked=report.checked, kept=report.inside)
        coverage = stated.table()
    else:
        coverage = whole_transcript_coverage(codings, {t: len(x) for t, x in texts.items()})
    counts = {
        "source": COVERAGE_FILE if stated is not None else "default: the transcripts each coder coded in",
        "spans": int(len(coverage)),
        "coders": int(coverage["coder"].nunique()),
    }
    return CODINGS.conform(codings, source=str(study)), coverage, report.as_dict() | {"coverage": counts}


def _ingest(study: Path) -> tuple[pd.DataFrame, dict, dict[str, str]]:
    """(turns, counts, transcript texts by id) of a study."""
    info = load_study_info(study)
    if is_survey(study):
        return ingest_survey(study)
    participants = load_participants(study)
    files = transcript_files(study)
    by_id: dict[str, Path] = {}
    for p in files:
        if p.stem in by_id:
            raise UserError(
                f"{p}: same transcript_id '{p.stem}' as {by_id[p.stem].name}; keep one file per transcript"
            )
        by_id[p.stem] = p
    listed = set(participants["transcript_id"])
    unlisted = sorted(set(by_id) - listed)
    if unlisted:
        raise UserError(f"{by_id[unlisted[0]]}: transcript '{unlisted[0]}' has no row in participants.csv")
    missing = sorted(listed - set(by_id))
    if missing:
        raise UserError(
            f"{study / 'participants.csv'}: transcript_id '{missing[0]}' has no file in transcripts/"
        )
    tables, texts, unlabelled = [], {}, []
    for row in participants.sort_values("transcript_id").itertuples():
        path = by_id[row.transcript_id]
        turns, text, labelled = _read_transcript(path, row, info)
        if not labelled:
            unlabelled.append(row.transcript_id)
        tables.append(turns)
        texts[row.transcript_id] = text
    turns = pd.concat(tables, ignore_index=True)
    # counts only: the study's name, ids and groups are shown once deidentify has checked them
    metrics = {
        "kind": "interviews",
        "files": len(files),
        "turns": int(len(turns)),
        "participant_turns": int((turns["role"] == "participant").sum()),
        "interviewer_turns": int((turns["role"] == "interviewer").sum()),
        "note_turns": int((turns["role"] == "note").sum()),
        "unlabelled_transcripts": len(unlabelled),
    }
    return turns, metrics, texts


def _read_transcript(path: Path, row, info: StudyInfo) -> tuple[pd.DataFrame, str, bool]:
    """(turns, canonical text, whether it has speaker labels) of one transcript file."""
    read = read_transcript(path.read_bytes(), str(path), suffix=path.suffix, unlabelled=info.unlabelled_lines)
    if not read.labelled:
        log.warning("%s: no speaker labels found; every turn is read as the participant's", path)
    turns = transcript_turns(
        read.text,
        transcript_id=row.transcript_id,
        participant_id=row.participant_id,
        group=row.group,
        interviewer_labels=info.interviewer_labels,
        speakers=dict(info.speakers),
        turns=read.turns,
    )
    speaking = turns[turns["role"] != "note"]
    if speaking.empty:
        raise UserError(f"{path}: no speaker turns found")
    if not (speaking["role"] == "participant").any():
        labels = ", ".join([*info.interviewer_labels, *(x for x, r in info.speakers if r == "interviewer")])
        raise UserError(f"{path}: every turn is by an interviewer ({labels}); no participant speech")
    return turns, read.text, read.labelled


def run(params: Params, *, study: Path) -> dict:
    """The stage's node (see `pipeline.stages`): reads the study folder, its only input."""
    turns, counts, texts = _ingest(study)
    table, coverage, report = import_human_coding(study, texts)
    return {
        "turns": turns,
        "codings_ingested": table,
        "coverage_ingested": coverage,
        "ingest_metrics": {**counts, "codings": report},
    }
