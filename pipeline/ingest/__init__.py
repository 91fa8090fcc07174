"""Ingest stage: study folder -> turns table (raw text; read only by de-identification), plus
the study's human codings as an offsets-only table (no text: later stages may read it)."""

from pipeline.ingest.codings_files import CodingsReport, load_codings, read_codings
from pipeline.ingest.stage import import_codings, ingest_study, run, transcript_turns

__all__ = [
    "CodingsReport",
    "import_codings",
    "ingest_study",
    "load_codings",
    "read_codings",
    "run",
    "transcript_turns",
]
