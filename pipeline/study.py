"""The study folder: its description (study.yaml), transcripts, participants, and where its
codebook and codings files are.

Only the stages that may see raw text (ingest, deidentify) read codebooks and codings from the
study folder. They hand later stages two typed outputs instead: `outputs/codings.parquet`
(offsets only, see `pipeline.codings`) and `outputs/codebook.json` (identifiers scrubbed, see
`pipeline.codebook`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.codebook import Code, Codebook, check_codebook
from pipeline.errors import UserError
from pipeline.formats.readers import TAGUETTE_EXPORTS, read_codebook, read_codings_file
from pipeline.io import read_csv, read_yaml

TRANSCRIPT_SUFFIXES = (".txt", ".md", ".docx", ".odt", ".vtt", ".srt")
STUDY_KEYS = ("name", "description", "interviewer_labels", "speakers", "unlabelled_lines")
ROLES = ("interviewer", "participant")
UNLABELLED_LINES = ("continue", "participant")


@dataclass(frozen=True)
class StudyInfo:
    name: str
    description: str = ""
    interviewer_labels: tuple[str, ...] = ("Interviewer",)
    speakers: tuple[tuple[str, str], ...] = ()  # (label, interviewer | participant)
    unlabelled_lines: str = "continue"  # or "participant": lines with no label are the participant's


def require_study(study: Path) -> None:
    if not study.is_dir():
        raise UserError(f"{study}: study folder not found")


def load_study_info(study: Path) -> StudyInfo:
    require_study(study)
    path = study / "study.yaml"
    if not path.exists():
        raise UserError(f"{path}: missing; expected keys name, description, interviewer_labels")
    data = read_yaml(path, what="study")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise UserError(f"{path}: expected a mapping with a 'name' string")
    unknown = sorted(str(k) for k in set(data) - set(STUDY_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown key '{unknown[0]}' (allowed: {', '.join(STUDY_KEYS)})")
    if not isinstance(data.get("description") or "", (str, int, float)):
        raise UserError(f"{path}: 'description' must be text")
    labels = data.get("interviewer_labels", ["Interviewer"])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise UserError(f"{path}: 'interviewer_labels' must be a non-empty list of strings")
    return StudyInfo(
        name=data["name"],
        description=str(data.get("description") or ""),
        interviewer_labels=tuple(labels),
        speakers=_speaker_roles(data.get("speakers"), path, labels),
        unlabelled_lines=_unlabelled_lines(data.get("unlabelled_lines", "continue"), path),
    )


def _speaker_roles(
    speakers: object, path: Path, interviewer_labels: list[str]
) -> tuple[tuple[str, str], ...]:
    """study.yaml `speakers:`, a map of speaker label -> interviewer | participant."""
    if speakers is None:
        return ()
    if not isinstance(speakers, dict):
        raise UserError(f"{path}: 'speakers' must map speaker labels to interviewer or participant")
    interviewers = {x.casefold() for x in interviewer_labels}
    roles: list[tuple[str, str]] = []
    for label, role in speakers.items():
        if not isinstance(label, str) or not label.strip():
            raise UserError(f"{path}: key 'speakers' holds a label that is not text")
        if role not in ROLES:
            raise UserError(f"{path}: key 'speakers.{label}' must be interviewer or participant")
        if role == "participant" and label.strip().casefold() in interviewers:
            raise UserError(
                f"{path}: key 'speakers.{label}' is participant but is listed in interviewer_labels"
            )
        roles.append((label.strip(), role))
    folded = [label.casefold() for label, _ in roles]
    if len(set(folded)) != len(folded):
        raise UserError(f"{path}: key 'speakers' lists a label twice (labels are case-insensitive)")
    return tuple(roles)


def _unlabelled_lines(value: object, path: Path) -> str:
    if value not in UNLABELLED_LINES:
        raise UserError(f"{path}: key 'unlabelled_lines' must be one of {', '.join(UNLABELLED_LINES)}")
    return str(value)


RESPONSES = "responses.csv"  # a survey study's answers (see pipeline.ingest.survey)


def is_survey(study: Path) -> bool:
    """A survey study has responses.csv instead of transcripts/ and participants.csv."""
    require_study(study)
    if not (study / RESPONSES).is_file():
        return False
    if (study / "transcripts").exists():
        raise UserError(
            f"{study}: has both {RESPONSES} and transcripts/; "
            "a study folder holds a survey or interviews, not both"
        )
    return True


def transcript_files(study: Path) -> list[Path]:
    require_study(study)
    folder = study / "transcripts"
    if not folder.is_dir():
        raise UserError(f"{folder}: missing; put one transcript file per interview there")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: no transcripts found (expected {', '.join(TRANSCRIPT_SUFFIXES)} files)")
    unsupported = [p.name for p in files if p.suffix.lower() not in TRANSCRIPT_SUFFIXES]
    if unsupported:
        raise UserError(
            f"{folder / unsupported[0]}: unsupported transcript format "
            f"(supported: {', '.join(TRANSCRIPT_SUFFIXES)})"
        )
    return files


def load_participants(study: Path) -> pd.DataFrame:
    path = study / "participants.csv"
    df = read_csv(path, ("transcript_id", "participant_id", "group"))
    for col in ("transcript_id", "participant_id", "group"):
        blank = df.index[df[col].str.strip() == ""]
        if len(blank):
            raise UserError(f"{path} line {blank[0] + 2}: empty '{col}'")
        df[col] = df[col].str.strip()
    dup = df.index[df["transcript_id"].duplicated()]
    if len(dup):
        raise UserError(f"{path} line {dup[0] + 2}: transcript_id listed twice")
    return df[["transcript_id", "participant_id", "group"]]


CODEBOOK_NAMES = ("codebook.yaml", "codebook.yml", "codebook.csv", "codebook.qdc")


def load_codebook(study: Path) -> Codebook | None:
    """The study's codebook (.yaml, .csv or REFI .qdc); else the codebook inside its REFI
    project (.qdpx) or Taguette database, if it has one; else the codes its codings files use,
    by name, without definitions (in order of first use); else None."""
    for name in CODEBOOK_NAMES:
        if (study / name).exists():
            return read_codebook(study / name)
    used: dict[str, None] = {}
    for path in codings_files(study):
        book, codings, _texts, _counts = read_codings_file(path)
        if book is not None and book.codes:
            return check_codebook(book, path)
        used.update(dict.fromkeys(c.strip() for c in codings["code"].astype(str) if c.strip()))
    if not used:
        return None
    return Codebook(tuple(Code(code_id=c, name=c, definition="") for c in used))


def codings_files(study: Path) -> list[Path]:
    """codings.csv first, then REFI projects (.qdpx), Taguette databases and Taguette tag exports."""
    found = [study / "codings.csv"] if (study / "codings.csv").exists() else []
    found += sorted(study.glob("*.qdpx"))
    found += sorted(study.glob("*.sqlite3"))
    if not any(p.suffix == ".sqlite3" for p in found):  # an export of the same database: not twice
        found += sorted(p for p in study.glob("*.csv") if p.name in TAGUETTE_EXPORTS)
    return found
