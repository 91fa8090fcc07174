"""The study's own words through the gate: its name and description (study.yaml), and the
transcript ids, participant ids and groups that name files, cases and figures.

The name and description are de-identified with the transcripts, in one corpus, so the
service a study is named after gets the same pseudonym as in the transcripts. An id or group
that holds an identifier (a file name's session date, "P10_GMT20211130"; a name the
transcripts' de-identification replaced) gets that part replaced by its label or placeholder
("P10_GMTDATE"), made unique; the others stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd

from pipeline.deid.spans import Span
from pipeline.deid.terms import TermMatcher

ID_COLUMNS = ("transcript_id", "participant_id", "group")
# Read "_", "-" and "." in ids as spaces so that their parts are words to the recognizers
# (the same length, so offsets hold).
_SEPARATORS = str.maketrans("_-.", "   ")
_UNSAFE = re.compile(r"[^A-Za-z0-9_ -]+")


@dataclass
class Renamed:
    name: str
    description: str
    maps: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {original: new}

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """`df` with its id columns renamed (columns it lacks are left alone)."""
        out = df.copy()
        for col, mapping in self.maps.items():
            if col in out.columns and mapping:
                out[col] = out[col].map(lambda v, m=mapping: m.get(v, v))
        return out

    def counts(self) -> dict[str, int]:
        return {col: len(mapping) for col, mapping in self.maps.items()}


def rename_ids(
    turns: pd.DataFrame,
    *,
    name: str,
    description: str,
    entities: Iterable[tuple[str, Iterable[str]]],
    detect: Callable[[str], list[Span]],
) -> Renamed:
    """New names for the ids and groups that hold an identifier: one `detect` finds (rules and
    the register: a recognizer of names in prose would read "T04" as an organisation), or a
    surface of an entity the corpus's de-identification replaced, as a word. `entities`:
    (placeholder, surfaces). `name`, `description`: already pseudonymised."""
    surfaces = {s.casefold(): p.strip("[]") for p, ss in entities for s in ss if len(s) > 2}
    matcher = TermMatcher(surfaces, ignore_case=True)
    out = Renamed(name=name, description=description, maps={c: {} for c in ID_COLUMNS})
    for col in ID_COLUMNS:
        values = sorted(turns[col].unique())
        taken = set(values)
        suffix: dict[str, int] = {}  # per new name, the first suffix not yet tried (every lower one is taken)
        for value in values:
            text = value.translate(_SEPARATORS)
            found = [(sp.start, sp.end, sp.label) for sp in detect(text)]
            found += [(m.start, m.end, surfaces[m.term]) for m in matcher.finditer(text)]
            if not found:
                continue
            base = _replaced(value, found)
            n = suffix.get(base, 1)
            new = base if n == 1 else f"{base}-{n}"
            while new in taken:
                n += 1
                new = f"{base}-{n}"
            suffix[base] = n + 1
            taken.add(new)
            out.maps[col][value] = new
    return out


def _replaced(value: str, found: list[tuple[int, int, str]]) -> str:
    """`value` with each found part replaced by its label, in safe characters."""
    pieces, pos = [], 0
    for start, end, label in sorted(found):
        if start < pos:
            continue
        pieces += [value[pos:start], label]
        pos = end
    pieces.append(value[pos:])
    return _UNSAFE.sub("", "".join(pieces)).strip().replace(" ", "_") or "id"
