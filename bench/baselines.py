"""Tuned baselines for `python -m bench coding`: what a careful analyst would fit on the pipeline's
own inputs, each with its regularisation chosen by inner cross-validation on the training units.

- `logreg_cv`: logistic regression on the pipeline's features (the embedding with its turn and
  question context), C from `LOGREG_CS`;
- `tfidf_svc_cv`: TF-IDF of word 1-2 grams of the pipeline's texts (context included) and a
  linear support-vector machine, C from `SVC_CS`.

Single-label data: one multinomial (or one-vs-rest, for the SVM) model, the top class per unit,
C by the out-of-fold kappa of the top class. Multi-label data: one model per code, each code's
decision threshold the one that maximises its out-of-fold kappa, C by the mean of those kappas.
Inner folds are grouped by transcript when the training units come from 3 or more.
"""

from __future__ import annotations

import numpy as np

from pipeline.coding.few_shot import inner_folds

LOGREG_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
SVC_CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _model(kind: str, C: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if kind == "logreg":
        return LogisticRegression(C=C, max_iter=3000)
    return LinearSVC(C=C, random_state=0)


def _scores(model, X) -> np.ndarray:
    return model.decision_function(X) if hasattr(model, "decision_function") else model.predict_proba(X)


def _single_label(kind: str, Cs, X_tr, y: np.ndarray, X_te, folds) -> tuple[np.ndarray, float]:
    """Top class per test unit, and the C chosen by out-of-fold kappa."""
    from pipeline.kappa import cohen_kappa

    best = (-np.inf, Cs[0])
    for C in Cs:
        oof = np.empty(len(y), dtype=object)
        for tr, te in folds:
            if len(set(y[tr])) < 2:
                oof[te] = y[tr][0]
                continue
            oof[te] = _model(kind, C).fit(X_tr[tr], y[tr]).predict(X_tr[te])
        k = cohen_kappa(y.astype(str), oof.astype(str))
        best = max(best, (-np.inf if k is None else k, C), key=lambda b: b[0])
    C = best[1]
    return _model(kind, C).fit(X_tr, y).predict(X_te), C


def _best_threshold(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(kappa, threshold) maximising the binary kappa of `scores >= threshold` against `y`."""
    from pipeline.kappa import binary_kappa

    values = np.unique(scores)
    grid = (values[:-1] + values[1:]) / 2 if len(values) > 1 else values  # every distinct cut
    if len(grid) > 400:
        grid = np.unique(np.quantile(grid, np.linspace(0, 1, 400)))
    kappas = [binary_kappa(y, (scores >= t).astype(int)) for t in grid]
    values = np.array([-1.0 if k is None else k for k in kappas])
    tied = np.flatnonzero(values == values.max())
    j = int(tied[len(tied) // 2])  # the middle of the best thresholds, not the edge of the range
    return float(values[j]), float(grid[j])


def _multi_label(kind: str, Cs, X_tr, Y: np.ndarray, X_te, folds) -> tuple[np.ndarray, float]:
    """0/1 matrix test units x codes, and the C chosen by the codes' mean out-of-fold kappa at
    their best thresholds. Codes never (or always) used in training are never predicted."""
    learnable = [j for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]
    best = (-np.inf, Cs[0], {})
    for C in Cs:
        oof = np.zeros((len(Y), Y.shape[1]))
        for tr, te in folds:
            for j in learnable:
                y = Y[tr, j]
                if len(set(y.tolist())) < 2:
                    oof[te, j] = -np.inf if y.max() == 0 else np.inf
                    continue
                model = _model(kind, C).fit(X_tr[tr], y)
                s = _scores(model, X_tr[te])
                oof[te, j] = s if s.ndim == 1 else s[:, 1]
        oof = np.nan_to_num(oof, posinf=1e9, neginf=-1e9)
        fits = {j: _best_threshold(Y[:, j], oof[:, j]) for j in learnable}
        mean = float(np.mean([k for k, _ in fits.values()])) if fits else -np.inf
        if mean > best[0]:
            best = (mean, C, {j: t for j, (_, t) in fits.items()})
    _, C, thresholds = best
    out = np.zeros((X_te.shape[0], Y.shape[1]), dtype=int)
    for j in learnable:
        s = _scores(_model(kind, C).fit(X_tr, Y[:, j]), X_te)
        out[:, j] = (s if s.ndim == 1 else s[:, 1]) >= thresholds.get(j, 0.0)
    return out, C


def tuned(
    kind: str,
    X_tr,
    labels: list,
    X_te,
    *,
    codes: list[str],
    single_label: bool,
    groups: list[str] | None,
    seed: int,
) -> tuple[list[set[str]], float]:
    """Predicted codes per test unit and the chosen C. `labels`: per training unit its primary
    code ("" for none) on single-label data, else its set of codes."""
    Cs = LOGREG_CS if kind == "logreg" else SVC_CS
    folds = inner_folds(X_tr.shape[0], groups, seed=seed)  # the pipeline's own inner folds
    if single_label:
        pred, C = _single_label(kind, Cs, X_tr, np.array(labels, dtype=object), X_te, folds)
        return [set() if p == "" else {str(p)} for p in pred], C
    Y = np.array([[c in s for c in codes] for s in labels], dtype=int)
    out, C = _multi_label(kind, Cs, X_tr, Y, X_te, folds)
    return [{codes[j] for j in np.flatnonzero(row)} for row in out], C
