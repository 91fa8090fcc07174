"""Import a Taguette project: its database (`.sqlite3`) or its tag CSV export.

Taguette stores each document as HTML and each highlight as (start_offset, end_offset)
counted in UTF-8 BYTES into the document's text after HTML tags are stripped and
entities unescaped. We convert those to character offsets into that same plain text, so
the spans line up with `text[start:end]` in Python, as every other codings source does.

Taguette has no notion of coders (a project is coded by whoever is logged in); the coder
is a parameter, default "taguette".
"""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path

import pandas as pd

from pipeline.codebook import Code, Codebook
from pipeline.errors import UserError
from pipeline.io import read_csv
from pipeline.schemas import CODINGS

_TAG = re.compile(r"<[^>]*>")


def html_to_text(contents: str) -> str:
    """The plain text Taguette counts offsets in: tags stripped, entities unescaped."""
    return html.unescape(_TAG.sub("", contents))


def byte_to_char_offsets(text: str) -> list[int]:
    """`table[b]` = the character index at UTF-8 byte `b` (len = bytes + 1)."""
    table: list[int] = []
    for i, ch in enumerate(text):
        table.extend([i] * len(ch.encode("utf-8")))
    table.append(len(text))
    return table


def document_id_from_name(name: str) -> str:
    """A transcript id from a Taguette document name: its file stem ("P2_GMT2021.odt" -> "P2_GMT2021")."""
    return Path(name).stem


def read_taguette_db(
    path: Path, *, coder: str = "taguette", project_id: int | None = None
) -> tuple[Codebook, pd.DataFrame, dict[str, str], dict[str, int]]:
    """(codebook, codings, transcript texts, counts) from a Taguette project database.

    Codings: transcript_id, coder, code, start, end (character offsets into the text).
    Highlights with no tag, or whose byte offsets fall outside the document or inside a
    multi-byte character, are skipped and counted in `counts` (highlights in = used + skipped).
    """
    if not path.exists():
        raise UserError(f"{path}: Taguette database not found")
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            projects = [r[0] for r in con.execute("SELECT id FROM projects ORDER BY id")]
            if project_id is None:
                if len(projects) != 1:
                    raise UserError(f"{path}: {len(projects)} Taguette projects; name one with project_id")
                project_id = projects[0]
            elif project_id not in projects:
                raise UserError(f"{path}: no Taguette project with id {project_id}")
            tags = con.execute(
                "SELECT id, path, description FROM tags WHERE project_id = ? ORDER BY path", (project_id,)
            ).fetchall()
            docs = con.execute(
                "SELECT id, name, contents FROM documents WHERE project_id = ? ORDER BY id", (project_id,)
            ).fetchall()
            highlights = con.execute(
                "SELECT h.id, d.id, h.start_offset, h.end_offset, t.path "
                "FROM highlights h JOIN documents d ON d.id = h.document_id "
                "LEFT JOIN highlight_tags ht ON ht.highlight_id = h.id "
                "LEFT JOIN tags t ON t.id = ht.tag_id "
                "WHERE d.project_id = ? ORDER BY h.id, t.path",
                (project_id,),
            ).fetchall()
        finally:
            con.close()
    except (sqlite3.Error, ValueError, OverflowError) as e:
        reason = " ".join(str(e).split())[:200]
        raise UserError(f"{path}: not a readable Taguette database ({reason})") from e
    return _project_contents(path, tags, docs, highlights, coder=coder)


