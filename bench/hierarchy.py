"""`python -m bench.hierarchy`: agreement at each level of a code hierarchy, on real data. No
hierarchical dev set can be shared, so one is derived: banking77's 77 codes grouped by name
prefix into parents (`card_arrival`, `card_linking`, ... under `card`; a prefix only one code
has stays a top code). The pipeline's frozen few-shot coder learns the leaves on a 20% split
(seed k) and is scored on the rest at every level. Figures: README, section "Agreement with
human coding" (Code hierarchies).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd

from bench import data
from bench.themes import embed
from pipeline.codebook import Code, Codebook, check_codebook

SHARE = 0.2


def by_prefix(codebook: Codebook) -> Codebook:
    """The codes under parents named by their first word (`card_arrival` -> `card`); a prefix
    of one code only leaves that code a top code."""
    prefix = {c.code_id: c.code_id.split("_")[0] for c in codebook.codes}
    shared = {p for p, n in Counter(prefix.values()).items() if n > 1}
    taken = {c.code_id for c in codebook.codes}
    parent_id = {p: p if p not in taken else f"{p} (group)" for p in shared}
    parents = [Code(parent_id[p], parent_id[p]) for p in sorted(shared)]
    leaves = [replace(c, parent=parent_id.get(prefix[c.code_id])) for c in codebook.codes]
    return check_codebook(Codebook((*parents, *leaves)), data.SOURCES["banking77"].parent / "categories.json")


def split_figures(units: data.Units, emb: np.ndarray, book: Codebook, params, *, seed: int) -> dict:
    """Per level: macro kappa, alpha, AC1, F1 (per code, vs gold) and nominal kappa of the top
    code, the frozen few-shot coder trained on a 20% split drawn with `seed`."""
    from pipeline.agreement.levels import agreement_by_level
    from pipeline.agreement.stage import agreement_report
    from pipeline.coding.few_shot import few_shot
    from pipeline.hierarchy import roll_up, top_code_per_level
    from pipeline.kappa import cohen_kappa

    train = data.train_split(units, share=SHARE, seed=seed)
    tr, te = np.flatnonzero(train), np.flatnonzero(~train)
    pred = few_shot(
        [units.ids[i] for i in tr],
        [units.texts[i] for i in tr],
        emb[tr],
        [set(units.codes[i]) for i in tr],
        [units.ids[i] for i in te],
        [units.texts[i] for i in te],
        emb[te],
        book,
        embed=lambda t: embed(t, params, cache=False),
        options=params.coding,
        seed=seed,
    )
    ids = [units.ids[i] for i in te]
    gold = pd.DataFrame(
        [(units.ids[i], "gold", units.primary[i]) for i in te], columns=["id", "coder", "code"]
    )
    long = pred.rename(columns={"segment_id": "id"})[["id", "code", "score"]]
    levels = agreement_by_level(gold, long, codebook=book, ids=ids, coverage=None, figures=agreement_report)
    top = top_code_per_level(pred, book)
    out = {}
    for level, figures in levels["levels"].items():
        overall = figures["overall"]
        machine = top[top["level"] == int(level)].set_index("segment_id")["code"]
        truth = roll_up(gold, book, int(level))[0].set_index("id")["code"]  # one code per query
        out[level] = {
            "codes": len(figures["codes"]),
            "nominal_kappa": cohen_kappa(
                np.array([truth.get(i, "") for i in ids]), np.array([machine.get(i, "") for i in ids])
            ),
            **{k: overall[f"macro_{k}"] for k in ("cohen_kappa", "krippendorff_alpha", "gwet_ac1", "f1")},
        }
    return out


def run(*, seeds: int, overrides: tuple[str, ...] = ()) -> dict:
    why = data.available("banking77")
    if why:
        raise SystemExit(f"banking77: {why}")
    params = data.bench_params(overrides)
    units = data.load("banking77", overrides)
    book = by_prefix(units.codebook)
    units = replace(units, codebook=book)
    emb = embed(units.texts, params, cache=False)  # raw public texts stay out of the cache
    per_split = [split_figures(units, emb, book, params, seed=s) for s in range(seeds)]
    levels = sorted(per_split[0], key=int)
    summary = {
        level: {
            "codes": per_split[0][level]["codes"],
            **{
                k: float(np.mean([s[level][k] for s in per_split]))
                for k in ("nominal_kappa", "cohen_kappa", "krippendorff_alpha", "gwet_ac1", "f1")
            },
        }
        for level in levels
    }
    parents = [c for c in book.codes if c.code_id not in {x.code_id for x in book.leaves}]
    return {
        "data": "banking77 test.csv, codes grouped by name prefix",
        "units": len(units.ids),
        "top_codes": sum(1 for c in book.codes if c.parent is None),
        "parents": len(parents),
        "leaves": len(book.leaves),
        "seeds": seeds,
        "train_share": SHARE,
        "method": "pipeline few-shot, frozen embeddings",
        "levels": summary,
        "per_split": per_split,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hierarchy", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="paired splits (default 5)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="params key=value")
    args = parser.parse_args(argv)
    results = run(seeds=args.seeds, overrides=tuple(args.overrides))
    print(json.dumps(results, indent=1))
    for level, f in results["levels"].items():
        print(
            f"level {level} ({f['codes']} codes): nominal kappa {f['nominal_kappa']:.3f}, macro kappa "
            f"{f['cohen_kappa']:.3f}, alpha {f['krippendorff_alpha']:.3f}, AC1 {f['gwet_ac1']:.3f}, "
            f"F1 {f['f1']:.3f}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
