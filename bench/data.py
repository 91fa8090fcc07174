"""The benchmark datasets, each as units of analysis with their human codes.

- `demo`: the bundled study, prepared once the way `dvc repro` prepares it (ingest,
  deidentify and segment stages into `cache/bench/demo`, laid out by `pipeline.layout`): the
  pseudonymised segments, the reference coder's codes mapped onto them, the scrubbed codebook.
  A smoke test only: its codes were written into its text.
- `serdif`: ../shared/datasets/serdif-usability, think-aloud sessions coded in Taguette; each
  distinct highlight is a unit, grouped by its session.
- `banking77`: ../shared/datasets/banking77 test.csv, 3,080 real one-line customer queries in
  77 categories (names only, no definitions).
- `<set>-zipf` (`serdif`, `banking77`): Zipf-skewed resamplings of the single-label sets, one per
  seed (`bench.skew`); banking77's are drawn from train.csv and test.csv together (13,083
  queries: test.csv alone, 40 a code, cannot give one code 35-40% with 3 units for each other).

A unit's primary code is the code whose spans cover most of it (ties by codebook order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.codebook import Code, Codebook, read_codebook_json
from pipeline.codings import human_segment_codes, primary_codes, read_codings_table, reference_coder
from pipeline.config import Params, load_params
from pipeline.context import preceding_questions
from pipeline.formats.taguette import read_taguette_db
from pipeline.io import read_table
from pipeline.layout import Layout
from pipeline.schemas import DEID_TURNS, SEGMENTS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
SOURCES = {
    "demo": ROOT / "data" / "demo",
    "serdif": SHARED / "serdif-usability" / "taguette.sqlite3",
    "banking77": SHARED / "banking77" / "test.csv",
}
SKEWED = ("serdif-zipf", "banking77-zipf")
NAMES = (*SOURCES, *SKEWED)


@dataclass(frozen=True)
class Units:
    """Units of one dataset: ids, texts, the human codes of each (a set; empty: coded, none
    applies), the primary code ("" when none), the group each belongs to (its transcript or
    session; None when units stand alone) and the codebook."""

    name: str
    ids: list[str]
    texts: list[str]
    codes: list[frozenset[str]]
    primary: list[str]
    groups: list[str] | None
    codebook: Codebook
    segments: pd.DataFrame | None = None  # demo: the segments table (turn context, as the stages use)
    questions: list[str] | None = None  # demo: the interviewer question each segment answers
    other_coders: dict[str, list[frozenset[str]]] | None = None  # demo: coder B on the same units

    @property
    def single_label(self) -> bool:
        """At most 10% of coded units carry two or more codes (as the few-shot coder decides)."""
        coded = [c for c in self.codes if c]
        return sum(len(c) > 1 for c in coded) <= 0.1 * len(coded)

    @property
    def leaf_ids(self) -> list[str]:
        return [c.code_id for c in self.codebook.leaves]


def base(name: str) -> str:
    """The dataset a name draws from (`serdif-zipf` -> `serdif`)."""
    return name.removesuffix("-zipf")


def available(name: str) -> str | None:
    """None when the dataset can be read, else why not (a benchmark skips it, saying so)."""
    source = SOURCES[base(name)]
    return None if source.exists() else f"{source} not found"


def bench_params(overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """The repository's params.yaml (the pipeline's defaults) with `section.key=value` overrides."""
    return load_params(ROOT / "params.yaml", list(overrides))


@lru_cache(maxsize=4)
def load(name: str, overrides: tuple[str, ...] = ()) -> Units:
    if name == "demo":
        return _demo(bench_params(overrides))
    if name == "serdif":
        return _serdif()
    if name == "banking77":
        return _banking77(["test.csv"])
    if name == "serdif-zipf":
        return replace(_serdif(), name=name)
    if name == "banking77-zipf":
        return replace(_banking77(["train.csv", "test.csv"]), name=name)
    raise ValueError(f"unknown dataset {name}; known: {', '.join(NAMES)}")


def _primary(codes: list[frozenset[str]], order: list[str]) -> list[str]:
    rank = {c: i for i, c in enumerate(order)}
    return [min(c, key=lambda x: rank.get(x, len(rank))) if c else "" for c in codes]


def prepare_demo(params: Params) -> Layout:
    """The demo study's ingest, deidentify and segment stages, run once into cache/bench/demo
    exactly as `dvc repro` runs them (again when the segments are missing, or were made by
    other code or params: a stamp of the pipeline's sources and the params says which)."""
    import hashlib

    from pipeline.runner import prepare_segments

    lay = Layout(ROOT / "cache" / "bench" / "demo")
    digest = hashlib.sha256(params.model_dump_json().encode())
    for source in sorted((ROOT / "pipeline").rglob("*.py")):
        digest.update(source.read_bytes())
    stamp = lay.root / "prepared.sha256"
    if not lay.segments.exists() or not stamp.exists() or stamp.read_text() != digest.hexdigest():
        prepare_segments(params, study=SOURCES["demo"], lay=lay)
        stamp.write_text(digest.hexdigest())
    return lay


def _demo(params: Params) -> Units:
    lay = prepare_demo(params)
    segs = read_table(lay.segments, SEGMENTS)
    codebook = read_codebook_json(lay.codebook)
    gold = human_segment_codes(
        segs, read_codings_table(lay.codings), min_overlap=params.agreement.min_overlap
    )
    coders = sorted(gold["coder"].unique())
    ids = segs["segment_id"].tolist()

    def codes_of(coder: str) -> list[frozenset[str]]:
        mine = gold[gold["coder"] == coder].groupby("id")["code"].agg(frozenset)
        return [mine.get(i, frozenset()) for i in ids]

    primary = primary_codes(gold[gold["coder"] == reference_coder(gold)]).set_index("id")["code"]
    return Units(
        name="demo",
        ids=ids,
        texts=segs["text"].tolist(),
        codes=codes_of(coders[0]),
        primary=[primary.get(i, "") for i in ids],
        groups=segs["transcript_id"].tolist(),
        codebook=codebook,
        segments=segs,
        questions=preceding_questions(segs, read_table(lay.deid_turns, DEID_TURNS)),
        other_coders={c: codes_of(c) for c in coders[1:]},
    )


def _serdif() -> Units:
    book, codings, texts, _ = read_taguette_db(SOURCES["serdif"])
    codings = codings.assign(
        uid=lambda d: d["transcript_id"] + ":" + d["start"].astype(str) + "-" + d["end"].astype(str)
    )
    units = codings.drop_duplicates("uid").reset_index(drop=True)
    by_unit = codings.groupby("uid")["code"].agg(frozenset)
    codes = [by_unit[u] for u in units["uid"]]
    return Units(
        name="serdif",
        ids=units["uid"].tolist(),
        texts=[
            texts[t][s:e]
            for t, s, e in zip(units["transcript_id"], units["start"], units["end"], strict=True)
        ],
        codes=codes,
        primary=_primary(codes, [c.code_id for c in book.codes]),
        groups=units["transcript_id"].tolist(),
        codebook=book,
    )


def _banking77(files: list[str]) -> Units:
    folder = SOURCES["banking77"].parent
    df = pd.concat(
        [pd.read_csv(folder / f, dtype=str, keep_default_na=False) for f in files], ignore_index=True
    )
    names = json.loads((SOURCES["banking77"].parent / "categories.json").read_text())
    book = Codebook(tuple(Code(code_id=n, name=n.replace("_", " ")) for n in names))
    codes = [frozenset([c]) for c in df["category"]]
    return Units(
        name="banking77",
        ids=[f"q{i}" for i in range(len(df))],
        texts=df["text"].tolist(),
        codes=codes,
        primary=df["category"].tolist(),
        groups=None,
        codebook=book,
    )


def subset(units: Units, idx: np.ndarray) -> Units:
    """The units at `idx` (their codebook kept whole)."""
    pick = lambda values: None if values is None else [values[i] for i in idx]  # noqa: E731
    others = None if units.other_coders is None else {c: pick(v) for c, v in units.other_coders.items()}
    segments = None if units.segments is None else units.segments.iloc[idx].reset_index(drop=True)
    return replace(
        units,
        ids=pick(units.ids),
        texts=pick(units.texts),
        codes=pick(units.codes),
        primary=pick(units.primary),
        groups=pick(units.groups),
        segments=segments,
        questions=pick(units.questions),
        other_coders=others,
    )


def train_split(units: Units, *, share: float, seed: int) -> np.ndarray:
    """Boolean mask of training units: `share` of them, by whole groups (transcripts) where the
    units have groups, drawn at random until they hold that share; else units at random."""
    rng = np.random.default_rng(seed)
    n = len(units.ids)
    if units.groups is None:
        mask = np.zeros(n, dtype=bool)
        mask[rng.permutation(n)[: int(round(share * n))]] = True
        return mask
    counts = pd.Series(units.groups).value_counts()
    chosen, held = [], 0
    for g in rng.permutation(sorted(counts.index)):
        if held >= share * n:
            break
        chosen.append(g)
        held += counts[g]
    return np.isin(np.array(units.groups), chosen)
