"""REFI-QDA projects (.qdpx): a zip of `project.qde` (namespace urn:QDA-XML:project:1.0) and
`sources/<guid>.txt`, one UTF-8 plain-text file per transcript, written from pseudonymised text
only, and read back. Codings are `PlainTextSelection`s whose `startPosition`/`endPosition`
count characters (Unicode code points) into that text. GUIDs and code descriptions as in
`pipeline.formats.refi`.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook
from pipeline.errors import UserError
from pipeline.formats.refi import (
    MACHINE_CODER,
    ORIGIN,
    PROJECT_NS,
    code_elements,
    parse_xml,
    read_codes,
    stable_guid,
    xml_bytes,
)
from pipeline.formats.zipsafe import ZIP_ERRORS, check_count, read_member
from pipeline.io import atomic_path
from pipeline.offsets import pseudonymised_offset
from pipeline.schemas import CODINGS

# ---------------------------------------------------------------------------------------
# Pseudonymised sources


@dataclass(frozen=True)
class Source:
    """One transcript as exported: its text and where each turn's words start in it."""

    transcript_id: str
    text: str
    turn_offsets: dict[int, int]


def _speaker(role: str, participant_id: str) -> str:
    # raw speaker labels are often names: never exported
    return {"participant": participant_id, "interviewer": "Interviewer"}.get(role, "Note")


def pseudonymised_sources(turns: pd.DataFrame) -> dict[str, Source]:
    """Transcripts rebuilt from pseudonymised turns, one `Speaker: words` line per turn,
    speakers named by participant id or role."""
    out: dict[str, Source] = {}
    ordered = turns.sort_values(["transcript_id", "turn_id"])
    columns = ("transcript_id", "turn_id", "role", "participant_id", "text")
    rows = zip(*(ordered[c].tolist() for c in columns), strict=True)
    # one pass over the sorted turns (a survey has a transcript per answer: no table per transcript)
    for tid, turns_of in groupby(rows, key=itemgetter(0)):
        pieces: list[str] = []
        offsets: dict[int, int] = {}
        pos = 0
        for _, turn_id, role, participant_id, text in turns_of:
            prefix = f"{_speaker(role, participant_id)}: "
            offsets[int(turn_id)] = pos + len(prefix)
            line = prefix + text
            pieces.append(line)
            pos += len(line) + 1
        out[str(tid)] = Source(str(tid), "\n".join(pieces) + "\n", offsets)
    return out


def _turn_bounds(turns: pd.DataFrame) -> dict[str, tuple[np.ndarray, ...]]:
    """Per transcript (as str), its turns' (start, end, turn_id, spans) arrays, ordered by start."""
    codes, uniques = pd.factorize(turns["transcript_id"])
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    columns = [turns[c].to_numpy() for c in ("start", "end", "turn_id", "spans")]
    out = {}
    for g, tid in enumerate(uniques):
        rows = order[bounds[g] : bounds[g + 1]]
        rows = rows[np.argsort(columns[0][rows])]  # as pandas' sort_values("start") orders them
        out[str(tid)] = tuple(col[rows] for col in columns)
    return out


def human_codings_to_sources(
    codings: pd.DataFrame, turns: pd.DataFrame, sources: dict[str, Source]
) -> tuple[pd.DataFrame, int]:
    """Human codings (offsets into the ORIGINAL transcript text) moved onto the exported
    pseudonymised sources. Returns the moved codings and how many spans covered no turn text
    (e.g. a speaker label only) and so have nothing to point at."""
    rows, unplaced = [], 0
    by_tid = _turn_bounds(turns)
    for c in codings.itertuples(index=False):
        tt = by_tid.get(str(c.transcript_id))
        src = sources.get(str(c.transcript_id))
        if tt is None or src is None:
            unplaced += 1
            continue
        starts, ends, turn_ids, spans = tt
        inside = np.flatnonzero((ends > c.start) & (starts < c.end))
        if not len(inside):
            unplaced += 1
            continue
        first, last = inside[0], inside[-1]
        # clamp to turn text: offsets that fall in a speaker label or line break move inwards
        s_local = max(int(c.start), int(starts[first])) - int(starts[first])
        e_local = min(int(c.end), int(ends[last])) - int(starts[last])
        start = src.turn_offsets[int(turn_ids[first])] + pseudonymised_offset(
            s_local, json.loads(spans[first])
        )
        end = src.turn_offsets[int(turn_ids[last])] + pseudonymised_offset(
            e_local, json.loads(spans[last]), side="end"
        )
        rows.append((str(c.transcript_id), str(c.coder), str(c.code), start, end))
    return pd.DataFrame(rows, columns=CODINGS.names), unplaced


