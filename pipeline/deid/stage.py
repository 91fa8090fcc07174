"""Deidentify stage: detect identifiers, replace them with consistent role-typed pseudonyms,
check the result with the leak gate, and keep the key apart (encrypted, under private/);
also the CLI's JSONL contract and, for key holders, re-identification."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline.config import Params
from pipeline.deid.detect import study_detector
from pipeline.deid.gate import deidentify_corpus, gate_error
from pipeline.deid.keystore import encrypt_store, load_key, read_store, write_store
from pipeline.deid.metadata import rename_ids
from pipeline.deid.pseudonymise import Pseudonymised
from pipeline.deid.scrub import scrubbed_codebook
from pipeline.errors import UserError
from pipeline.io import read_table, write_csv, write_table, write_text
from pipeline.offsets import replacement_bounds
from pipeline.schemas import DEID_TURNS
from pipeline.study import load_study_info


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


def _per_group(turns: pd.DataFrame) -> dict[str, int]:
    counts = turns.drop_duplicates("transcript_id")["group"].value_counts().sort_index()
    return {str(g): int(c) for g, c in counts.items()}


def run(
    params: Params,
    *,
    turns: pd.DataFrame,
    study: Path | None = None,
    codings_ingested: pd.DataFrame | None = None,
    coverage_ingested: pd.DataFrame | None = None,
    register: Path | None = None,
    allow: Path | None = None,
    progress: bool = False,
) -> dict:
    """The stage's node (see `pipeline.stages`). De-identify the turns and the study's own words
    (`pipeline.deid.metadata`) in one corpus; the turns and the ingested codings under the
    pseudonymised ids (and what each coder reviewed), the study's codebook scrubbed, and the key
    store (encrypted)."""
    speakers = turns.loc[turns["role"] == "participant", "speaker"].unique().tolist()
    # map -> reduce -> map: with `engine: ray` the first passes (spaCy and every recognizer, per
    # text) run on Ray actors; the study's surfaces, pseudonyms and replacement stay here
    detector, reg = study_detector(
        params.deid, study=study, register=register, allow=allow, speakers=speakers, engine=params.engine
    )
    info = load_study_info(study) if study is not None else None
    texts, n = turns["text"].tolist(), len(turns)
    texts += [info.name, info.description] if info else ["", ""]  # study.yaml, checked like the turns
    result, leaks, rounds = deidentify_corpus(
        texts, detector=detector, register=reg, options=params.deid, progress=progress
    )
    if leaks:
        where = [f"{t} turn {k}" for t, k in zip(turns["transcript_id"], turns["turn_id"], strict=True)]
        raise gate_error(leaks, [*where, "study.yaml name", "study.yaml description"])
    names = rename_ids(
        turns,
        name=result.texts[n],
        description=result.texts[n + 1],
        entities=[(e.placeholder, e.surfaces) for e in result.entities],
        detect=detector.rules_only,
    )
    deid = names.apply(turns.drop(columns=["speaker"]))
    keys = [f"{t}:{k}" for t, k in zip(deid["transcript_id"], deid["turn_id"], strict=True)]
    keys += ["study:name", "study:description"]
    key = load_key(Path(params.deid.key_file), create=True)
    key_store = encrypt_store({**_key_payload(result, texts, keys), "renamed": names.maps}, key=key)
    deid["text"] = result.texts[:n]
    deid["spans"] = [json.dumps(s) for s in result.spans[:n]]
    groups = deid["transcript_id"].tolist() + ["(study.yaml)"] * 2
    counts = {
        "study": names.name,
        "study_description": names.description,
        **_metrics(result, groups, rounds),
        "renamed": names.counts(),
        # transcripts (survey: answers) per group, under the groups' checked names
        "groups": _per_group(deid),
    }
    return {
        "deid_turns": deid,
        "codings": names.apply(codings_ingested) if codings_ingested is not None else None,
        "coverage": names.apply(coverage_ingested) if coverage_ingested is not None else None,
        "codebook": scrubbed_codebook(study, deid_params=params.deid) if study is not None else None,
        "key_store": key_store,
        "deid_metrics": counts,
    }


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
    detector, reg = study_detector(
        params.deid, study=None, register=register, allow=allow, speakers=[], engine=params.engine
    )
    texts = [r["text"] for r in records]
    result, leaks, rounds = deidentify_corpus(
        texts, detector=detector, register=reg, options=params.deid, progress=progress
    )
    if leaks:
        raise gate_error(leaks, [f"{in_path} id {r['id']}" for r in records])
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
