"""The leak gate: after replacement, every detector runs again over what is left outside the
placeholders; what it finds is replaced too, for up to `deid.gate_rounds` rounds, and whatever
still remains stops the stage with the locations (never the text) to review."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from pipeline.config import DeidParams
from pipeline.deid.detect import Detector
from pipeline.deid.pseudonymise import Pseudonymised, pseudonymise_corpus
from pipeline.deid.register import Register
from pipeline.deid.spans import Span, merge_overlaps, subtract
from pipeline.errors import UserError
from pipeline.offsets import original_offset, replacement_bounds

_ALNUM = re.compile(r"\w{2,}")
_SENTENCE_END = re.compile(r"[.!?][\"')\]\u2019\u201d]*\s+|\n\s*")


@dataclass(frozen=True)
class Leak:
    index: int  # which text
    offset: int  # in the pseudonymised text
    label: str


def find_leaks(
    result: Pseudonymised,
    detector: Detector,
    *,
    only: list[int] | None = None,
    known: dict[str, list[Span]] | None = None,
    added: dict[int, list[Span]] | None = None,
) -> list[tuple[Leak, Span]]:
    """Re-run every detector over the output (or the texts `only` lists); report what lies
    outside the placeholders: the leak (output location) and the span to add, in ORIGINAL
    offsets. Only what changed is read again: a text without replacements keeps its first
    pass from `known`, and in a changed text spaCy re-reads the sentences around each
    placeholder, or, given `added` (the spans a gate round added to text i, original
    offsets), around the placeholders of those spans only (the other sentences are as the
    last check read them); the rules and the study-wide propagation cover every text."""
    indices = list(range(len(result.texts))) if only is None else only
    masked = [_mask(result.texts[i], replacement_bounds(result.spans[i])) for i in indices]
    regions = {
        text: changed_sentences(text, _changed_bounds(result.spans[i], None if added is None else added[i]))
        for i, text in zip(indices, masked, strict=True)
        if result.spans[i]
    }
    found = detector.detect_many(
        masked, known={t: v for t, v in (known or {}).items() if t not in regions}, regions=regions
    )
    leaks = []
    for i, text, spans in zip(indices, masked, found, strict=True):
        records = result.spans[i]
        placeholders = replacement_bounds(records)
        for span in spans:
            for start, end in subtract(span.start, span.end, placeholders):
                if _ALNUM.search(text[start:end]):
                    orig = Span(
                        original_offset(start, records),
                        original_offset(end, records, side="end"),
                        span.label,
                        "leak_gate",
                        span.score,
                    )
                    leaks.append((Leak(i, start, span.label), orig))
    return leaks


def _changed_bounds(records: list[dict], added: list[Span] | None) -> list[tuple[int, int]]:
    """Where the placeholders sit that replaced spans overlapping `added` (None: all of them)."""
    bounds = replacement_bounds(records)
    if added is None:
        return bounds
    return [
        b
        for b, r in zip(bounds, records, strict=True)
        if any(r["start"] < s.end and s.start < r["end"] for s in added)
    ]


def changed_sentences(text: str, bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sentences (merged where they touch) that hold the placeholders at `bounds`."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    regions: list[tuple[int, int]] = []
    for start, end in bounds:
        k = bisect_right(ends, start)
        lo = ends[k - 1] if k else 0
        k = bisect_left(ends, end)
        hi = ends[k] if k < len(ends) else len(text)
        if regions and lo <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(hi, regions[-1][1]))
        else:
            regions.append((lo, hi))
    return regions


def _mask(text: str, bounds: list[tuple[int, int]]) -> str:
    """Blank out placeholders (same length), so detectors see only what was left."""
    chars = list(text)
    for start, end in bounds:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def deidentify_corpus(
    texts: list[str], *, detector: Detector, register: Register, options: DeidParams, progress: bool = False
) -> tuple[Pseudonymised, list[Leak], int]:
    """Detect, pseudonymise, and gate: what the gate finds is replaced too, for up to
    `options.gate_rounds` rounds. Returns the result, leaks still present, rounds used."""
    distinct = list(dict.fromkeys(texts))
    known = dict(zip(distinct, detector.map_first_passes(distinct, progress=progress), strict=True))
    spans = detector.detect_many(texts, known=known)
    rounds, added = 0, None  # the first check covers every text, later ones what the last added
    while True:
        result = pseudonymise_corpus(texts, spans, register=register, age_policy=options.age_policy)
        if added is None:
            leaks = find_leaks(result, detector, known=known)
        else:
            leaks = find_leaks(result, detector, only=sorted(added), added=added)
        if not leaks or rounds >= options.gate_rounds:
            return result, [leak for leak, _ in leaks], rounds
        rounds, added = rounds + 1, {}
        for leak, orig in leaks:
            added.setdefault(leak.index, []).append(orig)
        for i, new in added.items():
            spans[i] = merge_overlaps([*spans[i], *new], texts[i])


def gate_error(leaks: list[Leak], where: list[str]) -> UserError:
    shown = "; ".join(f"{where[leak.index]} offset {leak.offset} ({leak.label})" for leak in leaks[:5])
    more = f" and {len(leaks) - 5} more" if len(leaks) > 5 else ""
    return UserError(
        f"leak gate: {len(leaks)} possible identifier(s) remain after replacement: {shown}{more}; "
        "review them and add public, non-identifying terms to allow.yaml"
    )