def segment_codings(
    segments: pd.DataFrame,
    labels: pd.DataFrame,
    sources: dict[str, Source],
    *,
    code_column: str,
    coder: str = MACHINE_CODER,
) -> pd.DataFrame:
    """Machine labels of segments (`segment_id` + `code_column`) as spans of the sources."""
    merged = labels.merge(segments, on="segment_id", how="inner")
    starts = [
        sources[t].turn_offsets[int(turn)] + int(s)
        for t, turn, s in zip(merged["transcript_id"], merged["turn_id"], merged["start"], strict=True)
    ]
    ends = [
        sources[t].turn_offsets[int(turn)] + int(e)
        for t, turn, e in zip(merged["transcript_id"], merged["turn_id"], merged["end"], strict=True)
    ]
    return pd.DataFrame(
        {
            "transcript_id": merged["transcript_id"].astype(str),
            "coder": coder,
            "code": merged[code_column].astype(str),
            "start": pd.Series(starts, dtype="int64"),
            "end": pd.Series(ends, dtype="int64"),
        }
    )


# ---------------------------------------------------------------------------------------
# Projects


def project_qde(
    *,
    study: str,
    sources: dict[str, str],
    codebook: Codebook,
    codings: pd.DataFrame,
    participants: pd.DataFrame | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The project.qde XML and the source file names (sources/<guid>.txt) it points to."""
    p = f"{{{PROJECT_NS}}}"
    root = ET.Element(f"{p}Project", name=study, origin=ORIGIN)
    known = {c.code_id for c in codebook.codes}
    unknown = sorted(set(codings["code"]) - known)
    if unknown:
        raise UserError(f"codings use code '{unknown[0]}', which is not in the exported codebook")
    missing = sorted(set(codings["transcript_id"]) - set(sources))
    if missing:
        raise UserError(f"codings name transcript '{missing[0]}', which has no source text")
    coders = sorted(set(codings["coder"]))
    if coders:
        users = ET.SubElement(root, f"{p}Users")
        for name in coders:
            ET.SubElement(users, f"{p}User", guid=stable_guid(study, "user", name), name=name)
    if codebook.codes:
        code_elements(ET.SubElement(root, f"{p}CodeBook"), PROJECT_NS, codebook, study=study)
    var_guid = stable_guid(study, "variable", "group")
    if participants is not None and len(participants):
        variables = ET.SubElement(root, f"{p}Variables")
        var = ET.SubElement(variables, f"{p}Variable", guid=var_guid, name="group", typeOfVariable="Text")
        ET.SubElement(var, f"{p}Description").text = "Participant group (stakeholder type)"
        cases = ET.SubElement(root, f"{p}Cases")
        for r in participants.sort_values("participant_id").itertuples(index=False):
            case = ET.SubElement(
                cases, f"{p}Case", guid=stable_guid(study, "case", r.participant_id), name=r.participant_id
            )
            value = ET.SubElement(case, f"{p}VariableValue")
            ET.SubElement(value, f"{p}VariableRef", targetGUID=var_guid)
            ET.SubElement(value, f"{p}TextValue").text = r.group
            if r.transcript_id in sources:
                ET.SubElement(case, f"{p}SourceRef", targetGUID=stable_guid(study, "source", r.transcript_id))
    files: dict[str, str] = {}
    src_el = ET.SubElement(root, f"{p}Sources")
    # per source, per (start, end): its (coder, code) pairs, in one pass over the codings
    selections: dict[str, dict[tuple, set[tuple[str, str]]]] = {}
    for tid, start, end, coder, code in zip(
        *(codings[c].tolist() for c in ("transcript_id", "start", "end", "coder", "code")), strict=True
    ):
        selections.setdefault(tid, {}).setdefault((start, end), set()).add((coder, code))
    for tid in sorted(sources):
        guid = stable_guid(study, "source", tid)
        files[f"sources/{guid}.txt"] = sources[tid]
        ts = ET.SubElement(
            src_el, f"{p}TextSource", guid=guid, name=tid, plainTextPath=f"internal://{guid}.txt"
        )
        spans = selections.get(tid, {})
        for start, end in sorted(spans):
            if not 0 <= start < end <= len(sources[tid]):
                raise UserError(f"a coding of transcript '{tid}' lies outside its text ({start}-{end})")
            sel_guid = stable_guid(study, "selection", tid, str(start), str(end))
            sel = ET.SubElement(
                ts, f"{p}PlainTextSelection", guid=sel_guid, startPosition=str(start), endPosition=str(end)
            )
            for coder, code in sorted(spans[(start, end)]):
                coding = ET.SubElement(
                    sel,
                    f"{p}Coding",
                    guid=stable_guid(study, "coding", sel_guid, coder, code),
                    creatingUser=stable_guid(study, "user", coder),
                )
                ET.SubElement(coding, f"{p}CodeRef", targetGUID=stable_guid(study, "code", code))
    return xml_bytes(root, PROJECT_NS), files


def project_qdpx(
    *,
    study: str,
    sources: dict[str, str],
    codebook: Codebook,
    codings: pd.DataFrame,
    participants: pd.DataFrame | None = None,
) -> bytes:
    """A REFI-QDA project (.qdpx): project.qde plus one text file per source.

    `codings` (transcript_id, coder, code, start, end) hold offsets into `sources`' texts.
    """
    qde, files = project_qde(
        study=study, sources=sources, codebook=codebook, codings=codings, participants=participants
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        # fixed timestamps: the same project gives the same bytes
        z.writestr(zipfile.ZipInfo("project.qde", date_time=(1980, 1, 1, 0, 0, 0)), qde)
        for name in sorted(files):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), files[name].encode("utf-8"))
    return buffer.getvalue()


def write_project_qdpx(path: Path, **project) -> None:
    """Write `project_qdpx(**project)` to `path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(project_qdpx(**project))


QDPX = "a REFI-QDA project (.qdpx)"
QDPX_MAX_MEMBERS = 2_000_000  # a project holds a file per source: a national survey's respondents


def _read_source_text(
    z: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], ts: ET.Element, where: str
) -> str:
    """A TextSource's text: inline, or the archive member its plainTextPath names (`members`:
    the archive's members by lower-case name, built once per project)."""
    content = ts.find(f"{{{PROJECT_NS}}}PlainTextContent")
    if content is not None:
        return content.text or ""
    ref = ts.get("plainTextPath") or ""
    if not ref:
        raise UserError(f"{where}: TextSource '{ts.get('name')}' has neither text nor a plainTextPath")
    name = ref.removeprefix("internal://")
    member = members.get(f"sources/{name}".lower())
    if member is None:
        raise UserError(f"{where}: source file '{name}' named by '{ts.get('name')}' is not in the archive")
    try:
        return read_member(z, member, where, what=QDPX).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{where}: source file '{name}' is not UTF-8 text") from e


def _open_project(path: Path) -> tuple[zipfile.ZipFile, ET.Element]:
    if not path.exists():
        raise UserError(f"{path}: project file not found")
    try:
        z = zipfile.ZipFile(path)
        infos = z.infolist()
    except ZIP_ERRORS as e:
        raise UserError(f"{path}: not a .qdpx (zip) archive, or a truncated one") from e
    try:
        # only the parts read are checked for size: a project may carry large media files
        check_count(infos, str(path), what=QDPX, limit=QDPX_MAX_MEMBERS)
        qde = next((i for i in infos if i.filename.lower().endswith(".qde")), None)
        if qde is None:
            raise UserError(f"{path}: no project.qde in the archive")
        root = parse_xml(read_member(z, qde, str(path), what=QDPX), f"{path}:{qde.filename}")
        if root.tag != f"{{{PROJECT_NS}}}Project":
            raise UserError(f"{path}: expected a REFI-QDA Project (namespace {PROJECT_NS})")
    except UserError:
        z.close()
        raise
    return z, root


def read_project_qdpx(path: Path) -> tuple[Codebook, pd.DataFrame, dict[str, str]]:
    """A REFI-QDA project: its codebook, its text codings (transcript_id = source name, coder
    = user name, code = code id, start/end = offsets into the source text) and source texts."""
    z, root = _open_project(path)
    p = f"{{{PROJECT_NS}}}"
    with z:
        users = {
            (u.get("guid") or "").strip("{}").lower(): u.get("name") or u.get("id") or "unknown"
            for u in root.iter(f"{p}User")
        }
        cb_el = root.find(f"{p}CodeBook/{p}Codes")
        codebook, guid_to_id = (Codebook(), {}) if cb_el is None else read_codes(cb_el, PROJECT_NS, str(path))
        sources: dict[str, str] = {}
        members = {i.filename.lower(): i for i in z.infolist()}
        rows = []
        for ts in root.iter(f"{p}TextSource"):
            if ts.get("name") in (None, ""):
                raise UserError(f"{path}: a TextSource has no name (used as transcript_id)")
            tid = ts.get("name")
            if tid in sources:
                raise UserError(f"{path}: two TextSources are named '{tid}'")
            sources[tid] = _read_source_text(z, members, ts, str(path))
            for sel in ts.findall(f"{p}PlainTextSelection"):
                try:
                    start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
                except (TypeError, ValueError) as e:
                    raise UserError(f"{path}: a selection in '{tid}' lacks integer start/endPosition") from e
                for coding in sel.findall(f"{p}Coding"):
                    ref = coding.find(f"{p}CodeRef")
                    target = (ref.get("targetGUID") if ref is not None else "").strip("{}").lower()
                    if target not in guid_to_id:
                        raise UserError(f"{path}: a coding in '{tid}' refers to an unknown code {target}")
                    user = (coding.get("creatingUser") or sel.get("creatingUser") or "").strip("{}").lower()
                    rows.append((tid, users.get(user, "unknown"), guid_to_id[target], start, end))
    codings = pd.DataFrame(rows, columns=CODINGS.names).astype({"start": "int64", "end": "int64"})
    return codebook, codings, sources


def read_project_cases(path: Path) -> pd.DataFrame:
    """Cases of a REFI-QDA project as participants: transcript_id, participant_id, group
    (the `group` case variable; empty where a case has none)."""
    z, root = _open_project(path)
    p = f"{{{PROJECT_NS}}}"
    with z:
        names = {
            (ts.get("guid") or "").strip("{}").lower(): ts.get("name") for ts in root.iter(f"{p}TextSource")
        }
        variables = {
            (v.get("guid") or "").strip("{}").lower(): v.get("name") for v in root.iter(f"{p}Variable")
        }
        rows = []
        for case in root.iter(f"{p}Case"):
            group = ""
            for vv in case.findall(f"{p}VariableValue"):
                ref = vv.find(f"{p}VariableRef")
                if (
                    ref is not None
                    and variables.get((ref.get("targetGUID") or "").strip("{}").lower()) == "group"
                ):
                    group = vv.findtext(f"{p}TextValue") or ""
            for sref in case.findall(f"{p}SourceRef"):
                tid = names.get((sref.get("targetGUID") or "").strip("{}").lower())
                if tid is not None:
                    rows.append((tid, case.get("name") or "", group))
    return pd.DataFrame(rows, columns=["transcript_id", "participant_id", "group"])
