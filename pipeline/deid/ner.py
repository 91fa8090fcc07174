"""spaCy NER over texts of any length, in bounded windows.

spaCy refuses a text longer than `nlp.max_length` (error E088, 1,000,000 characters by
default) and needs about 1 GB of memory per 100,000 characters for the parser and NER. A long
turn (a transcript without speaker labels is one turn) is therefore read in windows of at most
`MAX_WINDOW` characters, cut at a sentence end or else at whitespace, that overlap by
`OVERLAP` characters. Each window owns the entities that start in its share of the text: from
the middle of the overlap with the window before to the middle of the overlap with the window
after, so an entity cut by one window's edge is taken whole from its neighbour, and none is
counted twice. Offsets are mapped back to the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from pipeline.deid.spans import Span
from pipeline.engine import fork_processes

MAX_WINDOW = 100_000
OVERLAP = 2_000
# Several processes pay once the text outweighs forking them (`pipeline.engine.forked_map`:
# tens of milliseconds, no model loaded again): on 2 cores, Presidio's 1,500 synthetic
# sentences (127,000 characters) went from 17,200 to 29,800 characters/s, with the same spans
PARALLEL_FROM = 20_000
_SENTENCE_END = re.compile(r"[.!?][\"')\]\u2019\u201d]*\s+|\n\s*")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Window:
    start: int  # where the window's text starts in the whole text
    end: int
    own_from: int  # entities starting in [own_from, own_to) are this window's
    own_to: int


def _cut(text: str, lo: int, hi: int) -> int:
    """A cut point in (lo, hi]: after the last sentence end, else at the last whitespace in the
    second half of the range, else `hi` itself (a text with no spaces)."""
    mid = (lo + hi) // 2
    last = None
    for m in _SENTENCE_END.finditer(text, mid, hi):
        last = m.end()
    if last is not None and last > lo:
        return last
    space = max(text.rfind(" ", mid, hi), text.rfind("\n", mid, hi), text.rfind("\t", mid, hi))
    return space + 1 if space > lo else hi


def text_windows(text: str, *, max_window: int = MAX_WINDOW, overlap: int = OVERLAP) -> list[Window]:
    """Overlapping windows covering `text`; one window when it is short enough."""
    if overlap * 4 > max_window:
        raise ValueError("overlap must be at most a quarter of the window")
    n = len(text)
    if n <= max_window:
        return [Window(0, n, 0, n)]
    bounds: list[tuple[int, int]] = []
    start = 0
    while True:
        if n - start <= max_window:
            bounds.append((start, n))
            break
        end = _cut(text, start + max_window // 2, start + max_window)
        bounds.append((start, end))
        nxt = end - overlap
        space = _SPACE.search(text, nxt, end)  # start the next window on a word boundary
        start = space.end() if space is not None else nxt
    windows = []
    for i, (s, e) in enumerate(bounds):
        own_from = 0 if i == 0 else (s + bounds[i - 1][1]) // 2
        own_to = n if i == len(bounds) - 1 else (bounds[i + 1][0] + e) // 2
        windows.append(Window(s, e, own_from, own_to))
    return windows


def ner_processes(characters: int) -> int:
    """How many processes read this much text: one, or every core (at most 4) for large
    corpora, where this system can fork (`pipeline.engine.forked_map`)."""
    return fork_processes() if characters >= PARALLEL_FROM else 1


def ner_spans(
    nlp,
    texts: Iterable[str],
    to_spans: Callable[[object], list[Span]],
    *,
    batch_size: int = 64,
    max_window: int = MAX_WINDOW,
    overlap: int = OVERLAP,
) -> Iterator[list[Span]]:
    """For each text, the spans `to_spans(doc)` finds in it (offsets into the whole text), with
    spaCy run on bounded windows of long texts (see the module docstring). Lazy: texts are
    windowed and parsed as the results are consumed."""
    plan: list[tuple[int, Window]] = []  # (text number, window), in order

    def pieces() -> Iterator[str]:
        for i, text in enumerate(texts):
            for w in text_windows(text, max_window=max_window, overlap=overlap):
                plan.append((i, w))
                yield text[w.start : w.end]

    current, found = 0, []
    for k, doc in enumerate(nlp.pipe(pieces(), batch_size=batch_size)):
        i, w = plan[k]
        while current < i:  # texts before this one are complete
            yield found
            current, found = current + 1, []
        for s in to_spans(doc):
            start = s.start + w.start
            if w.own_from <= start < w.own_to:
                found.append(replace(s, start=start, end=s.end + w.start))
    if plan:
        yield found
