"""The pseudonym key: original identifiers per replacement, encrypted with Fernet
(`cryptography`), kept under `private/` (git-ignored, never a DVC output).

The encryption key comes from the environment variable PIPELINE_DEID_KEY or from a key
file outside the repository (params `deid.key_file`). The de-identification stage creates
that file (mode 600) the first time; `reidentify` never creates one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.errors import UserError
from pipeline.io import atomic_path

ENV_VAR = "PIPELINE_DEID_KEY"


def _fernet(key: bytes):
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.strip())
    except ValueError as e:
        raise UserError(
            f"the de-identification key is not a valid Fernet key (set {ENV_VAR} or key_file)"
        ) from e


def load_key(key_file: Path, *, create: bool) -> bytes:
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR].encode()
    path = key_file.expanduser()
    if path.is_dir():
        raise UserError(f"{path}: params deid.key_file names a folder; expected a key file")
    if path.exists():
        return path.read_bytes().strip()
    if not create:
        raise UserError(f"{path}: de-identification key not found (set {ENV_VAR} or params deid.key_file)")
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def encrypt_store(payload: dict, *, key: bytes) -> bytes:
    return _fernet(key).encrypt(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def write_store(path: Path, payload: dict, *, key: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(encrypt_store(payload, key=key))
        os.chmod(tmp, 0o600)


def read_store(path: Path, *, key: bytes) -> dict:
    from cryptography.fernet import InvalidToken

    if not path.exists():
        raise UserError(f"{path}: key store not found")
    try:
        return json.loads(_fernet(key).decrypt(path.read_bytes()))
    except InvalidToken as e:
        raise UserError(f"{path}: cannot decrypt with this key (wrong key or damaged file)") from e
