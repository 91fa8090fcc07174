"""Themes per question (`themes.per_question`): a survey's answers to one question are clustered
apart from the answers to another, and the themes of every question are put side by side in
one result, with theme ids numbered on across the questions.

A question with fewer than `MIN_UNITS` units is clustered with the other small ones (as "other
questions"); when those are still too few, their units are left unassigned and counted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pipeline.schemas import UNASSIGNED
from pipeline.themes.discover import Discovery

MIN_UNITS = 30
OTHER = "(other questions)"


def question_groups(questions: list[str]) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """(question, unit indices) per group in order of first appearance, and the units of
    questions too small to cluster even together."""
    codes, order = pd.factorize(pd.Series(questions, dtype=object))  # in order of first appearance
    rows = np.argsort(codes, kind="stable")  # one pass, however many questions
    bounds = np.searchsorted(codes[rows], np.arange(len(order) + 1))
    groups, small = [], []
    for g, question in enumerate(order):
        idx = rows[bounds[g] : bounds[g + 1]]
        (groups if len(idx) >= MIN_UNITS else small).append((question, idx))
    rest = np.concatenate([idx for _, idx in small]) if small else np.array([], dtype=int)
    if len(rest) >= MIN_UNITS:
        groups.append((OTHER, np.sort(rest)))
        rest = np.array([], dtype=int)
    return groups, rest


def discover_per_question(
    questions: list[str], discover: Callable[[np.ndarray], Discovery]
) -> tuple[Discovery, list[dict]]:
    """One Discovery over every unit, from `discover(indices)` run per question group; and per
    group its question, units and theme ids (for the cards and the metrics)."""
    groups, rest = question_groups(questions)
    topics = np.full(len(questions), UNASSIGNED, dtype=int)
    keywords, labels, procedure, parents, parent_keywords, stable = {}, {}, {}, {}, {}, {}
    parts, candidates, modes, aris, runs = [], [], [], [], []
    theme_base = parent_base = 0
    for number, (question, idx) in enumerate(groups, 1):
        found = discover(idx)
        shift = {t: t + theme_base for t in found.keywords}
        topics[idx] = np.where(found.topics == UNASSIGNED, UNASSIGNED, found.topics + theme_base)
        keywords |= {shift[t]: kw for t, kw in found.keywords.items()}
        labels |= {shift[t]: label for t, label in found.labels.items()}
        procedure |= {shift[t]: p for t, p in found.procedure.items()}
        parents |= {shift[t]: p + parent_base for t, p in found.parents.items()}
        parent_keywords |= {p + parent_base: kw for p, kw in found.parent_keywords.items()}
        stable |= {shift[int(t)]: s for t, s in found.stability.get("themes", {}).items()}
        candidates += [c | {"question": number} for c in found.candidates]
        modes.append(f"Q{number}: {found.mode}")
        if found.stability.get("ari_mean") is not None:
            aris.append((found.stability["ari_mean"], found.stability.get("ari_min"), len(idx)))
            runs.append(found.stability.get("runs", 1))
        themes = sorted(shift.values())
        parts.append({"question": question, "number": number, "units": len(idx), "themes": themes})
        theme_base += len(found.keywords)
        parent_base += len(set(found.parents.values()))
    _unique_labels(labels, parts)
    stability: dict = {"themes": stable}
    if aris:  # the unit-weighted mean of the groups' mean ARI, and the least minimum
        mins = [m for _, m, _ in aris if m is not None]
        stability |= {
            "runs": min(runs),
            "ari_mean": float(np.average([a for a, _, _ in aris], weights=[n for *_, n in aris])),
            "ari_min": min(mins) if mins else None,
        }
    parts.append({"question": None, "number": None, "units": int(len(rest)), "themes": []})
    merged = Discovery(
        topics=topics,
        keywords=keywords,
        mode=f"per question ({len(groups)}): " + "; ".join(modes),
        labels=labels,
        parents=parents,
        parent_keywords=parent_keywords,
        stability=stability,
        candidates=candidates,
        procedure=procedure,
    )
    return merged, parts


def _unique_labels(labels: dict[int, str], parts: list[dict]) -> None:
    """A label that two questions' themes share gets its question's number: "Waiting on question 2"."""
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label.casefold()] = seen.get(label.casefold(), 0) + 1
    for part in parts:
        for t in part["themes"]:
            if seen[labels[t].casefold()] > 1:
                labels[t] = f"{labels[t]} on question {part['number']}"
