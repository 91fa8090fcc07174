"""What each human coder reviewed: the study's coverage.csv (`transcript_id, coder[, start, end]`,
offsets into the ingested transcript text as codings use; no offsets = the whole transcript), or
without one the default rule, the whole of every transcript a coder coded anything in.

Only ingest reads coverage.csv: checking spans needs the transcripts' lengths. Every mistake in
it is one UserError naming the file and line (or the coder), before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.errors import UserError
from pipeline.io import read_csv
from pipeline.schemas import COVERAGE

COVERAGE_FILE = "coverage.csv"

Spans = dict[tuple[str, str], list[tuple[int, int]]]  # (transcript_id, coder) -> merged spans
_WHOLE_NUMBER = re.compile(r"[0-9]+")


def whole_number(text: str) -> bool:
    """Whether `text` is a character offset: ASCII digits only (str.isdigit also accepts "²",
    which int() refuses)."""
    return _WHOLE_NUMBER.fullmatch(text) is not None


@dataclass(frozen=True)
class StatedCoverage:
    """coverage.csv as read: the merged spans and the first line naming each coder."""

    path: Path
    spans: Spans
    first_line: dict[str, int]

    def table(self) -> pd.DataFrame:
        rows = [(t, c, s, e) for (t, c), spans in sorted(self.spans.items()) for s, e in spans]
        return COVERAGE.conform(pd.DataFrame(rows, columns=COVERAGE.names), source=str(self.path))


def read_coverage(study: Path, texts: dict[str, str]) -> StatedCoverage | None:
    """The study's coverage.csv, checked against the ingested `texts`; None when it has none."""
    path = study / COVERAGE_FILE
    if not path.exists():
        return None
    df = read_csv(path, ("transcript_id", "coder"))
    if ("start" in df.columns) != ("end" in df.columns):
        raise UserError(f"{path}: has one of the columns start, end; give both or neither")
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    first_line: dict[str, int] = {}
    for i, row in enumerate(df.to_dict("records")):
        line = i + 2
        tid, coder = row["transcript_id"].strip(), row["coder"].strip()
        if not tid or not coder:
            raise UserError(f"{path} line {line}: empty '{'transcript_id' if not tid else 'coder'}'")
        if tid not in texts:
            raise UserError(f"{path} line {line}: transcript '{tid}' is not in the study")
        span = _span(row, len(texts[tid]), where=f"{path} line {line}", tid=tid)
        spans.setdefault((tid, coder), []).append(span)
        first_line.setdefault(coder, line)
    return StatedCoverage(path, {k: merge_spans(v) for k, v in spans.items()}, first_line)


def _span(row: dict, length: int, *, where: str, tid: str) -> tuple[int, int]:
    start, end = str(row.get("start", "")).strip(), str(row.get("end", "")).strip()
    if not start and not end:
        return 0, length
    if not (whole_number(start) and whole_number(end)):
        raise UserError(
            f"{where}: start and end must both be whole numbers (character offsets), or both empty"
        )
    if int(start) >= int(end):
        raise UserError(f"{where}: empty or reversed span {start}-{end}")
    if int(end) > length:
        raise UserError(
            f"{where}: span ends at {end}, past the end of transcript '{tid}' ({length} characters)"
        )
    return int(start), int(end)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans with the overlapping and touching ones merged."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether the span start-end shares a character with any of `spans`."""
    return any(s < end and start < e for s, e in spans)


def check_coders(stated: StatedCoverage, *, checked: dict[str, int], kept: dict[str, int]) -> None:
    """Every coder coverage.csv names has codings, and every coder with codings has a row in it
    and some codings inside their stated coverage. `checked`: per coder, codings that reached the
    coverage check; `kept`: those inside it."""
    for coder, line in sorted(stated.first_line.items(), key=lambda x: x[1]):
        if coder not in checked:
            known = ", ".join(sorted(checked)) or "none"
            raise UserError(
                f"{stated.path} line {line}: coder '{coder}' has no codings (coders with codings: {known})"
            )
    for coder, n in sorted(checked.items()):
        if coder not in stated.first_line:
            raise UserError(f"{stated.path}: coder '{coder}' has {n} codings but no row in {COVERAGE_FILE}")
        if not kept.get(coder):
            raise UserError(
                f"{stated.path}: all {n} codings by coder '{coder}' fall outside the coverage stated for "
                f"them (add their transcripts or spans to {COVERAGE_FILE})"
            )
