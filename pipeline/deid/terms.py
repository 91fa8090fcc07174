"""Whole-word matching of many literal terms at once, in time linear in the text whatever the
number of terms (an Aho-Corasick automaton, `pyahocorasick`).

It finds what the regular expression ``(?<!\\w)(?:T1|T2|...)(?:['\u2019]s)?(?!\\w)`` would find,
with the terms sorted longest first and each space inside a term matching any run of
whitespace: leftmost matches, the longest term at each place, a possessive taken along, and
none overlapping. A regular expression with one alternative per term tries every term at every
position, so its cost grows with the number of terms: with the thousands of names and places
a large study yields, it stalls.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

_SPACE_RUN = re.compile(r"\s+")
_APOSTROPHES = "'\u2019"


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"  # what `\w` matches in a str pattern


def _fold(text: str) -> str:
    """Lower case, one character for one (so offsets hold)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(low_c if len(low_c := c.lower()) == 1 else c for c in text)


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    term: str  # the term as given, whichever spelling (case, spaces) the text has


class TermMatcher:
    """All whole-word occurrences of `terms` in a text; `ignore_case` compares lower cases."""

    def __init__(self, terms: Iterable[str], *, ignore_case: bool = False):
        self.ignore_case = ignore_case
        self._automaton = ahocorasick.Automaton()
        for term in sorted({t for t in terms if t and t.strip()}):
            flat = " ".join(term.split())
            key = _fold(flat) if ignore_case else flat
            if key not in self._automaton:  # spellings of one key keep the first in order
                self._automaton.add_word(key, (len(key), term))
        self.empty = len(self._automaton) == 0
        if not self.empty:
            self._automaton.make_automaton()

    def finditer(self, text: str) -> list[Match]:
        if self.empty or not text:
            return []
        flat, where = _single_spaced(text)
        if self.ignore_case:
            flat = _fold(flat)
        found: list[tuple[int, int, str]] = []  # (start, -length, term) in the single-spaced text
        for end, (length, term) in self._automaton.iter(flat):
            start = end + 1 - length
            if start > 0 and _is_word(flat[start - 1]):
                continue
            stop = end + 1
            if stop < len(flat) and flat[stop] in _APOSTROPHES and flat[stop + 1 : stop + 2] == "s":
                if stop + 2 >= len(flat) or not _is_word(flat[stop + 2]):
                    stop += 2
            if stop == end + 1 and stop < len(flat) and _is_word(flat[stop]):
                continue
            found.append((start, -stop, term))
        found.sort()
        matches, pos = [], 0
        for start, neg_stop, term in found:
            if start >= pos:
                matches.append(Match(where(start), where(-neg_stop - 1) + 1, term))
                pos = -neg_stop
        return matches


def _single_spaced(text: str):
    """The text with every run of whitespace as one space, and a map from its offsets back."""
    if not any(c.isspace() and c != " " for c in text) and "  " not in text:
        return text, lambda i: i
    pieces, starts, origins, pos, out = [], [], [], 0, 0
    for m in _SPACE_RUN.finditer(text):
        pieces += [text[pos : m.start()], " "]
        starts += [out, out + m.start() - pos]  # where each piece starts in the flat text...
        origins += [pos, m.start()]  # ...and in the text
        out += m.start() - pos + 1
        pos = m.end()
    pieces.append(text[pos:])
    starts.append(out)
    origins.append(pos)

    def where(i: int) -> int:
        k = bisect_right(starts, i) - 1
        return origins[k] + (i - starts[k] if pieces[k] != " " else 0)

    return "".join(pieces), where
