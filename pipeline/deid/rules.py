"""Rule recognizers for identifiers that follow a pattern: UK phone numbers (written or
spoken), NHS and National Insurance numbers, postcodes, emails, URLs, social handles,
dates (numeric day/month ones read by their context), ages, titled names and street addresses.

Each recognizer returns `Span`s with offsets into the text it was given.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pipeline.deid.lexicon as lex
from pipeline.deid.spans import Span

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(
    r"(?:\bhttps?://|\bwww\.)[^\s<>\"]+[^\s<>\".,;:!?)]"
    r"|\b[a-z0-9][\w-]*(?:\.[\w-]+)*\.(?:uk|com|org|net|io|info|co|gov|nhs|ac)(?:/[^\s<>\"]*[^\s<>\".,;:!?)])?",
    re.IGNORECASE,
)
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?")

# UK postcode areas (the letters before the first digit), used to validate partial postcodes.
POSTCODE_AREAS = frozenset(
    """AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY
    E EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE LL
    LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL SM SN
    SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS WV YO ZE""".split()
)
_FULL_POSTCODE = re.compile(r"\b([A-Z]{1,2})\d[A-Z\d]?\s?\d[A-Z]{2}\b", re.IGNORECASE)
_OUTWARD_CODE = re.compile(r"\b([A-Z]{1,2})\d{1,2}[A-Z]?\b")  # upper case only: "RG19", "SW1A"

_TEN_DIGITS = re.compile(r"(?<![\d+])\d{3}[\s-]?\d{3}[\s-]?\d{4}(?![\d])")
_NHS_CONTEXT = re.compile(r"\bNHS\b|\bnumber\b|\bno\.?\s*$|\bCHI\b", re.IGNORECASE)
_NI_NUMBER = re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.IGNORECASE)
_SSN = re.compile(r"(?<![\d-])\d{3}[- ]\d{2}[- ]\d{4}(?![\d-])")
# Long digit runs (card, account, record numbers) and letter-prefixed ids ("F162823540116").
_LONG_NUMBER = re.compile(r"(?<![\w-])(?:\d[ -]?){11,18}\d(?![\w-])|(?<![\w-])\d{8,}(?![\w-])")
_ALNUM_ID = re.compile(
    r"\b[A-Z]{1,3}\d{6,}\b|\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b", re.IGNORECASE
)
_IP = re.compile(
    r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"
    r"|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}(?::|[0-9a-fA-F]{1,4})(?:[0-9a-fA-F]{0,4}:?)*(?![\w:])"
)
# Any written phone number: optional +country and (area), then 7+ digits in groups, extension.
_ANY_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w])"
)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+44\s?(?:\(0\)\s?)?|\(?0)\d{2,4}\)?(?:[\s-]?\d){6,8}(?!\d)"
    r"|(?<![\w+])\+\d{1,3}(?:[\s-]?\d){7,12}(?!\d)"
)
_DIGIT_WORD = r"(?:oh|o|zero|nought|one|two|three|four|five|six|seven|eight|nine)"
_SPOKEN_DIGITS = re.compile(
    rf"\b(?:(?:double|triple)\s+)?{_DIGIT_WORD}(?:[\s,-]+(?:(?:double|triple)\s+)?{_DIGIT_WORD})+\b",
    re.IGNORECASE,
)
_DIGIT_COUNT = re.compile(rf"\b(double|triple)\s+{_DIGIT_WORD}\b|\b{_DIGIT_WORD}\b", re.IGNORECASE)

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
)
_ORDINAL_WORDS = (
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
    r"twenty[- ](?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|thirtieth|thirty[- ]first)"
)
_DAY = rf"(?:\d{{1,2}}(?:st|nd|rd|th)?|{_ORDINAL_WORDS})"
_YEAR = r"(?:19|20)\d{2}"
_DATE = re.compile(
    rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}\b(?:,?\s+{_YEAR}\b)?"  # the 3rd of March 2024
    rf"|\b{_MONTH}\s+(?:the\s+)?{_DAY}\b(?:,?\s+{_YEAR}\b)?"  # March 3rd, 2024
    rf"|\b{_MONTH}\s+{_YEAR}\b"  # March 2027
    r"|\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b"  # 2024-03-03 12:20:39
    r"|(?<!\d)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)"  # 20211130, as in file names
    r"|\b\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})\b"  # 03/03/2024
    r"|\b(?i:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b"
    rf"|\b{_YEAR}\b"  # a year on its own
    r"|\b(?:January|February|March|April|June|July|August|September|October|November|December)\b"
)
# "May" is a month only after a word that takes a date.
_MAY = re.compile(r"\b(?i:in|of|on|since|until|till|by|from|last|next|early|late|mid)\s+(May)\b")
# Day and month without a year ("8/28", "28/8"); scores, doses and fractions share the form,
# so `numeric_dates` reads the words around it. Not inside a longer number, path or date.
_DAY_MONTH = re.compile(r"(?<![\w/.:])(\d{1,2})/(\d{1,2})(?![\w/]|[.,]\d)")
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# A clause ends at ! ? ; a line break, or a full stop after a word, a figure or a bracket ("low.
# 3/22"), not after an abbreviation's letter or two ("p. 3/22").
_CLAUSE_START = re.compile(r"[!?;\n]|(?:(?<=[^\W\d_]{3})|(?<=[\d)]))\.\s+(?=[A-Z(\d]|$)")
_WORD = re.compile(r"[a-z][\w./'-]*|\d[\d/.:]*")
# A range or a mixed number before the unit: "1/2-1 tab", "1/2 to 1 tab", "1 1/2 hours".
_RANGE_TAIL = re.compile(r"\s*(?:-|to|or)\s*\d+(?:/\d+)?")

_CARDINAL = (
    r"(?:\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
)
_NUMBER_TAIL = r"(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?(?:-something|-odd|ish)?"
_PLAIN_NUMBER = rf"{_CARDINAL}{_NUMBER_TAIL}"  # "nineteen", "seventy-six", "thirty-something"
_NUMBER = rf"(?:{_CARDINAL}|a hundred|a|an|couple of|few){_NUMBER_TAIL}"  # also "a", "a couple of"
_UNIT = r"(?:days?|weeks?|months?|years?|yrs?|wks?)"
_AGE_QUALIFIER = r"(?:(?:nearly|almost|about|around|roughly|only|just|over|under)\s+)?"
# A span of time is an age when it is "old", "corrected" or gestation, or follows a verb or
# preposition that takes an age ("she's", "was about", "referred at"); "for two years" and
# "six weeks later" are durations, not ages.
_AGE_WITH_UNIT = re.compile(
    rf"\b{_AGE_QUALIFIER}{_NUMBER}(?:\s+and\s+a\s+(?:bit|half))?(?:[- ]{_UNIT}[- ]old"
    rf"|\s+{_UNIT}\s+(?:old|corrected|gestation)|\s+corrected)\b",
    re.IGNORECASE,
)
_AGE_AFTER_VERB = re.compile(
    rf"(?:\b(?:is|was|were|at|aged|turned|turning|by)\s+|['\u2019]s\s+)"
    rf"({_AGE_QUALIFIER}{_NUMBER}(?:\s+and\s+a\s+(?:bit|half))?\s+{_UNIT})\b"
    r"(?!\s+(?:ago|later|before|after|earlier|since|long|of|waiting|wait|in|on|off)\b)",
    re.IGNORECASE,
)
_AGE_ANSWER = re.compile(rf"(?:^|(?<=[.!?]\s))({_NUMBER}\s+{_UNIT})(?=[.,])", re.IGNORECASE)
_AGE_CONTEXT = re.compile(
    rf"\b(?:I'm|I am|I was|she's|he's|she is|he is|she was|he was|who's|who is|who was|aged|turned|turning)"
    rf"\s+(?:only\s+|just\s+|about\s+|nearly\s+|almost\s+)?({_PLAIN_NUMBER})"
    r"(?=\s*(?:[,.;!?)]|$|now\b|then\b|and\b|so\b|when\b|but\b|at the time\b))"
    rf"|\ba\s+({_PLAIN_NUMBER}-(?:something|odd|year-old))\b",
    re.IGNORECASE,
)

TITLES = ("Dr", "Doctor", "Mr", "Mrs", "Ms", "Miss", "Mx", "Prof", "Professor", "Nurse", "Sister", "Midwife")
_TITLED_NAME = re.compile(
    rf"\b(?:{'|'.join(TITLES)})\.?\s+"
    r"[A-Z][\w'\u2019-]+(?:\s+[A-Z][\w'\u2019-]+)?"
)
_UNIT = re.compile(r"\b(?:Apt|Apartment|Suite|Ste|Unit|Flat|Box|PSC|PO Box|P\.O\. Box)\.?\s*#?\d+[A-Z]?\b")
_NUMBER_STREET = re.compile(r"\b\d{1,5}[A-Za-z]?[ \t]+(?:[A-Z][\w'\u2019.-]*[ \t]+){0,3}[A-Z][\w'\u2019.-]*")
_JOB_TITLE = re.compile(
    r"\bHead\s+of\s+[A-Z][\w'\u2019]*(?:\s+[A-Z][\w'\u2019]*){0,3}"
    r"|\b(?:[A-Z][\w'\u2019-]*\s+(?:(?:and|of|for|&)\s+)?){1,6}"
    r"(?:Lead|Manager|Director|Officer|Co-?ordinator|Commissioner|Consultant|Specialist|Adviser|Advisor)\b"
)
_STREET = re.compile(
    r"\b(?:\d{1,4}[a-z]?,?\s+)?(?:[A-Z][\w'\u2019-]+\s+){1,3}"
    r"(?:Street|St|Road|Rd|Lane|Close|Avenue|Ave|Way|Drive|Crescent|Place|Court|Gardens|Terrace|"
    r"Grove|Row|Square|Walk|Mews|Parade|Rise|View|Green)\b"
)


def nhs_checksum_ok(digits: str) -> bool:
    """The NHS number mod-11 check digit."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def _matches(pattern: re.Pattern[str], text: str, label: str, score: float) -> list[Span]:
    return [Span(m.start(), m.end(), label, "rules", score) for m in pattern.finditer(text)]


