"""Readable theme labels (a phrase the theme's own units say, from spaCy's parse), and
interview procedure recognised as such.

Method: README, section "Theme discovery" (Labels, Procedure).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from pipeline.schemas import UNASSIGNED
from pipeline.spacy_windows import pipe_windows
from pipeline.themes.keywords import keyword_text, stop_words

MAX_WORDS = 10
SAMPLE_PER_THEME = 25  # units parsed per theme: those nearest its centre
PROCEDURE_SHARE = 0.4
PROCEDURE = re.compile(
    r"\b(?:consent(?: form)?s?|information sheets?|participant information|(?:is|are|that's|we're|it's)"
    r" recording|start(?:ed)? recording|stop(?:ped)? the recording|the recording|recorder|can you hear me"
    r"|hear me (?:ok|okay|alright)|before we (?:start|begin|get going)|happy to (?:go ahead|take part)"
    r"|take part|thanks? (?:you )?(?:so much |very much )?for (?:your time|taking part|talking|joining)"
    r"|(?:good)?bye|take care|any questions for me|withdraw)\b",
    re.IGNORECASE,
)
_UNFIT = re.compile(r"[\[\]()_\d{}<>/\\|@#,;]")  # placeholders, notes, codes, markup, lists
_EDGE_WORDS = frozenset("a an the this that these those my our your their his her its some any".split())


@lru_cache(maxsize=2)
def _parser(model: str):
    import spacy

    return spacy.load(model, exclude=["ner", "lemmatizer"])


def _clean(span) -> str | None:
    """A phrase as written, determiners and possessives trimmed; None when it is unfit."""
    words = [t for t in span if not t.is_punct and not t.is_space]
    while words and words[0].lower_ in _EDGE_WORDS:
        words = words[1:]
    while words and words[-1].lower_ in _EDGE_WORDS:
        words = words[:-1]
    if not words or any(t.pos_ in ("PROPN", "PRON", "NUM") or t.like_num for t in words):
        return None
    doc = span.doc
    text = doc.text[words[0].idx : words[-1].idx + len(words[-1].text)].lower()
    if _UNFIT.search(text) or keyword_text(text) != text or not 2 <= len(text.split()) <= MAX_WORDS:
        return None
    if all(w in _fillers() for w in text.split()):
        return None
    return text


@lru_cache(maxsize=1)
def _fillers() -> frozenset[str]:
    return frozenset(stop_words())


def phrases(doc) -> set[str]:
    """Noun phrases, and verb phrases (a verb with its object or its prepositional phrase)."""
    found = {_clean(chunk) for chunk in doc.noun_chunks}
    for verb in doc:
        if verb.pos_ != "VERB":
            continue
        for child in verb.children:
            if child.dep_ in ("dobj", "prep", "attr", "xcomp") and child.i > verb.i:
                found.add(_clean(doc[verb.i : child.right_edge.i + 1]))
    return {p for p in found if p}


def _nearest_units(vectors: np.ndarray, topics: np.ndarray, theme: int) -> np.ndarray:
    rows = np.flatnonzero(topics == theme)
    centre = vectors[rows].mean(axis=0)
    return rows[np.argsort(-(vectors[rows] @ centre), kind="stable")[:SAMPLE_PER_THEME]]


def theme_labels(
    texts: list[str], vectors: np.ndarray, topics: np.ndarray, *, model: str, fallback: dict[int, list[str]]
) -> tuple[dict[int, str], dict[int, bool]]:
    """(label per theme, whether the theme is interview procedure). `vectors`: unit-normalised
    embeddings (to pick each theme's most central units); `fallback`: keywords per theme."""
    themes = sorted(set(np.asarray(topics).tolist()) - {UNASSIGNED})
    picked = {t: _nearest_units(vectors, topics, t) for t in themes}
    rows = sorted({int(i) for r in picked.values() for i in r})
    nlp = _parser(model)
    # a unit past spaCy's max_length (E088; a whole turn with unit: turn) is parsed in windows
    # cut after sentence ends, its phrases those of every window
    found: dict[int, set[str]] = {i: set() for i in rows}
    units = [texts[i] for i in rows]
    for k, _, doc in pipe_windows(nlp, units, batch_size=64, overlap=0, whole_up_to=nlp.max_length):
        found[rows[k]] |= phrases(doc)
    used: dict[int, list[set[str]]] = {t: [found[int(i)] for i in picked[t]] for t in themes}
    share = {t: _shares(used[t]) for t in themes}
    spread = {}
    for t in themes:
        for p in share[t]:
            spread[p] = spread.get(p, 0.0) + share[t][p]
    labels: dict[int, str] = {}
    taken: set[str] = set()
    for t in themes:  # themes are numbered by size: the larger theme chooses first
        ranked = sorted(share[t], key=lambda p: (-share[t][p] * np.log(1 + len(themes) / spread[p]), p))
        free = [p for p in ranked if p not in taken and share[t][p] * len(used[t]) >= 2]
        label = free[0] if free else _from_keywords(fallback.get(t, []), taken)
        taken.add(label)
        labels[t] = label[0].upper() + label[1:]
    procedure = {
        t: bool(PROCEDURE.search(labels[t]))
        or any(PROCEDURE.search(k) for k in fallback.get(t, [])[:3])
        or float(np.mean([bool(PROCEDURE.search(texts[int(i)])) for i in picked[t]])) >= PROCEDURE_SHARE
        for t in themes
    }
    return labels, procedure


def _shares(unit_phrases: list[set[str]]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for found in unit_phrases:
        for p in found:
            counts[p] = counts.get(p, 0) + 1
    return {p: c / max(len(unit_phrases), 1) for p, c in counts.items()}


def _from_keywords(keywords: list[str], taken: set[str]) -> str:
    """'about X and Y' from the first keywords; numbered when even that is taken."""
    words = [k for k in keywords if k][:2] or ["other talk"]
    label = "about " + " and ".join(words)
    n = 2
    while label in taken:
        label, n = f"about {' and '.join(words)} ({n})", n + 1
    return label
