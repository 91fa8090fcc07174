"""The study's human codings, imported from every codings file it holds (codings.csv, REFI
.qdpx, Taguette databases and tag exports), checked against the transcripts as ingested and
cleaned, with a report of every row (rows in = used + skipped, by reason and file line).

Only ingest runs this: it needs the raw transcript text to check spans and to place quotes.
Later stages read the offsets-only table it writes (`pipeline.codings.read_codings_table`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.errors import UserError
from pipeline.formats.anchor import reanchor_spans
from pipeline.formats.readers import read_codings_file
from pipeline.formats.taguette import locate_quotes
from pipeline.ingest.coverage import Spans, inside, whole_number
from pipeline.schemas import CODINGS
from pipeline.study import codings_files


@dataclass
class CodingsReport:
    """What happened to every row of the human codings: rows_in = used + sum(skipped)."""

    sources: list[str] = field(default_factory=list)
    rows_in: int = 0
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)  # where (file line), never text
    warnings: list[str] = field(default_factory=list)
    # per coder: rows that reached the coverage check, and those inside their coverage (not in
    # the metrics: `pipeline.ingest.coverage.check_coders` reads them)
    checked: dict[str, int] = field(default_factory=dict)
    inside: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples.setdefault(reason, [])) < 5:
            self.examples[reason].append(where)

    def as_dict(self) -> dict:
        return {
            "sources": self.sources,
            "rows_in": self.rows_in,
            "used": self.used,
            "skipped_total": sum(self.skipped.values()),
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_examples": self.examples,
            "warnings": self.warnings,
        }


def _empty_codings() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="int64" if c in ("start", "end") else str) for c in CODINGS.names}
    )


def load_codings(study: Path, transcript_ids: set[str], codebook: Codebook | None) -> pd.DataFrame:
    """Human codings (transcript_id, coder, code, start, end) or an empty table; see `read_codings`."""
    return read_codings(study, transcript_ids, codebook)[0]


def read_codings(
    study: Path,
    transcript_ids: set[str],
    codebook: Codebook | None,
    *,
    texts: dict[str, str] | None = None,
    coverage: Spans | None = None,
) -> tuple[pd.DataFrame, CodingsReport]:
    """Human codings from every codings file in the study, cleaned, with a report.

    Unreadable files raise UserError. Bad ROWS are skipped and counted by reason (never
    silently dropped): unknown transcript, code not in the codebook (a parent code is kept:
    `pipeline.hierarchy`), offsets that are not integers, empty or reversed spans, spans past the end of the
    transcript (when `texts` gives the transcript lengths), spans sharing no character with the
    coder's stated `coverage` (coverage.csv, when given), exact duplicates, and spans
    overlapping an earlier span of the same code by the same coder (merged into it).
    Quote-only rows (a Taguette tag export) are placed by finding the quote in `texts`.
    Warnings: codes used once, codebook codes nobody used, coders with no usable codings.
    """
    report = CodingsReport()
    files = codings_files(study)
    if not files:
        return _empty_codings(), report
    known = {c.code_id for c in codebook.codes} if codebook else None
    kept: list[tuple] = []
    coders_seen: set[str] = set()
    for path in files:
        df, where_of = _file_rows(path, report=report, transcript_ids=transcript_ids, texts=texts)
        for i, row in zip(df.index, df.astype(str).itertuples(index=False), strict=True):
            report.rows_in += 1
            where = where_of.format(name=path.name, n1=i + 1, n2=i + 2)
            tid, coder, code = row.transcript_id.strip(), row.coder.strip(), row.code.strip()
            if coder:
                coders_seen.add(coder)
            start, end = str(row.start).strip(), str(row.end).strip()
            if tid not in transcript_ids:
                report.skip("unknown_transcript", where)
            elif not coder:
                report.skip("no_coder", where)
            elif known is not None and code not in known:
                report.skip("code_not_in_codebook", where)
            elif not (whole_number(start) and whole_number(end)):
                report.skip("offsets_not_integers", where)
            elif int(start) >= int(end):
                report.skip("empty_or_reversed_span", where)
            elif texts is not None and tid in texts and int(end) > len(texts[tid]):
                report.skip("span_past_end_of_transcript", where)
            else:
                report.checked[coder] = report.checked.get(coder, 0) + 1
                if coverage is not None and not inside(coverage.get((tid, coder), []), int(start), int(end)):
                    report.skip("outside_coder_coverage", where)
                    continue
                report.inside[coder] = report.inside.get(coder, 0) + 1
                kept.append((tid, coder, code, int(start), int(end), where))
    codings = _merge_overlaps(kept, report)
    report.used = len(codings)
    _add_warnings(report, codings, codebook, coders_seen)
    return codings, report


def _file_rows(
    path: Path, *, report: CodingsReport, transcript_ids: set[str], texts: dict[str, str] | None
) -> tuple[pd.DataFrame, str]:
    """One codings file's rows (quotes placed in `texts`), and how to say where a row is: a file
    line, except in quote exports (a quote may span lines: the data record's number) and
    non-CSV sources (a row number). Rows the reader or the placing could not use are counted."""
    report.sources.append(path.name)
    _book, df, source_texts, counts = read_codings_file(path)
    if counts:  # rows the reader itself could not use (e.g. untagged highlights)
        for reason, n in counts.items():
            if reason.startswith("skipped_") and n:
                report.rows_in += n
                report.skipped[reason.removeprefix("skipped_")] = (
                    report.skipped.get(reason.removeprefix("skipped_"), 0) + n
                )
    quotes = "quote" in df.columns and "start" not in df.columns
    if quotes:
        where_of = "{name} record {n1}"
    else:
        where_of = "{name} line {n2}" if path.suffix == ".csv" else "{name} row {n1}"
    whole = "end" in df.columns and df["end"].eq("").any() and texts is not None
    if whole:  # survey codings of whole answers (no offsets): the answer's length
        lengths = df["transcript_id"].str.strip().map(lambda t: str(len(texts[t])) if t in texts else "")
        df = df.assign(end=df["end"].where(df["end"] != "", lengths))
    if source_texts and texts is not None and not quotes:
        df = _reanchor(path, df, source_texts, texts, report=report, where_of=where_of)
    if quotes:
        if texts is None:
            raise UserError(f"{path}: has quotes but no offsets; transcript texts are needed to place them")
        known_t = df["transcript_id"].isin(transcript_ids)
        located, _counts = locate_quotes(df[known_t], texts)
        for i in df.index.difference(located.index):  # rows in = used + skipped, by line
            report.rows_in += 1
            reason = "unknown_transcript" if not known_t[i] else "quote_not_found"
            report.skip(reason, where_of.format(name=path.name, n1=i + 1, n2=i + 2))
        df = located
    return df, where_of


def _reanchor(
    path: Path,
    df: pd.DataFrame,
    source_texts: dict[str, str],
    texts: dict[str, str],
    *,
    report,
    where_of: str,
) -> pd.DataFrame:
    """Spans counted in the tool's own copy of each transcript, moved onto the ingested text by
    the text they cover (`pipeline.formats.anchor`); spans whose text is not found are skipped."""
    moved, counts = reanchor_spans(df, source_texts, texts)
    for i in df.index.difference(moved.index):
        report.rows_in += 1
        report.skip("coded_text_not_found_in_transcript", where_of.format(name=path.name, n1=i + 1, n2=i + 2))
    if counts["moved"]:
        report.warnings.append(
            f"{path.name}: {counts['moved']} of {len(df)} spans re-anchored by the text they cover "
            "(the tool's copy of the transcripts differs from the files in transcripts/)"
        )
    return moved


def _add_warnings(
    report: CodingsReport, codings: pd.DataFrame, codebook: Codebook | None, coders_seen: set[str]
) -> None:
    """Codes used once, codebook codes nobody used, coders with no usable codings."""
    used_codes = codings["code"].value_counts()
    for code, n in used_codes.items():
        if n == 1:
            report.warnings.append(f"code '{code}' is used once: its agreement figures are unstable")
    if codebook is not None:
        unused = [c.code_id for c in codebook.leaves if c.code_id not in used_codes.index]
        if unused:
            report.warnings.append(f"codebook codes nobody applied: {', '.join(unused)}")
    for coder in sorted(coders_seen - set(codings["coder"])):
        report.warnings.append(f"coder '{coder}' has no usable codings")


def _merge_overlaps(kept: list[tuple], report: CodingsReport) -> pd.DataFrame:
    """Drop exact duplicates and merge spans that overlap a span of the same transcript,
    coder and code (each merged row counts as skipped, so rows in = used + skipped)."""
    rows: list[list] = []
    last: dict[tuple[str, str, str], list] = {}
    for tid, coder, code, start, end, where in sorted(kept, key=lambda r: (r[0], r[1], r[2], r[3], r[4])):
        key = (tid, coder, code)
        prev = last.get(key)
        if prev is not None and prev[3] == start and prev[4] == end:
            report.skip("duplicate_row", where)
        elif prev is not None and start < prev[4]:
            prev[4] = max(prev[4], end)
            report.skip("overlaps_same_code_span_merged", where)
        else:
            last[key] = [tid, coder, code, start, end]
            rows.append(last[key])
    df = pd.DataFrame(rows, columns=CODINGS.names)
    return df.astype({"start": "int64", "end": "int64"}) if len(df) else _empty_codings()
