"""Atomic reads and writes of the files that pass between stages.

Every writer writes to a temporary file beside the target and renames it, so a failed
stage never leaves a half-written output.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
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
    """Yield a temporary path in the target's folder; rename it onto `path` on success.

    A run killed mid-write (SIGKILL, power loss) leaves its temporary file behind; the next
    write of the same target removes such leftovers (those of processes no longer running).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # someone else's process (or an odd number): leave its file alone
    return True


# what follows ".NAME." in a temporary file's name: "<pid>-<random>.tmp", or "<random>.tmp"
_TEMP_TAIL = re.compile(r"^(?:(\d+)-)?[a-z0-9_]{8}\.tmp$")


def remove_stale_temps(path: Path) -> int:
    """Remove `.NAME.<pid>-*.tmp` files beside `path` left by writers that are no longer
    running (and the older `.NAME.*.tmp` form without a pid); returns how many."""
    prefix, removed = f".{path.name}.", 0
    try:
        names = os.listdir(path.parent)
    except OSError:
        return 0
    for name in names:
        match = _TEMP_TAIL.match(name[len(prefix) :]) if name.startswith(prefix) else None
        if match is None or (match.group(1) and _running(int(match.group(1)))):
            continue
        try:
            os.unlink(path.parent / name)
            removed += 1
        except OSError:
            pass
    return removed


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
# Bytes that are control characters in every text encoding this reads (tab, LF, VT, FF, CR aside).
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13))
_CONTROL_TABLE = str.maketrans("", "", "\t\n\v\f\r")


def decode_text(data: bytes, source: str) -> str:
    """A user's text file as str: UTF-8, UTF-16/32 with a byte-order mark (the BOM dropped),
    else Windows-1252 (what Word and Excel save as "ANSI"); newlines normalised to \\n.

    Offsets in codings.csv and identifiers.jsonl count characters in this text. Binary data
    (NUL or other control bytes) is a one-line UserError naming `source`.
    """
    text = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as e:
                raise UserError(f"{source}: not valid {encoding.upper()} text (byte {e.start})") from e
            break
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            if any(b in _CONTROL for b in data[:65536]):
                raise UserError(f"{source}: binary data, not a text file") from None
            text = data.decode("cp1252", errors="replace")
    if any(ch < " " for ch in text[:65536].translate(_CONTROL_TABLE)):
        raise UserError(f"{source}: binary data, not a text file (control characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def read_user_text(path: Path, *, what: str = "") -> str:
    """A user's text file decoded (see `decode_text`); missing or unreadable: a UserError."""
    if not path.exists():
        raise UserError(f"{path}: {what + ' ' if what else ''}file not found")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from e
    return decode_text(data, str(path))


def read_json(path: Path) -> Any:
    text = read_user_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path} line {e.lineno}: not valid JSON") from e
    except RecursionError as e:
        raise UserError(f"{path}: not readable JSON (nested too deeply)") from e


def read_yaml(path: Path, *, what: str = "YAML") -> Any:
    """A user's YAML file (UTF-8, UTF-16/32 with a BOM, or Windows-1252); a missing, unreadable
    or invalid file is a one-line UserError naming the line where the parser stopped."""
    import yaml

    text = read_user_text(path, what=what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        problem = getattr(e, "problem", None)
        raise UserError(f"{path}{where}: not valid YAML{f' ({problem})' if problem else ''}") from e
    except (ValueError, TypeError, OverflowError) as e:  # e.g. a date such as 2024-13-45
        raise UserError(f"{path}: not valid YAML (a value cannot be read: {type(e).__name__})") from e
    except RecursionError as e:
        raise UserError(f"{path}: not readable YAML (nested too deeply)") from e


def write_table(path: Path, df: pd.DataFrame, schema: Schema) -> None:
    df = schema.conform(df, source=str(path))
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def read_table(path: Path, schema: Schema) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"{path}: file not found (run the stage that writes it first)")
    return schema.conform(pd.read_parquet(path), source=str(path))


_CSV_LINE = re.compile(r"(?:line|row) (\d+)")


def read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a user CSV as strings (no NA conversion: 'None' and 'NA' are answers).

    UTF-8 (with or without a BOM), UTF-16/32 with a BOM or Windows-1252; any newlines. Every
    problem (empty, binary, ragged rows, missing or repeated columns) is a one-line UserError
    naming the file, and the line or column where there is one.
    """
    text = read_user_text(path)
    expected = f"expected columns {', '.join(required)}" if required else "expected a header row"
    if not text.strip():
        raise UserError(f"{path}: empty file, {expected}")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as e:
        raise UserError(f"{path}: empty file, {expected}") from e
    except (pd.errors.ParserError, ValueError, csv.Error) as e:
        line = _CSV_LINE.search(str(e))
        where = f" line {line.group(1)}" if line else ""
        raise UserError(
            f"{path}{where}: not a readable CSV (more fields than the header, or an unclosed quote)"
        ) from e
    if not isinstance(df.index, pd.RangeIndex):  # pandas took the extra fields for an index
        raise UserError(f"{path} line 2: more fields than the header has columns; {expected}")
    df.columns = [str(c).strip() for c in df.columns]
    repeated = df.columns[df.columns.duplicated()]
    if len(repeated):
        raise UserError(f"{path}: column '{repeated[0]}' appears twice in the header")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; {expected}")
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


def ids_hash(ids: list[str]) -> str:
    """A digest of row ids in order: a matrix's sidecar names the rows it belongs to."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def read_matrix(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    if not path.exists():
        raise UserError(f"{path}: file not found (run the stage that writes it first)")
    meta = read_json(path.with_suffix(".json"))
    matrix = np.load(path, allow_pickle=False)
    if list(matrix.shape) != meta.get("shape"):
        raise UserError(f"{path}: shape {matrix.shape} does not match its sidecar")
    return matrix, meta
