"""Consistent placeholders: the same identifier gets the same placeholder study-wide."""

from __future__ import annotations

import re

from pipeline.deid.detect import Span

# Types whose values are numbered per entity; the rest become one generic placeholder.
_NUMBERED = ("PERSON", "ORG", "PLACE")


def _normalise(surface: str) -> str:
    surface = re.sub(r"['\u2019]s$", "", surface.strip())
    return re.sub(r"\s+", " ", surface).casefold()


class Pseudonymiser:
    """Maps (type, normalised surface) to `[TYPE_n]`; holds the mapping for one study run."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}

    def placeholder(self, label: str, surface: str) -> str:
        if label not in _NUMBERED:
            return f"[{label}]"
        key = (label, _normalise(surface))
        if key not in self._ids:
            n = sum(1 for t, _ in self._ids if t == label) + 1
            self._ids[key] = f"[{label}_{n}]"
        return self._ids[key]

    def entity_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label, _ in self._ids:
            counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))

    def apply(self, text: str, spans: list[Span]) -> tuple[str, list[dict]]:
        """Replace spans (non-overlapping, sorted); offsets in the result refer to `text`."""
        pieces, records, pos = [], [], 0
        for span in spans:
            replacement = self.placeholder(span.label, text[span.start : span.end])
            pieces += [text[pos : span.start], replacement]
            records.append(
                {
                    "start": span.start,
                    "end": span.end,
                    "label": span.label,
                    "replacement": replacement,
                    "detector": span.detector,
                }
            )
            pos = span.end
        pieces.append(text[pos:])
        return "".join(pieces), records


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
