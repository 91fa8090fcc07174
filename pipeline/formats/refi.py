"""REFI-QDA exchange (QDA-XML 1.0): codebooks (.qdc) and projects (.qdpx) that NVivo,
ATLAS.ti, MAXQDA and QualCoder read, written from pseudonymised text only, and read back.

- `.qdc`: one `CodeBook` XML document (namespace urn:QDA-XML:codebook:1.0).
- `.qdpx`: a zip of `project.qde` (namespace urn:QDA-XML:project:1.0) and `sources/<guid>.txt`,
  one UTF-8 plain-text file per transcript. Codings are `PlainTextSelection`s whose
  `startPosition`/`endPosition` count characters (Unicode code points) into that text.

GUIDs are uuid5 of the study name and a stable key (code id, transcript id, span), so the
same run exported twice, or a re-run with the same results, yields the same GUIDs and a QDA
package recognises the objects it has seen before.

A code's description carries what our codebook holds beyond a name, in labelled paragraphs
(`Include:`, `Exclude:`, `Examples:`, `Code id:`), so a codebook read back is the one written;
a codebook from another package, without those labels, is read as name + definition with the
name as id (as for codebook.csv).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from xml.etree import ElementTree as ET

from pipeline.codebook import Code, Codebook
from pipeline.errors import UserError
from pipeline.io import atomic_path

CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
PROJECT_NS = "urn:QDA-XML:project:1.0"
ORIGIN = "pipeline (NLP-assisted theme discovery)"
MACHINE_CODER = "machine"
THEMES_ROOT = "candidate_themes"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:pipeline:refi-qda")


def stable_guid(*parts: str) -> str:
    """A GUID that depends only on `parts` (e.g. study name, kind, key)."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


# ---------------------------------------------------------------------------------------
# Codes and their descriptions


def code_description(code: Code) -> str:
    """The definition, then labelled paragraphs for the rest of the code."""
    paras = [code.definition.strip()] if code.definition.strip() else []
    if code.include.strip():
        paras.append(f"Include: {code.include.strip()}")
    if code.exclude.strip():
        paras.append(f"Exclude: {code.exclude.strip()}")
    if code.examples:
        # one JSON string per line: quotes keep their own line breaks and quote marks intact
        paras.append("Examples:\n" + "\n".join(json.dumps(e, ensure_ascii=False) for e in code.examples))
    paras.append(f"Code id: {code.code_id}")
    return "\n\n".join(paras)


def _parse_description(text: str, *, name: str) -> dict:
    fields: dict = {"definition": [], "include": "", "exclude": "", "examples": (), "code_id": None}
    for para in text.split("\n\n"):
        if para.startswith("Include: "):
            fields["include"] = para[len("Include: ") :]
        elif para.startswith("Exclude: "):
            fields["exclude"] = para[len("Exclude: ") :]
        elif para.startswith("Examples:\n"):
            try:
                examples = tuple(json.loads(x) for x in para.split("\n")[1:] if x.strip())
            except (json.JSONDecodeError, RecursionError):
                examples = None
            if examples is not None and all(isinstance(x, str) for x in examples):
                fields["examples"] = examples
            else:
                fields["definition"].append(para)  # someone else's text that happens to start so
        elif para.startswith("Code id: ") and "\n" not in para:
            fields["code_id"] = para[len("Code id: ") :].strip()
        else:
            fields["definition"].append(para)
    fields["definition"] = "\n\n".join(fields["definition"]).strip()
    fields["code_id"] = fields["code_id"] or name
    return fields


def theme_codebook(cards: dict) -> Codebook:
    """Candidate themes as codes under one non-codable root: label, keywords, exemplar quotes
    (pseudonymised) and where each quote comes from."""
    codes = [
        Code(
            code_id=THEMES_ROOT,
            name="Candidate themes (machine)",
            definition="Themes found by clustering segment embeddings; a starting point for review.",
        )
    ]
    for card in cards["themes"]:
        where = "; ".join(
            f"{q['transcript_id']} turn {q['turn_id']} ({q['group']})" for q in card.get("quotes", [])
        )
        definition = (
            f"Candidate theme {card['theme_id']}: {card['size']} segments. "
            f"Keywords: {', '.join(card.get('keywords', []))}."
        )
        if where:
            definition += f" Exemplar quotes from: {where}."
        codes.append(
            Code(
                code_id=f"theme_{card['theme_id']}",
                name=card["label"],
                definition=definition,
                examples=tuple(q["text"] for q in card.get("quotes", [])),
                parent=THEMES_ROOT,
            )
        )
    return Codebook(tuple(codes))


