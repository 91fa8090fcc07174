"""Readers by file type for what a study folder may hold beside its transcripts: codebooks
(.yaml, .csv, REFI .qdc, the pipeline's codebook.json) and codings (codings.csv, REFI .qdpx,
Taguette databases and tag exports)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.codebook import Code, Codebook, check_codebook, codebook_from_mapping, read_codebook_json
from pipeline.errors import UserError
from pipeline.formats.qdpx import read_project_qdpx
from pipeline.formats.refi import read_codebook_qdc
from pipeline.formats.taguette import read_taguette_csv, read_taguette_db
from pipeline.io import read_csv, read_yaml
from pipeline.schemas import CODINGS

TAGUETTE_EXPORTS = ("tags.csv", "taguette_tags.csv")


def read_codebook(path: Path) -> Codebook:
    """A codebook file: YAML (see README), CSV with columns name, description[, parent] (a
    parent's name; empty for a top code), REFI .qdc (nested codes),
    or the pipeline's own `codebook.json` (see `pipeline.codebook`)."""
    if not path.exists():
        raise UserError(f"{path}: codebook file not found")
    suffix = path.suffix.lower()
    if suffix == ".json":
        book = read_codebook_json(path)
        if book is None:
            raise UserError(f"{path}: holds no codebook (the study has none)")
        return book
    if suffix in (".yaml", ".yml"):
        return _codebook_from_yaml(path)
    if suffix == ".csv":
        df = read_csv(path, ())
        if "name" not in df.columns and "tag" in df.columns:  # Taguette's codebook export
            df = df.rename(columns={"tag": "name"})
        missing = [c for c in ("name", "description") if c not in df.columns]
        if missing:
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)}; expected name (or tag), description"
            )
        blank = df.index[df["name"].str.strip() == ""]
        if len(blank):
            raise UserError(f"{path} line {blank[0] + 2}: empty 'name'")
        parent = df["parent"].str.strip() if "parent" in df.columns else pd.Series("", index=df.index)
        codes = tuple(
            Code(
                code_id=r["name"].strip(),
                name=r["name"].strip(),
                definition=r["description"].strip(),
                parent=parent[i] or None,  # empty: a top code
            )
            for i, r in df.iterrows()
        )
        return check_codebook(Codebook(codes), path)
    if suffix == ".qdc":
        return check_codebook(read_codebook_qdc(path), path)
    raise UserError(f"{path}: unsupported codebook format (expected .yaml, .csv, .qdc or .json)")


def _codebook_from_yaml(path: Path) -> Codebook:
    return codebook_from_mapping(read_yaml(path, what="study"), path)


def read_codings_file(path: Path):
    """(codebook or None, codings table, source texts or None, counts or None) from one file."""
    suffix = path.suffix.lower()
    if suffix == ".qdpx":
        book, codings, texts = read_project_qdpx(path)
        return book, codings, texts, None
    if suffix == ".sqlite3":
        book, codings, texts, counts = read_taguette_db(path)
        return book, codings, texts, counts
    if path.name in TAGUETTE_EXPORTS:
        return None, read_taguette_csv(path), None, None
    return None, _codings_csv(path), None, None


def _codings_csv(path: Path):
    """codings.csv: transcript_id, coder, code, start, end (character offsets); or, in a survey,
    id, coder, code[, start, end], where a row without offsets codes its whole answer (start
    "0", end "" for the importer to fill in)."""
    df = read_csv(path, ())
    survey = "transcript_id" not in df.columns and "id" in df.columns
    if survey:
        df = df.rename(columns={"id": "transcript_id"})
    has_offsets = [c in df.columns for c in ("start", "end")]
    if survey and not any(has_offsets):
        df = df.assign(start="0", end="")
    elif any(has_offsets) and not all(has_offsets):
        raise UserError(
            f"{path}: has only one of 'start' and 'end'; give both, or neither to code whole answers"
        )
    missing = [c for c in CODINGS.names if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; expected transcript_id, coder, code, start, "
            "end (a survey's: id, coder, code[, start, end])"
        )
    return df
