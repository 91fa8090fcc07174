"""Combine every recognizer for recall, then propagate what was found across the study.

Pass 1 runs, per text: spaCy NER, the rules, the gazetteers, the study register and the
names found in speaker labels. Pass 2 takes the names, places and organisations found
anywhere in the corpus and marks every other mention of them, so that "Hope", caught once
after "baby", is caught at the start of a sentence too. Overlapping spans merge (recall
first); terms on the analyst's allow-list are dropped last.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pipeline.config import DeidParams
from pipeline.deid.gazetteer import ORG_HEADS, gazetteer_spans
from pipeline.deid.lexicon import first_names, is_common_word
from pipeline.deid.ner import ner_spans
from pipeline.deid.register import Register, read_allow, read_register, register_pattern, register_spans
from pipeline.deid.rules import TITLES, rule_spans
from pipeline.deid.spans import Span, merge_overlaps
from pipeline.errors import UserError

_NER_LABELS = {
    "PERSON": "PERSON",
    "ORG": "ORG",
    "FAC": "ORG",
    "GPE": "PLACE",
    "LOC": "PLACE",
    "NORP": "GROUP",
    "DATE": "DATE",
    "TIME": "DATE",
}
# spaCy's DATE covers "two years" and "last week"; only specific dates identify anyone.
_SPECIFIC_DATE = re.compile(
    r"\d|\b(?:January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
_GENERIC_SPEAKER = re.compile(
    r"^(participant|respondent|interviewee|interviewer|speaker|parent|p|r|i)\s*\d*$", re.IGNORECASE
)
_TITLES = {t.casefold() for t in TITLES}
_ORG_HEAD = re.compile(rf"\s+(?:{ORG_HEADS})$")
PROPAGATED_LABELS = ("PERSON", "ORG", "PLACE", "SERVICE")


def names_from_speakers(speakers: Iterable[str]) -> tuple[str, ...]:
    """Names inside participants' speaker labels ("Dr Rahman" -> "Rahman"): capitalised
    words that are not ordinary English ("Mum:", "Health Visitor:" name nobody)."""
    names: set[str] = set()
    for label in speakers:
        if _GENERIC_SPEAKER.match(label.strip()):
            continue
        for token in re.findall(r"[A-Za-z][A-Za-z'-]+", label):
            if token.casefold() in _TITLES or not token[0].isupper():
                continue
            if token in first_names() or not is_common_word(token):
                names.add(token)
    return tuple(sorted(names))


def _mostly_upper(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.6


def _caps_normalised(text: str) -> str:
    """Same-length copy of an all-capitals text with words in title case, so that
    capitalisation-based recognizers work; offsets are unchanged."""
    out = re.sub(r"[A-Za-z]+", lambda m: m.group().capitalize(), text)
    assert len(out) == len(text)
    return out


def _spacy_spans(doc, entity_labels: frozenset[str]) -> list[Span]:
    names = first_names()
    spans = []
    for ent in doc.ents:
        label = _NER_LABELS.get(ent.label_)
        if ent.label_ in entity_labels and label is not None:
            if label == "DATE" and not _SPECIFIC_DATE.search(ent.text):
                continue
            spans.append(Span(ent.start_char, ent.end_char, label, "spacy", 0.6))
        elif any(tok.text in names and not is_common_word(tok.text) for tok in ent):
            # any entity label can hide a person ("Poppy" tagged PRODUCT)
            spans.append(Span(ent.start_char, ent.end_char, "PERSON", "spacy", 0.5))
    return spans


def _known_name_spans(text: str, pattern: re.Pattern[str] | None) -> list[Span]:
    if pattern is None:
        return []
    return [Span(m.start(), m.end(), "PERSON", "speaker_label", 1.0) for m in pattern.finditer(text)]


def _word_pattern(terms: Iterable[str], *, ignore_case: bool) -> re.Pattern[str] | None:
    terms = sorted({t for t in terms if t}, key=len, reverse=True)
    if not terms:
        return None
    body = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in terms)
    flags = re.IGNORECASE if ignore_case else 0
    return re.compile(rf"(?<!\w)(?:{body})(?:['\u2019]s)?(?!\w)", flags)


class Detector:
    """All recognizers together. `detect_many` runs both passes over a corpus."""

    def __init__(
        self,
        nlp,
        *,
        entity_labels: Iterable[str],
        register: Register | None = None,
        known_names: Iterable[str] = (),
        allow: frozenset[str] = frozenset(),
    ):
        self.nlp = nlp
        self.entity_labels = frozenset(entity_labels)
        self.register = register or Register()
        self._register_re = register_pattern(self.register) if self.register.entries else None
        self._names_re = _word_pattern(known_names, ignore_case=False)
        self.allow = allow

    def first_pass(self, text: str, scan: str, ner: list[Span]) -> list[Span]:
        """Every recognizer over one text; `scan` is the text as capitalisation-based
        recognizers read it (title case when the text is in capitals), `ner` the spaCy
        entities found in `scan` (see `pipeline.deid.ner`)."""
        spans = list(ner)
        spans += rule_spans(text)
        spans += gazetteer_spans(scan)
        spans += register_spans(text, self.register, self._register_re)
        spans += _known_name_spans(text, self._names_re)
        return spans

    def rules_only(self, text: str) -> list[Span]:
        """The pattern rules and the register over one short text, without NER (which reads
        a bare id such as "T04" as an organisation): for ids and file names."""
        spans = rule_spans(text) + register_spans(text, self.register, self._register_re)
        return self._allowed_removed(text, merge_overlaps(spans, text))

    def detect_many(self, texts: list[str], *, progress: bool = False) -> list[list[Span]]:
        """Spans per text. A text that occurs several times (a survey's question before each
        answer) is read once; each occurrence still counts as evidence for propagation."""
        from tqdm import tqdm

        distinct = list(dict.fromkeys(texts))
        scans = [_caps_normalised(t) if _mostly_upper(t) else t for t in distinct]
        # long texts are read in bounded windows (spaCy refuses over 1M characters: E088)
        ner = ner_spans(self.nlp, scans, lambda doc: _spacy_spans(doc, self.entity_labels))
        first = [
            self.first_pass(text, scan, spans)
            for text, scan, spans in tqdm(
                zip(distinct, scans, ner, strict=True),
                total=len(distinct),
                disable=not progress,
                desc="de-identifying",
                unit="text",
            )
        ]
        which = {text: i for i, text in enumerate(distinct)}
        pattern, labels = propagation_pattern(texts, [first[which[t]] for t in texts])
        results = []
        for text, spans in zip(distinct, first, strict=True):
            if pattern is not None:
                spans = spans + [
                    Span(m.start(), m.end(), labels.get(_surface(m.group()), "PERSON"), "propagated", 0.7)
                    for m in pattern.finditer(text)
                ]
            spans = [_with_article(text, s) for s in merge_overlaps(spans, text)]
            results.append(self._allowed_removed(text, spans))
        return [list(results[which[t]]) for t in texts]

    def _allowed_removed(self, text: str, spans: list[Span]) -> list[Span]:
        if not self.allow:
            return spans
        return [s for s in spans if _strip_possessive(text[s.start : s.end]).casefold() not in self.allow]


def _with_article(text: str, span: Span) -> Span:
    """ "the ICB" is one name: take the article along, so "[ORG_1]" reads on its own."""
    before = text[max(0, span.start - 4) : span.start]
    if span.label in ("ORG", "SERVICE") and re.search(r"\b[Tt]he $", before):
        return Span(span.start - 4, span.end, span.label, span.detector, span.score, span.role)
    return span


def _strip_possessive(surface: str) -> str:
    return re.sub(r"['\u2019]s$", "", surface.strip())


def _surface(matched: str) -> str:
    return _strip_possessive(re.sub(r"\s+", " ", matched))


def propagation_pattern(
    texts: list[str], found: list[list[Span]]
) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """One regex over every name, place and organisation surface found in pass 1.

    Surfaces that are ordinary words ("Hope") are propagated only when found twice or more,
    and only where capitalised; each token of a multi-word person name and the name part of
    an organisation ("Royal Kennet" from "Royal Kennet Hospital") are propagated too.
    """
    counts: Counter[tuple[str, str]] = Counter()
    for text, spans in zip(texts, found, strict=True):
        for s in spans:
            if s.label not in PROPAGATED_LABELS or s.score < 0.6:
                continue
            surface = _strip_possessive(text[s.start : s.end])
            counts[(surface, s.label)] += 1
            tokens = surface.split()
            if s.label == "PERSON" and len(tokens) > 1:
                for token in tokens[1:] if tokens[0].casefold().rstrip(".") in _TITLES else tokens:
                    if token[:1].isupper() and len(token) > 1:
                        counts[(token, "PERSON")] += 1
            if s.label == "ORG":
                stem = _ORG_HEAD.sub("", surface)
                if stem != surface and len(stem) > 3:
                    counts[(stem, "ORG")] += 1
    labels: dict[str, str] = {}
    for (surface, label), n in counts.most_common():
        if not surface[:1].isupper() or surface in labels:
            continue
        if all(is_common_word(w) for w in surface.split()) and n < 2:
            continue
        labels[surface] = label
    return _word_pattern(labels, ignore_case=False), labels


def _ner_listens_to_tok2vec(nlp) -> bool:
    if "ner" not in nlp.pipe_names or "tok2vec" not in nlp.pipe_names:
        return False
    return any(getattr(layer, "name", "") == "tok2vec-listener" for layer in nlp.get_pipe("ner").model.walk())


def load_detector(
    spacy_model: str,
    *,
    entity_labels: Iterable[str],
    register: Register | None = None,
    known_names: Iterable[str] = (),
    allow: frozenset[str] = frozenset(),
) -> Detector:
    import spacy

    try:
        nlp = spacy.load(spacy_model)
        # NER only; in the small English pipelines NER has its own token embedding, so the
        # shared tok2vec (used by tagger and parser) is not needed either.
        keep = {"ner"} | ({"tok2vec"} if _ner_listens_to_tok2vec(nlp) else set())
        nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in keep])
    except OSError as e:
        raise UserError(f"params deid.spacy_model: spaCy pipeline '{spacy_model}' is not installed") from e
    return Detector(nlp, entity_labels=entity_labels, register=register, known_names=known_names, allow=allow)


def study_detector(
    params: DeidParams, *, study: Path | None, register: Path | None, allow: Path | None, speakers: list[str]
) -> tuple[Detector, Register]:
    """The detector and register for a study (its register.yaml and allow.yaml when present,
    unless given) or for the files given."""
    if study is not None:
        register = register or (study / "register.yaml" if (study / "register.yaml").exists() else None)
        allow = allow or (study / "allow.yaml" if (study / "allow.yaml").exists() else None)
    reg = read_register(register) if register else Register()
    detector = load_detector(
        params.spacy_model,
        entity_labels=params.entity_labels,
        register=reg,
        known_names=names_from_speakers(speakers),
        allow=read_allow(allow) if allow else frozenset(),
    )
    return detector, reg
