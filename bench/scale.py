"""`python -m bench scale`: how each stage's seconds and peak memory grow with a study's size, on
generated studies, beside the bare library calls on the same texts. Method: README, section
"Scale".
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench import results
from bench.data import ROOT, bench_params
from bench.scale_data import SIZES, TINY, write_study
from pipeline.engine import offline_env
from pipeline.layout import Layout
from pipeline.stages import BY_NAME
from pipeline.stages import STAGES as REGISTRY

PAIRS = {"interview": (1_000, 10_000), "survey": (10_000, 100_000)}  # the exponent reported
FLOOR_S = 0.1  # seconds - start-up is floored here before its log is taken
WARM = 16  # texts each bare call sees before it is timed (model load and first batch excluded)
# the bare calls' rates are measured on at most this many texts (of generated studies: alike
# throughout), so that the largest studies do not take far longer for a rate
BARE_TEXTS = 10_000
PLOT = results.RESULTS / "scale.png"


STAGES = tuple(s.name for s in REGISTRY)


def stage_commands(study: Path, out: Path, overrides: list[str]) -> list[tuple[str, list[str]]]:
    """Each stage's command line, as `dvc.yaml` has it (`pipeline.stages`), with the output
    folder `out`."""
    sets = [a for kv in overrides for a in ("--set", kv)]
    return [
        (s.name, [sys.executable, *s.command(study=str(study), root=str(out))[1:], *sets]) for s in REGISTRY
    ]


def _stage_run(run: dict, stage: str) -> dict:
    """A stage's record in a run; records made before the registry name it as its command did."""
    names = (stage, *BY_NAME[stage].aliases) if stage in BY_NAME else (stage,)
    return next((run["stages"][n] for n in names if n in run["stages"]), {})


def _env() -> dict[str, str]:
    """The children's environment: offline, and the key from `deid.key_file`, never the caller's."""
    return {k: v for k, v in os.environ.items() if k != "PIPELINE_DEID_KEY"} | offline_env()