def nhs_numbers(text: str) -> list[Span]:
    spans = []
    for m in _TEN_DIGITS.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if nhs_checksum_ok(digits):
            spans.append(Span(m.start(), m.end(), "NHS_NUMBER", "rules", 1.0))
        elif _NHS_CONTEXT.search(text[max(0, m.start() - 40) : m.start()]):
            spans.append(Span(m.start(), m.end(), "NHS_NUMBER", "rules", 0.7))
    return spans


def postcodes(text: str) -> list[Span]:
    spans = [
        Span(m.start(), m.end(), "POSTCODE", "rules", 1.0)
        for m in _FULL_POSTCODE.finditer(text)
        if m.group(1).upper() in POSTCODE_AREAS
    ]
    spans += [
        Span(m.start(), m.end(), "POSTCODE", "rules", 0.6)
        for m in _OUTWARD_CODE.finditer(text)
        if m.group(1) in POSTCODE_AREAS
    ]
    return spans


def written_phones(text: str) -> list[Span]:
    spans = _matches(_PHONE, text, "PHONE", 0.9)
    for m in _ANY_PHONE.finditer(text):
        if sum(c.isdigit() for c in m.group()) >= 7:
            spans.append(Span(m.start(), m.end(), "PHONE", "rules", 0.6))
    return spans


