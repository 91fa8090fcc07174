"""The detected-span record shared by every recognizer, and overlap resolution."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.deid.lexicon import first_names, is_common_word, sentence_start

# Detector priority when spans overlap: exact patterns (emails, phone numbers...) first, then
# the analyst's register, then names from speaker labels, gazetteers, propagation, NER.
_PRIORITY = {
    "rules": 0,
    "register": 1,
    "speaker_label": 2,
    "gazetteer": 3,
    "propagated": 4,
    "spacy": 5,
    "leak_gate": 6,
}
# Labels whose neighbouring spans join into one ("Apt. 595, Suite 3" is one address).
_JOINABLE = {"ADDRESS", "DATE", "PHONE", "ID_NUMBER", "POSTCODE"}
_NAME_GAP = re.compile(r" (?:[A-Z]\.? )?")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str  # PERSON, ORG, PLACE, SERVICE, ADDRESS, POSTCODE, PHONE, EMAIL, URL, HANDLE, DATE, AGE, ...
    detector: str  # rules | register | speaker_label | gazetteer | propagated | spacy | leak_gate
    score: float = 1.0
    role: str | None = None  # register role, e.g. parent, clinician, staff


def _worth_keeping(text: str | None, start: int, end: int) -> bool:
    """Is the part of a weaker span left outside stronger spans still possibly identifying?
    Yes if it has a digit, a capitalised word mid-sentence, or, at a sentence start, a
    capitalised word that is a first name or no ordinary English word."""
    if text is None:
        return True
    piece = text[start:end]
    if re.search(r"\d", piece):
        return True
    for m in re.finditer(r"\b[A-Z]\w+", piece):
        at = start + m.start()
        if not sentence_start(text, at):
            return True
        if m.group() in first_names() or not is_common_word(m.group()):
            return True
    return False


_NAME_LABELS = {"PERSON", "ORG", "PLACE", "SERVICE"}


def subtract(start: int, end: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pieces of [start, end) outside every hole (holes in any order)."""
    pieces, pos = [], start
    for h_start, h_end in sorted(holes):
        if h_end <= pos or h_start >= end:
            continue
        if h_start > pos:
            pieces.append((pos, h_start))
        pos = max(pos, h_end)
    if pos < end:
        pieces.append((pos, end))
    return pieces


def merge_overlaps(spans: list[Span], text: str | None = None) -> list[Span]:
    """Resolve overlaps, strongest detector first: a weaker span keeps only its parts outside
    stronger ones, and only parts that may still identify someone (so NER's "Took Gemma"
    does not swallow "Took", but "Helen Smith" keeps "Smith" beside the register's "Helen").
    Given the text, neighbouring spans of the same generic label (an address in several
    pieces) join into one."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (_PRIORITY.get(s.detector, 9), -(s.end - s.start), s.start)):
        pieces = subtract(span.start, span.end, [(k.start, k.end) for k in kept])
        if pieces == [(span.start, span.end)]:
            kept.append(span)
            continue
        pieces = [
            (a, b) for a, b in pieces if (text is None or text[a:b].strip()) and _worth_keeping(text, a, b)
        ]
        inside = [k for k in kept if k.start < span.end and k.end > span.start]
        if (
            (pieces or len(inside) > 1)
            and span.label in _NAME_LABELS
            and all(k.label == span.label and k.detector not in ("rules", "register") for k in inside)
        ):
            # "Sam Jones" around a stronger "Jones": one name, labelled by the strongest part
            best = inside[0]
            kept = [k for k in kept if k not in inside]
            start, end = min(span.start, *(k.start for k in inside)), max(span.end, *(k.end for k in inside))
            kept.append(Span(start, end, best.label, best.detector, best.score, best.role))
            continue
        kept += [Span(a, b, span.label, span.detector, span.score, span.role) for a, b in pieces]
    kept.sort(key=lambda s: s.start)
    if text is None:
        return kept
    joined: list[Span] = []
    for span in kept:
        last = joined[-1] if joined else None
        gap = text[last.end : span.start] if last is not None else ""
        if (
            last is not None
            and span.label == last.label
            and (
                (span.label in _JOINABLE and not gap.strip(" \t\n,"))
                # "Wisława" + "Szczepańska", "Mijail" + "C" + "Adomo": one name
                or (
                    span.label == "PERSON"
                    and _NAME_GAP.fullmatch(gap)
                    and "register" not in (last.detector, span.detector)
                )
            )
        ):
            score = max(last.score, span.score)
            joined[-1] = Span(last.start, span.end, last.label, last.detector, score, last.role)
        else:
            joined.append(span)
    return joined
