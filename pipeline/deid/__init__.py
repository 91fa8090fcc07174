"""Deidentify stage: identifiers detected, replaced by consistent role-typed pseudonyms, checked
by the leak gate; the key kept apart. Nothing downstream of this stage reads raw text."""

from pipeline.deid.evaluate import score
from pipeline.deid.gate import Leak, deidentify_corpus, find_leaks
from pipeline.deid.scrub import scrub_codebook, scrubbed_codebook
from pipeline.deid.stage import reidentify, restore, run, run_jsonl

__all__ = [
    "Leak",
    "deidentify_corpus",
    "find_leaks",
    "reidentify",
    "restore",
    "run",
    "run_jsonl",
    "score",
    "scrub_codebook",
    "scrubbed_codebook",
]
