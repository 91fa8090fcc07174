"""The study folder: find its files, validate them, load participants, codebook and codings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from pipeline.errors import UserError
from pipeline.io import read_csv

TRANSCRIPT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class StudyInfo:
    name: str
    description: str = ""
    interviewer_labels: tuple[str, ...] = ("Interviewer",)


@dataclass(frozen=True)
class Code:
    code_id: str
    name: str
    definition: str = ""
    include: str = ""
    exclude: str = ""
    examples: tuple[str, ...] = ()
    parent: str | None = None

    def description(self) -> str:
        """The text a zero-shot coder compares segments with."""
        parts = [self.name, self.definition, self.include, *self.examples]
        return ". ".join(p.strip() for p in parts if p and p.strip())


@dataclass(frozen=True)
class Codebook:
    codes: tuple[Code, ...] = field(default_factory=tuple)

    @property
    def leaves(self) -> tuple[Code, ...]:
        """Codes that coders apply: those that are nobody's parent."""
        parents = {c.parent for c in self.codes if c.parent}
        return tuple(c for c in self.codes if c.code_id not in parents)


def _yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise UserError(f"{path}{where}: not valid YAML") from e


def require_study(study: Path) -> None:
    if not study.is_dir():
        raise UserError(f"{study}: study folder not found")


def load_study_info(study: Path) -> StudyInfo:
    require_study(study)
    path = study / "study.yaml"
    if not path.exists():
        raise UserError(f"{path}: missing; expected keys name, description, interviewer_labels")
    data = _yaml(path)
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


def load_codebook(study: Path) -> Codebook | None:
    """The study's codebook.yaml or codebook.csv, if it has one."""
    for name in ("codebook.yaml", "codebook.csv"):
        if (study / name).exists():
            return read_codebook(study / name)
    return None


def read_codebook(path: Path) -> Codebook:
    """A codebook file: YAML (see README) or CSV with columns name, description."""
    if not path.exists():
        raise UserError(f"{path}: codebook file not found")
    if path.suffix.lower() in (".yaml", ".yml"):
        return _codebook_from_yaml(path)
    if path.suffix.lower() == ".csv":
        df = read_csv(path, ("name", "description"))
        codes = tuple(
            Code(code_id=r["name"].strip(), name=r["name"].strip(), definition=r["description"])
            for _, r in df.iterrows()
        )
        return _check_codebook(Codebook(codes), path)
    raise UserError(f"{path}: unsupported codebook format (expected .yaml or .csv)")


def _codebook_from_yaml(path: Path) -> Codebook:
    data = _yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
        raise UserError(f"{path}: expected a mapping with a 'codes' list")
    allowed = {"id", "name", "definition", "include", "exclude", "examples", "parent"}
    codes = []
    for i, item in enumerate(data["codes"]):
        where = f"{path}: codes[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise UserError(f"{where}: expected a mapping with an 'id' string")
        unknown = set(item) - allowed
        if unknown:
            raise UserError(f"{where}: unknown key '{sorted(unknown)[0]}'")
        examples = item.get("examples") or []
        if not isinstance(examples, list):
            raise UserError(f"{where}: 'examples' must be a list of quotes")
        codes.append(
            Code(
                code_id=item["id"],
                name=str(item.get("name") or item["id"]),
                definition=str(item.get("definition") or ""),
                include=str(item.get("include") or ""),
                exclude=str(item.get("exclude") or ""),
                examples=tuple(str(x) for x in examples),
                parent=item.get("parent"),
            )
        )
    return _check_codebook(Codebook(tuple(codes)), path)


def _check_codebook(codebook: Codebook, path: Path) -> Codebook:
    ids = [c.code_id for c in codebook.codes]
    if not ids:
        raise UserError(f"{path}: the codebook has no codes")
    seen: set[str] = set()
    for code_id in ids:
        if code_id in seen:
            raise UserError(f"{path}: code id '{code_id}' appears twice")
        seen.add(code_id)
    for c in codebook.codes:
        if c.parent and c.parent not in seen:
            raise UserError(f"{path}: code '{c.code_id}' has unknown parent '{c.parent}'")
    return codebook


def load_codings(study: Path, transcript_ids: set[str], codebook: Codebook | None) -> pd.DataFrame:
    """Human codings (transcript_id, coder, code, start, end) or an empty table."""
    path = study / "codings.csv"
    cols = ["transcript_id", "coder", "code", "start", "end"]
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("start", "end") else str) for c in cols})
    df = read_csv(path, tuple(cols))
    known = {c.code_id for c in codebook.codes} if codebook else None
    for i, row in df.iterrows():
        line = f"{path} line {int(i) + 2}"
        if row["transcript_id"] not in transcript_ids:
            raise UserError(f"{line}: unknown transcript_id (not in participants.csv)")
        if known is not None and row["code"] not in known:
            raise UserError(f"{line}: code '{row['code']}' is not in the codebook")
        if not (row["start"].isdigit() and row["end"].isdigit()):
            raise UserError(f"{line}: start and end must be character offsets (integers)")
        if int(row["start"]) >= int(row["end"]):
            raise UserError(f"{line}: start must be less than end")
    df["start"] = df["start"].astype("int64")
    df["end"] = df["end"].astype("int64")
    return df[cols]
