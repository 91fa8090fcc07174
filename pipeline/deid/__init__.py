"""De-identification stage: detect identifiers, replace them with consistent role-typed
pseudonyms, check the result with a leak gate, and keep the key apart (encrypted, under
private/). Nothing downstream of this stage reads raw text.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from pipeline.config import DeidParams, Params
from pipeline.deid.detect import Detector, load_detector, names_from_speakers
from pipeline.deid.keystore import load_key, read_store, write_store
from pipeline.deid.pseudonymise import Pseudonymised, original_offset, pseudonymise_corpus, replacement_bounds
from pipeline.deid.register import Register, read_allow, read_register
from pipeline.deid.spans import Span, merge_overlaps
from pipeline.errors import UserError
from pipeline.io import read_table, write_json, write_table, write_text
from pipeline.schemas import DEID_TURNS, TURNS
from pipeline.study import Codebook, load_codebook, write_codebook_json

log = logging.getLogger(__name__)
_ALNUM = re.compile(r"\w{2,}")


@dataclass(frozen=True)
class Leak:
    index: int  # which text
    offset: int  # in the pseudonymised text
    label: str


def find_leaks(
    result: Pseudonymised, detector: Detector, *, only: list[int] | None = None
) -> list[tuple[Leak, Span]]:
    """Re-run every detector over the output (or the texts `only` lists); report what lies
    outside the placeholders: the leak (output location) and the span to add, in ORIGINAL
    offsets."""
    indices = list(range(len(result.texts))) if only is None else only
    masked = [_mask(result.texts[i], replacement_bounds(result.spans[i])) for i in indices]
    found = detector.detect_many(masked)
    leaks = []
    for i, text, spans in zip(indices, masked, found, strict=True):
        records = result.spans[i]
        placeholders = replacement_bounds(records)
        for span in spans:
            for start, end in _outside(span.start, span.end, placeholders):
                if _ALNUM.search(text[start:end]):
                    orig = Span(
                        original_offset(start, records),
                        original_offset(end, records, side="end"),
                        span.label,
                        "leak_gate",
                        span.score,
                    )
                    leaks.append((Leak(i, start, span.label), orig))
    return leaks


def _mask(text: str, bounds: list[tuple[int, int]]) -> str:
    """Blank out placeholders (same length), so detectors see only what was left."""
    chars = list(text)
    for start, end in bounds:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _outside(start: int, end: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    pieces, pos = [], start
    for h_start, h_end in holes:
        if h_end <= pos or h_start >= end:
            continue
        if h_start > pos:
            pieces.append((pos, h_start))
        pos = max(pos, h_end)
    if pos < end:
        pieces.append((pos, end))
    return pieces


def deidentify_corpus(
    texts: list[str], *, detector: Detector, register: Register, options: DeidParams, progress: bool = False
) -> tuple[Pseudonymised, list[Leak], int]:
    """Detect, pseudonymise, and gate: what the gate finds is replaced too, for up to
    `options.gate_rounds` rounds. Returns the result, leaks still present, rounds used."""
    spans = detector.detect_many(texts, progress=progress)
    rounds, check = 0, None  # the first check covers every text, later ones what changed
    while True:
        result = pseudonymise_corpus(texts, spans, register=register, age_policy=options.age_policy)
        leaks = find_leaks(result, detector, only=check)
        if not leaks or rounds >= options.gate_rounds:
            return result, [leak for leak, _ in leaks], rounds
        rounds += 1
        for leak, orig in leaks:
            spans[leak.index] = merge_overlaps([*spans[leak.index], orig], texts[leak.index])
        check = sorted({leak.index for leak, _ in leaks})


def _detector(
    params: DeidParams, *, study: Path | None, register: Path | None, allow: Path | None, speakers: list[str]
) -> tuple[Detector, Register]:
    if study is not None:
        register = register or (study / "register.yaml" if (study / "register.yaml").exists() else None)
        allow = allow or (study / "allow.yaml" if (study / "allow.yaml").exists() else None)
    reg = read_register(register) if register else Register()
    detector = load_detector(
        params.spacy_model,
        entity_labels=params.entity_labels,
        register=reg,
        known_names=names_from_speakers(speakers),
        allow=read_allow(allow) if allow else frozenset(),
    )
    return detector, reg


def scrub_codebook(codebook: Codebook, *, params: DeidParams, study: Path) -> Codebook:
    """The codebook with identifiers in its free text (definitions, criteria, example quotes)
    replaced by generic placeholders, for anything that leaves the study folder.

    Code names are kept as written: they are the research team's short titles, and a
    detector run on a title without context tags its capitalised words as names
    ("Interprofessional working" came out as "[PERSON] working").
    """
    detector, _ = _detector(params, study=study, register=None, allow=None, speakers=[])
    fields = ("definition", "include", "exclude")
    texts = [getattr(c, f) for c in codebook.codes for f in fields] + [
        e for c in codebook.codes for e in c.examples
    ]
    scrubbed = iter(
        _generic_replacements(t, spans) for t, spans in zip(texts, detector.detect_many(texts), strict=True)
    )
    codes = [replace(c, **{f: next(scrubbed) for f in fields}) for c in codebook.codes]
    codes = [replace(c, examples=tuple(next(scrubbed) for _ in c.examples)) for c in codes]
    return Codebook(tuple(codes))


def write_scrubbed_codebook(study: Path, out: Path, *, deid_params: DeidParams) -> Codebook | None:
    """The deidentify stage's codebook output: the study's codebook (if any) with identifiers
    in its definitions, criteria and example quotes replaced (see `scrub_codebook`), so that
    later stages never read the study folder's own codebook."""
    codebook = load_codebook(study)
    scrubbed = scrub_codebook(codebook, params=deid_params, study=study) if codebook else None
    write_codebook_json(out, scrubbed)
    return scrubbed


