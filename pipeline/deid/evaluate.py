"""Scoring de-identification against gold identifier spans.

A gold span counts as caught only when every one of its characters is covered by some
detected span (of any type: a name replaced as a place is still not disclosed). Span
precision is the share of detected spans that overlap at least one gold span.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np


def coverage_mask(length: int, spans: Iterable[tuple[int, int]]) -> np.ndarray:
    mask = np.zeros(length, dtype=bool)
    for start, end in spans:
        mask[max(start, 0) : min(end, length)] = True
    return mask


def score(
    gold: Iterable[tuple[str, int, int, str]],
    detected: Iterable[tuple[str, int, int]],
    lengths: dict[str, int],
) -> dict:
    """gold: (doc, start, end, label); detected: (doc, start, end); lengths: chars per doc."""
    by_doc: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for doc, start, end in detected:
        by_doc[doc].append((start, end))
    masks = {doc: coverage_mask(lengths[doc], spans) for doc, spans in by_doc.items()}
    caught: dict[str, list[bool]] = defaultdict(list)
    gold_by_doc: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for doc, start, end, label in gold:
        mask = masks.get(doc)
        caught[label].append(bool(mask is not None and end > start and mask[start:end].all()))
        gold_by_doc[doc].append((start, end))
    hits = total = 0
    for doc, spans in by_doc.items():
        gold_mask = coverage_mask(lengths[doc], gold_by_doc.get(doc, []))
        for start, end in spans:
            total += 1
            hits += bool(gold_mask[start:end].any())
    per_type = {
        label: {"recall": float(np.mean(v)), "support": len(v)} for label, v in sorted(caught.items())
    }
    everything = [c for v in caught.values() for c in v]
    return {
        "recall": float(np.mean(everything)) if everything else None,
        "support": len(everything),
        "span_precision": hits / total if total else None,
        "detected_spans": total,
        "per_type": per_type,
    }