def spoken_phones(text: str) -> list[Span]:
    """Numbers read out as words: "oh seven seven oh oh, nine double oh, ..." (7+ digits)."""
    spans = []
    for m in _SPOKEN_DIGITS.finditer(text):
        digits = 0
        for d in _DIGIT_COUNT.finditer(m.group()):
            digits += {"double": 2, "triple": 3}.get((d.group(1) or "").lower(), 1)
        if digits >= 7:
            spans.append(Span(m.start(), m.end(), "PHONE", "rules", 0.9))
    return spans


def dates(text: str) -> list[Span]:
    spans = _matches(_DATE, text, "DATE", 0.8)
    return spans + [Span(m.start(1), m.end(1), "DATE", "rules", 0.7) for m in _MAY.finditer(text)]


def _is_day_month(a: int, b: int) -> bool:
    """Month/day or day/month, either way a day that month has."""
    return any(0 < m <= 12 and 0 < d <= _DAYS_IN_MONTH[m] for m, d in ((a, b), (b, a)))


def _words_before(text: str, start: int) -> list[str]:
    """Up to five lower-case words before `start`, within its clause, nearest last."""
    head = text[max(0, start - 80) : start]
    cut = [m.end() for m in _CLAUSE_START.finditer(head)]
    words = _WORD.findall(head[cut[-1] if cut else 0 :].lower())
    return [w.rstrip(".:'") for w in words[-5:]]


