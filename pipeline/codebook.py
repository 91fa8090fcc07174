"""The codebook: codes, their checks, the pipeline's own `codebook.json`, and the texts a code
is recognised by (its views and their mean embedding, the code's prototype).

`codebook.json` is what the deid stage writes for later stages (identifiers scrubbed):
the shape of `codebook.yaml`, `{"codes": [{"id", "name", "definition", "include", "exclude",
"examples", "parent"}, ...]}`, or `{"codes": null}` when the study has no codebook. The
readers of the other codebook files (.yaml, .csv, REFI .qdc) live in `pipeline.formats`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.io import read_json, write_json
from pipeline.vectors import unit_rows

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Code:
    code_id: str
    name: str
    definition: str = ""
    include: str = ""
    exclude: str = ""
    examples: tuple[str, ...] = ()
    parent: str | None = None

    def description(self) -> str:
        """The text a zero-shot coder compares segments with."""
        parts = [self.name, self.definition, self.include, *self.examples]
        return ". ".join(p.strip() for p in parts if p and p.strip())


@dataclass(frozen=True)
class Codebook:
    codes: tuple[Code, ...] = field(default_factory=tuple)

    @property
    def leaves(self) -> tuple[Code, ...]:
        """Codes that coders apply: those that are nobody's parent."""
        parents = {c.parent for c in self.codes if c.parent}
        return tuple(c for c in self.codes if c.code_id not in parents)


def codebook_from_mapping(data: object, path: Path) -> Codebook:
    if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
        raise UserError(f"{path}: expected a mapping with a 'codes' list")
    allowed = {"id", "name", "definition", "include", "exclude", "examples", "parent"}
    codes = []
    for i, item in enumerate(data["codes"]):
        where = f"{path}: codes[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"].strip():
            raise UserError(f"{where}: expected a mapping with an 'id' string")
        unknown = sorted(str(k) for k in set(item) - allowed)
        if unknown:
            raise UserError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")
        examples = item.get("examples") or []
        if not isinstance(examples, list):
            raise UserError(f"{where}: 'examples' must be a list of quotes")
        for key in ("name", "definition", "include", "exclude", "parent"):
            if item.get(key) is not None and not isinstance(item[key], (str, int, float)):
                raise UserError(f"{where}: '{key}' must be text")
        if any(isinstance(x, (list, dict)) for x in examples):
            raise UserError(f"{where}: 'examples' must be a list of quotes")
        codes.append(
            Code(
                code_id=item["id"],
                name=str(item.get("name") or item["id"]),
                definition=str(item.get("definition") or ""),
                include=str(item.get("include") or ""),
                exclude=str(item.get("exclude") or ""),
                examples=tuple(str(x) for x in examples),
                parent=None if item.get("parent") is None else str(item["parent"]),
            )
        )
    return check_codebook(Codebook(tuple(codes)), path)


def check_codebook(codebook: Codebook, path: Path) -> Codebook:
    ids = [c.code_id for c in codebook.codes]
    if not ids:
        raise UserError(f"{path}: the codebook has no codes")
    seen: set[str] = set()
    for code_id in ids:
        if code_id in seen:
            raise UserError(f"{path}: code id '{code_id}' appears twice")
        seen.add(code_id)
    for c in codebook.codes:
        if c.parent and c.parent not in seen:
            raise UserError(
                f"{path}: code '{c.code_id}' has parent '{c.parent}', which is not a code of the codebook"
            )
    _check_no_cycle(codebook, path)
    return codebook


def _check_no_cycle(codebook: Codebook, path: Path) -> None:
    """Every chain of parents ends at a top code (one with no parent)."""
    up = {c.code_id: c.parent or None for c in codebook.codes}
    for c in codebook.codes:
        chain = [c.code_id]
        while (parent := up[chain[-1]]) is not None:
            if parent in chain:
                loop = " -> ".join([*chain[chain.index(parent) :], parent])
                raise UserError(f"{path}: code '{parent}' is its own ancestor (parent cycle {loop})")
            chain.append(parent)


def codebook_as_dict(codebook: Codebook | None) -> dict:
    """The `codebook.json` form of a codebook (`{"codes": null}`: no codebook)."""
    if codebook is None:
        return {"codes": None}
    return {
        "codes": [
            {
                "id": c.code_id,
                "name": c.name,
                "definition": c.definition,
                "include": c.include,
                "exclude": c.exclude,
                "examples": list(c.examples),
                "parent": c.parent,
            }
            for c in codebook.codes
        ]
    }


def write_codebook_json(path: Path, codebook: Codebook | None) -> None:
    write_json(path, codebook_as_dict(codebook))


def read_codebook_json(path: Path) -> Codebook | None:
    """The codebook the deid stage wrote (None: the study has no codebook)."""
    data = read_json(path)
    if isinstance(data, dict) and set(data) == {"codes"} and data["codes"] is None:
        return None
    return codebook_from_mapping(data, path)


def code_views(codebook: Codebook) -> list[tuple[str, str, str]]:
    """(code id, view name, text) for every non-empty view of every leaf code."""
    out = []
    for code in codebook.leaves:
        views = [("name", code.name)]
        if code.definition.strip():
            views += [
                ("name: definition", f"{code.name}: {code.definition}"),
                ("definition", code.definition),
            ]
        if code.include.strip():
            views.append(("include", code.include))
        views += [(f"example {i + 1}", ex) for i, ex in enumerate(code.examples) if ex.strip()]
        out += [(code.code_id, view, text.strip()) for view, text in views]
    return out


def code_prototypes(
    codebook: Codebook, *, embed: Embed
) -> tuple[list[str], np.ndarray, list[tuple], np.ndarray]:
    """(code ids, unit prototype per code, views, unit embedding per view)."""
    views = code_views(codebook)
    vectors = unit_rows(np.asarray(embed([t for _, _, t in views]), dtype=np.float64))
    ids = [c.code_id for c in codebook.leaves]
    owner = np.array([v[0] for v in views])
    protos = np.vstack([vectors[owner == c].mean(axis=0) for c in ids])
    return ids, unit_rows(protos), views, vectors
