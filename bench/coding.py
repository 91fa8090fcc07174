"""Benchmark: machine coding against human coding, code by code.

On the demo study (sentence segments; coders A and B) and on serdif-usability (the coded
Taguette highlights as units, one coder), 20% of the coded units -- whole transcripts,
drawn at random until they hold 20% of the units -- train the few-shot coders; every
figure is measured on the other transcripts' units only. Side by side, per code:
- zero-shot (pipeline.coding.zero_shot, default params, no training data),
- few-shot (pipeline.coding.few_shot, default params),
- logistic regression on the same MiniLM embeddings (scikit-learn defaults),
- TF-IDF + linear SVM (scikit-learn defaults),
and, on the demo, coder B against coder A on the same units (the human ceiling).

Run: .venv/bin/python bench/coding.py [--seeds 3] [--out bench/coding.json] [--set coding.C=3 ...]
Params come from params.yaml (segmentation, coding), as in the pipeline.
Not run by pytest. Prints a markdown table; writes the per-code figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.agreement import compare_coders, human_segment_codes  # noqa: E402
from pipeline.coding import (  # noqa: E402
    coding_inputs,
    few_shot,
    preceding_questions,
    question_vectors,
    turn_means,
    zero_shot,
)
from pipeline.config import Params, load_params  # noqa: E402
from pipeline.embed import embed_texts  # noqa: E402
from pipeline.study import Codebook, load_codebook, load_codings  # noqa: E402

SERDIF = ROOT.parent / "shared" / "datasets" / "serdif-usability"
DEMO = ROOT / "data" / "demo"
PARAMS = Params()  # replaced in main() by params.yaml (+ --set overrides), as the pipeline reads them


def embed(texts: list[str]) -> np.ndarray:
    return embed_texts(
        # these texts are not pseudonymised: they stay out of the shared embedding cache
        list(texts),
        model=PARAMS.embed.model,
        batch_size=64,
        cache_dir=None,
    )


def demo_units() -> tuple[pd.DataFrame, dict[str, dict[str, set[str]]], Codebook]:
    """Sentence segments of participant turns (as the segment stage cuts them) and each coder's codes."""
    from pipeline.ingest import ingest_study
    from pipeline.segment import segment_turns

    turns = ingest_study(DEMO)[0].assign(spans="[]")
    segs, _ = segment_turns(turns, options=PARAMS.segment)
    book = load_codebook(DEMO)
    codings = load_codings(DEMO, set(turns["transcript_id"]), book)
    gold = human_segment_codes(segs, codings, min_overlap=PARAMS.agreement.min_overlap)
    labels = {
        coder: {s: set(g.loc[g["id"] == s, "code"]) for s in segs["segment_id"]}
        for coder, g in gold.groupby("coder")
    }
    units = segs.rename(columns={"segment_id": "id"})[["id", "transcript_id", "turn_id", "text"]]
    units["question"] = preceding_questions(segs, turns)  # as the code stage (coding.context)
    return units, labels, book


def serdif_units() -> tuple[pd.DataFrame, dict[str, dict[str, set[str]]], Codebook]:
    """The coded Taguette highlights as units, each with the set of tags the team gave it."""
    from pipeline.taguette import read_taguette_db

    book, cod, texts, _ = read_taguette_db(SERDIF / "taguette.sqlite3")
    cod = cod.assign(
        text=[texts[t][s:e] for t, s, e in zip(cod.transcript_id, cod.start, cod.end, strict=True)]
    )
    cod["id"] = cod["transcript_id"] + ":" + cod["start"].astype(str) + "-" + cod["end"].astype(str)
    units = cod.drop_duplicates("id")[["id", "transcript_id", "text"]].reset_index(drop=True)
    labels = {"team": {i: set(g["code"]) for i, g in cod.groupby("id")}}
    return units, labels, book


def _questions(units: pd.DataFrame) -> tuple[list[str], np.ndarray] | None:
    """The questions the units answer, as the code stage gives them (None when none)."""
    vectors = question_vectors(units["question"].tolist(), embed)
    return None if vectors is None else (units["question"].tolist(), vectors)


def split_by_transcript(units: pd.DataFrame, *, share: float, seed: int) -> np.ndarray:
    """Boolean mask of training units: whole transcripts, drawn until they hold `share` of the units."""
    rng = np.random.default_rng(seed)
    counts = units["transcript_id"].value_counts()
    chosen, n = [], 0
    for t in rng.permutation(sorted(counts.index)):
        if n >= share * len(units):
            break
        chosen.append(t)
        n += counts[t]
    return units["transcript_id"].isin(chosen).to_numpy()


