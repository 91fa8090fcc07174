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
ZERO_SHOT = ("pipeline_zero_shot", "nearest_name", "nearest_name_definition")
FEW_SHOT = (
    "pipeline_few_shot",
    "pipeline_fine_tuned",
    "logreg_embeddings",
    "tfidf_linear_svc",
    "logreg_cv",
    "tfidf_svc_cv",
)
METHODS = (*ZERO_SHOT, *FEW_SHOT)
TUNED = ("logreg_cv", "tfidf_svc_cv")  # the few-shot target: the best of these + FEW_SHOT_MARGIN
FEW_SHOT_MARGIN, ZERO_SHOT_MARGIN = 0.04, 0.02


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


def _contexts(units: data.Units, emb: np.ndarray, params, *, questions: bool, encode=None):
    """Texts and features as the coding stage gives them (turn, question: the demo only);
    `encode`: the encoder for the questions (default: the frozen one, cached)."""
    from pipeline.context import coding_inputs, question_vectors, turn_means

    if units.segments is None or params.coding.context == "none":
        return units.texts, emb, None
    q = None
    if questions and params.coding.context == "turn+question":
        vectors = question_vectors(units.questions, encode or (lambda t: embed(t, params, cache=True)))
        q = None if vectors is None else (units.questions, vectors)
    context = "turn+question" if q is not None else "turn"
    texts, features = coding_inputs(units.segments, emb, context=context, questions=q)
    return texts, features, turn_means(units.segments, emb)


def zero_shot_methods(
    units: data.Units, emb: np.ndarray, params, *, methods: tuple[str, ...] = ZERO_SHOT
) -> dict[str, pd.DataFrame]:
    from pipeline.coding.zero_shot import zero_shot
    from pipeline.vectors import unit_rows

    _, _, turn = _contexts(units, emb, params, questions=False)
    coder = lambda t: embed(t, params, cache=True)  # noqa: E731
    out = {}
    if "pipeline_zero_shot" in methods:
        out["pipeline_zero_shot"] = zero_shot(
            units.ids, emb, units.codebook, embed=coder, options=params.coding, context=turn
        ).rename(columns={"segment_id": "id"})
    leaves = units.codebook.leaves
    for method, views in (
        ("nearest_name", [c.name for c in leaves]),
        (
            "nearest_name_definition",
            [f"{c.name}: {c.definition}" if c.definition else c.name for c in leaves],
        ),
    ):
        if method not in methods:
            continue
        sim = unit_rows(emb.astype(np.float64)) @ unit_rows(coder(views).astype(np.float64)).T
        best = sim.argmax(axis=1)
        out[method] = pd.DataFrame(
            {"id": units.ids, "code": [leaves[j].code_id for j in best], "score": sim.max(axis=1)}
        )
    return out


def _baseline(kind: str, X_tr, y_tr: list, X_te, units: data.Units) -> list[set[str]]:
    """The untuned baselines (scikit-learn's defaults, the plain embedding or text)."""
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


