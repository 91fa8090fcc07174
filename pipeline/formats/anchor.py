"""Spans coded in another tool's copy of a transcript, moved onto the transcript as ingested.

A QDA tool (Taguette, a REFI-QDA project) keeps its own text of each document: Taguette's is
the text of the HTML it converted the upload to (tabs become spaces, runs of spaces collapse,
paragraph breaks shift), so its offsets do not count characters in our canonical text. Each
span is re-anchored by the text it covers in the tool's copy: kept where our text has the
same characters at the same offsets; else the occurrence of that snippet in our text (exact,
or differing only in whitespace) nearest the position expected from the offsets (scaled by
the two texts' lengths). A snippet found nowhere is left out and counted.
"""

from __future__ import annotations

import re

import pandas as pd

WINDOW = 5000  # characters either side of the expected position searched first


def reanchor_spans(
    codings: pd.DataFrame, source_texts: dict[str, str], texts: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """`codings` (transcript_id, start, end, ...) with offsets into `source_texts` moved into
    `texts`. Rows of transcripts missing from either side are returned unchanged (the caller
    judges them); rows whose snippet is not found are dropped (the index is kept, so the caller
    can say which). Counts: kept (same offsets), moved, not_found."""
    starts, ends, keep = [], [], []
    counts = {"kept": 0, "moved": 0, "not_found": 0}
    for idx, tid, start, end in zip(
        codings.index, codings["transcript_id"], codings["start"], codings["end"], strict=True
    ):
        span = _anchor(source_texts.get(tid), texts.get(tid), int(start), int(end))
        if span is None:
            counts["not_found"] += 1
            continue
        counts["kept" if span == (int(start), int(end)) else "moved"] += 1
        starts.append(span[0])
        ends.append(span[1])
        keep.append(idx)
    out = codings.loc[keep].copy()
    out["start"] = pd.Series(starts, index=out.index, dtype="int64")
    out["end"] = pd.Series(ends, index=out.index, dtype="int64")
    return out, counts


def _anchor(source: str | None, text: str | None, start: int, end: int) -> tuple[int, int] | None:
    if source is None or text is None or source == text or not (0 <= start < end <= len(source)):
        return start, end
    snippet = source[start:end]
    if text[start:end] == snippet:
        return start, end
    words = snippet.split()
    if not words:
        return None
    expected = round(start * len(text) / max(len(source), 1))
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    lo, hi = max(0, expected - WINDOW), min(len(text), expected + len(snippet) + WINDOW)
    for window in ((lo, hi), (0, len(text))):
        best = None
        for m in pattern.finditer(text, *window):
            if best is None or abs(m.start() - expected) < abs(best[0] - expected):
                best = (m.start(), m.end())
        if best is not None:
            return best
    return None
