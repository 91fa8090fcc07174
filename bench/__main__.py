"""`python -m bench {themes,coding,deid}`: run a benchmark on every dataset it knows (those
missing under ../shared are skipped, saying why), write `bench/results/<kind>.json` and
regenerate the README's table from it. `python -m bench scale` times every stage on generated
studies of growing size. `python -m bench readme` regenerates the tables only."""

from __future__ import annotations

import os

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # Presidio: no suffix-list download

# the offline environment and the CPU kernels' pins (pipeline.engine), before numpy loads
import pipeline  # noqa: E402, F401, I001

import argparse
import sys
import warnings
from pathlib import Path

from bench import coding, data, deid, results, scale, themes
from bench.scale_data import SIZES

TABLES = {"themes": themes.table, "coding": coding.table, "deid": deid.table, "scale": scale.table}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="kind", required=True)
    for kind in ("themes", "coding"):
        p = sub.add_parser(kind, help=f"{kind}: every method side by side on every dataset")
        names = data.NAMES if kind == "coding" else tuple(data.SOURCES)  # skewed sets: coding only
        p.add_argument("--data", nargs="+", choices=names, default=list(names))
        p.add_argument("--set", action="append", default=[], help="params override, section.key=value")
        if kind == "coding":
            p.add_argument("--seeds", type=int, default=5, help="paired splits (and resamplings)")
            p.add_argument("--methods", nargs="+", choices=coding.METHODS, default=list(coding.METHODS))
    p = sub.add_parser("deid", help="de-identification recall and speed, beside Presidio")
    p.add_argument(
        "--sets", nargs="+", choices=list(deid.SETS), default=list(deid.SETS),
        help="a subset of the datasets (the others keep their figures in bench/results/deid.json)",
    )  # fmt: skip
    p = sub.add_parser(
        "scale", help="seconds and peak memory of every stage on generated studies of growing size"
    )
    p.add_argument("--kind", dest="kinds", nargs="+", choices=list(SIZES), default=list(SIZES))
    p.add_argument("--sizes", nargs="+", type=int, help="a subset of the sizes (default: all of each kind's)")
    p.add_argument("--seed", type=int, default=0, help="the generated studies' seed")
    p.add_argument(
        "--keep",
        type=Path,
        help="keep the generated studies and outputs in this folder (its <kind>-<size> folders are replaced)",
    )
    sub.add_parser("readme", help="regenerate the README's tables from bench/results")
    worker = sub.add_parser("fit-themes", help=argparse.SUPPRESS)  # one timed fit, in a fresh process
    worker.add_argument("name")
    worker.add_argument("method")
    worker.add_argument("out", type=Path)
    worker.add_argument("--set", action="append", default=[])
    bare = sub.add_parser("scale-bare", help=argparse.SUPPRESS)  # bare library calls, in a fresh process
    bare.add_argument("out", type=Path)
    bare.add_argument("result", type=Path)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.kind == "fit-themes":
        themes.worker(args.name, args.method, args.out, tuple(args.set))
        return 0
    if args.kind == "scale-bare":
        scale.bare_worker(args.out, args.result)
        return 0
    if args.kind == "themes":
        record = themes.run(args.data, tuple(args.set))
    elif args.kind == "coding":
        record = coding.run(args.data, tuple(args.set), seeds=args.seeds, methods=tuple(args.methods))
        partial = set(args.methods) != set(coding.METHODS) or set(args.data) != set(data.NAMES)
        if partial and (results.RESULTS / "coding.json").exists():  # the others keep their figures
            record = coding.merge(results.load("coding"), record)
    elif args.kind == "deid":
        record = deid.run(args.sets, command="python -m bench " + " ".join(argv))
    elif args.kind == "scale":
        command = "python -m bench " + " ".join(argv)
        record = scale.run(args.kinds, args.sizes, seed=args.seed, command=command, keep=args.keep)
    if args.kind != "readme":
        record = results.save(args.kind, record, command=argv)
        print(TABLES[args.kind](record))
    kinds = list(TABLES) if args.kind == "readme" else [args.kind]
    for kind in kinds:
        if (results.RESULTS / f"{kind}.json").exists() and not results.update_readme(kind, TABLES[kind]):
            print(f"README.md has no <!-- bench:{kind} --> markers: table not placed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
