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


def open_zip(data: bytes, source: str, *, what: str) -> zipfile.ZipFile:
    """`data` as a zip archive after the size and ratio checks; `what` names the expected
    document ("a Word .docx document") in the error messages."""
    if not data:
        raise UserError(f"{source}: empty file; expected {what}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise UserError(f"{source}: not {what} (not a readable zip archive: {type(e).__name__})") from None
    check_sizes(members, source, what=what)
    return archive


def check_sizes(members: list[zipfile.ZipInfo], source: str, *, what: str) -> None:
    """Refuse archives that would inflate too far, judged from the central directory alone."""
    if len(members) > MAX_MEMBERS:
        raise UserError(
            f"{source}: {len(members)} parts in the archive (at most {MAX_MEMBERS}); expected {what}"
        )
    total = 0
    for info in members:
        size, packed = info.file_size, max(info.compress_size, 1)
        total += size
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
    if total > MAX_TOTAL_BYTES:
        raise UserError(
            f"{source}: archive would inflate to {total} bytes (limit {MAX_TOTAL_BYTES}); "
            "refused as a possible zip bomb"
        )


def read_member(archive: zipfile.ZipFile, name: str, source: str, *, what: str) -> bytes:
    """One part of a checked archive; a missing or corrupt part is a UserError."""
    try:
        return archive.read(name)
    except KeyError:
        raise UserError(f"{source}: archive has no '{name}'; expected {what}") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise UserError(
            f"{source}: archive part '{name}' is corrupt or truncated ({type(e).__name__}); expected {what}"
        ) from None


def check_xml_parts(archive: zipfile.ZipFile, source: str, *, what: str) -> None:
    """Read every XML part and refuse DOCTYPE and ENTITY declarations (see module docstring)."""
    for info in archive.infolist():
        if info.is_dir() or not info.filename.lower().endswith(XML_SUFFIXES):
            continue
        data = read_member(archive, info.filename, source, what=what)
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
