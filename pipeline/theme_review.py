"""Theme review: a researcher's decisions (merge, rename, drop, split) about candidate themes,
kept in `<study>/theme_review.yaml` and applied to theme assignments and cards WITHOUT
re-clustering.

The review stage snapshots the decisions file (`outputs/theme_review.json`), the report stage's
input, so editing it re-runs the report (and its exports) only. Decisions apply in order; each
one names theme ids as they stand after the decisions before it:

```yaml
decisions:
  - merge: [3, 5]             # 5 joins 3; the merged theme keeps id 3
    label: Team cohesion      # optional (default: the first theme's label)
  - rename: 2
    label: Partner networks
  - drop: 7                   # its segments become unassigned (-1)
  - split: 4                  # listed segments leave theme 4 for new themes
    into:
      - label: Training
        segments: ["T01:3:0", "T02:7:1"]
        keywords: [training]  # optional
```
Every decision may carry a free-text `note`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline.card_body import card_body
from pipeline.errors import UserError
from pipeline.io import read_yaml, write_text
from pipeline.schemas import UNASSIGNED

REVIEW_FILE = "theme_review.yaml"
UNASSIGNED_LABEL = "unassigned"
_ACTIONS = ("merge", "rename", "drop", "split")
# Card keys this module rebuilds; any other key (e.g. stability figures from discovery)
# describes the theme as clustered and is dropped from a card a decision changes.
_CORE_KEYS = (
    "theme_id",
    "label",
    "keywords",
    "size",
    "quotes",
    "prevalence",
    "coverage",
    "parent_id",
    "parent_label",
)


@dataclass(frozen=True)
class SplitPart:
    label: str
    segments: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """One review decision. `themes` holds one id (rename, drop, split) or several (merge)."""

    action: str
    themes: tuple[int, ...]
    label: str | None = None
    into: tuple[SplitPart, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.action: list(self.themes) if self.action == "merge" else self.themes[0]}
        if self.label is not None:
            out["label"] = self.label
        if self.into:
            out["into"] = [
                {"label": p.label, "segments": list(p.segments)}
                | ({"keywords": list(p.keywords)} if p.keywords else {})
                for p in self.into
            ]
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Review:
    """An ordered list of decisions, built by the review notebook and saved as YAML."""

    decisions: tuple[Decision, ...] = field(default_factory=tuple)

    def merge(self, *themes: int, label: str | None = None, note: str = "") -> Review:
        return self._add(Decision("merge", tuple(int(t) for t in themes), label=label, note=note))

    def rename(self, theme: int, label: str, *, note: str = "") -> Review:
        return self._add(Decision("rename", (int(theme),), label=label, note=note))

    def drop(self, theme: int, *, note: str = "") -> Review:
        return self._add(Decision("drop", (int(theme),), note=note))

    def split(self, theme: int, into: list[SplitPart] | tuple[SplitPart, ...], *, note: str = "") -> Review:
        return self._add(Decision("split", (int(theme),), into=tuple(into), note=note))

    def _add(self, decision: Decision) -> Review:
        _check_shape(decision, where="decision")
        return Review((*self.decisions, decision))

    def to_yaml(self) -> str:
        header = (
            "# Theme review decisions, applied in order by the report stage (no re-clustering).\n"
            "# Theme ids refer to outputs/themes.json as changed by the decisions above them.\n"
        )
        body = yaml.safe_dump(
            {"decisions": [d.to_dict() for d in self.decisions]}, sort_keys=False, allow_unicode=True
        )
        return header + body


def save_review(review: Review, path: Path) -> None:
    write_text(path, review.to_yaml())


def load_review(path: Path) -> Review:
    """Read a theme_review.yaml; a missing file is an empty review."""
    if not path.exists():
        return Review()
    data = read_yaml(path, what="theme review")
    if data is None:
        return Review()
    if not isinstance(data, dict) or set(data) != {"decisions"} or not isinstance(data["decisions"], list):
        raise UserError(f"{path}: expected a mapping with one key, 'decisions' (a list)")
    return Review(
        tuple(_parse(item, where=f"{path}: decisions[{i}]") for i, item in enumerate(data["decisions"]))
    )


def review_snapshot(study: Path) -> dict:
    """The study's review decisions, checked, as JSON data (an empty list and `exists: false`
    when it has no theme_review.yaml): what the report reads, through the review stage. `file`:
    the review file's path, sha256 and size, which the report shows among its inputs."""
    path = study / REVIEW_FILE
    review = load_review(path)
    decisions = [d.to_dict() for d in review.decisions]
    snapshot: dict[str, Any] = {"exists": path.is_file(), "decisions": decisions}
    if path.is_file():
        data = path.read_bytes()
        snapshot["file"] = [str(path), hashlib.sha256(data).hexdigest(), len(data)]
    return snapshot


