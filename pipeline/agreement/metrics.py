"""Agreement figures between two coders (or a coder and the machine) over the same units: per
code Cohen's kappa, Krippendorff's alpha, Gwet's AC1, percent agreement, precision/recall/F1;
alpha over all human coders; bootstrap intervals over transcripts; reliability flags.
Definitions: README, section "Agreement with human coding" (Figures).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.kappa import binary_kappa, cohen_kappa, kappa_from_counts

KAPPA_CUTS = (0.6, 0.8)
BOOT_BLOCK = 1 << 22  # bootstrap: resample weights (groups x resamples) drawn at once


ALPHA_CUTS = (0.667, 0.8)


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def krippendorff_alpha(a: np.ndarray, b: np.ndarray) -> float | None:
    """Nominal alpha for two coders with no missing values."""
    return krippendorff_alpha_coders(np.vstack([a, b]).astype(float))


def krippendorff_alpha_coders(data: np.ndarray) -> float | None:
    """Nominal alpha for any number of coders: rows = coders, columns = units, NaN = missing.

    Undefined (None) when fewer than two values are pairable or only one category occurs.
    Computed here from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
    alpha-reliability"): units coded by fewer than two coders are not pairable and add nothing.
    """
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        return None
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    values = data[:, pairable]
    if values.size == 0:
        return None
    categories = np.unique(values[~np.isnan(values)])
    if len(categories) < 2:
        return None
    # counts[u, c]: how many coders put unit u in category c (pairable units only)
    counts = np.stack([(values == c).sum(axis=0) for c in categories], axis=1).astype(float)
    weights = 1.0 / (counts.sum(axis=1) - 1.0)
    weighted = counts * weights[:, None]
    # coincidence matrix: o[c, k] = sum over units of n_uc * (n_uk - [c == k]) / (m_u - 1)
    coincidences = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    marginals = coincidences.sum(axis=1)
    n = marginals.sum()
    observed = coincidences.sum() - np.trace(coincidences)
    expected = n * n - float(np.sum(marginals**2))
    return _nan_to_none(1.0 - (n - 1.0) * observed / expected) if expected > 0 else None


def gwet_ac1(a: np.ndarray, b: np.ndarray) -> float | None:
    """Gwet's AC1 for two raters and binary decisions."""
    if len(a) == 0:
        return None
    pa = float(np.mean(a == b))
    pi = (float(np.mean(a)) + float(np.mean(b))) / 2
    pe = 2 * pi * (1 - pi)
    return None if pe >= 1 else (pa - pe) / (1 - pe)


def flag(value: float | None, cuts: tuple[float, float]) -> str | None:
    if value is None:
        return None
    return "reliable" if value >= cuts[1] else "tentative" if value >= cuts[0] else "unreliable"


def binary_agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, float | int | str | None]:
    """Agreement figures for one code; `reference` is treated as the gold standard."""
    reference, other = reference.astype(int), other.astype(int)
    tp = int(np.sum((reference == 1) & (other == 1)))
    fp = int(np.sum((reference == 0) & (other == 1)))
    fn = int(np.sum((reference == 1) & (other == 0)))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else (0.0 if precision is not None and recall is not None else None)
    )
    kappa, alpha = binary_kappa(reference, other), krippendorff_alpha(reference, other)
    out: dict[str, float | int | str | None] = {
        "cohen_kappa": kappa,
        "krippendorff_alpha": alpha,
        "gwet_ac1": gwet_ac1(reference, other),
        "percent_agreement": float(np.mean(reference == other)) if len(reference) else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": int(reference.sum()),
        "predicted": int(other.sum()),
        "kappa_flag": flag(kappa, KAPPA_CUTS),
        "alpha_flag": flag(alpha, ALPHA_CUTS),
    }
    if kappa is None:
        out["undefined_reason"] = (
            "no units" if len(reference) == 0 else "only one category occurs: chance agreement is 1"
        )
    return out


