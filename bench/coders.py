"""`python -m bench.coders`: several coders who split a study, derived from the demo, and the
rule that chooses what few-shot learns where two coders reviewed the same segment.

The demo's coders A and B each coded all 21 interviews. The derived study (derived, not a real
multi-coder split) keeps A's codings on 13 interviews and B's on 13 others, 5 of them shared
(which interviews: a seeded shuffle), as a team that splits transcripts and double-codes a
subset would deliver them. The coding stage then runs as the pipeline runs it (cross-fitted over
transcripts) under each rule (`coding.double_coded`: union, intersection, reference; and
`coding.train_coder=A`, the reference coder's codings alone), and its codes are scored against
each coder's full codings on all 21 interviews, which the derived study hides from it. Figures:
README, "Several coders".
"""

from __future__ import annotations

import os

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import pipeline  # noqa: E402, F401, I001  (the offline environment and CPU pins first)

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd

from bench import data
from bench.themes import embed

RULES = {
    "union": ["coding.double_coded=union"],
    "intersection": ["coding.double_coded=intersection"],
    "reference": ["coding.double_coded=reference"],
    "reference_coder_only": ["coding.train_coder=A"],
}
PER_CODER, SHARED = 13, 5  # interviews each coder keeps, and those both keep (of 21)


def derived_split(transcripts: list[str], *, seed: int) -> dict[str, list[str]]:
    """Which interviews each coder keeps: A the first 13 of a seeded shuffle, B the last 13 (the
    middle 5 shared)."""
    order = [str(t) for t in np.random.default_rng(seed).permutation(sorted(transcripts))]
    start = PER_CODER - SHARED
    return {"A": order[:PER_CODER], "B": order[start : start + PER_CODER]}


def derived_study(
    codings: pd.DataFrame, segments: pd.DataFrame, *, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(codings, coverage) of the derived study: each coder's codings on the interviews they keep,
    and those interviews, whole, as their coverage."""
    from pipeline.codings import whole_transcript_coverage

    split = derived_split(sorted(segments["transcript_id"].unique()), seed=seed)
    keep = [t in split[c] for t, c in zip(codings["transcript_id"], codings["coder"], strict=True)]
    kept = codings[keep].reset_index(drop=True)
    lengths = segments.groupby("transcript_id")["orig_end"].max()
    return kept, whole_transcript_coverage(kept, lengths)


def measure(seeds: int, overrides: tuple[str, ...] = ("coding.folds=5",)) -> dict:
    """Per rule and seed: the machine's macro kappa against A and against B over every segment,
    and the seconds the coding stage took."""
    from pipeline.agreement.metrics import compare_coders
    from pipeline.codebook import read_codebook_json
    from pipeline.coding.stage import run as code
    from pipeline.codings import human_segment_codes, read_codings_table
    from pipeline.io import read_table
    from pipeline.schemas import DEID_TURNS, SEGMENTS

    params = data.bench_params(overrides)
    lay = data.prepare_demo(params)
    segments, turns = read_table(lay.segments, SEGMENTS), read_table(lay.deid_turns, DEID_TURNS)
    codebook, codings = read_codebook_json(lay.codebook), read_codings_table(lay.codings)
    emb = embed(segments["text"].tolist(), params, cache=True)
    ids, leaves = segments["segment_id"].tolist(), [c.code_id for c in codebook.leaves]
    full = human_segment_codes(segments, codings, min_overlap=params.agreement.min_overlap)
    runs: dict[str, list[dict]] = {rule: [] for rule in RULES}
    for seed in range(seeds):
        kept, coverage = derived_study(codings, segments, seed=seed)
        for rule, sets in RULES.items():
            p = data.bench_params([*overrides, *sets, f"seed={seed}"])
            t0 = time.perf_counter()
            out = code(p, segments=segments, embeddings=(emb, {}), codebook=codebook, codings=kept,
                       coverage=coverage, deid_turns=turns)  # fmt: skip
            pred = out["codes"].rename(columns={"segment_id": "id"})
            row = {"seed": seed, "seconds": round(time.perf_counter() - t0, 1)}
            for coder in ("A", "B"):
                gold = full[full["coder"] == coder]
                row[coder] = compare_coders(gold, pred, ids=ids, codes=leaves)["overall"]["macro_cohen_kappa"]
            row["mean"] = (row["A"] + row["B"]) / 2
            row["training"] = {
                k: v for k, v in out["coding_metrics"].items() if k.startswith(("train", "double"))
            }
            runs[rule].append(row)
            print(rule, json.dumps(row), file=sys.stderr, flush=True)
    return {
        "overrides": list(overrides),
        "seeds": seeds,
        "split": f"{PER_CODER}+{PER_CODER} of 21, {SHARED} shared",
        "runs": runs,
    }


def table(record: dict) -> str:
    """The rules side by side: mean macro kappa against A, B and both, and the mean paired
    difference from union (with its spread over seeds)."""
    runs = record["runs"]
    lines = [
        "| rule | kappa vs A | kappa vs B | mean | vs union (paired, mean ± sd) |",
        "|---|---|---|---|---|",
    ]
    union = np.array([r["mean"] for r in runs["union"]])
    for rule, rows in runs.items():
        a, b, m = (np.array([r[k] for r in rows]) for k in ("A", "B", "mean"))
        d = m - union
        sd = d.std(ddof=1) if len(d) > 1 else 0.0
        lines.append(
            f"| {rule} | {a.mean():.3f} | {b.mean():.3f} | {m.mean():.3f} | {d.mean():+.3f} ± {sd:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.coders", description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="derived splits (paired across the rules)")
    ap.add_argument("--set", action="append", default=[], help="params override, section.key=value")
    ap.add_argument("--out", default=str(data.ROOT / "bench" / "results" / "coders.json"))
    args = ap.parse_args(argv)
    record = measure(args.seeds, tuple(args.set or ["coding.folds=5"]))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    print(table(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
