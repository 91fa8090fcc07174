"""Word (.docx) and OpenDocument (.odt) transcripts as plain text.

Canonical text (what turn offsets, codings.csv and identifiers.jsonl offsets count characters
in): the document's paragraphs in body order joined by "\\n", one line per paragraph.
- .docx (python-docx): body paragraphs and tables in order; a table is read row by row, cell
  by cell (a merged cell once), each cell's paragraphs (and nested tables) in order. A
  paragraph's text is python-docx's: runs and hyperlink text, a tab as "\\t", a line break as
  "\\n". Headers, footers, footnotes, comments and deleted revisions are not read.
- .odt (odfpy): every text:p and text:h of the document body in document order (inside lists,
  tables, sections and frames too). text:s is its count of spaces (text:c, default 1, at most 1000),
  text:tab is "\\t", text:line-break is "\\n"; footnotes, endnotes, annotations and changes
  are left out. A paragraph nested inside another (a text box) follows it as its own line.
Speaker labels are then found in this text line by line (`pipeline.formats.transcripts`).

The archive is checked first (`pipeline.formats.zipsafe`: size, ratio, DOCTYPE/ENTITY);
every failure is a one-line UserError naming the file.
"""

from __future__ import annotations

import io

from pipeline.errors import UserError
from pipeline.formats.zipsafe import check_xml_parts, open_zip, read_member

DOCX = "a Word .docx document"
ODT = "an OpenDocument .odt text document"
MAX_SPACES = 1000  # text:s c="..." is capped: a tiny file must not expand to gigabytes
_ODT_MIME = b"application/vnd.oasis.opendocument.text"
_TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_OFFICE_NS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_PARAGRAPHS = {(_TEXT_NS, "p"), (_TEXT_NS, "h")}
_SKIPPED = {
    (_TEXT_NS, "note"),
    (_TEXT_NS, "tracked-changes"),
    (_TEXT_NS, "sequence-decls"),
    (_OFFICE_NS, "annotation"),
    (_OFFICE_NS, "annotation-end"),
}


def docx_text(data: bytes, source: str) -> str:
    """The canonical text of a .docx file (see module docstring)."""
    archive = open_zip(data, source, what=DOCX)
    read_member(archive, "[Content_Types].xml", source, what=DOCX)
    check_xml_parts(archive, source, what=DOCX)
    import docx  # python-docx: its lxml parser does not resolve entities

    try:
        document = docx.Document(io.BytesIO(data))
        paragraphs = _docx_blocks(document)
    except UserError:
        raise
    except Exception as e:  # python-docx raises many types on malformed packages
        raise UserError(f"{source}: not readable as a Word .docx document ({type(e).__name__})") from None
    return "\n".join(paragraphs)


def _docx_blocks(container) -> list[str]:
    """Paragraph texts of a document, cell or other block container, tables included."""
    out: list[str] = []
    for block in container.iter_inner_content():
        if hasattr(block, "rows"):  # a table
            for row in block.rows:
                seen: set[int] = set()
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell appears once per grid column
                        continue
                    seen.add(id(cell._tc))
                    out += _docx_blocks(cell)
        else:
            out.append(block.text)
    return out


def odt_text(data: bytes, source: str) -> str:
    """The canonical text of an .odt file (see module docstring)."""
    archive = open_zip(data, source, what=ODT)
    names = set(archive.namelist())
    if "content.xml" not in names or "META-INF/manifest.xml" not in names:
        raise UserError(f"{source}: archive has no content.xml or manifest; expected {ODT}")
    if "mimetype" in names and not read_member(archive, "mimetype", source, what=ODT).startswith(_ODT_MIME):
        raise UserError(f"{source}: not {ODT} (another OpenDocument type)")
    check_xml_parts(archive, source, what=ODT)
    from odf.opendocument import load  # odfpy: parses with defusedxml

    try:
        document = load(io.BytesIO(data))
        paragraphs: list[str] = []
        _odt_collect(document.text, paragraphs)
    except UserError:
        raise
    except Exception as e:  # odfpy raises many types on malformed documents
        raise UserError(f"{source}: not readable as {ODT} ({type(e).__name__})") from None
    return "\n".join(paragraphs)


def _odt_collect(root, out: list[str]) -> None:
    """Append the text of every paragraph under `root` in document order (iteratively: deep
    nesting cannot exhaust the stack); a paragraph nested in another follows it."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.qname in _PARAGRAPHS:
            nested: list = []
            out.append(_odt_paragraph(node, nested))
            stack += reversed(nested)
            continue
        for child in reversed(node.childNodes):
            if child.nodeType == child.ELEMENT_NODE and child.qname not in _SKIPPED:
                stack.append(child)


def _odt_paragraph(paragraph, nested: list) -> str:
    """One paragraph's text; paragraphs nested inside it are appended to `nested`."""
    parts: list[str] = []
    stack = list(reversed(paragraph.childNodes))
    while stack:
        node = stack.pop()
        if node.nodeType == node.TEXT_NODE:
            parts.append(node.data)
            continue
        if node.nodeType != node.ELEMENT_NODE or node.qname in _SKIPPED:
            continue
        if node.qname in _PARAGRAPHS:
            nested.append(node)
        elif node.qname == (_TEXT_NS, "s"):
            count = str(node.attributes.get((_TEXT_NS, "c"), "1"))
            parts.append(" " * min(int(count) if count.isascii() and count.isdigit() else 1, MAX_SPACES))
        elif node.qname == (_TEXT_NS, "tab"):
            parts.append("\t")
        elif node.qname == (_TEXT_NS, "line-break"):
            parts.append("\n")
        else:
            stack += reversed(node.childNodes)
    return "".join(parts)
