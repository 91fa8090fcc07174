"""The study folder: find its files, validate them, load participants, codebook and codings.

Only the stages that may see raw text (ingest, deidentify) load codebooks and codings from
the study folder. They hand later stages two typed outputs instead:
- `outputs/codings.parquet` (schema `CODINGS`): the human codings as offsets only, written
  by ingest (`read_codings_table` reads it);
- `outputs/codebook.json`: the codebook with identifiers scrubbed, written by deidentify
  (`pipeline.deid.write_scrubbed_codebook`; `read_codebook_json` reads it). Its shape is that of
  `codebook.yaml`, `{"codes": [{"id", "name", "definition", "include", "exclude",
  "examples", "parent"}, ...]}`, or `{"codes": null}` when the study has no codebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.errors import UserError
from pipeline.io import read_csv, read_json, read_table, read_yaml, write_json
from pipeline.schemas import CODINGS

TRANSCRIPT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class StudyInfo:
    name: str
    description: str = ""
    interviewer_labels: tuple[str, ...] = ("Interviewer",)


@dataclass(frozen=True)
class Code:
    code_id: str
    name: str
    definition: str = ""
    include: str = ""
    exclude: str = ""
    examples: tuple[str, ...] = ()
    parent: str | None = None

    def description(self) -> str:
        """The text a zero-shot coder compares segments with."""
        parts = [self.name, self.definition, self.include, *self.examples]
        return ". ".join(p.strip() for p in parts if p and p.strip())


@dataclass(frozen=True)
class Codebook:
    codes: tuple[Code, ...] = field(default_factory=tuple)

    @property
    def leaves(self) -> tuple[Code, ...]:
        """Codes that coders apply: those that are nobody's parent."""
        parents = {c.parent for c in self.codes if c.parent}
        return tuple(c for c in self.codes if c.code_id not in parents)


def require_study(study: Path) -> None:
    if not study.is_dir():
        raise UserError(f"{study}: study folder not found")


def load_study_info(study: Path) -> StudyInfo:
    require_study(study)
    path = study / "study.yaml"
    if not path.exists():
        raise UserError(f"{path}: missing; expected keys name, description, interviewer_labels")
    data = read_yaml(path, what="study")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise UserError(f"{path}: expected a mapping with a 'name' string")
    unknown = set(data) - {"name", "description", "interviewer_labels"}
    if unknown:
        raise UserError(
            f"{path}: unknown key '{sorted(unknown)[0]}' (allowed: name, description, interviewer_labels)"
        )
    labels = data.get("interviewer_labels", ["Interviewer"])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise UserError(f"{path}: 'interviewer_labels' must be a non-empty list of strings")
    return StudyInfo(
        name=data["name"],
        description=str(data.get("description", "")),
        interviewer_labels=tuple(labels),
    )


def transcript_files(study: Path) -> list[Path]:
    require_study(study)
    folder = study / "transcripts"
    if not folder.is_dir():
        raise UserError(f"{folder}: missing; put one transcript file per interview there")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: no transcripts found (expected .txt or .md files)")
    unsupported = [p.name for p in files if p.suffix.lower() not in TRANSCRIPT_SUFFIXES]
    if unsupported:
        raise UserError(
            f"{folder / unsupported[0]}: unsupported transcript format "
            f"(supported: {', '.join(TRANSCRIPT_SUFFIXES)})"
        )
    return files


def load_participants(study: Path) -> pd.DataFrame:
    path = study / "participants.csv"
    df = read_csv(path, ("transcript_id", "participant_id", "group"))
    for col in ("transcript_id", "participant_id", "group"):
        blank = df.index[df[col].str.strip() == ""]
        if len(blank):
            raise UserError(f"{path} line {blank[0] + 2}: empty '{col}'")
        df[col] = df[col].str.strip()
    dup = df.index[df["transcript_id"].duplicated()]
    if len(dup):
        raise UserError(f"{path} line {dup[0] + 2}: transcript_id listed twice")
    return df[["transcript_id", "participant_id", "group"]]


CODEBOOK_NAMES = ("codebook.yaml", "codebook.yml", "codebook.csv", "codebook.qdc")


def load_codebook(study: Path) -> Codebook | None:
    """The study's codebook (.yaml, .csv or REFI .qdc); else the codebook inside its REFI
    project (.qdpx) or Taguette database, if it has one; else None."""
    for name in CODEBOOK_NAMES:
        if (study / name).exists():
            return read_codebook(study / name)
    for path in _codings_files(study):
        if path.suffix.lower() not in (".qdpx", ".sqlite3"):
            continue
        book = _read_codings_source(path)[0]
        if book is not None and book.codes:
            return _check_codebook(book, path)
    return None


