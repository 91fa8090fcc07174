"""Zip containers from users (.docx, .odt) checked before anything is inflated or parsed.

The checks use only the zip's central directory (`infolist`): too many members, a member or a
total that would inflate past a limit, or a compression ratio no document has (a zip bomb) is
refused. Then every XML part is read (bounded by its declared size: Python's zipfile never
inflates past it) and refused if it declares a DOCTYPE or ENTITY, which documents do not need
and which XML attacks (external entities, "billion laughs") rely on.

Every failure is a one-line `UserError` naming the file; nothing of its text is quoted.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from pipeline.errors import UserError

MAX_MEMBERS = 5000
MAX_MEMBER_BYTES = 200 * 1024 * 1024  # one inflated part
MAX_TOTAL_BYTES = 500 * 1024 * 1024  # all inflated parts together
MAX_RATIO = 200  # inflated / compressed, for parts over RATIO_FLOOR bytes
RATIO_FLOOR = 1024 * 1024
XML_SUFFIXES = (".xml", ".rels", ".rdf")
_XML_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


# What reading a damaged archive raises, beside UserError.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
)


def open_zip(data: bytes, source: str, *, what: str) -> zipfile.ZipFile:
    """`data` as a zip archive after the size and ratio checks; `what` names the expected
    document ("a Word .docx document") in the error messages."""
    if not data:
        raise UserError(f"{source}: empty file; expected {what}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except ZIP_ERRORS as e:
        raise UserError(f"{source}: not {what} (not a readable zip archive: {type(e).__name__})") from None
    check_sizes(members, source, what=what)
    return archive


def check_count(members: list[zipfile.ZipInfo], source: str, *, what: str, limit: int = MAX_MEMBERS) -> None:
    if len(members) > limit:
        raise UserError(f"{source}: {len(members)} parts in the archive (at most {limit}); expected {what}")


def check_member(info: zipfile.ZipInfo, source: str) -> None:
    """Refuse one part that would inflate too far, judged from the central directory."""
    size, packed = info.file_size, max(info.compress_size, 1)
    if size > MAX_MEMBER_BYTES:
        raise UserError(
            f"{source}: archive part '{info.filename}' would inflate to {size} bytes "
            f"(limit {MAX_MEMBER_BYTES}); refused as a possible zip bomb"
        )
    if size > RATIO_FLOOR and size / packed > MAX_RATIO:
        raise UserError(
            f"{source}: archive part '{info.filename}' has compression ratio {size // packed}:1 "
            f"(limit {MAX_RATIO}:1); refused as a possible zip bomb"
        )


def check_sizes(members: list[zipfile.ZipInfo], source: str, *, what: str) -> None:
    """Refuse archives that would inflate too far, judged from the central directory alone."""
    check_count(members, source, what=what)
    for info in members:
        check_member(info, source)
    total = sum(info.file_size for info in members)
    if total > MAX_TOTAL_BYTES:
        raise UserError(
            f"{source}: archive would inflate to {total} bytes (limit {MAX_TOTAL_BYTES}); "
            "refused as a possible zip bomb"
        )


def read_member(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, source: str, *, what: str) -> bytes:
    """One part of an archive, checked (`check_member`) before it is inflated and never read
    past its declared size; a missing, corrupt or oversized part is a UserError."""
    try:
        info = member if isinstance(member, zipfile.ZipInfo) else archive.getinfo(member)
    except KeyError:
        raise UserError(f"{source}: archive has no '{member}'; expected {what}") from None
    check_member(info, source)
    try:
        with archive.open(info) as f:
            data = f.read(info.file_size + 1)
    except ZIP_ERRORS as e:
        raise UserError(
            f"{source}: archive part '{info.filename}' is corrupt or truncated ({type(e).__name__}); "
            f"expected {what}"
        ) from None
    if len(data) > info.file_size:
        raise UserError(f"{source}: archive part '{info.filename}' is larger than its header says: refused")
    return data


def check_xml_parts(archive: zipfile.ZipFile, source: str, *, what: str) -> None:
    """Read every XML part and refuse DOCTYPE and ENTITY declarations (see module docstring)."""
    for info in archive.infolist():
        if info.is_dir() or not info.filename.lower().endswith(XML_SUFFIXES):
            continue
        data = read_member(archive, info, source, what=what)
        head = data
        for bom, encoding in _XML_BOMS:
            if data.startswith(bom):
                head = data.decode(encoding, errors="replace").encode("utf-8")
                break
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            raise UserError(
                f"{source}: archive part '{info.filename}' declares a DOCTYPE or ENTITY "
                "(refused: possible XML entity attack)"
            )
