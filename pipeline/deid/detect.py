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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.config import DeidParams
from pipeline.deid.gazetteer import ORG_HEADS, gazetteer_spans
from pipeline.deid.lexicon import first_names, is_common_word
from pipeline.deid.ner import ner_processes, ner_spans
from pipeline.deid.register import Register, read_allow, read_register, register_pattern, register_spans
from pipeline.deid.rules import TITLES, rule_spans
from pipeline.deid.spans import Span, merge_overlaps
from pipeline.deid.terms import TermMatcher
from pipeline.engine import batched, map_batches
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
FIRST_PASS_BATCH = 256  # texts per worker batch with `engine: ray` (a multiple of spaCy's 64)


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


def _known_name_spans(text: str, matcher: TermMatcher) -> list[Span]:
    return [Span(m.start, m.end, "PERSON", "speaker_label", 1.0) for m in matcher.finditer(text)]


Region = tuple[int, int]


class Detector:
    """All recognizers together, complete once built (`load_detector` builds one for a spaCy
    model). `detect_many` runs both passes over a corpus; the first passes run where `engine`
    says (`pipeline.engine.map_batches`): with `ray`, on actors that each load the detector
    again from `spec`."""

    def __init__(
        self,
        nlp,
        *,
        entity_labels: Iterable[str],
        register: Register | None = None,
        known_names: Iterable[str] = (),
        allow: frozenset[str] = frozenset(),
        engine: str = "local",
        spec: DetectorSpec | None = None,
    ):
        if engine != "local" and spec is None:
            raise ValueError(f"engine {engine!r} loads the detector in each worker: it needs a spec")
        self.nlp = nlp
        self.entity_labels = frozenset(entity_labels)
        self.register = register or Register()
        self._register_re = register_pattern(self.register) if self.register.entries else None
        self._names = TermMatcher(known_names)
        self.allow = allow
        self.engine = engine
        self.spec = spec  # how to load this detector again (in a worker)

    def first_pass(self, text: str, scan: str, ner: list[Span]) -> list[Span]:
        """Every recognizer over one text; `scan` is the text as capitalisation-based
        recognizers read it (title case when the text is in capitals), `ner` the spaCy
        entities found in `scan` (see `pipeline.deid.ner`)."""
        spans = list(ner)
        spans += rule_spans(text)
        spans += gazetteer_spans(scan)
        spans += register_spans(text, self.register, self._register_re)
        spans += _known_name_spans(text, self._names)
        return spans

    def rules_only(self, text: str) -> list[Span]:
        """The pattern rules and the register over one short text, without NER (which reads
        a bare id such as "T04" as an organisation): for ids and file names."""
        spans = rule_spans(text) + register_spans(text, self.register, self._register_re)
        return self._allowed_removed(text, merge_overlaps(spans, text))

    def map_first_passes(
        self, texts: list[str], *, regions: list[list[Region] | None] | None = None, progress: bool = False
    ) -> list[list[Span]]:
        """The map step: every recognizer over each text on its own. `regions[i]`, when given,
        limits spaCy to those stretches of text i (the sentences a replacement changed). With
        `engine: ray` the texts go to the actors in batches; locally, a large corpus is read by
        forked copies of this process, in batches, and a small one here."""
        regions = regions or [None] * len(texts)
        items = list(zip(texts, regions, strict=True))
        if self.engine != "local":
            assert self.spec is not None  # checked when built
            batches = batched(items, FIRST_PASS_BATCH)
            return map_batches(batches, self.spec, engine=self.engine, progress=progress)
        stretches = [[(0, len(t))] if r is None else r for t, r in zip(texts, regions, strict=True)]
        processes = ner_processes(sum(hi - lo for r in stretches for lo, hi in r))
        if processes > 1:
            batches = batched(items, _batch_size(len(texts), processes))
            # set up here, once: each forked copy inherits the loaded model
            return map_batches(
                batches, lambda: self.read_batch, engine="local", forked=True, progress=progress
            )
        return self._read(texts, regions, progress=progress)

    def read_batch(self, batch: list[tuple[str, list[Region] | None]]) -> list[list[Span]]:
        """The first passes over one batch of (text, regions) items, in this process."""
        return self._read([t for t, _ in batch], [r for _, r in batch])

    def _read(
        self, texts: list[str], regions: list[list[Region] | None], *, progress: bool = False
    ) -> list[list[Span]]:
        """`map_first_passes` in this process."""
        from tqdm import tqdm

        scans = [_caps_normalised(t) if _mostly_upper(t) else t for t in texts]
        pieces = [
            (i, lo, hi)
            for i, (s, r) in enumerate(zip(scans, regions, strict=True))
            for lo, hi in ([(0, len(s))] if r is None else r)
        ]
        # long texts are read in bounded windows (spaCy refuses over 1M characters: E088)
        found = ner_spans(
            self.nlp,
            (scans[i][lo:hi] for i, lo, hi in pieces),
            lambda doc: _spacy_spans(doc, self.entity_labels),
        )
        ner: list[list[Span]] = [[] for _ in texts]
        for (i, lo, _), spans in zip(
            tqdm(pieces, disable=not progress, desc="de-identifying", unit="text"), found, strict=True
        ):
            ner[i] += [replace(s, start=s.start + lo, end=s.end + lo) for s in spans]
        return [self.first_pass(*args) for args in zip(texts, scans, ner, strict=True)]

    def finish(self, text: str, first: list[Span], propagation: Propagation) -> list[Span]:
        """The second map step: a text's own spans, the study's names propagated into it,
        overlaps merged, the allow-list applied."""
        spans = first + propagation.spans(text)
        return self._allowed_removed(text, [_with_article(text, s) for s in merge_overlaps(spans, text)])

    def detect_many(
        self,
        texts: list[str],
        *,
        known: dict[str, list[Span]] | None = None,
        regions: dict[str, list[Region]] | None = None,
        progress: bool = False,
    ) -> list[list[Span]]:
        """Spans per text: the first pass over each distinct text (a survey's question before
        each answer is read once; `known` holds first passes already made), the study's
        surfaces gathered (each occurrence counts), then propagated into every text."""
        known = known or {}
        distinct = [t for t in dict.fromkeys(texts) if t not in known]
        new = self.map_first_passes(
            distinct, regions=[(regions or {}).get(t) for t in distinct], progress=progress
        )
        first = {**known, **dict(zip(distinct, new, strict=True))}
        propagation = Propagation.gather(texts, [first[t] for t in texts])
        done = {t: self.finish(t, first[t], propagation) for t in dict.fromkeys(texts)}
        return [list(done[t]) for t in texts]

    def _allowed_removed(self, text: str, spans: list[Span]) -> list[Span]:
        if not self.allow:
            return spans
        return [s for s in spans if _strip_possessive(text[s.start : s.end]).casefold() not in self.allow]


