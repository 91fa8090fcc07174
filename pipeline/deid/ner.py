"""spaCy NER over texts of any length, in bounded windows (`pipeline.spacy_windows`).

A long turn (a transcript without speaker labels is one turn) is read in overlapping windows
of at most `MAX_WINDOW` characters; each window keeps the entities that start in its own share
of the text, so an entity cut by one window's edge is taken whole from its neighbour, and none
is counted twice. Offsets are mapped back to the whole text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from pipeline.deid.spans import Span
from pipeline.engine import fork_processes
from pipeline.spacy_windows import MAX_WINDOW, OVERLAP, Window, pipe_windows, text_windows

__all__ = ["MAX_WINDOW", "OVERLAP", "PARALLEL_FROM", "Window", "ner_processes", "ner_spans", "text_windows"]

# Several processes pay once the text outweighs forking them (`pipeline.engine.forked_map`:
# tens of milliseconds, no model loaded again): on 2 cores, Presidio's 1,500 synthetic
# sentences (127,000 characters) went from 17,200 to 29,800 characters/s, with the same spans
PARALLEL_FROM = 20_000


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
    docs = pipe_windows(nlp, texts, batch_size=batch_size, max_window=max_window, overlap=overlap)
    current, found, any_text = 0, [], False
    for i, w, doc in docs:
        any_text = True
        while current < i:  # texts before this one are complete
            yield found
            current, found = current + 1, []
        for s in to_spans(doc):
            start = s.start + w.start
            if w.own_from <= start < w.own_to:
                found.append(replace(s, start=start, end=s.end + w.start))
    if any_text:
        yield found
