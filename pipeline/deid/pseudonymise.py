"""Role-typed, study-wide consistent pseudonyms.

Mentions are grouped into entities: register names and aliases first; then a lone first
name or surname joins the one full name it belongs to ("Helen" -> "Helen Okafor"). When
it could belong to several, it stays a separate entity and is listed for review, never
guessed. Each entity gets one placeholder for the whole study: `[PARENT_1]` (register
role), `[BABY_2]` / `[PARTNER_1]` (from context such as "baby Hope"), `[PERSON_3]`,
`[PLACE_1]`, `[ORG_2]`, `[SERVICE_1]`. Other identifiers become generic placeholders
(`[DATE]`, `[PHONE]`, ...); ages become bands (`[AGE: under 6 months]`) or `[AGE]`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from pipeline.deid.gazetteer import ORG_HEADS
from pipeline.deid.register import Register
from pipeline.deid.rules import TITLES
from pipeline.deid.spans import Span

NUMBERED = {"PERSON", "PLACE", "ORG", "SERVICE"}
_TITLE = re.compile(rf"^(?:{'|'.join(TITLES)})\.?\s+", re.IGNORECASE)
_BABY_CONTEXT = re.compile(r"\b(?:baby|son|daughter|little one|newborn|twins?|babies)\s+$", re.IGNORECASE)
_PARTNER_CONTEXT = re.compile(
    r"\b(?:partner|husband|wife|boyfriend|girlfriend|fianc[eé]e?|ex)(?:,)?\s+$", re.IGNORECASE
)
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
# (upper bound in months, label), first that fits
AGE_BANDS = (
    (6, "under 6 months"),
    (12, "6-12 months"),
    (24, "1-2 years"),
    (60, "2-5 years"),
    (216, "5-17 years"),
    (float("inf"), "adult"),
)


def _normalise(surface: str) -> str:
    surface = re.sub(r"['\u2019]s$", "", surface.strip())
    surface = re.sub(r"^the\s+", "", surface, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", surface).casefold()


def age_months(surface: str) -> float | None:
    """ "seven weeks old" -> 1.6; "nineteen" -> 228 (years when no unit); None if unreadable."""
    words = re.findall(r"[a-z]+|\d+", surface.lower().replace("-", " "))
    value, unit = 0.0, None
    for w in words:
        if w.isdigit():
            value += int(w)
        elif w == "hundred":
            value = (value or 1) * 100
        elif w in ("a", "an") and value:
            continue  # "a year and a half": the second "a" is part of "a half"
        elif w in _NUMBERS:
            value += _NUMBERS[w]
        elif w in ("half",):
            value += 0.5
        elif w.startswith(("day", "week", "wk", "month", "year", "yr")):
            unit = w
    if value == 0:
        return None
    if unit is None or unit.startswith(("year", "yr")):
        return value * 12
    if unit.startswith("month"):
        return value
    if unit.startswith(("week", "wk")):
        return value * 12 / 52
    return value * 12 / 365


def age_placeholder(surface: str, *, policy: str) -> str:
    months = age_months(surface) if policy == "band" else None
    if months is None:
        return "[AGE]"
    return next(f"[AGE: {label}]" for bound, label in AGE_BANDS if months < bound)


@dataclass
class Entity:
    key: str
    labels: Counter[str] = field(default_factory=Counter)  # one entity, whatever each detector said
    role: str | None = None
    surfaces: Counter[str] = field(default_factory=Counter)
    contexts: Counter[str] = field(default_factory=Counter)
    placeholder: str = ""

    @property
    def label(self) -> str:
        return self.labels.most_common(1)[0][0]


@dataclass(frozen=True)
class Pseudonymised:
    texts: list[str]
    spans: list[list[dict]]  # per text: start, end (original offsets), label, replacement, detector, score
    entities: list[Entity]
    ambiguous: list[dict]  # surfaces that could belong to several entities


def _entity_key(surface: str, register: Register) -> tuple[str, str | None]:
    surface = re.sub(r"['\u2019]s$", "", surface.strip())
    entry = register.canonical(_TITLE.sub("", surface)) or register.canonical(surface)
    if entry is not None:
        return f"register:{entry.name.casefold()}", entry.role
    return f"name:{_normalise(_TITLE.sub('', surface))}", None


def _group_partial_names(entities: dict[str, Entity]) -> tuple[dict[str, str], list[dict]]:
    """Map a lone first name or surname onto the one full name it belongs to, and the name
    part of an organisation ("Royal Kennet") onto the organisation."""
    owners_of: dict[str, set[str]] = defaultdict(set)
    for key, ent in entities.items():
        for surface in ent.surfaces:
            name = _normalise(_TITLE.sub("", surface))
            tokens = name.split()
            if ent.label == "PERSON" and len(tokens) > 1:
                for token in (tokens[0], tokens[-1]):
                    owners_of[token].add(key)
            if ent.label == "ORG":
                stem = re.sub(rf"\s+(?:{ORG_HEADS})$", "", surface.strip(), flags=re.IGNORECASE)
                if stem != surface.strip():
                    owners_of[_normalise(stem)].add(key)
    redirect, ambiguous = {}, []
    for key in entities:
        if key.startswith("register:"):
            continue
        owners = owners_of.get(key.split(":", 1)[1], set()) - {key}
        if len(owners) == 1:
            redirect[key] = next(iter(owners))
        elif len(owners) > 1:
            ambiguous.append({"mention": key, "candidates": sorted(owners)})
    # follow chains (a -> b -> c) so every key points at a kept entity
    for key in list(redirect):
        seen = {key}
        while redirect[key] in redirect and redirect[key] not in seen:
            seen.add(redirect[key])
            redirect[key] = redirect[redirect[key]]
    return redirect, ambiguous


def pseudonymise_corpus(
    texts: list[str], spans: list[list[Span]], *, register: Register, age_policy: str = "band"
) -> Pseudonymised:
    """Replace every span; the same entity gets the same placeholder in every text."""
    entities: dict[str, Entity] = {}
    mention_keys: list[list[str | None]] = []
    for text, text_spans in zip(texts, spans, strict=True):
        keys: list[str | None] = []
        for s in text_spans:
            if s.label not in NUMBERED:
                keys.append(None)
                continue
            surface = text[s.start : s.end]
            key, role = _entity_key(surface, register)
            ent = entities.setdefault(key, Entity(key, role=role or s.role))
            ent.labels[s.label] += 1
            ent.surfaces[re.sub(r"['\u2019]s$", "", surface.strip())] += 1
            before = text[max(0, s.start - 30) : s.start]
            if _BABY_CONTEXT.search(before):
                ent.contexts["baby"] += 1
            elif _PARTNER_CONTEXT.search(before):
                ent.contexts["partner"] += 1
            keys.append(key)
        mention_keys.append(keys)
    redirect, ambiguous = _group_partial_names(entities)
    for src, dst in redirect.items():
        entities[dst].surfaces.update(entities[src].surfaces)
        entities[dst].contexts.update(entities[src].contexts)
    counters: Counter[str] = Counter()
    for key, ent in entities.items():  # in order of first mention
        if key in redirect:
            continue
        prefix = ent.label
        if ent.label == "PERSON":
            prefix = (ent.role or (ent.contexts.most_common(1)[0][0] if ent.contexts else "person")).upper()
        counters[prefix] += 1
        ent.placeholder = f"[{prefix}_{counters[prefix]}]"
    for src, dst in redirect.items():
        entities[src].placeholder = entities[dst].placeholder
    new_texts, records = [], []
    for text, text_spans, keys in zip(texts, spans, mention_keys, strict=True):
        pieces, recs, pos = [], [], 0
        for s, key in zip(text_spans, keys, strict=True):
            surface = text[s.start : s.end]
            if key is not None:
                replacement = entities[key].placeholder
            elif s.label == "AGE":
                replacement = age_placeholder(surface, policy=age_policy)
            else:
                replacement = f"[{s.label}]"
            pieces += [text[pos : s.start], replacement]
            recs.append(
                {
                    "start": s.start,
                    "end": s.end,
                    "label": s.label,
                    "replacement": replacement,
                    "detector": s.detector,
                    "score": round(s.score, 2),
                }
            )
            pos = s.end
        pieces.append(text[pos:])
        new_texts.append("".join(pieces))
        records.append(recs)
    kept = [e for k, e in entities.items() if k not in redirect]
    return Pseudonymised(new_texts, records, kept, ambiguous)