def few_shot_methods(
    units: data.Units, emb: np.ndarray, params, *, seed: int, methods: tuple[str, ...] = FEW_SHOT
) -> tuple[np.ndarray, dict, dict]:
    """(test unit indices, predictions per method, C chosen per tuned baseline) for one 20%
    training split. The tuned baselines get the pipeline's inputs: its texts and features, with
    the turn and question context where the data has them."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from bench.baselines import tuned

    train = data.train_split(units, share=SHARE, seed=seed)
    tr, te = np.flatnonzero(train), np.flatnonzero(~train)
    texts, X, _ = _contexts(units, emb, params, questions=True)
    coder = lambda t: embed(t, params, cache=True)  # noqa: E731
    groups = None if units.groups is None else [units.groups[i] for i in tr]
    out: dict[str, pd.DataFrame] = {}
    chosen: dict[str, float] = {}
    if "pipeline_few_shot" in methods:
        out["pipeline_few_shot"] = _pipeline_coder(
            units, tr, te, texts, X, coder, params, seed=seed, groups=groups
        )
    if "pipeline_fine_tuned" in methods:
        out["pipeline_fine_tuned"] = _fine_tuned(units, tr, te, params, seed=seed, groups=groups)
    y_tr = [units.primary[i] for i in tr] if units.single_label else [units.codes[i] for i in tr]
    te_ids = [units.ids[i] for i in te]
    if "logreg_embeddings" in methods:
        out["logreg_embeddings"] = _long(te_ids, _baseline("logreg", emb[tr], y_tr, emb[te], units))
    if "tfidf_linear_svc" in methods:
        T = TfidfVectorizer(ngram_range=(1, 2)).fit([units.texts[i] for i in tr]).transform(units.texts)
        out["tfidf_linear_svc"] = _long(te_ids, _baseline("svc", T[tr], y_tr, T[te], units))
    for method, kind in (("logreg_cv", "logreg"), ("tfidf_svc_cv", "svc")):
        if method not in methods:
            continue
        if kind == "logreg":
            F = X
        else:
            F = TfidfVectorizer(ngram_range=(1, 2)).fit([texts[i] for i in tr]).transform(texts)
        pred, chosen[method] = tuned(
            kind,
            F[tr],
            y_tr,
            F[te],
            codes=units.leaf_ids,
            single_label=units.single_label,
            groups=groups,
            seed=seed,
        )
        out[method] = _long(te_ids, pred)
    for coder_name, codes in (units.other_coders or {}).items():
        out[f"coder_{coder_name}"] = _long(te_ids, [codes[i] for i in te])
    return te, out, chosen


def _fine_tuned(units: data.Units, tr, te, params, *, seed: int, groups) -> pd.DataFrame:
    """The pipeline's few-shot coder on an encoder fine-tuned on the training units (as the
    coding stage's folds do with `coding.fine_tune`): every text re-embedded with it."""
    from pipeline.coding.fine_tune import fine_tune

    tuned = fine_tune(
        params.embed.model,
        [units.texts[i] for i in tr],
        [set(units.codes[i]) for i in tr],
        seed=seed,
        device=params.embed.device,
    )
    texts, X, _ = _contexts(units, tuned(units.texts), params, questions=True, encode=tuned)
    return _pipeline_coder(units, tr, te, texts, X, tuned, params, seed=seed, groups=groups)


def _pipeline_coder(
    units: data.Units, tr, te, texts, X, encode, params, *, seed: int, groups
) -> pd.DataFrame:
    """The pipeline's few-shot coder trained on units `tr` (texts and features as given), coding `te`."""
    from pipeline.coding.few_shot import few_shot

    return few_shot(
        [units.ids[i] for i in tr],
        [texts[i] for i in tr],
        X[tr],
        [set(units.codes[i]) for i in tr],
        [units.ids[i] for i in te],
        [texts[i] for i in te],
        X[te],
        units.codebook,
        embed=encode,
        options=params.coding,
        seed=seed,
        train_groups=groups,
    ).rename(columns={"segment_id": "id"})


def merge(previous: dict, new: dict) -> dict:
    """`new` (a run of some methods) with the figures of the methods it did not run kept from
    `previous`, where both ran the same splits; the targets recomputed over both."""
    import copy

    out = copy.deepcopy(new) | {"methods": sorted(set(previous.get("methods", [])) | set(new["methods"]))}
    # what made the kept figures
    out["earlier_commands"] = [*previous.get("earlier_commands", []), previous.get("command")]
    for name, entry in out["datasets"].items():
        before = previous.get("datasets", {}).get(name)
        if before is None or previous.get("seeds") != new["seeds"]:
            continue
        kept = {m: v for m, v in before["methods"].items() if m not in entry["methods"]}
        entry["methods"] = {**kept, **entry["methods"]}
        entry["targets"] = targets(
            {m: v["kappa_per_split"] for m, v in entry["methods"].items() if "kappa_per_split" in v}
        )
    for name, entry in previous.get("datasets", {}).items():
        out["datasets"].setdefault(name, entry)
    return out


def paired(a: list[float | None], b: list[float | None]) -> dict | None:
    """Mean of the paired differences a - b over the splits where both have a figure, with its
    two-sided 95% t interval's lower bound."""
    from scipy import stats

    d = np.array([x - y for x, y in zip(a, b, strict=True) if x is not None and y is not None])
    if len(d) < 2:
        return None
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return {"mean": float(d.mean()), "lower95": float(d.mean() - half), "splits": int(len(d))}


