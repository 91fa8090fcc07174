"""What a pseudonymised text looks like and how its offsets map to the original text.

The deid stage writes, per turn, the replacements it made (`spans`: start and end in the
ORIGINAL text, and the `replacement` placeholder). Every later stage that needs an original
offset (segments, codings, exports) maps through these functions.
"""

from __future__ import annotations

import re

# What every placeholder looks like: "[PERSON_3]", "[DATE]", "[AGE: under 6 months]".
PLACEHOLDER = re.compile(r"\[[A-Z_]+(?:_\d+)?(?:: [^\[\]]+)?\]")


def original_offset(position: int, spans: list[dict], *, side: str = "start") -> int:
    """Map an offset in pseudonymised text back to the original text.

    A position inside a replacement maps to the replaced span's start (side="start") or
    end (side="end").
    """
    shift = 0
    for s in spans:
        new_start = s["start"] + shift
        new_end = new_start + len(s["replacement"])
        if position <= new_start:
            break
        if position < new_end:
            return s["start"] if side == "start" else s["end"]
        shift += len(s["replacement"]) - (s["end"] - s["start"])
    return position - shift


def replacement_bounds(spans: list[dict]) -> list[tuple[int, int]]:
    """Where each placeholder sits in the pseudonymised text."""
    bounds, shift = [], 0
    for s in spans:
        start = s["start"] + shift
        bounds.append((start, start + len(s["replacement"])))
        shift += len(s["replacement"]) - (s["end"] - s["start"])
    return bounds


def pseudonymised_offset(position: int, spans: list[dict], *, side: str = "start") -> int:
    """Map an offset in an original turn text to the pseudonymised one (the inverse of
    `original_offset` above). A position inside a replaced span maps to the
    placeholder's start (side="start") or end (side="end")."""
    shift = 0
    for s in sorted(spans, key=lambda s: s["start"]):
        if position <= s["start"]:
            break
        if position < s["end"]:
            base = s["start"] + shift
            return base if side == "start" else base + len(s["replacement"])
        shift += len(s["replacement"]) - (s["end"] - s["start"])
    return position + shift
