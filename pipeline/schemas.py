"""The tables that pass between stages: columns, dtypes and invariants."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.errors import UserError


@dataclass(frozen=True)
class Schema:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, pandas dtype)
    unique: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def conform(self, df: pd.DataFrame, *, source: str) -> pd.DataFrame:
        """Check columns and invariants; return the columns in order with their dtypes."""
        missing = [c for c in self.names if c not in df.columns]
        if missing:
            raise UserError(f"{source}: {self.name} table lacks column(s) {', '.join(missing)}")
        out = df[self.names].copy()
        for col, dtype in self.columns:
            try:
                out[col] = out[col].astype(dtype)
            except (ValueError, TypeError) as e:
                raise UserError(f"{source}: column '{col}' is not {dtype}") from e
        if self.unique and out.duplicated(list(self.unique)).any():
            raise UserError(f"{source}: duplicate {'/'.join(self.unique)} in {self.name} table")
        return out.reset_index(drop=True)


_TURN_KEYS = (
    ("transcript_id", "str"),
    ("participant_id", "str"),
    ("group", "str"),
    ("turn_id", "int64"),
    ("role", "str"),  # participant | interviewer | note
)

# Raw turns as read from the study folder. Holds raw text: read only by deidentify.
TURNS = Schema(
    "turns",
    (
        *_TURN_KEYS,
        ("speaker", "str"),
        ("start", "int64"),
        ("end", "int64"),
        ("time", "float64"),  # seconds from the start of the recording; NaN when unknown
        ("text", "str"),
    ),
    unique=("transcript_id", "turn_id"),
)

# Pseudonymised turns. `start`/`end` locate the turn in the ingested transcript text;
# `spans` (JSON) lists replacements as offsets into the ORIGINAL turn text.
DEID_TURNS = Schema(
    "deid_turns",
    (
        *_TURN_KEYS,
        ("start", "int64"),
        ("end", "int64"),
        ("time", "float64"),  # as in TURNS, carried through unchanged
        ("text", "str"),
        ("spans", "str"),
    ),
    unique=("transcript_id", "turn_id"),
)

# Human codings, imported by ingest from the study's codings file(s): offsets into the
# ingested transcript text (as `turns.start`/`end` are) and deliberately NO text column, so
# that stages after de-identification can use them without seeing raw text. Spans of one
# transcript, coder and code never overlap (overlapping ones are merged on import).
CODINGS = Schema(
    "codings",
    (("transcript_id", "str"), ("coder", "str"), ("code", "str"), ("start", "int64"), ("end", "int64")),
    unique=("transcript_id", "coder", "code", "start"),
)

# What each human coder reviewed: spans of the ingested transcript text (offsets as in CODINGS),
# from the study's coverage.csv or, without one, the whole of every transcript a coder coded in.
# Inside a coder's coverage a segment they did not code is their "no"; outside it they are
# missing. Spans of one transcript and coder never overlap (merged on import).
COVERAGE = Schema(
    "coverage",
    (("transcript_id", "str"), ("coder", "str"), ("start", "int64"), ("end", "int64")),
    unique=("transcript_id", "coder", "start"),
)

# Units of analysis. `start`/`end`: offsets into the pseudonymised turn text;
# `orig_start`/`orig_end`: offsets into the ingested transcript text (for human codings).
SEGMENTS = Schema(
    "segments",
    (
        ("segment_id", "str"),
        *_TURN_KEYS,
        ("start", "int64"),
        ("end", "int64"),
        ("orig_start", "int64"),
        ("orig_end", "int64"),
        ("text", "str"),
    ),
    unique=("segment_id",),
)

UNASSIGNED = -1  # the theme id of a unit in no theme: its one definition

# One row per segment: its candidate theme (UNASSIGNED = in none).
ASSIGNMENTS = Schema(
    "assignments",
    (("segment_id", "str"), ("theme_id", "int64"), ("theme_label", "str")),
    unique=("segment_id",),
)

# Machine codes in long format; several codes per segment allowed.
CODES = Schema(
    "codes",
    (("segment_id", "str"), ("code", "str"), ("score", "float64"), ("evidence", "str")),
    unique=("segment_id", "code"),
)

# The machine's top code at each level of the codebook (1 = top codes; a flat codebook has
# level 1 only), per coded segment; a parent's score is the best of its descendants'.
CODES_LEVELS = Schema(
    "codes_levels",
    (("segment_id", "str"), ("level", "int64"), ("code", "str"), ("score", "float64")),
    unique=("segment_id", "level"),
)