def read_codebook(path: Path) -> Codebook:
    """A codebook file: YAML (see README), CSV with columns name, description, REFI .qdc,
    or the pipeline's own `codebook.json` (see the module docstring)."""
    if not path.exists():
        raise UserError(f"{path}: codebook file not found")
    suffix = path.suffix.lower()
    if suffix == ".json":
        book = read_codebook_json(path)
        if book is None:
            raise UserError(f"{path}: holds no codebook (the study has none)")
        return book
    if suffix in (".yaml", ".yml"):
        return _codebook_from_yaml(path)
    if suffix == ".csv":
        df = read_csv(path, ())
        if "name" not in df.columns and "tag" in df.columns:  # Taguette's codebook export
            df = df.rename(columns={"tag": "name"})
        missing = [c for c in ("name", "description") if c not in df.columns]
        if missing:
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)}; expected name (or tag), description"
            )
        blank = df.index[df["name"].str.strip() == ""]
        if len(blank):
            raise UserError(f"{path} line {blank[0] + 2}: empty 'name'")
        codes = tuple(
            Code(code_id=r["name"].strip(), name=r["name"].strip(), definition=r["description"].strip())
            for _, r in df.iterrows()
        )
        return _check_codebook(Codebook(codes), path)
    if suffix == ".qdc":
        from pipeline.refi import read_codebook_qdc  # REFI-QDA support lives with the exports

        return _check_codebook(read_codebook_qdc(path), path)
    raise UserError(f"{path}: unsupported codebook format (expected .yaml, .csv, .qdc or .json)")


def _codebook_from_yaml(path: Path) -> Codebook:
    return _codebook_from_mapping(read_yaml(path, what="study"), path)


def _codebook_from_mapping(data: object, path: Path) -> Codebook:
    if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
        raise UserError(f"{path}: expected a mapping with a 'codes' list")
    allowed = {"id", "name", "definition", "include", "exclude", "examples", "parent"}
    codes = []
    for i, item in enumerate(data["codes"]):
        where = f"{path}: codes[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise UserError(f"{where}: expected a mapping with an 'id' string")
        unknown = set(item) - allowed
        if unknown:
            raise UserError(f"{where}: unknown key '{sorted(unknown)[0]}'")
        examples = item.get("examples") or []
        if not isinstance(examples, list):
            raise UserError(f"{where}: 'examples' must be a list of quotes")
        for key in ("name", "definition", "include", "exclude", "parent"):
            if item.get(key) is not None and not isinstance(item[key], (str, int, float)):
                raise UserError(f"{where}: '{key}' must be text")
        if any(isinstance(x, (list, dict)) for x in examples):
            raise UserError(f"{where}: 'examples' must be a list of quotes")
        codes.append(
            Code(
                code_id=item["id"],
                name=str(item.get("name") or item["id"]),
                definition=str(item.get("definition") or ""),
                include=str(item.get("include") or ""),
                exclude=str(item.get("exclude") or ""),
                examples=tuple(str(x) for x in examples),
                parent=None if item.get("parent") is None else str(item["parent"]),
            )
        )
    return _check_codebook(Codebook(tuple(codes)), path)


def _check_codebook(codebook: Codebook, path: Path) -> Codebook:
    ids = [c.code_id for c in codebook.codes]
    if not ids:
        raise UserError(f"{path}: the codebook has no codes")
    seen: set[str] = set()
    for code_id in ids:
        if code_id in seen:
            raise UserError(f"{path}: code id '{code_id}' appears twice")
        seen.add(code_id)
    for c in codebook.codes:
        if c.parent and c.parent not in seen:
            raise UserError(f"{path}: code '{c.code_id}' has unknown parent '{c.parent}'")
    if not codebook.leaves:
        raise UserError(f"{path}: every code is some code's parent (a cycle?); coders need leaf codes")
    return codebook


def codebook_as_dict(codebook: Codebook | None) -> dict:
    """The `codebook.json` form of a codebook (`{"codes": null}`: no codebook)."""
    if codebook is None:
        return {"codes": None}
    return {
        "codes": [
            {
                "id": c.code_id,
                "name": c.name,
                "definition": c.definition,
                "include": c.include,
                "exclude": c.exclude,
                "examples": list(c.examples),
                "parent": c.parent,
            }
            for c in codebook.codes
        ]
    }


def write_codebook_json(path: Path, codebook: Codebook | None) -> None:
    write_json(path, codebook_as_dict(codebook))


def read_codebook_json(path: Path) -> Codebook | None:
    """The codebook a deidentify stage wrote (None: the study has no codebook)."""
    data = read_json(path)
    if isinstance(data, dict) and set(data) == {"codes"} and data["codes"] is None:
        return None
    return _codebook_from_mapping(data, path)


def codings_import_report(ingest_metrics: Path) -> dict | None:
    """What the ingest stage did with the study's human codings (used, skipped and why), from
    its metrics file; None when they hold no such report."""
    return read_json(ingest_metrics).get("codings")


def read_codings_table(path: Path) -> pd.DataFrame:
    """The human codings the ingest stage imported (schema CODINGS: offsets, no text)."""
    return read_table(path, CODINGS)


CODING_COLUMNS = CODINGS.names