# Spawns the timed processes. A child's peak RSS (ru_maxrss) counts the memory of the process it
# was forked from (Linux keeps the high-water mark across exec), so they are forked from this
# small interpreter (stdlib only, about 10 MB), never from the benchmark's own process.
LAUNCHER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(job["argv"], cwd=job["cwd"], env=job["env"], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    print(json.dumps({"rc": rc, "seconds": seconds, "maxrss_kib": usage.ru_maxrss}), flush=True)
"""


class Launcher:
    """Runs processes one at a time from the small LAUNCHER interpreter."""

    def __enter__(self) -> Launcher:
        argv = [sys.executable, "-S", "-c", LAUNCHER]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait()

    def run(self, argv: list[str], *, log: Path) -> dict:
        """Run one process; its wall seconds, peak RSS (MB), exit status and the last line it
        wrote to stderr. Its output goes to `log`.out and `log`.err."""
        log.parent.mkdir(parents=True, exist_ok=True)
        err = log.with_suffix(".err")
        job = dict(argv=argv, cwd=str(ROOT), env=_env(), out=str(log.with_suffix(".out")), err=str(err))
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        done = json.loads(self.proc.stdout.readline())
        lines = [x for x in err.read_text(errors="replace").splitlines() if x.strip()]
        return {
            "seconds": round(done["seconds"], 3),
            "peak_rss_mb": round(done["maxrss_kib"] / 1024, 1),  # ru_maxrss is KiB on Linux
            "rc": done["rc"],
            "error": lines[-1] if done["rc"] and lines else None,
        }


def _counts(out: Path) -> dict:
    """What the stages read and made: distinct raw turn texts and their characters, segments."""
    import pandas as pd

    lay = Layout(out)
    texts = set(pd.read_parquet(lay.turns, columns=["text"])["text"])
    found = {"turn_texts": len(texts), "chars": sum(map(len, texts))}
    if lay.segments.exists():
        found["segments"] = len(pd.read_parquet(lay.segments, columns=["segment_id"]))
    return found


def run_study(kind: str, n: int, *, seed: int, work: Path, bare: bool, launch: Launcher) -> dict:
    """Generate one study, run every stage on it in turn (stopping at a failure), then the bare
    library calls on its texts."""
    folder = work / f"{kind}-{n}"
    if folder.exists():  # a kept folder from an earlier run: start clean (an empty embedding cache)
        shutil.rmtree(folder)
    study, out = folder / "study", folder / "out"
    t0 = time.perf_counter()
    record: dict = {"kind": kind, "size": n, "generated": write_study(kind, study, n, seed=seed)}
    record["generate_seconds"] = round(time.perf_counter() - t0, 3)
    overrides = [f"deid.key_file={folder / 'deid.key'}", f"embed.cache_dir={folder / 'embedding-cache'}"]
    record["stages"], record["failed"] = {}, None
    for name, argv in stage_commands(study, out, overrides):
        child = launch.run(argv, log=folder / "logs" / name)
        record["stages"][name] = {k: child[k] for k in ("seconds", "peak_rss_mb", "rc")}
        _say(f"{kind} {n:>7,} {name:<10} {child['seconds']:8.1f} s {child['peak_rss_mb']:8.0f} MB")
        if child["rc"]:
            record["failed"] = {"stage": name, "error": child["error"]}
            _say(f"{kind} {n:,}: {name} failed (exit {child['rc']}): {child['error']}")
            break
    done = record["stages"].values()
    record["total_seconds"] = round(sum(s["seconds"] for s in done), 3)
    record["peak_rss_mb"] = max((s["peak_rss_mb"] for s in done), default=None)
    record["counts"] = _counts(out) if Layout(out).turns.exists() else {}
    if bare and Layout(out).segments.exists():
        argv = [sys.executable, "-m", "bench", "scale-bare", str(out), str(folder / "bare.json")]
        child = launch.run(argv, log=folder / "logs" / "bare")
        record["bare"] = None if child["rc"] else json.loads((folder / "bare.json").read_text())
        record["bare_error"] = child["error"]
    return record


def bare_worker(out: Path, result: Path) -> None:
    """The bare library calls on a finished run's texts (`python -m bench scale-bare`)."""
    import pandas as pd
    import spacy

    from pipeline.deid.detect import load_detector
    from pipeline.encoder import load_model

    p = bench_params()
    lay = Layout(out)
    # as deid reads them; the rates of the bare calls are taken on the first BARE_TEXTS of each
    texts = list(dict.fromkeys(pd.read_parquet(lay.turns, columns=["text"])["text"]))[:BARE_TEXTS]
    segments = pd.read_parquet(lay.segments, columns=["text"])["text"].tolist()[:BARE_TEXTS]
    found: dict = {"spacy_model": p.deid.spacy_model, "embed_model": p.embed.model, "texts": len(segments)}
    spacy_calls = {
        "spacy_full": lambda: spacy.load(p.deid.spacy_model),
        "spacy_ner": lambda: load_detector(p.deid.spacy_model, entity_labels=p.deid.entity_labels).nlp,
    }
    for name, load in spacy_calls.items():
        nlp = load()
        found[f"{name}_pipes"] = list(nlp.pipe_names)
        seconds = _timed(lambda items, nlp=nlp: all(True for _ in nlp.pipe(items, batch_size=64)), texts)
        found[f"{name}_chars_per_s"] = sum(map(len, texts)) / seconds
    options = {"batch_size": p.embed.batch_size, "normalize_embeddings": True, "convert_to_tensor": True}
    for precision in ("float64", "float32"):  # as pipeline.encoder.embed_texts calls it
        model = load_model(p.embed.model, precision)
        seconds = _timed(lambda items, model=model: model.encode(items, **options), segments)
        found[f"encode_{precision}_texts_per_s"] = len(segments) / seconds
    found["embed_precision"], found["batch_size"] = p.embed.precision, p.embed.batch_size
    result.write_text(json.dumps(found, indent=2))


def _timed(call, items: list[str]) -> float:
    """Seconds `call(items)` takes, once it has seen the first WARM items (model load, first batch)."""
    call(items[:WARM])
    t0 = time.perf_counter()
    call(items)
    return max(time.perf_counter() - t0, 1e-9)


def net(seconds: float, fixed: float | None) -> float:
    """Seconds less the start-up cost, floored at FLOOR_S."""
    return max(seconds - (fixed or 0.0), FLOOR_S)


def ratios(run: dict, fixed: dict) -> dict | None:
    """Whole-stage rates (start-up included, and with the tiny study's time subtracted) against
    the bare calls' rates, measured in the same run."""
    bare, counts, stages = run.get("bare"), run.get("counts", {}), run["stages"]
    if not bare or not _stage_run(run, "deid") or "embed" not in stages:
        return None
    deid, emb = _stage_run(run, "deid")["seconds"], stages["embed"]["seconds"]
    deid_net, emb_net = net(deid, _seconds(fixed, "deid")), net(emb, _seconds(fixed, "embed"))
    chars, segs = counts["chars"], counts["segments"]
    same = bare[f"encode_{bare['embed_precision']}_texts_per_s"]
    return {
        "deid_chars_per_s": chars / deid,
        "deid_chars_per_s_net": chars / deid_net,
        "deid_vs_ner_only": chars / deid / bare["spacy_ner_chars_per_s"],
        "deid_vs_ner_only_net": chars / deid_net / bare["spacy_ner_chars_per_s"],
        "deid_net_floored": deid_net == FLOOR_S,
        "deid_vs_full_pipeline": chars / deid / bare["spacy_full_chars_per_s"],
        "embed_texts_per_s": segs / emb,
        "embed_texts_per_s_net": segs / emb_net,
        "embed_vs_encode": segs / emb / same,
        "embed_vs_encode_net": segs / emb_net / same,
        "embed_net_floored": emb_net == FLOOR_S,
    }


def exponents(kind: str, runs: list[dict], fixed: dict) -> dict:
    """Per stage (and the total): the slope of log(seconds - start-up) over log(size) between the
    kind's reported pair of sizes, and fitted by least squares over every size run."""
    found: dict = {}
    ok = sorted((r for r in runs if r["failed"] is None), key=lambda r: r["size"])
    for stage in (*STAGES, "total"):
        t_fix = _seconds(fixed, stage)
        if t_fix is None:
            continue
        points = {r["size"]: _seconds(r, stage) for r in ok}
        floored = sorted(n for n, t in points.items() if t - t_fix < FLOOR_S)
        logs = {n: (math.log(n), math.log(net(t, t_fix))) for n, t in points.items()}
        a, b = PAIRS[kind]
        entry = {"pair": f"{a}->{b}", "floored_sizes": floored}
        if a in logs and b in logs:
            entry["pair_exponent"] = (logs[b][1] - logs[a][1]) / (logs[b][0] - logs[a][0])
        if len(logs) >= 2:
            xs, ys = zip(*logs.values(), strict=True)
            entry["fit_exponent"], entry["fit_sizes"] = float(np.polyfit(xs, ys, 1)[0]), sorted(logs)
        found[stage] = entry
    return found


def run(kinds: list[str], sizes: list[int] | None, *, seed: int, command: str, keep: Path | None) -> dict:
    """Run the chosen kinds and sizes; kinds not run keep their figures from bench/results/scale.json."""
    previous = results.load("scale")["kinds"] if (results.RESULTS / "scale.json").exists() else {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, Launcher() as launch:
        work = keep or Path(tmp)
        for kind in kinds:
            chosen = [n for n in SIZES[kind] if sizes is None or n in sizes]
            unknown = sorted(set(sizes or ()) - set(SIZES[kind]))
            if unknown:
                _say(f"{kind}: sizes {unknown} skipped (this kind has {list(SIZES[kind])})")
            if not chosen:
                continue
            fixed = run_study(kind, TINY[kind], seed=seed, work=work, bare=False, launch=launch)
            runs = [run_study(kind, n, seed=seed, work=work, bare=True, launch=launch) for n in chosen]
            for r in runs:
                r["ratios"] = ratios(r, fixed)
            previous[kind] = {
                "command": command,
                "machine": results.machine(),
                "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                "seed": seed,
                "fixed": fixed,
                "runs": runs,
                "exponents": exponents(kind, runs, fixed),
            }
    record = {"floor_s": FLOOR_S, "kinds": {k: previous[k] for k in SIZES if k in previous}}
    plot(record, PLOT)
    return record


def _seconds(run: dict, stage: str) -> float | None:
    """A stage's seconds in a run ("total": every stage; None when it did not run or failed)."""
    if stage == "total":
        return None if run["failed"] else run["total_seconds"]
    return _stage_run(run, stage).get("seconds")


def plot(record: dict, path: Path) -> None:
    """Seconds against size, log-log, a line per stage, one panel per kind (start-up run included)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(record["kinds"])
    fig, axes = plt.subplots(1, max(len(kinds), 1), figsize=(6 * max(len(kinds), 1), 4.5), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=False):
        section = record["kinds"][kind]
        runs = [section["fixed"], *section["runs"]]
        for stage in (*STAGES, "total"):
            pts = [(r["size"], _seconds(r, stage)) for r in runs if _seconds(r, stage) is not None]
            if pts:
                xs, ys = zip(*pts, strict=True)
                style = {"color": "black", "linestyle": "--"} if stage == "total" else {}
                ax.plot(xs, ys, marker="o", label=stage, **style)
        unit = "participant turns" if kind == "interview" else "answers"
        ax.set(xscale="log", yscale="log", xlabel=unit, ylabel="seconds (wall, whole process)")
        ax.set_title(f"{kind} studies")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def table(record: dict) -> str:
    """Seconds and peak memory per stage, growth exponents, and stage vs bare-call rates."""
    sections = record["kinds"]
    runs = [(k, r, r is s["fixed"]) for k, s in sections.items() for r in [s["fixed"], *s["runs"]]]
    top = [record.get(x) for x in ("command", "machine", "date")]
    out = [f"{k}: `{s['command']}` ({s['machine']}, {s['date']})" for k, s in sections.items()
           if [s[x] for x in ("command", "machine", "date")] != top]  # fmt: skip
    for title, key, last, digits in (
        ("Seconds per stage (wall, whole process)", "seconds", "total_seconds", 1),
        ("Peak resident memory per stage, MB", "peak_rss_mb", "peak_rss_mb", 0),
    ):
        out += ["", f"{title}:", "", _md("study", "units", "segments", *STAGES, last.split("_")[0])]
        out.append("|---|---:|---:|" + "---:|" * (len(STAGES) + 1))
        for kind, r, tiny in runs:
            units = f"{r['size']:,}" + (" (start-up)" if tiny else "")
            cells = [_num(_stage_run(r, s).get(key), digits) for s in STAGES]
            out.append(_md(kind, units, _num(r["counts"].get("segments")), *cells, _num(r[last], digits)))
    out += ["", *_exponent_rows(sections, record["floor_s"]), "", *_ratio_rows(sections)]
    out += [f"\n{r['kind']} {r['size']:,}: failed at {r['failed']['stage']}: {r['failed']['error']}"
            for _, r, _ in runs if r["failed"]]  # fmt: skip
    return "\n".join(out).lstrip("\n")


def _exponent_rows(sections: dict, floor: float) -> list[str]:
    rows = [
        "Growth exponent, slope of log(seconds - start-up) over log(size) (differences under "
        f"{floor} s floored to it, marked *):",
        "",
        _md("study", "sizes", *STAGES, "total"),
        "|---|---|" + "---:|" * (len(STAGES) + 1),
    ]
    for kind, s in sections.items():
        ex = s["exponents"]
        fit = ex.get("total", {}).get("fit_sizes", [])
        pair = " -> ".join(f"{n:,}" for n in PAIRS[kind])
        for key, label in (("pair_exponent", pair), ("fit_exponent", "fit over " + ", ".join(map(str, fit)))):
            has_pair = any("pair_exponent" in e for e in ex.values())
            if not any(key in e for e in ex.values()) or (
                key == "fit_exponent" and len(fit) < 3 - (not has_pair)
            ):
                continue  # a fit over two sizes is shown only when the reported pair was not run
            cells = [
                f"{e[key]:.2f}" + ("*" if e["floored_sizes"] else "") if key in (e := ex.get(st, {})) else ""
                for st in (*STAGES, "total")
            ]
            rows.append(_md(kind, label, *cells))
    return (
        rows
        if len(rows) > 4
        else ["Growth exponents: none yet (they need two sizes of a kind run together)."]
    )


def _ratio_rows(sections: dict) -> list[str]:
    rows = [
        "Whole stage vs bare library call on the same texts (rates; ratio = stage / bare, the encoder "
        "at the embed stage's precision; 'net': the start-up study's seconds taken off the stage's):",
        "",
        "| study | units | deidentify chars/s | spaCy NER-only chars/s | spaCy full chars/s | "
        "deid / NER-only | net | embed texts/s | encode texts/s (float64 / float32) | embed / encode | net |",
        "|---|---:|" + "---:|" * 9,
    ]
    for kind, s in sections.items():
        for r in (r for r in s["runs"] if r.get("ratios") and r.get("bare")):
            q, b = r["ratios"], r["bare"]
            rates = [q["deid_chars_per_s"], b["spacy_ner_chars_per_s"], b["spacy_full_chars_per_s"]]
            encode = f"{b['encode_float64_texts_per_s']:,.0f} / {b['encode_float32_texts_per_s']:,.0f}"
            pairs = (("deid", "deid_vs_ner_only_net"), ("embed", "embed_vs_encode_net"))
            nets = ["within start-up" if q.get(f"{x}_net_floored") else f"{q[y]:.2f}" for x, y in pairs]
            rows.append(
                _md(kind, f"{r['size']:,}", *(f"{x:,.0f}" for x in rates), f"{q['deid_vs_ner_only']:.2f}",
                    nets[0], f"{q['embed_texts_per_s']:,.0f}", encode, f"{q['embed_vs_encode']:.2f}", nets[1])
            )  # fmt: skip
    return rows


def _md(*cells: object) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def _num(x: float | None, digits: int = 0) -> str:
    return "" if x is None else f"{x:,.{digits}f}"