def _generic_replacements(text: str, spans: list[Span]) -> str:
    pieces, pos = [], 0
    for s in spans:
        pieces += [text[pos : s.start], f"[{s.label}]"]
        pos = s.end
    return "".join(pieces) + text[pos:]


def _gate_error(leaks: list[Leak], where: list[str]) -> UserError:
    shown = "; ".join(f"{where[leak.index]} offset {leak.offset} ({leak.label})" for leak in leaks[:5])
    more = f" and {len(leaks) - 5} more" if len(leaks) > 5 else ""
    return UserError(
        f"leak gate: {len(leaks)} possible identifier(s) remain after replacement: {shown}{more}; "
        "review them and add public, non-identifying terms to allow.yaml"
    )


def _key_payload(result: Pseudonymised, texts: list[str], keys: list[str]) -> dict:
    records, review = {}, []
    for key, text, spans in zip(keys, texts, result.spans, strict=True):
        originals = [text[s["start"] : s["end"]] for s in spans]
        records[key] = originals
        review += [{"where": key, **s, "original": o} for s, o in zip(spans, originals, strict=True)]
    entities = [
        {"placeholder": e.placeholder, "label": e.label, "role": e.role, "surfaces": sorted(e.surfaces)}
        for e in result.entities
    ]
    return {
        "version": 1,
        "records": records,
        "entities": entities,
        "review": review,
        "ambiguous": result.ambiguous,
    }


def _metrics(result: Pseudonymised, groups: list[str], rounds: int) -> dict:
    per_group: dict[str, Counter[str]] = {}
    for group, spans in zip(groups, result.spans, strict=True):
        per_group.setdefault(group, Counter()).update(s["label"] for s in spans)
    totals: Counter[str] = Counter()
    for counts in per_group.values():
        totals.update(counts)
    prefixes = Counter(e.placeholder.strip("[]").rsplit("_", 1)[0] for e in result.entities)
    return {
        "replacements": int(sum(totals.values())),
        "by_type": dict(sorted(totals.items())),
        "entities": dict(sorted(prefixes.items())),
        "by_detector": dict(sorted(Counter(s["detector"] for spans in result.spans for s in spans).items())),
        "ambiguous_groupings": len(result.ambiguous),
        "gate_rounds": rounds,
        "per_transcript": {g: dict(sorted(c.items())) for g, c in sorted(per_group.items())},
    }


