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

from pipeline.codebook import Codebook, check_codebook
from pipeline.errors import UserError
from pipeline.formats.readers import TAGUETTE_EXPORTS, read_codebook, read_codings_file
from pipeline.io import read_csv, read_yaml

TRANSCRIPT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class StudyInfo:
    name: str
    description: str = ""
    interviewer_labels: tuple[str, ...] = ("Interviewer",)


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
    unknown = set(data) - {"name", "description", "interviewer_labels"}
    if unknown:
        raise UserError(
            f"{path}: unknown key '{sorted(unknown)[0]}' (allowed: name, description, interviewer_labels)"
        )
    labels = data.get("interviewer_labels", ["Interviewer"])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise UserError(f"{path}: 'interviewer_labels' must be a non-empty list of strings")
    return StudyInfo(
        name=data["name"],
        description=str(data.get("description", "")),
        interviewer_labels=tuple(labels),
    )


def transcript_files(study: Path) -> list[Path]:
    require_study(study)
    folder = study / "transcripts"
    if not folder.is_dir():
        raise UserError(f"{folder}: missing; put one transcript file per interview there")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: no transcripts found (expected .txt or .md files)")
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
    project (.qdpx) or Taguette database, if it has one; else None."""
    for name in CODEBOOK_NAMES:
        if (study / name).exists():
            return read_codebook(study / name)
    for path in codings_files(study):
        if path.suffix.lower() not in (".qdpx", ".sqlite3"):
            continue
        book = read_codings_file(path)[0]
        if book is not None and book.codes:
            return check_codebook(book, path)
    return None


def codings_files(study: Path) -> list[Path]:
    """codings.csv first, then REFI projects (.qdpx), Taguette databases and Taguette tag exports."""
    found = [study / "codings.csv"] if (study / "codings.csv").exists() else []
    found += sorted(study.glob("*.qdpx"))
    found += sorted(study.glob("*.sqlite3"))
    if not any(p.suffix == ".sqlite3" for p in found):  # an export of the same database: not twice
        found += sorted(p for p in study.glob("*.csv") if p.name in TAGUETTE_EXPORTS)
    return found
