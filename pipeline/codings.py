"""Human codings after ingest: the offsets-only table (schema `CODINGS`), and how coded spans
map onto segments. Shared by the code, agreement and report stages, which never read the
study folder's own codings files (ingest imports them: `pipeline.ingest.codings`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io import read_json, read_table
from pipeline.schemas import CODINGS


def codings_import_report(ingest_metrics: Path) -> dict | None:
    """What the ingest stage did with the study's human codings (used, skipped and why), from
    its metrics file; None when they hold no such report."""
    return read_json(ingest_metrics).get("codings")


def read_codings_table(path: Path) -> pd.DataFrame:
    """The human codings the ingest stage imported (schema CODINGS: offsets, no text)."""
    return read_table(path, CODINGS)


def human_segment_codes(segments: pd.DataFrame, codings: pd.DataFrame, *, min_overlap: float) -> pd.DataFrame:
    """Map human-coded spans onto segments: a segment carries a code when the coded span
    covers at least `min_overlap` of the segment's characters (in the original text).

    Returns long table id, coder, code, overlap.
    """
    rows = []
    for tid, segs in segments.groupby("transcript_id"):
        spans = codings[codings["transcript_id"] == tid]
        if spans.empty:
            continue
        s_start, s_end = segs["orig_start"].to_numpy(), segs["orig_end"].to_numpy()
        length = np.maximum(s_end - s_start, 1)
        for span in spans.itertuples(index=False):
            overlap = np.minimum(s_end, span.end) - np.maximum(s_start, span.start)
            share = np.clip(overlap, 0, None) / length
            for i in np.nonzero(share >= min_overlap)[0]:
                rows.append((segs["segment_id"].iloc[i], span.coder, span.code, float(share[i])))
    df = pd.DataFrame(rows, columns=["id", "coder", "code", "overlap"])
    return df.sort_values("overlap", ascending=False).drop_duplicates(["id", "coder", "code"])


def spans_reaching_no_segment(segments: pd.DataFrame, codings: pd.DataFrame) -> int:
    """How many coded spans overlap no segment at all (by even one character)."""
    n = 0
    bounds = {
        t: (g["orig_start"].to_numpy(), g["orig_end"].to_numpy())
        for t, g in segments.groupby("transcript_id")
    }
    for span in codings.itertuples(index=False):
        starts, ends = bounds.get(span.transcript_id, (np.array([]), np.array([])))
        if not np.any((np.minimum(ends, span.end) - np.maximum(starts, span.start)) > 0):
            n += 1
    return n


def primary_codes(gold: pd.DataFrame) -> pd.DataFrame:
    """One code per segment (`id`, `code`): the one whose span covers most of it, as the
    agreement stage compares themes with codes."""
    ordered = gold.sort_values("overlap", ascending=False) if "overlap" in gold else gold
    return ordered.drop_duplicates("id")[["id", "code"]]
