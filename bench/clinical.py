"""A de-identification stress set: short clinical-style notes, mixed case, full of capitalised
abbreviations (BP, NEWS2, CXR, D/W SHO) beside names, wards, hospitals, dates, phone and NHS
numbers. Capitalised abbreviations are what spaCy takes for organisations, so such notes yield
thousands of candidate surfaces: the case where study-wide propagation must stay linear.

Generated, seeded, with gold spans; half the people's names and places come from outside every
gazetteer (built from syllables), the rest from common lists. Nothing here is real.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

ABBREVIATIONS = (
    "BP HR RR SpO2 GCS NEWS2 CXR ECG FBC U&E CRP LFTs MRSA DNACPR NBM TTO SHO FY1 SpR ANP HCA RN NOK "
    "PRN OD BD TDS QDS PO IV IM SC PEG NG PICC UTI AKI COPD CCF T2DM AF CVA TIA PE DVT OT PT SALT MDT "
    "GP A&E ITU HDU AMU SDEC VTE IVAB MSU CT MRI ABG VBG EWS"
).split()
COMMON_FIRST = (
    "Margaret John Susan David Patricia Michael Linda James Barbara Robert Helen Peter Joan Paul".split()
)
COMMON_LAST = "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans".split()
COMMON_PLACES = "Reading Newbury Swindon Oxford Basingstoke Slough Bracknell Wokingham".split()
HOSPITALS = (
    "Royal Berkshire Hospital",
    "Great Western Hospital",
    "John Radcliffe Hospital",
    "Wexham Park Hospital",
)
_ONSETS = "b br d dr g gr k kr l m n p pr s st t tr v z zh"
_NUCLEI = "a e i o u aa ei ou ia"
_CODAS = "n r l s k m nd rk lt sk v"


def _invented(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS.split()) + rng.choice(_NUCLEI.split()) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS.split())).capitalize()


@dataclass
class Note:
    parts: list[str] = field(default_factory=list)
    gold: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, text: str, label: str | None = None) -> None:
        start = sum(map(len, self.parts))
        self.parts.append(text)
        if label:
            self.gold.append((start, start + len(text), label))

    @property
    def text(self) -> str:
        return "".join(self.parts)


class _Cast:
    """The people and places of one set of notes: half invented, half common."""

    def __init__(self, rng: random.Random, n_patients: int):
        self.rng = rng
        self.patients = [self._person() for _ in range(n_patients)]
        self.staff = [self._surname() for _ in range(max(10, n_patients // 5))]
        self.towns = COMMON_PLACES + [
            _invented(rng, 2) + rng.choice(["ham", "ton", "bury", "field"]) for _ in range(8)
        ]
        self.wards = [_invented(rng, 2) + " Ward" for _ in range(6)] + ["Kestrel Ward", "Victoria Ward"]

    def _surname(self) -> str:
        return self.rng.choice(COMMON_LAST) if self.rng.random() < 0.5 else _invented(self.rng, 2)

    def _person(self) -> tuple[str, str]:
        first = self.rng.choice(COMMON_FIRST) if self.rng.random() < 0.5 else _invented(self.rng, 2)
        return first, self._surname()


UPDATES = (
    "Seen by team, plan to continue",
    "Bloods sent, chase",
    "Family visited, aware of",
    "Escalated to nurse in charge re",
    "Pt comfortable, awaiting",
    "Handed over to night staff incl.",
)


def _observations(rng: random.Random) -> str:
    bp = f"BP {rng.randint(90, 170)}/{rng.randint(50, 100)}"
    return f"{bp}, HR {rng.randint(50, 130)}, SpO2 {rng.randint(88, 100)}% RA, NEWS2 {rng.randint(0, 9)}. "


def _abbrevs(rng: random.Random, n: int) -> str:
    return ", ".join(rng.sample(ABBREVIATIONS, n))


def _nhs_number(rng: random.Random) -> str:
    """A number in the 999 range (never issued) with a valid modulus-11 check digit."""
    while True:
        digits = [9, 9, 9] + [rng.randint(0, 9) for _ in range(6)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            d = "".join(map(str, digits)) + str(check % 11)
            return f"{d[:3]} {d[3:6]} {d[6:]}"


def _note(rng: random.Random, cast: _Cast, i: int) -> Note:
    note = Note()
    first, last = cast.patients[i % len(cast.patients)]
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2019, 2025)
    note.add(f"{rng.choice(['Obs', 'Nursing note', 'Ward round', 'Night shift', 'Handover'])} ")
    note.add(f"{day:02d}/{month:02d}/{year}", "DATE")
    note.add(f" {rng.randint(0, 23):02d}:{rng.choice(['00', '15', '30', '45'])}. Pt ")
    note.add(f"{first} {last}", "PERSON")
    note.add(" on ")
    note.add(rng.choice(cast.wards), "LOCATION")
    note.add(f", bed {rng.randint(1, 30)}. ")
    note.add(_observations(rng))
    note.add(f"C/o {rng.choice(['SOB', 'chest pain', 'N&V', 'pain L hip', 'confusion', 'poor PO intake'])}. ")
    note.add(f"Plan: {_abbrevs(rng, rng.randint(3, 6))}. ")
    note.add("D/W Dr ")
    note.add(rng.choice(cast.staff), "PERSON")
    grade = rng.choice(["SHO", "SpR", "FY1", "Reg", "Cons"])
    note.add(f" ({grade}), for {_abbrevs(rng, 2)} and r/v in {rng.randint(1, 12)}h. ")
    for _ in range(rng.randint(2, 5)):  # updates through the shift
        note.add(f"{rng.randint(0, 23):02d}:{rng.choice(['10', '20', '40', '50'])} {_observations(rng)}")
        note.add(f"{rng.choice(UPDATES)} {_abbrevs(rng, rng.randint(1, 3))}. ")
        if rng.random() < 0.3:
            note.add(first, "PERSON")
            note.add(
                f" {rng.choice(['asking for', 'declined', 'happy with', 'tolerating'])} {_abbrevs(rng, 1)}. "
            )
    if rng.random() < 0.5:
        relation = rng.choice(["wife", "husband", "daughter", "son", "sister", "neighbour"])
        note.add(f"NOK ({relation} ")
        note.add(rng.choice(COMMON_FIRST) if rng.random() < 0.5 else _invented(rng, 2), "PERSON")
        note.add(") informed via tel ")
        note.add(f"01632 960{rng.randint(0, 999):03d}", "PHONE")
        note.add(". ")
    if rng.random() < 0.4:
        note.add("Lives alone in ")
        note.add(rng.choice(cast.towns), "LOCATION")
        note.add(f", {_abbrevs(rng, 2)} in place. ")
    if rng.random() < 0.3:
        note.add("Transfer from ")
        note.add(rng.choice(HOSPITALS), "ORGANIZATION")
        note.add(f" ({rng.choice(['A&E', 'AMU', 'SDEC', 'ITU'])}). ")
    if rng.random() < 0.25:
        note.add("NHS no ")
        note.add(_nhs_number(rng), "NHS_NUMBER")
        note.add(". ")
    note.add(
        f"{rng.choice(['Settled', 'Mobilising with frame', 'Family aware', 'Pain controlled', 'For MDT'])}, "
    )
    signed = f"{rng.choice(cast.staff)[0]}.{rng.choice('ABCDEFGHJKLMNPRSTW')}."
    note.add(f"{rng.choice(['RN', 'HCA', 'S/N', 'ANP'])} {signed}")
    return note


def clinical_notes(n: int, *, seed: int = 0) -> tuple[list[str], list[tuple[str, int, int, str]]]:
    """`n` distinct notes and their gold spans (doc id = the note's number)."""
    rng = random.Random(seed)
    cast = _Cast(rng, max(20, n // 4))
    texts, gold, seen = [], [], set()
    while len(texts) < n:
        note = _note(rng, cast, len(texts))
        if note.text in seen:
            continue
        seen.add(note.text)
        gold += [(str(len(texts)), s, e, label) for s, e, label in note.gold]
        texts.append(note.text)
    return texts, gold


# Numeric dates without a year ("seen 8/28", "28/8") beside what shares their form in notes:
# scores, doses, fractions, "24/7", durations in shorthand ("for 3/7"), scale and page numbers.
# {D}: a date (gold); the other fields are hard negatives; {N}, {T}: filler numbers and times.
DATED = (
    "Seen in clinic {D}, wound healing well.",
    "{D} - pt called re results, advised to book GP appt.",
    "Bloods {D}: Hb {N}, CRP {N}.",
    "Last BM {D}, encourage fluids.",
    "F/u booked for {D} at {T}.",
    "Discharged home {D} with DN input.",
    "Fall at home on {D}, no head injury reported.",
    "Next B12 injection due {D}.",
    "Seen by physio {D}, mobilising with frame.",
    "Swab taken {D} - MRSA neg.",
    "Rang daughter {D} to update re plan.",
    "Admitted {D} via ED with SOB.",
    "LMP {D}.",
    "Repeat CXR {D} showed some improvement.",
    "Cast off {D}, then physio.",
    "Not seen since {D}.",
    "Tues {D} - reviewed by SpR, happy for d/c.",
    "Flu jab given {D}.",
    "On holiday {D}-{D}, meds in blister pack.",
    "Wound check {D} and {D}.",
    "Referral sent {D}, awaiting reply.",
    "EDD {D}.",
    "MDT {D}: for conservative mx.",
    "Post-op day 1 ({D}).",
    "Pt says pain started around {D}.",
    "Wt {N}kg ({D}).",
    "Mum rang {D} @ {T} worried about feeding.",
    "{D}: temp {N}.{N}, started on abx.",
    "Covid swab {D} neg.",
    "Had a good weekend, seen {D} by OT.",
)
HARD = (
    "Pain {SCORE10} on movement.",
    "Rates pain {SCORE10}, settled with oramorph.",
    "Pain score {SCORE10} at rest, {SCORE10} on mobilising.",
    "Took {HALF} tab of zopiclone at {T}.",
    "Given {HALF} dose of lactulose.",
    "Ate {PART} of breakfast.",
    "Drank about {PART} of a cup of tea.",
    "Family present 24/7 at the moment.",
    "Needs 24/7 supervision per care plan.",
    "Obs {HALF} hourly overnight.",
    "Power {SCORE5} R arm, {SCORE5} L arm.",
    "PHQ-9 {PHQ}, GAD-7 {GAD}.",
    "EPDS score {EPDS} today.",
    "Page {PAGE} of consent form not signed.",
    "Symptoms for {DAYS}, no fever.",
    "Cough {DAYS} ago, now resolved.",
    "r/v in {DAYS} with bloods.",
    "{MONTHS} hx of low mood.",
    "Apgars {SCORE10} at 5 mins.",
    "Murmur grade {MURMUR}, known to cardiology.",
    "VA {SNELLEN} R, {SNELLEN} L.",
    "Mood {SCORE10} today, low.",
    "Confidence {SCORE10} with stairs.",
    "Walks {PART} mile with stick.",
    "Fluid intake {PART} of target.",
    "Scored {SCORE10} on memory recall.",
)
FILLER = (
    "Settled overnight.",
    "Pt comfortable, NOK aware.",
    "Plan: {ABBREVS}.",
    "No new concerns raised.",
    "D/W nurse in charge.",
)


def _date(rng: random.Random, day_first: bool) -> str:
    month = rng.randint(1, 12)
    day = rng.randint(1, (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1])
    first, second = (day, month) if day_first else (month, day)
    return f"{first:02d}/{second:02d}" if rng.random() < 0.15 else f"{first}/{second}"


def _negative(rng: random.Random, kind: str) -> str:
    """A hard negative of one kind: what the clinician would write there."""
    pick = {
        "SCORE10": lambda: f"{rng.randint(1, 10)}/10",
        "SCORE5": lambda: f"{rng.randint(1, 5)}/5",
        "HALF": lambda: rng.choice(["1/2", "1/2", "1/4", "3/4"]),
        "PART": lambda: rng.choice(["1/2", "1/3", "2/3", "1/4", "3/4"]),
        "PHQ": lambda: f"{rng.randint(1, 27)}/27",
        "GAD": lambda: f"{rng.randint(1, 21)}/21",
        "EPDS": lambda: f"{rng.randint(1, 30)}/30",
        "PAGE": lambda: f"{rng.randint(1, 3)}/{rng.randint(3, 12)}",
        "DAYS": lambda: f"{rng.randint(1, 10)}/7",
        "MONTHS": lambda: f"{rng.randint(1, 11)}/12",
        "MURMUR": lambda: f"{rng.randint(1, 4)}/6",
        "SNELLEN": lambda: rng.choice(["6/6", "6/9", "6/12", "6/18", "6/24"]),
    }
    return pick[kind]()


def _fill(rng: random.Random, note: Note, template: str, *, day_first: bool) -> None:
    for i, piece in enumerate(re.split(r"\{(\w+)\}", template)):
        if i % 2 == 0:
            note.add(piece)
        elif piece == "D":
            note.add(_date(rng, day_first), "DATE")
        elif piece == "N":
            note.add(str(rng.randint(1, 99)))
        elif piece == "T":
            note.add(
                rng.choice([f"{rng.randint(8, 17)}:{rng.choice(['00', '30'])}", f"{rng.randint(1, 11)}am"])
            )
        elif piece == "ABBREVS":
            note.add(_abbrevs(rng, rng.randint(2, 4)))
        else:
            note.add(_negative(rng, piece), "NEGATIVE")


def dated_notes(n: int, *, seed: int = 0) -> tuple[list[str], list[tuple[str, int, int, str]], list]:
    """`n` short notes mixing dates without a year (month/day in half the notes, day/month in
    the rest), hard negatives and filler; returns texts, gold DATE spans and the negatives'
    spans (doc id = the note's number)."""
    rng = random.Random(seed)
    texts, gold, negatives = [], [], []
    for doc in map(str, range(n)):
        note, day_first = Note(), rng.random() < 0.5
        sentences = rng.sample(DATED, rng.randint(1, 3)) + rng.sample(HARD, rng.randint(1, 3))
        sentences += rng.sample(FILLER, rng.randint(0, 2))
        rng.shuffle(sentences)
        for sentence in sentences:
            _fill(rng, note, sentence + " ", day_first=day_first)
        note.add(_observations(rng).strip())
        gold += [(doc, s, e, "DATE") for s, e, label in note.gold if label == "DATE"]
        negatives += [(doc, s, e) for s, e, label in note.gold if label == "NEGATIVE"]
        texts.append(note.text)
    return texts, gold, negatives
