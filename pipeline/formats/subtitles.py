"""Subtitle transcripts (.vtt with webvtt-py, .srt with srt) as timed cues.

A cue's speaker: in .vtt its voice tag (`<v Name>words</v>`; a cue with several voices is
split at each one); in either format a `Name: ` prefix of the cue text (Zoom, many captioning
tools). A cue with neither is left without a speaker (the caller decides: it continues the
previous speaker's turn). Markup is removed (WebVTT tags, HTML-like tags and `{\\an8}`-style
codes in SRT; entities unescaped) and a cue's lines are joined by single spaces.

The canonical text the turns are cut from is built by `pipeline.formats.transcripts`
(`turns_from_cues`): one line per turn, `Speaker: ` and then the turn's cue texts joined by
single spaces. Both files are decoded with `pipeline.io.decode_text` (UTF-8, BOMs, UTF-16/32,
cp1252). Every failure is a one-line UserError naming the file.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass

from pipeline.errors import UserError
from pipeline.formats.speaker_labels import CUE_PREFIX
from pipeline.io import decode_text

_VOICE = re.compile(r"<v(?:\.[\w-]+)*[ \t]+([^>\n]*)>")
_TAGS = re.compile(r"<[^<>]*>")  # linear: a tag cannot contain "<", so no rescanning
_ASS_CODES = re.compile(r"\{\\[^{}]*\}")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Cue:
    speaker: str | None
    start: float  # seconds from the start of the recording
    end: float
    text: str


def _clean(raw: str) -> str:
    text = _ASS_CODES.sub("", _TAGS.sub("", raw))
    return _SPACES.sub(" ", html.unescape(text)).strip()


def _with_prefix(speaker: str | None, text: str) -> tuple[str | None, str]:
    """A `Name: ` prefix of the cue text names its speaker when no voice tag did."""
    m = CUE_PREFIX.match(text)
    if m and speaker is None:
        return m.group(1).strip(), text[m.end() :]
    return speaker, text


def vtt_cues(data: bytes, source: str) -> list[Cue]:
    """The cues of a WebVTT file in file order."""
    text = decode_text(data, source)
    if not text.strip():
        raise UserError(f"{source}: empty file; expected a WebVTT (.vtt) transcript")
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    try:
        captions = list(webvtt.from_buffer(io.StringIO(text)))
    except (MalformedFileError, MalformedCaptionError, ValueError) as e:
        raise UserError(
            f"{source}: not a valid WebVTT file ({type(e).__name__}); expected 'WEBVTT' and timed cues"
        ) from None
    cues: list[Cue] = []
    for caption in captions:
        start = caption.start_time.in_milliseconds() / 1000
        end = caption.end_time.in_milliseconds() / 1000
        raw = caption.raw_text
        voices = list(_VOICE.finditer(raw))
        pieces = [(None, raw)] if not voices else []
        if voices and voices[0].start() > 0 and _clean(raw[: voices[0].start()]):
            pieces.append((None, raw[: voices[0].start()]))
        for i, v in enumerate(voices):
            stop = voices[i + 1].start() if i + 1 < len(voices) else len(raw)
            pieces.append((_clean(v.group(1)) or None, raw[v.end() : stop]))
        for speaker, piece in pieces:
            speaker, words = _with_prefix(speaker, _clean(piece))
            if words:
                cues.append(Cue(speaker, start, end, words))
    return cues


def srt_cues(data: bytes, source: str) -> list[Cue]:
    """The cues of a SubRip file in file order."""
    text = decode_text(data, source)
    if not text.strip():
        raise UserError(f"{source}: empty file; expected a SubRip (.srt) transcript")
    import srt

    try:
        subtitles = list(srt.parse(text))
    except (srt.SRTParseError, ValueError) as e:
        raise UserError(
            f"{source}: not a valid SubRip file ({type(e).__name__}); expected numbered, timed cues"
        ) from None
    cues: list[Cue] = []
    for sub in subtitles:
        speaker, words = _with_prefix(None, _clean(sub.content))
        if words:
            cues.append(Cue(speaker, sub.start.total_seconds(), sub.end.total_seconds(), words))
    return cues
