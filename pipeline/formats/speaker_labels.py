"""Speaker labels and timestamps as transcripts write them, recognised one line at a time.

Shapes (NAME: up to 40 characters; TS: h:mm:ss or mm:ss, optional .fraction):
- `Name: words`, `NAME: words`, `Speaker 1: words` (no colon inside the name, and a space
  after the colon: "10:30" is not a label);
- `[TS] Name: words` and `(TS) Name: words`;
- `Name (TS): words` and `Name [TS]: words`;
- a header line holding only a label and its time, the words on the following lines (Otter,
  Rev): `Name  TS` (two or more spaces or a tab before the time, or one space before an
  h:mm:ss time), `Name (TS)`, `Name (TS):`, `[TS] Name`, `[TS] Name:`.
A timestamp becomes the turn's time in seconds from the start of the recording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TS = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
_HMS = r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,3})?"
# A name beside a timestamp: starts with a letter; letters, digits, spaces, . ' ’ - after it.
_NAME = r"[^\W\d_][\w.'’\- ]{0,39}?"

# `Name: words` (unchanged from the first reader: anything but a colon, then ": ").
PLAIN = re.compile(r"^[ \t]*([^\s:][^:\n]{0,39}?)[ \t]*:[ \t]+(?=\S)")
_STAMP_FIRST = re.compile(rf"^[ \t]*[\[(]({_TS})[\])][ \t]*({_NAME})[ \t]*:[ \t]+(?=\S)")
_STAMP_AFTER = re.compile(rf"^[ \t]*({_NAME})[ \t]*[\[(]({_TS})[\])][ \t]*:[ \t]+(?=\S)")
_HEADERS = (
    (re.compile(rf"^[ \t]*({_NAME})(?:[ \t]{{2,}}|\t)({_TS})[ \t]*$"), 1, 2),
    (re.compile(rf"^[ \t]*({_NAME})[ \t]+({_HMS})[ \t]*$"), 1, 2),
    (re.compile(rf"^[ \t]*({_NAME})[ \t]*[\[(]({_TS})[\])][ \t]*:?[ \t]*$"), 1, 2),
    (re.compile(rf"^[ \t]*[\[(]({_TS})[\])][ \t]*({_NAME})[ \t]*:?[ \t]*$"), 2, 1),
)
# A cue's speaker prefix in subtitles: `Name: words`, also after a dialogue dash or ">>".
CUE_PREFIX = re.compile(r"^[ \t]*(?:-|>>)?[ \t]*([^\s:\-][^:\n]{0,39}?)[ \t]*:[ \t]+(?=\S)")


@dataclass(frozen=True)
class Label:
    speaker: str
    time: float | None
    body: int | None  # where the words start in the line; None: a header, words follow below


def seconds(stamp: str) -> float:
    """'01:02:03.5' -> 3723.5; 'mm:ss' -> minutes and seconds."""
    parts = stamp.replace(",", ".").split(":")
    value = 0.0
    for part in parts:
        value = value * 60 + float(part)
    return value


def match_label(line: str) -> Label | None:
    """The speaker label that starts `line`, if any (see module docstring for the shapes)."""
    if not line:
        return None
    head = line[:400]  # labels are short: a long line is matched on its start only
    m = _STAMP_FIRST.match(head)
    if m:
        return Label(m.group(2).strip(), seconds(m.group(1)), m.end())
    m = _STAMP_AFTER.match(head)
    if m:
        return Label(m.group(1).strip(), seconds(m.group(2)), m.end())
    if len(line) <= 120:
        for pattern, name, stamp in _HEADERS:
            m = pattern.match(line)
            if m:
                return Label(m.group(name).strip(), seconds(m.group(stamp)), None)
    m = PLAIN.match(head)
    if m:
        return Label(m.group(1).strip(), None, m.end())
    return None
