"""Segment stage: pseudonymised turns -> units of analysis (sentences, windows of sentences
within a turn, or turns), each with its provenance; backchannels and short units dropped and
counted. Method: README, section "Theme discovery" (its first paragraph).
"""

from __future__ import annotations

import json
from functools import lru_cache

import pandas as pd

from pipeline.config import Params, SegmentParams
from pipeline.offsets import PLACEHOLDER, original_offset
from pipeline.schemas import SEGMENTS
from pipeline.spacy_windows import sentence_spans
from pipeline.speech import content_words, is_backchannel


@lru_cache(maxsize=1)
def _sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Character bounds of the sentences in `text`, whitespace trimmed.

    Placeholders are masked (same length) first, so a boundary never falls inside one. Any
    length: a text longer than spaCy's `max_length` is read in windows, same sentences.
    """
    masked = PLACEHOLDER.sub(lambda m: "X" * len(m.group()), text)
    bounds = []
    # in windows past spaCy's max_length (E088), with the sentences of the whole text
    for start, end in sentence_spans(_sentencizer(), masked):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            bounds.append((start, end))
    return bounds


def unit_bounds(text: str, *, unit: str, window: int) -> list[tuple[int, int]]:
    """Character bounds of the units of one turn."""
    if unit == "turn":
        stripped = text.strip()
        if not stripped:
            return []
        start = len(text) - len(text.lstrip())
        return [(start, start + len(stripped))]
    sentences = sentence_bounds(text)
    if unit == "sentence":
        return sentences
    # Windows: drop backchannel sentences first, so "Yeah." never eats a window slot, then
    # group what is left into consecutive runs of `window` sentences; a short remainder joins
    # the previous window rather than standing alone.
    kept = [b for b in sentences if not is_backchannel(text[b[0] : b[1]])]
    groups = [kept[i : i + window] for i in range(0, len(kept), window)]
    if len(groups) > 1 and len(groups[-1]) < (window + 1) // 2:
        last = groups.pop()
        groups[-1] = groups[-1] + last
    return [(g[0][0], g[-1][1]) for g in groups if g]


def segment_turns(turns: pd.DataFrame, *, options: SegmentParams) -> tuple[pd.DataFrame, dict]:
    """Split the selected turns into units; drop backchannels and short units (counted)."""
    roles = {"participant", "interviewer"} if options.include_interviewer else {"participant"}
    rows = []
    dropped_short = dropped_backchannel = 0
    for turn in turns[turns["role"].isin(roles)].itertuples(index=False):
        spans = json.loads(turn.spans)
        bounds = unit_bounds(turn.text, unit=options.unit, window=options.window)
        if options.unit == "window":
            # Count the backchannel sentences the window builder left out: those outside every
            # window (one between two kept sentences stays inside its window's text).
            dropped_backchannel += sum(
                is_backchannel(turn.text[a:b]) and not any(s <= a and b <= e for s, e in bounds)
                for a, b in sentence_bounds(turn.text)
            )
        k = 0
        for start, end in bounds:
            text = turn.text[start:end]
            if is_backchannel(text):
                dropped_backchannel += 1
                continue
            if content_words(text) < options.min_words:
                dropped_short += 1
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
        "dropped_backchannel": int(dropped_backchannel),
        "dropped_short": int(dropped_short),
        "by_group": {str(k): int(v) for k, v in segments["group"].value_counts().sort_index().items()},
    }
    return segments, metrics


def run(params: Params, *, deid_turns: pd.DataFrame) -> dict:
    """The stage's node (see `pipeline.stages`)."""
    segments, counts = segment_turns(deid_turns, options=params.segment)
    return {"segments": segments, "segment_metrics": counts}
