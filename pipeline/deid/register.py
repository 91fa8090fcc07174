"""The study register (known people, places, services) and the analyst's allow-list.

register.yaml (sensitive: keep it out of git for a real study)::

    people:
      - {name: Helen Okafor, aliases: [Helen, Dr Okafor], role: clinician}
      - Kirsty                        # a bare name is fine too
    places: [Thatcham, {name: Cranbourne House, aliases: [Cranbourne]}]
    services: [{name: Little Roots, aliases: [the Roots team]}]
    titles: [Perinatal and Infant Mental Health Programme Lead]   # job titles that identify

allow.yaml: ``allow: [NHS England, Mind]`` -- terms never replaced (public bodies and the
like); matched case-insensitively against a detected span's whole text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.deid.spans import Span
from pipeline.errors import UserError
from pipeline.io import read_yaml

SECTIONS = {"people": "PERSON", "places": "PLACE", "services": "SERVICE", "titles": "JOB_TITLE"}
_ROLE = re.compile(r"^[a-z][a-z_]{0,30}$")
MAX_TERM = 200  # characters in a register name or alias (each becomes part of one regex)


@dataclass(frozen=True)
class Entry:
    name: str  # canonical name: every alias groups under it
    label: str
    role: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Register:
    entries: tuple[Entry, ...] = ()

    def terms(self) -> list[tuple[str, Entry]]:
        """(surface, entry) pairs, longest surface first so "Helen Okafor" beats "Helen"."""
        pairs = [(s, e) for e in self.entries for s in (e.name, *e.aliases)]
        return sorted(pairs, key=lambda p: -len(p[0]))

    def canonical(self, surface: str) -> Entry | None:
        """The entry a surface names: exactly (any case), else within one letter's edit."""
        folded = surface.casefold()
        for term, entry in self.terms():
            if term.casefold() == folded:
                return entry
        for term, entry in self.terms():
            t = term.casefold()
            if len(t) >= 5 and " " not in t and abs(len(t) - len(folded)) <= 1 and _one_edit(t, folded):
                return entry
        return None


def read_register(path: Path) -> Register:
    data = read_yaml(path, what="register") or {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected sections {', '.join(SECTIONS)}")
    entries = []
    for section, items in data.items():
        if section not in SECTIONS:
            raise UserError(f"{path}: unknown section '{section}' (allowed: {', '.join(SECTIONS)})")
        if not isinstance(items, list):
            raise UserError(f"{path}: '{section}' must be a list")
        for i, item in enumerate(items):
            where = f"{path}: {section}[{i}]"
            if isinstance(item, str):
                item = {"name": item}
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("name"), str)
                or not item["name"].strip()
            ):
                raise UserError(f"{where}: expected a name or a mapping with name, aliases, role")
            unknown = sorted(str(k) for k in set(item) - {"name", "aliases", "role"})
            if unknown:
                raise UserError(f"{where}: unknown key '{unknown[0]}' (allowed: name, aliases, role)")
            aliases = item.get("aliases") or []
            if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
                raise UserError(f"{where}: 'aliases' must be a list of names")
            if max(len(n) for n in (item["name"], *aliases)) > MAX_TERM:
                raise UserError(f"{where}: a name or alias longer than {MAX_TERM} characters")
            role = item.get("role")
            if role is not None and not (isinstance(role, str) and _ROLE.match(role)):
                raise UserError(f"{where}: 'role' must be a lower-case word such as parent or staff")
            entries.append(
                Entry(item["name"].strip(), SECTIONS[section], role, tuple(a.strip() for a in aliases))
            )
    return Register(tuple(entries))


def read_allow(path: Path) -> frozenset[str]:
    data = read_yaml(path, what="allow-list") or {}
    if not isinstance(data, dict) or set(data) - {"allow"}:
        raise UserError(f"{path}: expected a mapping with one key 'allow' (a list of terms)")
    terms = data.get("allow") or []
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise UserError(f"{path}: 'allow' must be a list of terms")
    return frozenset(t.strip().casefold() for t in terms)


def register_spans(text: str, register: Register, compiled: re.Pattern[str] | None = None) -> list[Span]:
    """Case-insensitive matches of register names and aliases, with possessives and
    one-letter misspellings of names of 5+ letters."""
    if not register.entries:
        return []
    pattern = compiled or register_pattern(register)
    spans = []
    for m in pattern.finditer(text):
        entry = register.canonical(m.group("term"))
        if entry is not None:
            spans.append(Span(m.start(), m.end(), entry.label, "register", 1.0, entry.role))
    return spans


def register_pattern(register: Register) -> re.Pattern[str]:
    alternatives = []
    for term, _ in register.terms():
        alternatives.append(re.escape(term).replace(r"\ ", r"\s+"))
        if len(term) >= 5 and " " not in term:
            # one substituted, dropped or doubled letter: "Kirsti", "Shelly", "Marrta"
            for i in range(1, len(term)):
                alternatives.append(re.escape(term[:i]) + r"\w?" + re.escape(term[i + 1 :]))
    body = "|".join(alternatives)
    return re.compile(rf"(?<!\w)(?P<term>{body})(?:['\u2019]s)?(?!\w)", re.IGNORECASE)


def _one_edit(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))
