"""spaCy over texts of any length, read in windows whose offsets into the whole text are kept.

spaCy refuses a text longer than `nlp.max_length` (error E088, 1,000,000 characters by
default), and its parser and NER need about 1 GB of memory per 100,000 characters. A long turn
(a transcript without speaker labels is one turn, a survey answer can be a pasted document) is
therefore read in windows. Two ways, for two kinds of pipeline:

- `text_windows` / `pipe_windows` (statistical pipelines: NER, the parser): windows of at most
  `max_window` characters, cut after a sentence end or else at whitespace, that overlap by
  `overlap` characters. Each window owns what starts in its share of the text: from the middle
  of the overlap with the window before to the middle of the overlap with the window after, so
  an entity cut by one window's edge is taken whole from its neighbour, and none twice.
- `sentence_spans` (a rule-based sentencizer): windows one after the other, each starting at
  the last sentence the one before found whole, so the sentences are those of the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_WINDOW = 100_000
OVERLAP = 2_000
_SENTENCE_END = re.compile(r"[.!?][\"')\]\u2019\u201d]*\s+|\n\s*")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Window:
    start: int  # where the window's text starts in the whole text
    end: int
    own_from: int  # what starts in [own_from, own_to) is this window's
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
    """Overlapping windows covering `text`; one window when it is short enough. With
    `overlap=0` each window starts where the one before ends (after a sentence end when there
    is one)."""
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


def pipe_windows(
    nlp,
    texts: Iterable[str],
    *,
    batch_size: int = 64,
    max_window: int = MAX_WINDOW,
    overlap: int = OVERLAP,
    whole_up_to: int | None = None,
) -> Iterator[tuple[int, Window, object]]:
    """(text number, window, doc of the window's text) for every window of every text, in
    order, from one `nlp.pipe`. Texts of at most `whole_up_to` characters (default
    `max_window`) are read whole; windows are never longer than `nlp.max_length`. Lazy: texts
    are windowed as the docs are consumed."""
    max_window = min(max_window, nlp.max_length)
    overlap = min(overlap, max_window // 4)
    whole_up_to = max_window if whole_up_to is None else min(whole_up_to, nlp.max_length)
    plan: list[tuple[int, Window]] = []  # (text number, window), in order

    def pieces() -> Iterator[str]:
        for i, text in enumerate(texts):
            if len(text) <= whole_up_to:
                windows = [Window(0, len(text), 0, len(text))]
            else:
                windows = text_windows(text, max_window=max_window, overlap=overlap)
            for w in windows:
                plan.append((i, w))
                yield text[w.start : w.end]

    for k, doc in enumerate(nlp.pipe(pieces(), batch_size=batch_size)):
        yield (*plan[k], doc)


def sentence_spans(nlp, text: str, *, max_window: int | None = None) -> list[tuple[int, int]]:
    """(start_char, end_char) of each sentence of `text` as `nlp` reads it whole, for a
    pipeline whose sentence starts depend only on the tokens up to them (spaCy's rule-based
    `sentencizer`), read in windows of at most `max_window` characters (default
    `nlp.max_length`).

    Each window ends at whitespace (no word cut) and the next one starts at the last sentence
    start it found at or just after whitespace: there the sentencizer is in the state it is in
    when reading the whole text. A window without one (no sentence end, e.g. an unpunctuated
    transcript) is cut just after a word instead, where the whole-text reading starts no
    sentence: the sentence open there continues into the next window. Only a window with no
    word followed by whitespace in it (one 'word' of `max_window` characters) is cut blind.
    """
    max_window = nlp.max_length if max_window is None else min(max_window, nlp.max_length)
    n = len(text)
    if n <= max_window:
        return [(s.start_char, s.end_char) for s in nlp(text).sents]
    found: list[tuple[int, int]] = []
    open_from: int | None = None  # start of a sentence the window before left open
    pos = 0
    while pos < n:
        end = n if n - pos <= max_window else _window_end(text, pos, pos + max_window)
        sents = [(pos + s.start_char, pos + s.end_char) for s in nlp(text[pos:end]).sents]
        if open_from is not None and sents:
            sents[0], open_from = (open_from, sents[0][1]), None
        if end == n:
            found += sents
            break
        cut = _restart(text, sents, pos)
        if cut is not None:
            found += [s for s in sents if s[0] < cut]
        else:
            cut = _after_word(text, pos, end)
            kept = [s for s in sents if s[0] < cut]
            found += kept[:-1]
            open_from = kept[-1][0]
        pos = cut
    return found


def _window_end(text: str, lo: int, hi: int) -> int:
    """The last whitespace position in (lo, hi], so that no token is cut; `hi` when none."""
    for i in range(hi, lo, -1):
        if text[i].isspace():
            return i
    return hi


def _restart(text: str, sents: list[tuple[int, int]], pos: int) -> int | None:
    """The last sentence start after `pos` at whitespace or just after it (a start the tokenizer
    makes inside a word, "end.Next", could tokenize otherwise when read first); None when none."""
    for start, _ in reversed(sents):
        if start <= pos:
            return None
        if text[start - 1].isspace() or text[start].isspace():
            return start
    return None


def _after_word(text: str, lo: int, hi: int) -> int:
    """The last position in (lo, hi) where whitespace follows a letter or digit: the token
    before it is a word, so the whole-text reading is not after a sentence end there and
    starts no sentence; `hi` when there is none (no word in the window is followed by
    whitespace: cut where it must be)."""
    for i in range(hi - 1, lo, -1):
        if text[i].isspace() and text[i - 1].isalnum():
            return i
    return hi
