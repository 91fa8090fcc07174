"""Segment stage: pseudonymised turns -> units of analysis (sentences or turns) with provenance."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from pipeline.config import Params, SegmentParams
from pipeline.deid.pseudonymise import original_offset
from pipeline.io import read_table, write_json, write_table
from pipeline.schemas import DEID_TURNS, SEGMENTS

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


_PLACEHOLDER = re.compile(r"\[[A-Z_]+(?:_\d+)?\]")


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Character bounds of the sentences in `text`, whitespace trimmed.

    Placeholders are masked (same length) first, so a boundary never falls inside one.
    """
    masked = _PLACEHOLDER.sub(lambda m: "X" * len(m.group()), text)
    bounds = []
    for sent in _sentencizer()(masked).sents:
        start, end = sent.start_char, sent.end_char
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            bounds.append((start, end))
    return bounds


def segment_turns(turns: pd.DataFrame, *, options: SegmentParams) -> tuple[pd.DataFrame, dict]:
    """Split the selected turns into units; drop units under `min_words` (counted)."""
    roles = {"participant", "interviewer"} if options.include_interviewer else {"participant"}
    rows = []
    dropped = 0
    for turn in turns[turns["role"].isin(roles)].itertuples(index=False):
        spans = json.loads(turn.spans)
        bounds = sentence_bounds(turn.text) if options.unit == "sentence" else [(0, len(turn.text))]
        k = 0
        for start, end in bounds:
            text = turn.text[start:end].strip()
            if len(_WORD.findall(_PLACEHOLDER.sub("x", text))) < options.min_words:
                dropped += 1
                continue
            rows.append(
                {
                    "segment_id": f"{turn.transcript_id}:{turn.turn_id}:{k}",
                    "transcript_id": turn.transcript_id,
                    "participant_id": turn.participant_id,
                    "group": turn.group,
                    "turn_id": turn.turn_id,
                    "role": turn.role,
                    "start": start,
                    "end": end,
                    "orig_start": turn.start + original_offset(start, spans),
                    "orig_end": turn.start + original_offset(end, spans, side="end"),
                    "text": text,
                }
            )
            k += 1
    segments = pd.DataFrame(rows, columns=SEGMENTS.names)
    metrics = {
        "unit": options.unit,
        "segments": int(len(segments)),
        "dropped_short": dropped,
        "by_group": {str(k): int(v) for k, v in segments["group"].value_counts().sort_index().items()},
    }
    return segments, metrics


def run(params: Params, *, turns_path: Path, out: Path, metrics: Path) -> dict:
    turns = read_table(turns_path, DEID_TURNS)
    segments, counts = segment_turns(turns, options=params.segment)
    write_table(out, segments, SEGMENTS)
    write_json(metrics, counts)
    return counts