def targets(runs: dict[str, list[float | None]]) -> dict:
    """The issue's targets on one dataset: few-shot against the best tuned baseline (by mean),
    zero-shot against the nearest "name: definition"."""
    out: dict = {}
    mean = {m: np.mean([v for v in vs if v is not None] or [np.nan]) for m, vs in runs.items()}
    have = [m for m in TUNED if m in runs and not np.isnan(mean[m])]
    if "pipeline_few_shot" in runs and have:
        best = max(have, key=lambda m: mean[m])
        d = paired(runs["pipeline_few_shot"], runs[best])
        if d:
            out["few_shot"] = {"vs": best, "margin": FEW_SHOT_MARGIN, **d}
            out["few_shot"]["met"] = d["mean"] >= FEW_SHOT_MARGIN and d["lower95"] > 0
    if "pipeline_zero_shot" in runs and "nearest_name_definition" in runs:
        d = paired(runs["pipeline_zero_shot"], runs["nearest_name_definition"])
        if d:
            out["zero_shot"] = {"vs": "nearest_name_definition", "margin": ZERO_SHOT_MARGIN, **d}
            out["zero_shot"]["met"] = d["mean"] >= ZERO_SHOT_MARGIN and d["lower95"] > 0
    return out


def run(
    names: list[str], overrides: tuple[str, ...], *, seeds: int, methods: tuple[str, ...] = METHODS
) -> dict:
    """Every method on every dataset over `seeds` paired splits: split k trains on a 20% sample
    drawn with seed k (whole transcripts where units have them) and scores every method on the
    rest; a `-zipf` set is first resampled with seed k (`bench.skew`)."""
    from bench.skew import zipf_indices

    params = data.bench_params(overrides)
    results: dict = {
        "datasets": {},
        "skipped": {},
        "seeds": seeds,
        "train_share": SHARE,
        "methods": list(methods),
        "data": list(names),
    }
    for name in names:
        why = data.available(name)
        if why:
            results["skipped"][name] = why
            continue
        whole = data.load(name, overrides)
        # raw public texts stay out of the cache
        emb_all = embed(whole.texts, params, cache=name == "demo")
        measure = "nominal kappa, top code" if whole.single_label else "macro kappa over codes"
        runs: dict[str, list[float | None]] = {}
        sizes, chosen_c, zero = [], [], None
        for seed in range(seeds):
            units, emb = whole, emb_all
            if name in data.SKEWED:
                idx = zipf_indices(whole.primary, seed=seed)
                units, emb, zero = data.subset(whole, idx), emb_all[idx], None
            if zero is None:  # coded once per unit set: it learns nothing from the split
                zero = zero_shot_methods(units, emb, params, methods=methods)
            te, preds, chosen = few_shot_methods(units, emb, params, seed=seed, methods=methods)
            sizes.append(len(units.ids))
            chosen_c.append(chosen)
            for method, pred in {**zero, **preds}.items():
                runs.setdefault(method, []).append(figure(units, te, pred))
        entry = {
            "units": int(np.mean(sizes)),
            "codes": len(whole.leaf_ids),
            "measure": measure,
            "methods": {},
        }
        for method, values in runs.items():
            kept = [v for v in values if v is not None]
            setting = "zero-shot" if method in ZERO_SHOT else f"few-shot, {SHARE:.0%} training"
            entry["methods"][method] = {
                "kappa": float(np.mean(kept)) if kept else None,
                "kappa_per_split": values,
                "setting": setting,
            }
        entry["chosen_C"] = chosen_c
        entry["targets"] = targets(runs)
        print(name, {m: v["kappa"] for m, v in entry["methods"].items()}, entry["targets"], file=sys.stderr)
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
    lines += [
        "",
        f"Targets, paired over {results['seeds']} splits (mean difference, lower bound of its 95% interval):",
        "",
        "| data | setting | pipeline vs | needed | mean difference | lower 95% | met |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for name, entry in results["datasets"].items():
        for setting, t in entry.get("targets", {}).items():
            lines.append(
                f"| {name} | {setting.replace('_', '-')} | {t['vs']} | +{t['margin']:.2f} | {t['mean']:+.3f} "
                f"| {t['lower95']:+.3f} | {'yes' if t['met'] else 'no'} |"
            )
    lines += [f"\n{name}: skipped, {why}" for name, why in results.get("skipped", {}).items()]
    return "\n".join(lines)
