"""`python -m bench coding`: machine coding against human coding, the pipeline's zero-shot and
few-shot coders beside simple baselines, on the same embeddings. Methods and figures: README,
section "Agreement with human coding" (Benchmark).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from bench import data
from bench.themes import embed

SHARE = 0.2


def _long(ids: list[str], codes: list) -> pd.DataFrame:
    return pd.DataFrame(
        [(i, c) for i, s in zip(ids, codes, strict=True) for c in sorted(s)], columns=["id", "code"]
    )


def figure(units: data.Units, idx: np.ndarray, pred: pd.DataFrame) -> float | None:
    """Kappa of the predictions (`id`, `code`[, `score`]) over units `idx`: single-label data, Cohen's
    kappa of the top code against the primary code; multi-label data, macro kappa over codes."""
    from pipeline.agreement.metrics import compare_coders
    from pipeline.kappa import cohen_kappa

    ids = [units.ids[i] for i in idx]
    if units.single_label:
        ranked = pred.sort_values("score", ascending=False, kind="stable") if "score" in pred else pred
        top = ranked.drop_duplicates("id").set_index("id")["code"]
        return cohen_kappa(np.array([units.primary[i] for i in idx]), np.array([top.get(i, "") for i in ids]))
    gold = _long(ids, [units.codes[i] for i in idx])
    return compare_coders(gold, pred, ids=ids, codes=units.leaf_ids)["overall"]["macro_cohen_kappa"]


def _contexts(units: data.Units, emb: np.ndarray, params, *, questions: bool):
    """Texts and features as the coding stage gives them (turn, question: the demo only)."""
    from pipeline.context import coding_inputs, question_vectors, turn_means

    if units.segments is None or params.coding.context == "none":
        return units.texts, emb, None
    q = None
    if questions and params.coding.context == "turn+question":
        vectors = question_vectors(units.questions, lambda t: embed(t, params, cache=True))
        q = None if vectors is None else (units.questions, vectors)
    context = "turn+question" if q is not None else "turn"
    texts, features = coding_inputs(units.segments, emb, context=context, questions=q)
    return texts, features, turn_means(units.segments, emb)


def zero_shot_methods(units: data.Units, emb: np.ndarray, params) -> dict[str, pd.DataFrame]:
    from pipeline.coding.zero_shot import zero_shot
    from pipeline.vectors import unit_rows

    _, _, turn = _contexts(units, emb, params, questions=False)
    coder = lambda t: embed(t, params, cache=True)  # noqa: E731
    out = {
        "pipeline_zero_shot": zero_shot(
            units.ids, emb, units.codebook, embed=coder, options=params.coding, context=turn
        ).rename(columns={"segment_id": "id"})
    }
    leaves = units.codebook.leaves
    for method, views in (
        ("nearest_name", [c.name for c in leaves]),
        (
            "nearest_name_definition",
            [f"{c.name}: {c.definition}" if c.definition else c.name for c in leaves],
        ),
    ):
        sim = unit_rows(emb.astype(np.float64)) @ unit_rows(coder(views).astype(np.float64)).T
        best = sim.argmax(axis=1)
        out[method] = pd.DataFrame(
            {"id": units.ids, "code": [leaves[j].code_id for j in best], "score": sim.max(axis=1)}
        )
    return out


def _baseline(kind: str, X_tr, y_tr: list, X_te, units: data.Units) -> list[set[str]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC

    make = (lambda: LogisticRegression(max_iter=2000)) if kind == "logreg" else LinearSVC
    if units.single_label:  # one class per unit: the primary code, "" for none
        pred = make().fit(X_tr, y_tr).predict(X_te)
        return [set() if p == "" else {p} for p in pred]
    codes = units.leaf_ids
    Y = MultiLabelBinarizer(classes=codes).fit_transform(y_tr)
    keep = Y.sum(axis=0) > 0
    out = np.zeros((X_te.shape[0], len(codes)), dtype=int)
    out[:, keep] = OneVsRestClassifier(make()).fit(X_tr, Y[:, keep]).predict(X_te)
    return [set(np.array(codes)[row.astype(bool)]) for row in out]


def few_shot_methods(units: data.Units, emb: np.ndarray, params, *, seed: int) -> tuple[np.ndarray, dict]:
    """(test unit indices, predictions per method) for one 20% training split."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pipeline.coding.few_shot import few_shot

    train = data.train_split(units, share=SHARE, seed=seed)
    tr, te = np.flatnonzero(train), np.flatnonzero(~train)
    texts, X, _ = _contexts(units, emb, params, questions=True)
    coder = lambda t: embed(t, params, cache=True)  # noqa: E731
    pred = few_shot(
        [units.ids[i] for i in tr],
        [texts[i] for i in tr],
        X[tr],
        [set(units.codes[i]) for i in tr],
        [units.ids[i] for i in te],
        [texts[i] for i in te],
        X[te],
        units.codebook,
        embed=coder,
        options=params.coding,
        seed=seed,
        train_groups=None if units.groups is None else [units.groups[i] for i in tr],
    ).rename(columns={"segment_id": "id"})
    out = {"pipeline_few_shot": pred}
    y_tr = [units.primary[i] for i in tr] if units.single_label else [units.codes[i] for i in tr]
    te_ids = [units.ids[i] for i in te]
    out["logreg_embeddings"] = _long(te_ids, _baseline("logreg", emb[tr], y_tr, emb[te], units))
    tfidf = TfidfVectorizer(ngram_range=(1, 2)).fit([units.texts[i] for i in tr])
    T = tfidf.transform(units.texts)
    out["tfidf_linear_svc"] = _long(te_ids, _baseline("svc", T[tr], y_tr, T[te], units))
    for coder_name, codes in (units.other_coders or {}).items():
        out[f"coder_{coder_name}"] = _long(te_ids, [codes[i] for i in te])
    return te, out