def _batch_size(n: int, processes: int) -> int:
    """Texts per batch of a forked first pass: about four batches per process, so that a
    process that drew short texts takes another, and at most 500 texts."""
    return max(1, min(500, -(-n // (4 * processes))))


def _with_article(text: str, span: Span) -> Span:
    """ "the ICB" is one name: take the article along, so "[ORG_1]" reads on its own."""
    before = text[max(0, span.start - 4) : span.start]
    if span.label in ("ORG", "SERVICE") and re.search(r"\b[Tt]he $", before):
        return Span(span.start - 4, span.end, span.label, span.detector, span.score, span.role)
    return span


def _strip_possessive(surface: str) -> str:
    return re.sub(r"['\u2019]s$", "", surface.strip())


class Propagation:
    """The reduce step: the names, places and organisations found anywhere in the study
    (`gather`), to be marked wherever else they occur (`spans`)."""

    def __init__(self, labels: dict[str, str]):
        self.labels = labels
        self._matcher = TermMatcher(labels)

    def spans(self, text: str) -> list[Span]:
        return [
            Span(m.start, m.end, self.labels[m.term], "propagated", 0.7) for m in self._matcher.finditer(text)
        ]

    @classmethod
    def gather(cls, texts: list[str], found: list[list[Span]]) -> Propagation:
        """Surfaces that are ordinary words ("Hope") are propagated only when found twice or
        more, and only where capitalised; each token of a multi-word person name and the name
        part of an organisation ("Royal Kennet" from "Royal Kennet Hospital") are propagated
        too. Acronyms are propagated like any name: clinical shorthand that spaCy reads as an
        organisation ("NOK") it reads so nearly everywhere anyway (4,540 of 4,540 "RA" in the
        clinical stress set), and a study's own initials ("ICB") must go wherever they occur."""
        counts: Counter[tuple[str, str]] = Counter()
        for text, spans in zip(texts, found, strict=True):
            for s in spans:
                if s.label in PROPAGATED_LABELS and s.score >= 0.6:
                    counts.update(_surfaces(text, s))
        labels: dict[str, str] = {}
        for (surface, label), n in counts.most_common():
            if not surface[:1].isupper() or surface in labels:
                continue
            if all(is_common_word(w) for w in surface.split()) and n < 2:
                continue
            labels[surface] = label
        return cls(labels)


def _surfaces(text: str, s: Span) -> list[tuple[str, str]]:
    surface = " ".join(_strip_possessive(text[s.start : s.end]).split())
    out = [(surface, s.label)]
    tokens = surface.split()
    if s.label == "PERSON" and len(tokens) > 1:
        for token in tokens[1:] if tokens[0].casefold().rstrip(".") in _TITLES else tokens:
            if token[:1].isupper() and len(token) > 1:
                out.append((token, "PERSON"))
    if s.label == "ORG":
        stem = _ORG_HEAD.sub("", surface)
        if stem != surface and len(stem) > 3:
            out.append((stem, "ORG"))
    return out


def _ner_listens_to_tok2vec(nlp) -> bool:
    if "ner" not in nlp.pipe_names or "tok2vec" not in nlp.pipe_names:
        return False
    return any(getattr(layer, "name", "") == "tok2vec-listener" for layer in nlp.get_pipe("ner").model.walk())


@dataclass(frozen=True)
class DetectorSpec:
    """Everything a detector is made of, as plain data: `load()` builds it, and calling the
    spec (the setup of a `pipeline.engine` job) loads it once per worker and returns the first
    pass over a batch of (text, regions) items."""

    spacy_model: str
    entity_labels: tuple[str, ...]
    register: Register
    known_names: tuple[str, ...]
    allow: frozenset[str]

    def load(self) -> Detector:
        return load_detector(
            self.spacy_model,
            entity_labels=self.entity_labels,
            register=self.register,
            known_names=self.known_names,
            allow=self.allow,
        )

    def __call__(self) -> Callable[[list], list[list[Span]]]:
        return self.load().read_batch  # in the worker's own process


def load_detector(
    spacy_model: str,
    *,
    entity_labels: Iterable[str],
    register: Register | None = None,
    known_names: Iterable[str] = (),
    allow: frozenset[str] = frozenset(),
    engine: str = "local",
) -> Detector:
    """A complete detector on the installed spaCy pipeline `spacy_model`, its first passes run
    by `engine` (`pipeline.engine`)."""
    import spacy

    try:
        nlp = spacy.load(spacy_model)
        # NER only; in the small English pipelines NER has its own token embedding, so the
        # shared tok2vec (used by tagger and parser) is not needed either.
        keep = {"ner"} | ({"tok2vec"} if _ner_listens_to_tok2vec(nlp) else set())
        nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in keep])
    except OSError as e:
        raise UserError(f"params deid.spacy_model: spaCy pipeline '{spacy_model}' is not installed") from e
    spec = DetectorSpec(spacy_model, tuple(entity_labels), register or Register(), tuple(known_names), allow)
    return Detector(
        nlp,
        entity_labels=spec.entity_labels,
        register=spec.register,
        known_names=spec.known_names,
        allow=allow,
        engine=engine,
        spec=spec,
    )


def study_detector(
    params: DeidParams,
    *,
    study: Path | None,
    register: Path | None,
    allow: Path | None,
    speakers: list[str],
    engine: str = "local",
) -> tuple[Detector, Register]:
    """The detector and register for a study (its register.yaml and allow.yaml when present,
    unless given) or for the files given; its first passes run by `engine`."""
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
        engine=engine,
    )
    return detector, reg