def indicator_matrix(long: pd.DataFrame, ids: list[str], codes: list[str]) -> np.ndarray:
    """units x codes 0/1 matrix from a long table (id, code)."""
    pos = {i: k for k, i in enumerate(ids)}
    col = {c: k for k, c in enumerate(codes)}
    m = np.zeros((len(ids), len(codes)), dtype=int)
    for i, c in zip(long["id"], long["code"], strict=True):
        if i in pos and c in col:
            m[pos[i], col[c]] = 1
    return m


_MACRO_KEYS = (
    "cohen_kappa",
    "krippendorff_alpha",
    "gwet_ac1",
    "percent_agreement",
    "precision",
    "recall",
    "f1",
)


def compare_coders(
    reference: pd.DataFrame,
    other: pd.DataFrame,
    *,
    ids: list[str],
    codes: list[str],
    exclude: Mapping[str, set[str]] | None = None,
) -> dict:
    """Per-code and macro agreement between two long tables (id, code[, score]) over `ids`.
    `exclude`: code -> ids missing for that code (a parent coded above it: `pipeline.hierarchy`)."""
    ref_m, oth_m = indicator_matrix(reference, ids, codes), indicator_matrix(other, ids, codes)
    valid = valid_matrix(ids, codes, exclude)
    per_code = {
        c: binary_agreement(ref_m[valid[:, k], k], oth_m[valid[:, k], k]) for k, c in enumerate(codes)
    }
    overall: dict[str, float | int | str | None] = {}
    for key in _MACRO_KEYS:
        values = [m[key] for m in per_code.values() if m[key] is not None]
        overall[f"macro_{key}"] = float(np.mean(values)) if values else None
    overall["units"] = len(ids)
    overall["macro_kappa_flag"] = flag(overall["macro_cohen_kappa"], KAPPA_CUTS)  # type: ignore[arg-type]
    overall["macro_alpha_flag"] = flag(overall["macro_krippendorff_alpha"], ALPHA_CUTS)  # type: ignore[arg-type]
    whole = [i for i, ok in zip(ids, valid.all(axis=1), strict=True) if ok]  # no code missing
    ref_single = _single_labels(reference, whole)
    if ref_single is not None:
        oth_single, basis = _single_labels(other, whole), "one code per unit in both"
        if oth_single is None and "score" in other.columns:
            oth_single, basis = _top_labels(other, whole), "reference single-label; other's top-scoring code"
        if oth_single is not None:
            overall["nominal_kappa"] = cohen_kappa(np.array(ref_single), np.array(oth_single))
            overall["nominal_kappa_basis"] = basis
    return {"overall": overall, "per_code": per_code}


def valid_matrix(ids: list[str], codes: list[str], exclude: Mapping[str, set[str]] | None) -> np.ndarray:
    """units x codes booleans: False where `exclude` says the unit is missing for the code."""
    valid = np.ones((len(ids), len(codes)), dtype=bool)
    for k, c in enumerate(codes):
        gone = (exclude or {}).get(c)
        if gone:
            valid[:, k] = [i not in gone for i in ids]
    return valid


def _single_labels(long: pd.DataFrame, ids: list[str]) -> list[str] | None:
    """One code per id (or none) if the data are single-label, else None."""
    counts = long.groupby("id")["code"].nunique()
    if (counts > 1).any():
        return None
    first = dict(zip(long["id"], long["code"], strict=False))
    return [first.get(i, "") for i in ids]


def _top_labels(long: pd.DataFrame, ids: list[str]) -> list[str]:
    top = long.sort_values("score", ascending=False, kind="stable").drop_duplicates("id")
    first = dict(zip(top["id"], top["code"], strict=True))
    return [first.get(i, "") for i in ids]