def review_from_snapshot(snapshot: dict, *, source: str) -> Review:
    """The decisions of a `review_snapshot`, parsed again (errors name `source`)."""
    decisions = snapshot.get("decisions") if isinstance(snapshot, dict) else None
    if not isinstance(decisions, list):
        raise UserError(f"{source}: the review snapshot holds no decisions list (re-run the review stage)")
    return Review(tuple(_parse(item, where=f"{source}: decisions[{i}]") for i, item in enumerate(decisions)))


def _theme_id(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{where}: expected a theme id (integer), got {type(value).__name__}")
    return value


def _parse(item: object, *, where: str) -> Decision:
    if not isinstance(item, dict):
        raise UserError(f"{where}: expected a mapping such as {{merge: [3, 5]}}")
    actions = [a for a in _ACTIONS if a in item]
    if len(actions) != 1:
        raise UserError(f"{where}: expected exactly one of {', '.join(_ACTIONS)}")
    action = actions[0]
    allowed = {action, "label", "note"} | ({"into"} if action == "split" else set())
    unknown = sorted(str(k) for k in set(item) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")
    raw = item[action]
    if action == "merge":
        if not isinstance(raw, list):
            raise UserError(f"{where}: 'merge' takes a list of at least two theme ids")
        themes = tuple(_theme_id(t, where) for t in raw)
    else:
        themes = (_theme_id(raw, where),)
    label = item.get("label")
    if label is not None and not isinstance(label, str):
        raise UserError(f"{where}: 'label' must be a string")
    into: list[SplitPart] = []
    if not isinstance(item.get("into") or [], list):
        raise UserError(f"{where}: 'into' must be a list of parts with label and segments")
    for j, part in enumerate(item.get("into") or []):
        pw = f"{where}.into[{j}]"
        if not isinstance(part, dict) or not isinstance(part.get("label"), str):
            raise UserError(f"{pw}: expected a mapping with a 'label' string and a 'segments' list")
        extra = sorted(str(k) for k in set(part) - {"label", "segments", "keywords"})
        if extra:
            raise UserError(f"{pw}: unknown key '{extra[0]}' (allowed: label, segments, keywords)")
        segs, kws = part.get("segments"), part.get("keywords") or []
        if not isinstance(segs, list) or not segs or not all(isinstance(s, str) for s in segs):
            raise UserError(f"{pw}: 'segments' must be a non-empty list of segment ids")
        if not isinstance(kws, list) or not all(isinstance(k, str) for k in kws):
            raise UserError(f"{pw}: 'keywords' must be a list of strings")
        into.append(SplitPart(part["label"], tuple(segs), tuple(kws)))
    decision = Decision(action, themes, label=label, into=tuple(into), note=str(item.get("note") or ""))
    _check_shape(decision, where=where)
    return decision


def _check_shape(d: Decision, *, where: str) -> None:
    if d.action == "merge" and len(set(d.themes)) < 2:
        raise UserError(f"{where}: 'merge' takes at least two different theme ids")
    if d.action == "rename" and not (d.label or "").strip():
        raise UserError(f"{where}: 'rename' needs a non-empty 'label'")
    if d.action == "split" and not d.into:
        raise UserError(f"{where}: 'split' needs 'into', a list of parts with label and segments")
    if d.action == "split":
        seen: set[str] = set()
        for part in d.into:
            if seen & set(part.segments):
                raise UserError(f"{where}: a segment is listed in two parts of the split")
            seen |= set(part.segments)


# ---------------------------------------------------------------------------------------
# Applying decisions


def apply_review(
    review: Review,
    assignments: pd.DataFrame,
    cards: dict,
    segments: pd.DataFrame,
    *,
    embeddings: np.ndarray | None = None,
    n_quotes: int = 3,
    source: str = REVIEW_FILE,
) -> tuple[pd.DataFrame, dict]:
    """Assignments and cards after the review's decisions; inputs are left unchanged.

    `segments` (segment_id, transcript_id, participant_id, group, text) rebuild prevalence,
    coverage and quotes of changed themes; `embeddings` (rows aligned with `segments`), when
    given, pick central and diverse quotes as discovery does, else the first segments are quoted.
    """
    if not review.decisions:
        return assignments.copy(), cards
    seg = segments.reset_index(drop=True)
    if assignments["segment_id"].tolist() != seg["segment_id"].tolist():
        raise UserError("theme assignments and segments list different segments; re-run the pipeline")
    theme = assignments["theme_id"].to_numpy(dtype="int64").copy()
    by_id = {int(c["theme_id"]): dict(c) for c in cards["themes"]}
    changed: dict[int, dict[str, Any]] = {}  # theme id -> provenance of the change
    next_id = max([*by_id, *theme.tolist(), 0]) + 1
    index = {sid: i for i, sid in enumerate(seg["segment_id"])}

    for k, d in enumerate(review.decisions):
        where = f"{source}: decisions[{k}] ({d.action})"
        for t in d.themes:
            if t not in by_id:
                raise UserError(f"{where}: theme {t} does not exist (after the decisions above it)")
        if d.action == "merge":
            target, others = d.themes[0], d.themes[1:]
            for t in others:
                theme[theme == t] = target
            cards_in = [by_id[t] for t in d.themes]
            by_id[target]["keywords"] = _interleave([c.get("keywords", []) for c in cards_in])
            by_id[target]["label"] = d.label or by_id[target]["label"]
            merged_from = [x for t in d.themes for x in changed.get(t, {}).get("merged_from", [t])]
            changed[target] = changed.get(target, {}) | {"merged_from": merged_from}
            for t in others:
                by_id.pop(t)
                changed.pop(t, None)
        elif d.action == "rename":
            t = d.themes[0]
            changed[t] = {"renamed_from": by_id[t]["label"]} | changed.get(t, {})
            by_id[t]["label"] = d.label
        elif d.action == "drop":
            t = d.themes[0]
            theme[theme == t] = UNASSIGNED
            by_id.pop(t)
            changed.pop(t, None)
        elif d.action == "split":
            next_id = _split(
                d,
                theme=theme,
                by_id=by_id,
                changed=changed,
                seg=seg,
                index=index,
                next_id=next_id,
                where=where,
            )

    return _reviewed(
        seg,
        theme,
        by_id,
        changed,
        cards,
        embeddings=embeddings,
        n_quotes=n_quotes,
        source=source,
        review=review,
    )


def _split(
    d: Decision,
    *,
    theme: np.ndarray,
    by_id: dict[int, dict],
    changed: dict[int, dict[str, Any]],
    seg: pd.DataFrame,
    index: dict[str, int],
    next_id: int,
    where: str,
) -> int:
    """Apply one split decision in place (new themes get ids from `next_id`); the next free id."""
    t = d.themes[0]
    for part in d.into:
        rows = []
        for sid in part.segments:
            i = index.get(sid)
            if i is None or theme[i] != t:
                raise UserError(f"{where}: segment '{sid}' is not in theme {t}")
            rows.append(i)
        theme[rows] = next_id
        texts = seg.loc[rows, "text"].str.lower()
        keywords = list(part.keywords) or [
            w for w in by_id[t].get("keywords", []) if texts.str.contains(rf"\b{re.escape(w)}\b").any()
        ]
        parent = {k: by_id[t][k] for k in ("parent_id", "parent_label") if k in by_id[t]}
        by_id[next_id] = {"theme_id": next_id, "label": part.label, "keywords": keywords, **parent}
        changed[next_id] = {"split_from": t}
        next_id += 1
    if not (theme == t).any():
        by_id.pop(t)  # every segment left: the parent theme is gone
        changed.pop(t, None)
    else:
        prov = changed.setdefault(t, {})
        prov["split_into"] = prov.get("split_into", []) + list(range(next_id - len(d.into), next_id))
    return next_id


def _reviewed(
    seg: pd.DataFrame,
    theme: np.ndarray,
    by_id: dict[int, dict],
    changed: dict[int, dict[str, Any]],
    cards: dict,
    *,
    embeddings: np.ndarray | None,
    n_quotes: int,
    source: str,
    review: Review,
) -> tuple[pd.DataFrame, dict]:
    """Assignments and cards once every decision is applied: the cards of changed themes rebuilt."""
    labels = {t: c["label"] for t, c in by_id.items()}
    new_assignments = pd.DataFrame(
        {
            "segment_id": seg["segment_id"],
            "theme_id": theme,
            "theme_label": [labels.get(int(t), UNASSIGNED_LABEL) for t in theme],
        }
    )
    groups = sorted(seg["group"].unique())
    participants_by_group = seg.groupby("group")["participant_id"].nunique()
    new_cards = []
    for t, card in by_id.items():
        if t not in changed:
            new_cards.append(card)
            continue
        rows = seg[theme == t]
        card = {k: card[k] for k in _CORE_KEYS if k in card}
        card |= card_body(rows, embeddings, groups, participants_by_group, n_quotes=n_quotes)
        card["review"] = changed[t]
        new_cards.append(card)
    new_cards.sort(key=lambda c: -c["size"])
    out = {k: v for k, v in cards.items() if k != "themes"}
    out["unassigned"] = int((theme == UNASSIGNED).sum())
    out["themes"] = new_cards
    if isinstance(cards.get("parents"), list):
        out["parents"] = _reviewed_parents(cards["parents"], new_cards)
    out["review"] = {"source": source, "decisions": len(review.decisions)}
    return new_assignments, out


def _reviewed_parents(parents: list[dict], cards: list[dict]) -> list[dict]:
    """Parent themes listing the themes that are left under them (split parts stay with
    their theme's parent); parents left empty are gone."""
    out = []
    for p in parents:
        kids = [c for c in cards if c.get("parent_id") == p.get("parent_id")]
        if kids:
            out.append(p | {"theme_ids": [c["theme_id"] for c in kids], "size": sum(c["size"] for c in kids)})
    return out


def _interleave(lists: list[list[str]]) -> list[str]:
    """Keywords of merged themes, best first from each in turn, without repeats."""
    out: list[str] = []
    for i in range(max((len(x) for x in lists), default=0)):
        for words in lists:
            if i < len(words) and words[i] not in out:
                out.append(words[i])
    return out[: max((len(x) for x in lists), default=0)]