def run(names: list[str], overrides: tuple[str, ...], *, seeds: int) -> dict:
    params = data.bench_params(overrides)
    results: dict = {"datasets": {}, "skipped": {}, "seeds": seeds, "train_share": SHARE}
    for name in names:
        why = data.available(name)
        if why:
            results["skipped"][name] = why
            continue
        units = data.load(name, overrides)
        emb = embed(units.texts, params, cache=name == "demo")  # raw public texts stay out of the cache
        measure = "nominal kappa, top code" if units.single_label else "macro kappa over codes"
        entry = {"units": len(units.ids), "codes": len(units.leaf_ids), "measure": measure, "methods": {}}
        everyone = np.arange(len(units.ids))
        for method, pred in zero_shot_methods(units, emb, params).items():
            entry["methods"][method] = {"kappa": figure(units, everyone, pred), "setting": "zero-shot"}
        runs: dict[str, list[float | None]] = {}
        for seed in range(seeds):
            te, preds = few_shot_methods(units, emb, params, seed=seed)
            for method, pred in preds.items():
                runs.setdefault(method, []).append(figure(units, te, pred))
        for method, values in runs.items():
            kept = [v for v in values if v is not None]
            entry["methods"][method] = {
                "kappa": float(np.mean(kept)) if kept else None,
                "kappa_per_split": values,
                "setting": f"few-shot, {SHARE:.0%} training",
            }
        print(name, {m: v["kappa"] for m, v in entry["methods"].items()}, file=sys.stderr)
        results["datasets"][name] = entry
    return results


def table(results: dict) -> str:
    lines = [
        "| data | units | codes | measure | setting | method | kappa |",
        "|---|---:|---:|---|---|---|---:|",
    ]
    for name, entry in results["datasets"].items():
        for method, m in entry["methods"].items():
            k = "n/a" if m["kappa"] is None else f"{m['kappa']:.3f}"
            lines.append(
                f"| {name} | {entry['units']} | {entry['codes']} | {entry['measure']} | {m['setting']} "
                f"| {method} | {k} |"
            )
    lines += [f"\n{name}: skipped, {why}" for name, why in results.get("skipped", {}).items()]
    return "\n".join(lines)
