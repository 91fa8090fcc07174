"""Transcripts as text and speaker turns, whatever file they come in.

Every reader gives one canonical text per transcript; turn offsets, and the offsets in
codings.csv and identifiers.jsonl, count characters in it (Python `str` indices):
- .txt, .md: the file decoded by `pipeline.io.decode_text` (UTF-8; a BOM dropped; UTF-16/32
  with a BOM; else Windows-1252), line endings normalised to "\\n". Nothing else changes.
- .docx, .odt: the paragraphs joined by "\\n" (`pipeline.formats.documents` says which).
- .vtt, .srt: one line per turn, `Speaker: ` then the turn's cue texts joined by single
  spaces (no `Speaker: ` for cues nobody is named on); lines joined by "\\n"
  (`pipeline.formats.subtitles`).

Turns in text (txt, md, docx, odt): a line that starts with a speaker label starts a turn
(label shapes in `pipeline.formats.speaker_labels`); other lines continue the current turn (or, with
`unlabelled="participant"`, are turns of the participant, speaker ""); text before the first
label is a preamble. Turns in subtitles: consecutive cues of one speaker merge into one turn;
a cue with no speaker continues the previous speaker. A transcript with no speaker label at
all is read as the participant's alone (speaker "", `Transcript.labelled` False): in text, one
turn per paragraph (.txt/.md: blocks between blank lines; .docx/.odt: lines); in subtitles,
a new turn after each pause of PAUSE seconds or more.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline.errors import UserError
from pipeline.formats.documents import docx_text, odt_text
from pipeline.formats.speaker_labels import match_label
from pipeline.formats.subtitles import Cue, srt_cues, vtt_cues
from pipeline.io import decode_text

SUFFIXES = (".txt", ".md", ".docx", ".odt", ".vtt", ".srt")
UNLABELLED = ("continue", "participant")
PAUSE = 2.0  # seconds of silence that end a turn in unlabelled subtitles


@dataclass(frozen=True)
class RawTurn:
    speaker: str
    start: int  # offset of the turn's words in the transcript text
    end: int
    preamble: bool = False  # text before the first speaker label
    time: float | None = None  # seconds from the start of the recording, when the file says


@dataclass(frozen=True)
class Transcript:
    text: str  # the canonical text (module docstring)
    turns: list[RawTurn]
    labelled: bool = True  # False: no speaker label anywhere; every turn is the participant's


def read_transcript(data: bytes, source: str, *, suffix: str, unlabelled: str = "continue") -> Transcript:
    """A transcript file's canonical text and turns; `suffix` picks the reader."""
    suffix = suffix.lower()
    if suffix in (".vtt", ".srt"):
        cues = vtt_cues(data, source) if suffix == ".vtt" else srt_cues(data, source)
        if not cues:
            raise UserError(f"{source}: no cue with any words; expected a {suffix} transcript")
        return turns_from_cues(cues, unlabelled=unlabelled)
    if suffix == ".docx":
        text = docx_text(data, source)
    elif suffix == ".odt":
        text = odt_text(data, source)
    elif suffix in (".txt", ".md"):
        text = decode_text(data, source)
    else:
        raise UserError(f"{source}: unsupported transcript format (supported: {', '.join(SUFFIXES)})")
    if not text.strip():
        raise UserError(f"{source}: empty transcript (no text)")
    turns = parse_turns(text, unlabelled=unlabelled)
    if any(t.speaker for t in turns):
        return Transcript(text, turns)
    by_line = suffix in (".docx", ".odt")
    return Transcript(text, unlabelled_turns(text, by_line=by_line), labelled=False)


def parse_turns(text: str, *, unlabelled: str = "continue") -> list[RawTurn]:
    """Split a transcript into turns (module docstring); continuation lines extend the current
    turn, or with `unlabelled="participant"` are the participant's (speaker "")."""
    if unlabelled not in UNLABELLED:
        raise ValueError(f"unlabelled must be one of {UNLABELLED}")
    turns: list[RawTurn] = []
    header = False  # the current turn began with a label-only line: the words follow it
    offset = 0
    for line in text.split("\n"):
        line_end = offset + len(line)
        label = match_label(line)
        if label is not None:
            if turns and turns[-1].start < 0:  # a header with no words under it
                turns.pop()
            header = label.body is None
            start = -1 if header else offset + label.body
            end = -1 if header else offset + len(line.rstrip())
            turns.append(RawTurn(label.speaker, start, end, time=label.time))
        elif line.strip():
            body_start = offset + len(line) - len(line.lstrip())
            body_end = offset + len(line.rstrip())
            last = turns[-1] if turns else None
            turn, new = _continue(last, body_start, body_end, header=header, unlabelled=unlabelled)
            if new:
                turns.append(turn)
                header = False
            else:
                turns[-1] = turn
        offset = line_end + 1
    return [t for t in turns if t.start >= 0]


def _continue(
    last: RawTurn | None, start: int, end: int, *, header: bool, unlabelled: str
) -> tuple[RawTurn, bool]:
    """The turn an unlabelled line belongs to, and whether it is new (else `last`, extended)."""
    if last is None:
        return RawTurn("", start, end, preamble=unlabelled == "continue"), True
    if last.start < 0:  # the words under a header label
        return replace(last, start=start, end=end), False
    if unlabelled == "participant" and last.speaker and not header:
        return RawTurn("", start, end), True
    return replace(last, end=end), False


def unlabelled_turns(text: str, *, by_line: bool) -> list[RawTurn]:
    """Turns of a transcript with no speaker labels: one per line (`by_line`) or per block of
    lines between blank lines, all by the participant (speaker "")."""
    turns: list[RawTurn] = []
    offset, open_block = 0, False
    for line in text.split("\n"):
        if line.strip():
            start = offset + len(line) - len(line.lstrip())
            end = offset + len(line.rstrip())
            if open_block and not by_line:
                turns[-1] = replace(turns[-1], end=end)
            else:
                turns.append(RawTurn("", start, end))
            open_block = True
        else:
            open_block = False
        offset += len(line) + 1
    return turns


def turns_from_cues(cues: list[Cue], *, unlabelled: str = "continue") -> Transcript:
    """The canonical text and turns of subtitle cues (module docstring)."""
    labelled = any(c.speaker for c in cues)
    groups: list[tuple[str | None, list[Cue]]] = []
    current: str | None = None
    for i, cue in enumerate(cues):
        if not labelled:
            speaker = ""
            new = not groups or cue.start - cues[i - 1].end >= PAUSE
        else:
            speaker = cue.speaker or ("" if unlabelled == "participant" else current)
            new = not groups or speaker != groups[-1][0]
        current = speaker if speaker is not None else current
        if new:
            groups.append((speaker, [cue]))
        else:
            groups[-1][1].append(cue)
    lines, turns, offset = [], [], 0
    for speaker, group in groups:
        prefix = f"{speaker}: " if speaker else ""
        words = " ".join(c.text for c in group)
        start = offset + len(prefix)
        turns.append(
            RawTurn(speaker or "", start, start + len(words), preamble=speaker is None, time=group[0].start)
        )
        lines.append(prefix + words)
        offset += len(lines[-1]) + 1
    return Transcript("\n".join(lines), turns, labelled=labelled)