def _first_word_after(text: str, end: int) -> str:
    tail = text[end : end + 40].lower()
    tail = tail[m.end() :] if (m := _RANGE_TAIL.match(tail)) else tail
    word = _WORD.match(tail.lstrip())
    return word.group().rstrip(".:'") if word else ""


def _cue(word: str) -> str:
    """`PHQ-9` -> `phq`: a scale's name without its number."""
    return re.sub(r"-?\d+$", "", word)


def _day_month_is_date(text: str, m: re.Match[str]) -> bool:
    """Decide "8/28" from its neighbours: a unit or a count after it, a duration in clinical
    shorthand, a score's or a page's cue before it say no; a date's cue says yes; nothing: yes."""
    a, b = int(m.group(1)), int(m.group(2))
    if not _is_day_month(a, b):
        return False
    before, after = _words_before(text, m.start()), _first_word_after(text, m.end())
    nearest = _cue(before[-1]) if before else ""
    if after in lex.NOT_DATE_AFTER:
        return False
    booked = len(before) > 1 and before[-2] in lex.BOOKING_CUES
    if b in lex.DURATION_DENOMINATORS and not booked:
        if nearest in lex.DURATION_BEFORE or after in lex.DURATION_AFTER:
            return False
    if nearest in lex.DATE_CUES or nearest in lex.DATE_CUES_ADJACENT:
        return True
    if (a, b) == (24, 7):  # "24/7": round the clock, unless a date's cue says otherwise
        return False
    scale = a <= b and b in lex.SCALE_MAXIMA
    if scale and after in lex.SCORE_AFTER:
        return False
    for word in map(_cue, reversed(before)):
        if word in lex.DATE_CUES:
            return True
        if (scale and word in lex.SCORE_CUES) or (a <= b and word in lex.COUNT_CUES):
            return False
        if a < b and b in lex.FRACTION_DENOMINATORS and word in lex.DOSE_CUES:
            return False
    return True


def numeric_dates(text: str) -> list[Span]:
    """Day and month in figures, no year: "seen 3/22", "on 28/8" (not "pain 7/10", "1/2 tab")."""
    return [
        Span(m.start(), m.end(), "DATE", "rules", 0.7)
        for m in _DAY_MONTH.finditer(text)
        if _day_month_is_date(text, m)
    ]


def ages(text: str) -> list[Span]:
    spans = _matches(_AGE_WITH_UNIT, text, "AGE", 0.8)
    for pattern in (_AGE_AFTER_VERB, _AGE_ANSWER):
        spans += [Span(m.start(1), m.end(1), "AGE", "rules", 0.6) for m in pattern.finditer(text)]
    for m in _AGE_CONTEXT.finditer(text):
        group = 1 if m.group(1) else 2
        spans.append(Span(m.start(group), m.end(group), "AGE", "rules", 0.6))
    return spans


RULES: tuple[Callable[[str], list[Span]], ...] = (
    lambda t: _matches(_EMAIL, t, "EMAIL", 1.0),
    lambda t: _matches(_URL, t, "URL", 0.9),
    lambda t: _matches(_HANDLE, t, "HANDLE", 0.9),
    nhs_numbers,
    lambda t: _matches(_NI_NUMBER, t, "NI_NUMBER", 0.9),
    written_phones,
    lambda t: _matches(_SSN, t, "ID_NUMBER", 0.8),
    lambda t: _matches(_LONG_NUMBER, t, "ID_NUMBER", 0.8),
    lambda t: _matches(_ALNUM_ID, t, "ID_NUMBER", 0.7),
    lambda t: _matches(_IP, t, "IP_ADDRESS", 0.9),
    spoken_phones,
    postcodes,
    dates,
    numeric_dates,
    ages,
    lambda t: _matches(_TITLED_NAME, t, "PERSON", 0.9),
    lambda t: _matches(_STREET, t, "ADDRESS", 0.8),
    lambda t: _matches(_UNIT, t, "ADDRESS", 0.7),
    lambda t: _matches(_NUMBER_STREET, t, "ADDRESS", 0.5),
    lambda t: _matches(_JOB_TITLE, t, "JOB_TITLE", 0.6),
)


def rule_spans(text: str) -> list[Span]:
    """Every rule recognizer's spans over `text` (may overlap; resolved later)."""
    return [span for rule in RULES for span in rule(text)]
