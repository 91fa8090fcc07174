"""Plain-text transcripts: one turn per `Speaker: words` line; other lines continue a turn."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A speaker label: up to 40 characters without a colon, then ": ". "10:30" is not a label
# because a label needs a space after its colon.
_TURN_START = re.compile(r"^[ \t]*([^\s:][^:\n]{0,39}?)[ \t]*:[ \t]+(?=\S)")


@dataclass(frozen=True)
class RawTurn:
    speaker: str
    start: int  # offset of the turn's words in the transcript text
    end: int
    preamble: bool = False  # text before the first speaker label


def read_text(data: bytes) -> str:
    """Decode a transcript file: UTF-8 (a BOM is dropped), newlines normalised to \\n.

    Offsets in codings.csv and identifiers.jsonl count characters in this text.
    """
    text = data.decode("utf-8-sig")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_turns(text: str) -> list[RawTurn]:
    """Split a transcript into turns; continuation lines extend the current turn."""
    turns: list[RawTurn] = []
    offset = 0
    for line in text.split("\n"):
        line_end = offset + len(line)
        match = _TURN_START.match(line)
        if match:
            turns.append(RawTurn(match.group(1).strip(), offset + match.end(), line_end))
        elif line.strip():
            body_start = offset + len(line) - len(line.lstrip())
            body_end = offset + len(line.rstrip())
            if turns:
                last = turns[-1]
                turns[-1] = RawTurn(last.speaker, last.start, body_end, last.preamble)
            else:
                turns.append(RawTurn("", body_start, body_end, preamble=True))
        offset = line_end + 1
    return turns