def run(
    params: Params,
    *,
    turns_path: Path,
    out: Path,
    metrics: Path,
    key_store: Path,
    study: Path | None = None,
    register: Path | None = None,
    allow: Path | None = None,
    progress: bool = False,
) -> dict:
    turns = read_table(turns_path, TURNS)
    speakers = turns.loc[turns["role"] == "participant", "speaker"].unique().tolist()
    detector, reg = _detector(params.deid, study=study, register=register, allow=allow, speakers=speakers)
    texts = turns["text"].tolist()
    keys = [f"{t}:{n}" for t, n in zip(turns["transcript_id"], turns["turn_id"], strict=True)]
    result, leaks, rounds = deidentify_corpus(
        texts, detector=detector, register=reg, options=params.deid, progress=progress
    )
    if leaks:
        raise _gate_error(
            leaks, [f"{t} turn {n}" for t, n in zip(turns["transcript_id"], turns["turn_id"], strict=True)]
        )
    key = load_key(Path(params.deid.key_file), create=True)
    write_store(key_store, _key_payload(result, texts, keys), key=key)
    deid = turns.drop(columns=["speaker"]).copy()
    deid["text"] = result.texts
    deid["spans"] = [json.dumps(s) for s in result.spans]
    write_table(out, deid, DEID_TURNS)
    counts = _metrics(result, turns["transcript_id"].tolist(), rounds)
    write_json(metrics, counts)
    return counts


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise UserError(f"{path}: file not found")
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path} line {n}: not valid JSON") from e
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or "id" not in rec:
            raise UserError(f'{path} line {n}: expected {{"id": ..., "text": "..."}}')
        records.append(rec)
    return records


def run_jsonl(
    params: Params,
    *,
    in_path: Path,
    out: Path,
    register: Path | None = None,
    allow: Path | None = None,
    key_store: Path | None = None,
    progress: bool = False,
) -> dict:
    """The CLI contract: lines {"id","text"} -> {"id","text","spans"} (original offsets)."""
    records = _read_jsonl(in_path)
    detector, reg = _detector(params.deid, study=None, register=register, allow=allow, speakers=[])
    texts = [r["text"] for r in records]
    result, leaks, rounds = deidentify_corpus(
        texts, detector=detector, register=reg, options=params.deid, progress=progress
    )
    if leaks:
        raise _gate_error(leaks, [f"{in_path} id {r['id']}" for r in records])
    if key_store is not None:
        key = load_key(Path(params.deid.key_file), create=True)
        write_store(key_store, _key_payload(result, texts, [str(r["id"]) for r in records]), key=key)
    public = [
        [{k: s[k] for k in ("start", "end", "label", "replacement")} for s in spans] for spans in result.spans
    ]
    lines = [
        json.dumps({"id": r["id"], "text": text, "spans": spans}, ensure_ascii=False) + "\n"
        for r, text, spans in zip(records, result.texts, public, strict=True)
    ]
    write_text(out, "".join(lines))
    return {"records": len(records), "replacements": sum(len(s) for s in result.spans), "gate_rounds": rounds}


def restore(text: str, spans: list[dict], originals: list[str]) -> str:
    """Put the original identifiers back into a pseudonymised text."""
    if len(spans) != len(originals):
        raise UserError("key store does not match this text (different number of replacements)")
    pieces, pos = [], 0
    for (start, end), original in zip(replacement_bounds(spans), originals, strict=True):
        pieces += [text[pos:start], original]
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def reidentify(
    params: Params, *, in_path: Path, out: Path, key_store: Path, review: Path | None = None
) -> dict:
    """For key holders: restore originals in de-identified JSONL or turns; export the review file."""
    store = read_store(key_store, key=load_key(Path(params.deid.key_file), create=False))
    records = store["records"]
    if review is not None:
        from pipeline.io import write_csv

        write_csv(review, pd.DataFrame(store["review"]))
    if in_path.suffix == ".jsonl":
        rows = _read_jsonl(in_path)
        missing = [r["id"] for r in rows if str(r["id"]) not in records]
        if missing:
            raise UserError(f"{in_path}: id {missing[0]} is not in the key store")
        lines = [
            json.dumps(
                {"id": r["id"], "text": restore(r["text"], r.get("spans", []), records[str(r["id"])])},
                ensure_ascii=False,
            )
            + "\n"
            for r in rows
        ]
        write_text(out, "".join(lines))
        return {"records": len(rows)}
    if in_path.suffix == ".parquet":
        turns = read_table(in_path, DEID_TURNS)
        texts = []
        for t, n, text, spans in zip(
            turns["transcript_id"], turns["turn_id"], turns["text"], turns["spans"], strict=True
        ):
            key = f"{t}:{n}"
            if key not in records:
                raise UserError(f"{in_path}: {t} turn {n} is not in the key store")
            texts.append(restore(text, json.loads(spans), records[key]))
        write_table(out, turns.assign(text=texts, spans="[]"), DEID_TURNS)
        return {"turns": len(turns)}
    raise UserError(f"{in_path}: expected a .jsonl or a de-identified turns .parquet file")
