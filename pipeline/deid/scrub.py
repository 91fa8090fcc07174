"""The codebook with identifiers scrubbed, for every stage after de-identification: the
deid stage writes it as `outputs/codebook.json`, so later stages never read the study
folder's own codebook."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pipeline.codebook import Codebook
from pipeline.config import DeidParams
from pipeline.deid.detect import study_detector
from pipeline.deid.spans import Span
from pipeline.study import load_codebook


def scrub_codebook(codebook: Codebook, *, params: DeidParams, study: Path) -> Codebook:
    """The codebook with identifiers in its free text (definitions, criteria, example quotes)
    replaced by generic placeholders, for anything that leaves the study folder.

    Code names are kept as written: they are the research team's short titles, and a
    detector run on a title without context tags its capitalised words as names
    ("Interprofessional working" came out as "[PERSON] working").
    """
    detector, _ = study_detector(params, study=study, register=None, allow=None, speakers=[])
    fields = ("definition", "include", "exclude")
    texts = [getattr(c, f) for c in codebook.codes for f in fields] + [
        e for c in codebook.codes for e in c.examples
    ]
    scrubbed = iter(
        _generic_replacements(t, spans) for t, spans in zip(texts, detector.detect_many(texts), strict=True)
    )
    codes = [replace(c, **{f: next(scrubbed) for f in fields}) for c in codebook.codes]
    codes = [replace(c, examples=tuple(next(scrubbed) for _ in c.examples)) for c in codes]
    return Codebook(tuple(codes))


def scrubbed_codebook(study: Path, *, deid_params: DeidParams) -> Codebook | None:
    """The deid stage's codebook output: the study's codebook (if any) with identifiers in its
    definitions, criteria and example quotes replaced (see `scrub_codebook`), so that later
    stages never read the study folder's own codebook."""
    codebook = load_codebook(study)
    return scrub_codebook(codebook, params=deid_params, study=study) if codebook else None


def _generic_replacements(text: str, spans: list[Span]) -> str:
    pieces, pos = [], 0
    for s in spans:
        pieces += [text[pos : s.start], f"[{s.label}]"]
        pos = s.end
    return "".join(pieces) + text[pos:]
