"""Human codings after ingest: the offsets-only table (schema `CODINGS`), what each coder
reviewed (schema `COVERAGE`), and how coded and covered spans map onto segments. Shared by the
code, agreement and report stages, which never read the study folder's own codings files
(ingest imports them: `pipeline.ingest.codings_files`, `pipeline.ingest.coverage`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io import read_table
from pipeline.schemas import CODINGS, COVERAGE


def read_codings_table(path: Path) -> pd.DataFrame:
    """The human codings the ingest stage imported (schema CODINGS: offsets, no text)."""
    return read_table(path, CODINGS)


def _rows_by_transcript(transcript_ids: pd.Series) -> dict:
    """Row positions (ascending) per transcript id, in one pass (no table per transcript)."""
    codes, uniques = pd.factorize(transcript_ids)  # a missing id (-1) belongs to no transcript
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {t: order[bounds[g] : bounds[g + 1]] for g, t in enumerate(uniques)}


def _overlaps(segments: pd.DataFrame, codings: pd.DataFrame):
    """Per transcript with both, sorted: (its segment rows, its span rows, the characters each
    span shares with each segment: spans x segments)."""
    seg_rows, span_rows = (
        _rows_by_transcript(segments["transcript_id"]),
        _rows_by_transcript(codings["transcript_id"]),
    )
    s_start, s_end = segments["orig_start"].to_numpy(), segments["orig_end"].to_numpy()
    c_start, c_end = codings["start"].to_numpy(), codings["end"].to_numpy()
    for tid in sorted(seg_rows):
        segs, spans = seg_rows[tid], span_rows.get(tid)
        if spans is not None:
            shared = np.minimum(s_end[segs][None, :], c_end[spans][:, None]) - np.maximum(
                s_start[segs][None, :], c_start[spans][:, None]
            )
            yield segs, spans, shared


def human_segment_codes(segments: pd.DataFrame, codings: pd.DataFrame, *, min_overlap: float) -> pd.DataFrame:
    """Map human-coded spans onto segments: a segment carries a code when the coded span
    covers at least `min_overlap` of the segment's characters (in the original text).

    Returns long table id, coder, code, overlap. Transcript by transcript, each of its spans
    against each of its segments (a survey has a transcript per answer: time grows with the
    transcripts, never with transcripts x spans).
    """
    ids, coder, code = (x.to_numpy() for x in (segments["segment_id"], codings["coder"], codings["code"]))
    length = np.maximum(segments["orig_end"].to_numpy() - segments["orig_start"].to_numpy(), 1)
    rows: list[tuple] = []
    for segs, spans, shared in _overlaps(segments, codings):
        share = np.clip(shared, 0, None) / length[segs][None, :]
        c, i = np.nonzero(share >= min_overlap)  # by span, then segment
        rows += zip(
            ids[segs[i]].tolist(),
            coder[spans[c]].tolist(),
            code[spans[c]].tolist(),
            share[c, i].tolist(),
            strict=True,
        )
    df = pd.DataFrame(rows, columns=["id", "coder", "code", "overlap"])
    return df.sort_values("overlap", ascending=False).drop_duplicates(["id", "coder", "code"])


def whole_transcript_coverage(codings: pd.DataFrame, lengths: Mapping[str, int]) -> pd.DataFrame:
    """The default coverage (schema COVERAGE): each coder reviewed the whole of every transcript
    they coded anything in. `lengths`: characters per transcript."""
    pairs = codings[["transcript_id", "coder"]].drop_duplicates().sort_values(["transcript_id", "coder"])
    table = pairs.assign(start=0, end=[int(lengths[t]) for t in pairs["transcript_id"]])
    return COVERAGE.conform(table, source="coverage")


def segment_coverage(
    segments: pd.DataFrame,
    codings: pd.DataFrame,
    coverage: pd.DataFrame | None,
    *,
    min_overlap: float,
) -> dict[str, set[str]]:
    """coder -> the segment ids inside their coverage: those their covered spans hold at least
    `min_overlap` of (the rule that maps coded spans to segments). Every coder of `codings` has an
    entry. `coverage` None: the default rule (whole transcripts a coder coded in)."""
    if coverage is None:
        ends = segments.groupby("transcript_id")["orig_end"].max()
        coverage = whole_transcript_coverage(codings[codings["transcript_id"].isin(ends.index)], ends)
    ids = segments["segment_id"].to_numpy()
    length = np.maximum(segments["orig_end"].to_numpy() - segments["orig_start"].to_numpy(), 1)
    covered: dict[str, set[str]] = {
        str(c): set() for c in sorted(set(codings["coder"]) | set(coverage["coder"]))
    }
    for coder, spans in coverage.groupby("coder", sort=True):
        for segs, _rows, shared in _overlaps(segments, spans.reset_index(drop=True)):
            held = np.clip(shared, 0, None).sum(axis=0) / length[segs]  # covered spans never overlap
            covered[str(coder)].update(ids[segs[held >= min_overlap]].tolist())
    return covered


def spans_reaching_no_segment(segments: pd.DataFrame, codings: pd.DataFrame) -> int:
    """How many coded spans overlap no segment at all (by even one character)."""
    reaching = sum(int((shared > 0).any(axis=1).sum()) for _, _, shared in _overlaps(segments, codings))
    return len(codings) - reaching


def reference_coder(codings: pd.DataFrame) -> str | None:
    """The reference coder: the first by name among those in the human codings table. Few-shot
    trains on their codes; themes and the report compare with them. None without codings."""
    coders = sorted(codings["coder"].unique()) if codings is not None and not codings.empty else []
    return str(coders[0]) if coders else None


def primary_codes(gold: pd.DataFrame) -> pd.DataFrame:
    """One code per segment (`id`, `code`): the one whose span covers most of it, as the
    agreement stage compares themes with codes."""
    ordered = gold.sort_values("overlap", ascending=False) if "overlap" in gold else gold
    return ordered.drop_duplicates("id")[["id", "code"]]
