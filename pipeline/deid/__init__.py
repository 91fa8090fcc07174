"""De-identification stage: detect identifiers in turns and replace them with consistent,
visible placeholders. Nothing downstream of this stage reads raw text.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline.config import Params
from pipeline.deid.detect import Detector, load_detector, names_from_speakers, read_register
from pipeline.deid.pseudonymise import Pseudonymiser
from pipeline.errors import UserError
from pipeline.io import read_table, write_json, write_table, write_text
from pipeline.schemas import DEID_TURNS, TURNS


def deidentify_texts(
    texts: list[str], *, detector: Detector, pseudonymiser: Pseudonymiser, progress: bool = False
) -> list[tuple[str, list[dict]]]:
    """Pseudonymise each text; return (new text, replacement spans in original offsets)."""
    found = detector.detect_many(texts, progress=progress)
    return [pseudonymiser.apply(text, spans) for text, spans in zip(texts, found, strict=True)]


def deidentify_turns(
    turns: pd.DataFrame, *, detector: Detector, progress: bool = False
) -> tuple[pd.DataFrame, dict]:
    """Pseudonymise a turns table; the speaker label is dropped (role and ids stay)."""
    pseudonymiser = Pseudonymiser()
    results = deidentify_texts(
        turns["text"].tolist(), detector=detector, pseudonymiser=pseudonymiser, progress=progress
    )
    out = turns.drop(columns=["speaker"]).copy()
    out["text"] = [text for text, _ in results]
    out["spans"] = [json.dumps(spans) for _, spans in results]
    per_transcript: dict[str, Counter[str]] = {}
    for tid, (_, spans) in zip(turns["transcript_id"], results, strict=True):
        per_transcript.setdefault(tid, Counter()).update(s["label"] for s in spans)
    totals: Counter[str] = Counter()
    for counts in per_transcript.values():
        totals.update(counts)
    metrics = {
        "replacements": int(sum(totals.values())),
        "by_type": dict(sorted(totals.items())),
        "distinct_entities": pseudonymiser.entity_counts(),
        "per_transcript": {t: dict(sorted(c.items())) for t, c in sorted(per_transcript.items())},
    }
    return out, metrics


def run(
    params: Params,
    *,
    turns_path: Path,
    out: Path,
    metrics: Path,
    register: Path | None = None,
    progress: bool = False,
) -> dict:
    turns = read_table(turns_path, TURNS)
    speakers = turns.loc[turns["role"] == "participant", "speaker"].unique().tolist()
    detector = load_detector(
        params.deid.spacy_model,
        entity_labels=params.deid.entity_labels,
        known_names=names_from_speakers(speakers),
        register=read_register(register) if register else (),
    )
    deid, counts = deidentify_turns(turns, detector=detector, progress=progress)
    write_table(out, deid, DEID_TURNS)
    write_json(metrics, counts)
    return counts


def run_jsonl(
    params: Params, *, in_path: Path, out: Path, register: Path | None = None, progress: bool = False
) -> dict:
    """The CLI contract: lines {"id","text"} -> {"id","text","spans"} (original offsets)."""
    if not in_path.exists():
        raise UserError(f"{in_path}: file not found")
    records = []
    with open(in_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{in_path} line {n}: not valid JSON") from e
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or "id" not in rec:
                raise UserError(f'{in_path} line {n}: expected {{"id": ..., "text": "..."}}')
            records.append(rec)
    detector = load_detector(
        params.deid.spacy_model,
        entity_labels=params.deid.entity_labels,
        register=read_register(register) if register else (),
    )
    results = deidentify_texts(
        [r["text"] for r in records],
        detector=detector,
        pseudonymiser=Pseudonymiser(),
        progress=progress,
    )
    lines = [
        json.dumps({"id": r["id"], "text": text, "spans": spans}, ensure_ascii=False) + "\n"
        for r, (text, spans) in zip(records, results, strict=True)
    ]
    write_text(out, "".join(lines))
    return {"records": len(records), "replacements": sum(len(s) for _, s in results)}