def bootstrap_kappa(
    ref_m: np.ndarray,
    oth_m: np.ndarray,
    groups: np.ndarray,
    *,
    n_boot: int,
    seed: int,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile intervals of per-code kappa and of macro kappa, resampling groups
    (transcripts) with replacement. Returns (per-code [codes x 2], macro [2]); NaN when undefined.
    `valid` (units x codes): where False, the unit is missing for the code and not counted."""
    uniq, inv = np.unique(groups, return_inverse=True)
    g = len(uniq)
    codes = ref_m.shape[1]
    if n_boot == 0 or g < 2:
        return np.full((codes, 2), np.nan), np.full(2, np.nan)
    mask = np.ones(ref_m.shape, dtype=bool) if valid is None else valid
    per_n, per_a, per_b, per_ab = (np.zeros((g, codes)) for _ in range(4))
    np.add.at(per_n, inv, mask)  # units per group and code
    np.add.at(per_a, inv, ref_m * mask)  # positives per group and code: integers, summed exactly
    np.add.at(per_b, inv, oth_m * mask)
    np.add.at(per_ab, inv, ref_m * oth_m * mask)
    rng = np.random.default_rng(seed)
    k = np.empty((n_boot, codes))
    step = max(1, BOOT_BLOCK // g)  # resamples drawn at once: memory stays at BOOT_BLOCK weights
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        w = rng.multinomial(g, np.full(g, 1 / g), size=m)  # resample weights per group
        n = w @ per_n
        k[start : start + m] = kappa_from_counts(n, w @ per_a, w @ per_b, w @ per_ab)  # resamples x codes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_code = np.nanpercentile(k, [2.5, 97.5], axis=0).T
        macro = np.nanpercentile(np.nanmean(k, axis=1), [2.5, 97.5])
    return per_code, macro


def add_intervals(
    result: dict, ref_m, oth_m, groups, *, n_boot: int, seed: int, codes: list[str], valid=None
) -> None:
    per_code, macro = bootstrap_kappa(ref_m, oth_m, groups, n_boot=n_boot, seed=seed, valid=valid)
    for k, c in enumerate(codes):
        result["per_code"][c]["cohen_kappa_ci95"] = [
            _nan_to_none(per_code[k, 0]),
            _nan_to_none(per_code[k, 1]),
        ]
    result["overall"]["macro_cohen_kappa_ci95"] = [_nan_to_none(macro[0]), _nan_to_none(macro[1])]


def humans_alpha(
    gold: pd.DataFrame,
    *,
    ids: list[str],
    codes: list[str],
    coverage: dict[str, set[str]] | None,
    exclude: Mapping[str, Mapping[str, set[str]]] | None = None,
) -> dict:
    """Per code, Krippendorff's alpha over all human coders; a coder's value is missing
    for units outside `coverage[coder]` (the units they reviewed: a coder who reviewed units and
    coded none of them is a "no" there), and where `exclude[coder][code]` says so (a parent
    coded above the code: `pipeline.hierarchy`). Only pairable values count."""
    coders = sorted(set(gold["coder"]) | set(coverage or {}))
    mats = {c: indicator_matrix(gold[gold["coder"] == c], ids, codes).astype(float) for c in coders}
    if coverage is not None:
        for c in coders:
            missing = np.array([i not in coverage.get(c, set()) for i in ids])
            mats[c][missing, :] = np.nan
    for c in coders:
        mats[c][~valid_matrix(ids, codes, (exclude or {}).get(c))] = np.nan
    per_code = {}
    for k, code in enumerate(codes):
        alpha = krippendorff_alpha_coders(np.vstack([mats[c][:, k] for c in coders]))
        per_code[code] = {"krippendorff_alpha": alpha, "alpha_flag": flag(alpha, ALPHA_CUTS)}
    values = [m["krippendorff_alpha"] for m in per_code.values() if m["krippendorff_alpha"] is not None]
    return {
        "coders": coders,
        "macro_krippendorff_alpha": float(np.mean(values)) if values else None,
        "per_code": per_code,
    }