@dataclass
class CodingsReport:
    """What happened to every row of the human codings: rows_in = used + sum(skipped)."""

    sources: list[str] = field(default_factory=list)
    rows_in: int = 0
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)  # where (file line), never text
    warnings: list[str] = field(default_factory=list)

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
        {c: pd.Series(dtype="int64" if c in ("start", "end") else str) for c in CODING_COLUMNS}
    )


def _codings_files(study: Path) -> list[Path]:
    """codings.csv first, then REFI projects (.qdpx), Taguette databases and Taguette tag exports."""
    found = [study / "codings.csv"] if (study / "codings.csv").exists() else []
    found += sorted(study.glob("*.qdpx"))
    found += sorted(study.glob("*.sqlite3"))
    if not any(p.suffix == ".sqlite3" for p in found):  # an export of the same database: not twice
        found += sorted(p for p in study.glob("*.csv") if p.name in ("tags.csv", "taguette_tags.csv"))
    return found


def _read_codings_source(path: Path):
    """(codebook or None, codings table, source texts or None, counts or None) from one file."""
    suffix = path.suffix.lower()
    if suffix == ".qdpx":
        from pipeline.refi import read_project_qdpx

        book, codings, texts = read_project_qdpx(path)
        return book, codings, texts, None
    if suffix == ".sqlite3":
        from pipeline.taguette import read_taguette_db

        book, codings, texts, counts = read_taguette_db(path)
        return book, codings, texts, counts
    if path.name in ("tags.csv", "taguette_tags.csv"):
        from pipeline.taguette import read_taguette_csv

        return None, read_taguette_csv(path), None, None
    return None, read_csv(path, tuple(CODING_COLUMNS)), None, None


def load_codings(study: Path, transcript_ids: set[str], codebook: Codebook | None) -> pd.DataFrame:
    """Human codings (transcript_id, coder, code, start, end) or an empty table; see `read_codings`."""
    return read_codings(study, transcript_ids, codebook)[0]


def read_codings(
    study: Path,
    transcript_ids: set[str],
    codebook: Codebook | None,
    *,
    texts: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, CodingsReport]:
    """Human codings from every codings file in the study, cleaned, with a report.

    Unreadable files raise UserError. Bad ROWS are skipped and counted by reason (never
    silently dropped): unknown transcript, code not in the codebook (or a grouping code),
    offsets that are not integers, empty or reversed spans, spans past the end of the
    transcript (when `texts` gives the transcript lengths), exact duplicates, and spans
    overlapping an earlier span of the same code by the same coder (merged into it).
    Quote-only rows (a Taguette tag export) are placed by finding the quote in `texts`.
    Warnings: codes used once, codebook codes nobody used, coders with no usable codings.
    """
    report = CodingsReport()
    files = _codings_files(study)
    if not files:
        return _empty_codings(), report
    known = {c.code_id for c in codebook.codes} if codebook else None
    leaves = {c.code_id for c in codebook.leaves} if codebook else None
    kept: list[tuple] = []
    coders_seen: set[str] = set()
    for path in files:
        report.sources.append(path.name)
        _book, df, _source_texts, counts = _read_codings_source(path)
        if counts:  # rows the reader itself could not use (e.g. untagged highlights)
            for reason, n in counts.items():
                if reason.startswith("skipped_") and n:
                    report.rows_in += n
                    report.skipped[reason.removeprefix("skipped_")] = (
                        report.skipped.get(reason.removeprefix("skipped_"), 0) + n
                    )
        # where a row is: a file line, except in quote exports (a quote may span lines: the
        # data record's number) and non-CSV sources (a row number)
        quotes = "quote" in df.columns and "start" not in df.columns

        if quotes:
            where_of = "{name} record {n1}"
        else:
            where_of = "{name} line {n2}" if path.suffix == ".csv" else "{name} row {n1}"

        if quotes:
            if texts is None:
                raise UserError(
                    f"{path}: has quotes but no offsets; transcript texts are needed to place them"
                )
            from pipeline.taguette import locate_quotes

            known_t = df["transcript_id"].isin(transcript_ids)
            located, _counts = locate_quotes(df[known_t], texts)
            for i in df.index.difference(located.index):  # rows in = used + skipped, by line
                report.rows_in += 1
                reason = "unknown_transcript" if not known_t[i] else "quote_not_found"
                report.skip(reason, where_of.format(name=path.name, n1=i + 1, n2=i + 2))
            df = located
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
            elif leaves is not None and code not in leaves:
                report.skip("grouping_code_not_applied_directly", where)
            elif not (start.isdigit() and end.isdigit()):
                report.skip("offsets_not_integers", where)
            elif int(start) >= int(end):
                report.skip("empty_or_reversed_span", where)
            elif texts is not None and tid in texts and int(end) > len(texts[tid]):
                report.skip("span_past_end_of_transcript", where)
            else:
                kept.append((tid, coder, code, int(start), int(end), where))
    codings = _merge_overlaps(kept, report)
    report.used = len(codings)
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
    return codings, report


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
    df = pd.DataFrame(rows, columns=CODING_COLUMNS)
    return df.astype({"start": "int64", "end": "int64"}) if len(df) else _empty_codings()