def _children(codebook: Codebook) -> dict[str | None, list[Code]]:
    kids: dict[str | None, list[Code]] = {}
    for c in codebook.codes:
        kids.setdefault(c.parent, []).append(c)
    return kids


def code_elements(parent: ET.Element, ns: str, codebook: Codebook, *, study: str) -> None:
    kids = _children(codebook)

    def add(node: ET.Element, code: Code) -> None:
        el = ET.SubElement(
            node,
            f"{{{ns}}}Code",
            guid=stable_guid(study, "code", code.code_id),
            name=code.name,
            # grouping codes (parents) are not applied directly
            isCodable="false" if code.code_id in kids else "true",
        )
        ET.SubElement(el, f"{{{ns}}}Description").text = code_description(code)
        for child in kids.get(code.code_id, []):
            add(el, child)

    codes = ET.SubElement(parent, f"{{{ns}}}Codes")
    for root in kids.get(None, []):
        add(codes, root)


def read_codes(codes_el: ET.Element, ns: str, where: str = "codebook") -> tuple[Codebook, dict[str, str]]:
    """Codes in document order (parents before children) and a guid -> code id map; `where`
    (the file) begins every error message."""
    out: list[Code] = []
    guid_to_id: dict[str, str] = {}

    def walk(el: ET.Element, parent: str | None) -> None:
        name = el.get("name") or ""
        desc_el = el.find(f"{{{ns}}}Description")
        f = _parse_description(desc_el.text or "" if desc_el is not None else "", name=name)
        if not f["code_id"].strip():
            raise UserError(f"{where}: a Code has no name (expected a name attribute)")
        guid_to_id[(el.get("guid") or "").strip("{}").lower()] = f["code_id"]
        out.append(
            Code(
                code_id=f["code_id"],
                name=name,
                definition=f["definition"],
                include=f["include"],
                exclude=f["exclude"],
                examples=f["examples"],
                parent=parent,
            )
        )
        for child in el.findall(f"{{{ns}}}Code"):
            walk(child, f["code_id"])

    try:
        for el in codes_el.findall(f"{{{ns}}}Code"):
            walk(el, None)
    except RecursionError as e:
        raise UserError(f"{where}: codes nested too deeply") from e
    seen: set[str] = set()
    for code_id in (c.code_id for c in out):
        if code_id in seen:
            raise UserError(f"{where}: two codes share the id or name '{code_id}'")
        seen.add(code_id)
    return Codebook(tuple(out)), guid_to_id


def xml_bytes(root: ET.Element, ns: str) -> bytes:
    ET.register_namespace("", ns)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def codebook_qdc(codebook: Codebook, *, study: str) -> bytes:
    root = ET.Element(f"{{{CODEBOOK_NS}}}CodeBook", origin=ORIGIN)
    code_elements(root, CODEBOOK_NS, codebook, study=study)
    return xml_bytes(root, CODEBOOK_NS)


def write_codebook_qdc(codebook: Codebook, path: Path, *, study: str) -> None:
    """Write a REFI-QDA codebook (.qdc)."""
    if not codebook.codes:
        raise UserError(f"{path}: nothing to export (the codebook has no codes)")
    with atomic_path(path) as tmp:
        tmp.write_bytes(codebook_qdc(codebook, study=study))


def parse_xml(data: bytes, where: str) -> ET.Element:
    """A user's XML document; DTDs and entities (external entities, "billion laughs") are
    refused, as is anything not well-formed: a one-line UserError naming `where`."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ET.ParseError as e:
        raise UserError(f"{where}: not valid XML (line {e.position[0]})") from e
    except DefusedXmlException as e:
        raise UserError(
            f"{where}: XML with a DTD or entities is refused (expected plain REFI-QDA XML)"
        ) from e
    except (RecursionError, ValueError) as e:
        raise UserError(f"{where}: not readable XML ({type(e).__name__})") from e


def read_codebook_qdc(path: Path) -> Codebook:
    """A REFI-QDA codebook (.qdc): codes with their hierarchy."""
    if not path.exists():
        raise UserError(f"{path}: codebook file not found")
    root = parse_xml(path.read_bytes(), str(path))
    if root.tag != f"{{{CODEBOOK_NS}}}CodeBook":
        raise UserError(f"{path}: expected a REFI-QDA CodeBook (namespace {CODEBOOK_NS})")
    codes_el = root.find(f"{{{CODEBOOK_NS}}}Codes")
    if codes_el is None:
        raise UserError(f"{path}: the codebook has no Codes element")
    return read_codes(codes_el, CODEBOOK_NS, str(path))[0]