def _text(value: object, what: str, path: Path) -> str:
    """A text column of the database (SQLite keeps whatever type was stored)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        raise UserError(f"{path}: a {what} holds binary data, expected text")
    return str(value)


def _project_contents(path: Path, tags: list, docs: list, highlights: list, *, coder: str):
    """(codebook, codings, texts, counts) from the rows of one project's tables."""
    codebook = Codebook(
        tuple(
            Code(
                code_id=_text(p, "tag path", path),
                name=_text(p, "tag path", path),
                definition=_text(d, "tag description", path),
            )
            for _, p, d in tags
        )
    )
    texts: dict[str, str] = {}
    tables: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for doc_id, name, contents in docs:
        tid = document_id_from_name(_text(name, "document name", path))
        if tid in texts:
            raise UserError(f"{path}: two documents named '{tid}'; rename one in Taguette")
        texts[tid] = html_to_text(_text(contents, "document", path))
        tables[doc_id] = byte_to_char_offsets(texts[tid])
        names[doc_id] = tid
    rows, untagged, bad_offsets = [], 0, 0
    for _hid, doc_id, start, end, tag in highlights:
        table = tables[doc_id]
        if tag is None:
            untagged += 1
            continue
        if not (_is_int(start) and _is_int(end) and 0 <= start < end < len(table)):
            bad_offsets += 1
            continue
        if _splits_char(table, start) or _splits_char(table, end):
            bad_offsets += 1
            continue
        rows.append((names[doc_id], coder, _text(tag, "tag path", path), table[start], table[end]))
    codings = pd.DataFrame(rows, columns=CODINGS.names)
    counts = {
        "rows_in": len(highlights),
        "used": len(rows),
        "skipped_untagged_highlight": untagged,
        "skipped_offsets_out_of_range": bad_offsets,
    }
    return codebook, codings, texts, counts


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _splits_char(table: list[int], b: int) -> bool:
    """True when byte `b` falls inside a multi-byte character (not on its first byte)."""
    return 0 < b < len(table) - 1 and table[b] == table[b - 1]


def read_taguette_csv(path: Path, *, coder: str = "taguette") -> pd.DataFrame:
    """Taguette's "export tags" CSV (id, document, tag, content) as transcript_id, coder, code, quote.

    The export has no offsets; a caller that needs spans locates `quote` in the text
    (see `locate_quotes`).
    """
    df = read_csv(path, ("document", "tag", "content"))
    return pd.DataFrame(
        {
            "transcript_id": [document_id_from_name(d) for d in df["document"]],
            "coder": coder,
            "code": df["tag"].str.strip(),
            "quote": df["content"],
        }
    )


def locate_quotes(codings: pd.DataFrame, texts: dict[str, str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Give quote-only codings start/end offsets by finding each quote in its transcript.

    An exact occurrence is preferred; failing that, one that differs only in whitespace
    (line breaks, repeated spaces: exports often reflow text). Each repeat of the same quote
    in a transcript takes the next occurrence. Quotes whose transcript is unknown or that are
    not found are skipped and counted.
    """
    rows, kept, unknown, missing = [], [], 0, 0
    cursor: dict[tuple[str, str], int] = {}
    for idx, r in zip(codings.index, codings.itertuples(index=False), strict=True):
        text = texts.get(r.transcript_id)
        if text is None:
            unknown += 1
            continue
        words = r.quote.split()
        if not words:
            missing += 1
            continue
        key = (r.transcript_id, r.quote)
        span = _find_quote(text, r.quote.strip(), words, cursor.get(key, 0))
        if span is None:
            missing += 1
            continue
        cursor[key] = span[1]
        rows.append((r.transcript_id, r.coder, r.code, span[0], span[1]))
        kept.append(idx)
    # the input's index is kept, so a caller can name the line of each quote it could not place
    out = pd.DataFrame(rows, columns=CODINGS.names, index=kept)
    counts = {
        "rows_in": len(codings),
        "used": len(rows),
        "skipped_unknown_transcript": unknown,
        "skipped_quote_not_found": missing,
    }
    return out, counts


def _find_quote(text: str, quote: str, words: list[str], pos: int) -> tuple[int, int] | None:
    """(start, end) of `quote` in `text`: the first occurrence at or after `pos` (exact, else
    differing only in whitespace), else the first from the beginning, so that a repeated
    quote whose later copy was reflowed still takes that later copy."""
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    for at in (pos, 0):
        i = text.find(quote, at)
        m = pattern.search(text, at)
        if i >= 0 and (m is None or i <= m.start()):
            return i, i + len(quote)
        if m is not None:
            return m.start(), m.end()
    return None