def baseline(kind: str, X_tr, y_tr: list[set[str]], X_te, codes: list[str]) -> list[set[str]]:
    """scikit-learn defaults: multinomial when training data are single-label, else one-vs-rest."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC

    make = (lambda: LogisticRegression(max_iter=2000)) if kind == "lr" else LinearSVC
    coded = [s for s in y_tr if s]
    if sum(len(s) == 1 for s in coded) >= 0.9 * len(coded):  # (nearly) single-label: top-1 classifier
        y_tr = [set(sorted(s)[:1]) for s in y_tr]
        y = np.array([next(iter(s)) if s else "(none)" for s in y_tr])
        pred = make().fit(X_tr, y).predict(X_te)
        return [set() if p == "(none)" else {p} for p in pred]
    mlb = MultiLabelBinarizer(classes=codes)
    Y = mlb.fit_transform(y_tr)
    keep = Y.sum(axis=0) > 0
    model = OneVsRestClassifier(make()).fit(X_tr, Y[:, keep])
    out = np.zeros((X_te.shape[0], len(codes)), dtype=int)
    out[:, keep] = model.predict(X_te)
    return [set(np.array(codes)[row.astype(bool)]) for row in out]


def long(ids: list[str], labels: list[set[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(i, c) for i, s in zip(ids, labels, strict=True) for c in sorted(s)], columns=["id", "code"]
    )


def evaluate(name: str, units, labels, book, *, seeds: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    codes = [c.code_id for c in book.leaves]
    reference = sorted(labels)[0]
    ref = labels[reference]
    X = embed(units["text"].tolist())
    ids = units["id"].tolist()
    texts = units["text"].tolist()
    context = None
    if "turn_id" in units.columns and PARAMS.coding.context != "none":  # as the pipeline's code stage
        context = turn_means(units, X)
        questions = None
        if "question" in units.columns:
            questions = _questions(units)
        ctx_texts, ctx_X = coding_inputs(units, X, context=PARAMS.coding.context, questions=questions)
    results: dict[str, list[dict]] = {}
    for seed in range(seeds):
        train = split_by_transcript(units, share=0.2, seed=seed)
        tr, te = np.nonzero(train)[0], np.nonzero(~train)[0]
        te_ids = [ids[i] for i in te]
        gold = long(te_ids, [ref[i] for i in te_ids])
        y_tr = [ref[ids[i]] for i in tr]
        ftexts, fX = (ctx_texts, ctx_X) if context is not None else (texts, X)
        preds = {
            "zero_shot": zero_shot(
                te_ids,
                X[te],
                book,
                embed=embed,
                options=PARAMS.coding,
                context=None if context is None else context[te],
            ).rename(columns={"segment_id": "id"})[["id", "code"]],
            "few_shot": few_shot(
                [ids[i] for i in tr],
                [ftexts[i] for i in tr],
                fX[tr],
                y_tr,
                te_ids,
                [ftexts[i] for i in te],
                fX[te],
                book,
                embed=embed,
                options=PARAMS.coding,
                seed=seed,
                train_groups=units["transcript_id"].iloc[tr].tolist(),
            ).rename(columns={"segment_id": "id"})[["id", "code"]],
        }
        variants = [("", texts, X)] + ([("+context", ctx_texts, ctx_X)] if context is not None else [])
        for suffix, btexts, bX in variants:
            preds[f"logreg_minilm{suffix}"] = long(te_ids, baseline("lr", bX[tr], y_tr, bX[te], codes))
            T = TfidfVectorizer().fit([btexts[i] for i in tr]).transform(btexts)
            preds[f"tfidf_svm{suffix}"] = long(te_ids, baseline("svm", T[tr], y_tr, T[te], codes))
        for other in sorted(labels)[1:]:
            preds[f"coder_{other}"] = long(te_ids, [labels[other][i] for i in te_ids])
        for method, pred in preds.items():
            r = compare_coders(gold, pred, ids=te_ids, codes=codes)
            primary_gold = [sorted(ref[i])[0] if ref[i] else "" for i in te_ids]
            results.setdefault(method, []).append(
                {
                    "macro_kappa": r["overall"]["macro_cohen_kappa"],
                    "macro_f1": r["overall"]["macro_f1"],
                    "nominal_kappa": _nominal(primary_gold, pred, te_ids),
                    "per_code": {c: m["cohen_kappa"] for c, m in r["per_code"].items()},
                    "test_units": len(te_ids),
                }
            )
    summary = {}
    for method, runs in results.items():
        per_code = {c: _mean([r["per_code"][c] for r in runs]) for c in codes}
        summary[method] = {
            "macro_kappa": _mean([r["macro_kappa"] for r in runs]),
            "macro_f1": _mean([r["macro_f1"] for r in runs]),
            "nominal_kappa_top_code": _mean([r["nominal_kappa"] for r in runs]),
            "per_code_kappa": per_code,
            "test_units": runs[0]["test_units"],
        }
    return {
        "dataset": name,
        "reference_coder": reference,
        "units": len(units),
        "seeds": seeds,
        "methods": summary,
    }


def crossfit_demo() -> dict:
    """The code stage's own setting on the demo: coder A's codings, cross-fitted over
    transcripts (`coding.folds`), every segment scored by a model that never saw its transcript."""
    from pipeline.coding import cross_fit

    units, labels, book = demo_units()
    codes = [c.code_id for c in book.leaves]
    X = embed(units["text"].tolist())
    questions = _questions(units)
    pred, info = cross_fit(
        units.rename(columns={"id": "segment_id"}),
        X,
        labels["A"],
        book,
        embed=embed,
        options=PARAMS.coding,
        questions=questions,
    )
    ids = units["id"].tolist()
    gold_a = long(ids, [labels["A"][i] for i in ids])
    machine = compare_coders(gold_a, pred.rename(columns={"segment_id": "id"}), ids=ids, codes=codes)
    human = compare_coders(gold_a, long(ids, [labels["B"][i] for i in ids]), ids=ids, codes=codes)
    return {
        "dataset": "demo, code stage (cross-fitted few-shot on coder A)",
        "folds": info["folds"],
        "units": len(ids),
        "machine_vs_A_macro_kappa": machine["overall"]["macro_cohen_kappa"],
        "B_vs_A_macro_kappa": human["overall"]["macro_cohen_kappa"],
        "machine_vs_A_per_code_kappa": {c: m["cohen_kappa"] for c, m in machine["per_code"].items()},
    }


def _nominal(gold: list[str], pred: pd.DataFrame, ids: list[str]) -> float | None:
    """Cohen's kappa on one label per unit (gold: first code; pred: first listed, i.e. best)."""
    from sklearn.metrics import cohen_kappa_score

    first = pred.drop_duplicates("id").set_index("id")["code"].to_dict()
    return float(cohen_kappa_score(gold, [first.get(i, "") for i in ids]))


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def table(result: dict) -> str:
    methods = list(result["methods"])
    head = "| code | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods) + "\n"
    fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    codes = list(next(iter(result["methods"].values()))["per_code_kappa"])
    rows = [
        f"| {c} | " + " | ".join(fmt(result["methods"][m]["per_code_kappa"][c]) for m in methods) + " |"
        for c in codes
    ]
    for key in ("macro_kappa", "nominal_kappa_top_code", "macro_f1"):
        rows.append(
            f"| **{key}** | " + " | ".join(f"**{fmt(result['methods'][m][key])}**" for m in methods) + " |"
        )
    return head + "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "coding.json")
    ap.add_argument("--only", choices=["demo", "serdif"], default=None)
    ap.add_argument("--crossfit", action="store_true", help="also the code stage's cross-fitting on the demo")
    ap.add_argument("--set", action="append", default=[], help="param override section.key=value")
    args = ap.parse_args()
    global PARAMS
    PARAMS = load_params(ROOT / "params.yaml", args.set)
    results = []
    if args.only in (None, "demo"):
        results.append(evaluate("demo", *demo_units(), seeds=args.seeds))
    if args.only in (None, "serdif"):
        if SERDIF.is_dir():
            results.append(evaluate("serdif-usability", *serdif_units(), seeds=args.seeds))
        else:
            print(f"skipped serdif-usability: {SERDIF} not found", file=sys.stderr)
    if args.crossfit:
        results.append(crossfit_demo())
    for r in results:
        if "methods" not in r:
            print(f"\n## {r['dataset']}\n\n{json.dumps(r, indent=2)}")
            continue
        print(
            f"\n## {r['dataset']}: {r['units']} units, reference coder {r['reference_coder']}, "
            f"{r['seeds']} splits, 20% of units (whole transcripts) for training\n"
        )
        print(table(r))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
