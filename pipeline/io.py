"""Atomic reads and writes of the files that pass between stages.

Every writer writes to a temporary file beside the target and renames it, so a failed
stage never leaves a half-written output.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.schemas import Schema


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path} line {e.lineno}: not valid JSON") from e
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from e


def read_yaml(path: Path, *, what: str = "YAML") -> Any:
    """A user's YAML file; a missing, unreadable or invalid file is a one-line UserError."""
    import yaml

    if not path.exists():
        raise UserError(f"{path}: {what} file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise UserError(f"{path}{where}: not valid YAML") from e
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text") from e


def write_table(path: Path, df: pd.DataFrame, schema: Schema) -> None:
    df = schema.conform(df, source=str(path))
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def read_table(path: Path, schema: Schema) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"{path}: file not found (run the stage that writes it first)")
    return schema.conform(pd.read_parquet(path), source=str(path))


def read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a user CSV as strings (no NA conversion: 'None' and 'NA' are answers)."""
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as e:
        raise UserError(f"{path}: empty file, expected columns {', '.join(required)}") from e
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a readable UTF-8 CSV ({type(e).__name__})") from e
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(required)}")
    return df


def write_csv(path: Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_matrix(path: Path, matrix: np.ndarray, meta: dict[str, Any]) -> None:
    """Write `.npy` plus a `.json` sidecar describing it."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, matrix)
    write_json(path.with_suffix(".json"), {**meta, "shape": list(matrix.shape)})


def read_matrix(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    if not path.exists():
        raise UserError(f"{path}: file not found (run the stage that writes it first)")
    meta = read_json(path.with_suffix(".json"))
    matrix = np.load(path, allow_pickle=False)
    if list(matrix.shape) != meta.get("shape"):
        raise UserError(f"{path}: shape {matrix.shape} does not match its sidecar")
    return matrix, meta
