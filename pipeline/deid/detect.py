"""Identifier detectors: spaCy NER, rules for UK identifiers, and known names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str  # PERSON, ORG, PLACE, NATIONALITY, DATE, PHONE, EMAIL, POSTCODE, NHS_NUMBER
    detector: str


_NER_LABELS = {
    "PERSON": "PERSON",
    "ORG": "ORG",
    "FAC": "ORG",
    "GPE": "PLACE",
    "LOC": "PLACE",
    "NORP": "NATIONALITY",
    "DATE": "DATE",
    "TIME": "DATE",
}

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\d+])(?:\+44\s?(?:\(0\)\s?)?|\(?0)\d{2,4}\)?[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)")
_TEN_DIGITS = re.compile(r"(?<!\d)\d{3}[\s-]?\d{3}[\s-]?\d{4}(?!\d)")
_NHS_CONTEXT = re.compile(r"\bNHS\b|\bnumber\b", re.IGNORECASE)


def nhs_checksum_ok(digits: str) -> bool:
    """The NHS number mod-11 check digit."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


# A title followed by capitalised words is a person, whatever NER thinks.
_TITLED_NAME = re.compile(
    r"\b(?:Dr|Doctor|Mr|Mrs|Ms|Miss|Mx|Prof|Professor|Nurse|Sister)\.?\s+[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)?"
)


def rule_spans(text: str) -> list[Span]:
    spans = [Span(m.start(), m.end(), "EMAIL", "regex") for m in _EMAIL.finditer(text)]
    spans += [Span(m.start(), m.end(), "PERSON", "regex") for m in _TITLED_NAME.finditer(text)]
    spans += [Span(m.start(), m.end(), "POSTCODE", "regex") for m in _POSTCODE.finditer(text)]
    for m in _TEN_DIGITS.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        context = text[max(0, m.start() - 40) : m.start()]
        if nhs_checksum_ok(digits) or _NHS_CONTEXT.search(context):
            spans.append(Span(m.start(), m.end(), "NHS_NUMBER", "regex"))
    spans += [Span(m.start(), m.end(), "PHONE", "regex") for m in _PHONE.finditer(text)]
    return spans


_GENERIC_SPEAKER = re.compile(r"^(participant|respondent|interviewee|speaker|parent|p)\s*\d*$", re.IGNORECASE)
_TITLES = {"dr", "mr", "mrs", "ms", "miss", "prof", "professor", "nurse"}


def names_from_speakers(speakers: Iterable[str]) -> tuple[str, ...]:
    """Names inside participants' speaker labels ("Dr Rahman" -> "Rahman")."""
    names: set[str] = set()
    for label in speakers:
        if _GENERIC_SPEAKER.match(label.strip()):
            continue
        for token in re.findall(r"[A-Za-z][A-Za-z'-]+", label):
            if token.casefold() not in _TITLES and len(token) >= 2:
                names.add(token)
    return tuple(sorted(names))


def term_spans(text: str, terms: tuple[tuple[str, str], ...], *, detector: str) -> list[Span]:
    """Whole-word, case-insensitive matches of known (term, label) pairs, possessives included."""
    spans = []
    for term, label in terms:
        pattern = rf"(?<![\w-]){re.escape(term)}(?:['\u2019]s)?(?![\w-])"
        for m in re.finditer(pattern, text, flags=re.IGNORECASE):
            spans.append(Span(m.start(), m.end(), label, detector))
    return spans


def merge_overlaps(spans: list[Span]) -> list[Span]:
    """Keep non-overlapping spans, preferring rules over NER and longer over shorter."""
    priority = {"regex": 0, "register": 1, "speaker_label": 2, "spacy": 3}
    ordered = sorted(spans, key=lambda s: (priority.get(s.detector, 9), -(s.end - s.start), s.start))
    kept: list[Span] = []
    for span in ordered:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


class Detector:
    """All detectors together; `detect_many` runs spaCy in batches."""

    def __init__(
        self,
        nlp,
        *,
        entity_labels: tuple[str, ...],
        known_names: tuple[str, ...] = (),
        register: tuple[tuple[str, str], ...] = (),
    ):
        self.nlp = nlp
        self.entity_labels = frozenset(entity_labels)
        self.known_names = tuple((name, "PERSON") for name in known_names)
        self.register = register

    def detect_many(self, texts: list[str], *, progress: bool = False) -> list[list[Span]]:
        from tqdm import tqdm

        docs = self.nlp.pipe(texts, batch_size=64)
        results = []
        for text, doc in tqdm(
            zip(texts, docs, strict=True),
            total=len(texts),
            disable=not progress,
            desc="de-identifying",
            unit="turn",
        ):
            spans = [
                Span(e.start_char, e.end_char, _NER_LABELS.get(e.label_, e.label_), "spacy")
                for e in doc.ents
                if e.label_ in self.entity_labels
            ]
            spans += rule_spans(text)
            spans += term_spans(text, self.known_names, detector="speaker_label")
            spans += term_spans(text, self.register, detector="register")
            results.append(merge_overlaps(spans))
        return results


_REGISTER_SECTIONS = {"people": "PERSON", "places": "PLACE", "services": "ORG"}


def read_register(path: Path) -> tuple[tuple[str, str], ...]:
    """register.yaml: sections people/places/services, each a list of names or of
    mappings {name, aliases}. Returns (term, label) pairs, longest first."""
    import yaml

    if not path.exists():
        raise UserError(f"{path}: register file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML") from e
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected sections {', '.join(_REGISTER_SECTIONS)}")
    terms: list[tuple[str, str]] = []
    for section, items in data.items():
        if section not in _REGISTER_SECTIONS:
            raise UserError(f"{path}: unknown section '{section}' (allowed: {', '.join(_REGISTER_SECTIONS)})")
        for i, item in enumerate(items or []):
            if isinstance(item, str):
                names = [item]
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                names = [item["name"], *[str(a) for a in item.get("aliases") or []]]
            else:
                raise UserError(f"{path}: {section}[{i}]: expected a name or {{name, aliases}}")
            terms += [(n.strip(), _REGISTER_SECTIONS[section]) for n in names if n.strip()]
    return tuple(sorted(set(terms), key=lambda t: -len(t[0])))


def load_detector(
    spacy_model: str,
    *,
    entity_labels: tuple[str, ...],
    known_names: tuple[str, ...] = (),
    register: tuple[tuple[str, str], ...] = (),
) -> Detector:
    import spacy

    try:
        nlp = spacy.load(spacy_model, disable=["parser", "lemmatizer", "tagger", "attribute_ruler"])
    except OSError as e:
        raise UserError(f"params deid.spacy_model: spaCy pipeline '{spacy_model}' is not installed") from e
    return Detector(nlp, entity_labels=entity_labels, known_names=known_names, register=register)
