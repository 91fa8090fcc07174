"""Agreement stage: machine codes and candidate themes vs human codings.

Per code, two coders' binary decisions over the same units are compared with Cohen's
kappa, Krippendorff's alpha (nominal), Gwet's AC1, percent agreement and, taking the
first as reference, precision/recall/F1/support. Undefined figures are reported as null
with the reason, never as a crash or a made-up number.

Beyond pairs:
- `humans`: Krippendorff's alpha per code over ALL human coders at once, with missing data
  (a coder who did not code a transcript has no value for its units, not a "no").
- 95% intervals by bootstrap, resampling whole transcripts (segments of one interview are
  not independent), for per-code and macro kappa.
- flags: kappa >= 0.8 "reliable", >= 0.6 "tentative", else "unreliable"; alpha >= 0.8
  "reliable", >= 0.667 "tentative", else "unreliable" (Krippendorff's and the usual
  kappa conventions); null figures get flag null.
- themes vs codes: ARI, NMI, AMI, harmonic purity, a Hungarian one-to-one mapping and a
  many-to-one mapping of candidate themes to codes, the codes no theme covers and the
  themes no code covers (emergent candidates for the analyst).
"""

from __future__ import annotations

import math
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.io import read_csv, read_table, write_json
from pipeline.schemas import ASSIGNMENTS, CODES, SEGMENTS
from pipeline.study import Codebook

KAPPA_CUTS = (0.6, 0.8)
ALPHA_CUTS = (0.667, 0.8)
NO_CODE = "(no code)"


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0 or (len(set(a.tolist()) | set(b.tolist())) < 2):
        return None  # one category only: chance agreement is 1, kappa undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _nan_to_none(cohen_kappa_score(a, b))


def krippendorff_alpha(a: np.ndarray, b: np.ndarray) -> float | None:
    """Nominal alpha for two coders with no missing values."""
    return krippendorff_alpha_coders(np.vstack([a, b]).astype(float))


def krippendorff_alpha_coders(data: np.ndarray) -> float | None:
    """Nominal alpha for any number of coders: rows = coders, columns = units, NaN = missing.

    Undefined (None) when fewer than two values are pairable or only one category occurs.
    """
    import krippendorff

    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        return None
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    values = data[:, pairable]
    values = values[~np.isnan(values)]
    if values.size < 2 or len(np.unique(values)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _nan_to_none(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


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
    kappa, alpha = cohen_kappa(reference, other), krippendorff_alpha(reference, other)
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


def compare_coders(reference: pd.DataFrame, other: pd.DataFrame, *, ids: list[str], codes: list[str]) -> dict:
    """Per-code and macro agreement between two long tables (id, code[, score]) over `ids`."""
    ref_m, oth_m = indicator_matrix(reference, ids, codes), indicator_matrix(other, ids, codes)
    per_code = {c: binary_agreement(ref_m[:, k], oth_m[:, k]) for k, c in enumerate(codes)}
    overall: dict[str, float | int | str | None] = {}
    for key in _MACRO_KEYS:
        values = [m[key] for m in per_code.values() if m[key] is not None]
        overall[f"macro_{key}"] = float(np.mean(values)) if values else None
    overall["units"] = len(ids)
    overall["macro_kappa_flag"] = flag(overall["macro_cohen_kappa"], KAPPA_CUTS)  # type: ignore[arg-type]
    overall["macro_alpha_flag"] = flag(overall["macro_krippendorff_alpha"], ALPHA_CUTS)  # type: ignore[arg-type]
    ref_single = _single_labels(reference, ids)
    if ref_single is not None:
        oth_single, basis = _single_labels(other, ids), "one code per unit in both"
        if oth_single is None and "score" in other.columns:
            oth_single, basis = _top_labels(other, ids), "reference single-label; other's top-scoring code"
        if oth_single is not None:
            overall["nominal_kappa"] = cohen_kappa(np.array(ref_single), np.array(oth_single))
            overall["nominal_kappa_basis"] = basis
    return {"overall": overall, "per_code": per_code}


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


# ---------------------------------------------------------------- bootstrap


def _kappa_from_counts(n, a, b, ab) -> np.ndarray:
    """Vectorised binary Cohen's kappa from counts (NaN where undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        po = (n - a - b + 2 * ab) / n
        pe = (a * b + (n - a) * (n - b)) / (n * n)
        k = (po - pe) / (1 - pe)
    return np.where(pe >= 1 - 1e-12, np.nan, k)


def bootstrap_kappa(
    ref_m: np.ndarray, oth_m: np.ndarray, groups: np.ndarray, *, n_boot: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile intervals of per-code kappa and of macro kappa, resampling groups
    (transcripts) with replacement. Returns (per-code [codes x 2], macro [2]); NaN when undefined."""
    uniq, inv = np.unique(groups, return_inverse=True)
    g = len(uniq)
    codes = ref_m.shape[1]
    if n_boot == 0 or g < 2:
        return np.full((codes, 2), np.nan), np.full(2, np.nan)
    onehot = np.zeros((g, len(groups)))
    onehot[inv, np.arange(len(groups))] = 1
    per_n = onehot.sum(axis=1)  # units per group
    per_a, per_b, per_ab = onehot @ ref_m, onehot @ oth_m, onehot @ (ref_m * oth_m)
    rng = np.random.default_rng(seed)
    w = rng.multinomial(g, np.full(g, 1 / g), size=n_boot)  # resample weights per group
    n = (w @ per_n)[:, None]
    k = _kappa_from_counts(n, w @ per_a, w @ per_b, w @ per_ab)  # n_boot x codes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_code = np.nanpercentile(k, [2.5, 97.5], axis=0).T
        macro = np.nanpercentile(np.nanmean(k, axis=1), [2.5, 97.5])
    return per_code, macro


def _add_intervals(result: dict, ref_m, oth_m, groups, *, n_boot: int, seed: int, codes: list[str]) -> None:
    per_code, macro = bootstrap_kappa(ref_m, oth_m, groups, n_boot=n_boot, seed=seed)
    for k, c in enumerate(codes):
        result["per_code"][c]["cohen_kappa_ci95"] = [
            _nan_to_none(per_code[k, 0]),
            _nan_to_none(per_code[k, 1]),
        ]
    result["overall"]["macro_cohen_kappa_ci95"] = [_nan_to_none(macro[0]), _nan_to_none(macro[1])]


# ---------------------------------------------------------------- themes vs codes


def partition_agreement(themes: list[int], labels: list[str]) -> dict[str, float]:
    """Clustering agreement between candidate themes and single human labels."""
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

    return {
        "ari": float(adjusted_rand_score(labels, themes)),
        "nmi": float(normalized_mutual_info_score(labels, themes)),
        "ami": float(adjusted_mutual_info_score(labels, themes)),
        "harmonic_purity": harmonic_purity(themes, labels),
        "units": len(labels),
    }


def harmonic_purity(themes: list, labels: list) -> float:
    """Harmonic mean of purity (themes' majority code share) and inverse purity (codes'
    majority theme share): 1 only when themes and codes coincide."""
    table = pd.crosstab(pd.Series(themes, name="t"), pd.Series(labels, name="c")).to_numpy()
    n = table.sum()
    purity = table.max(axis=1).sum() / n
    inverse = table.max(axis=0).sum() / n
    return float(2 * purity * inverse / (purity + inverse)) if purity + inverse else 0.0


def theme_code_mapping(themes: list[int], labels: list[str], *, codes: list[str], cover_min: float) -> dict:
    """Hungarian one-to-one and many-to-one mappings of themes to codes, and what is left over.

    Units: segments with a human code (the reference coder's strongest) and a theme;
    unassigned segments (theme -1) are left out. A code "covers" a theme when it holds at
    least `cover_min` of the theme's units.
    """
    from scipy.optimize import linear_sum_assignment

    df = pd.DataFrame({"theme": themes, "code": labels})
    df = df[df["theme"] != -1]
    if df.empty:
        return {"units": 0, "undefined_reason": "no segment has both a theme and a human code"}
    table = pd.crosstab(df["theme"], df["code"])
    rows, cols = linear_sum_assignment(-table.to_numpy())
    one_to_one = {str(table.index[r]): table.columns[c] for r, c in zip(rows, cols, strict=True)}
    matched = sum(int(table.iat[r, c]) for r, c in zip(rows, cols, strict=True))
    share = table.div(table.sum(axis=1), axis=0)
    many_to_one = {str(t): share.columns[int(np.argmax(share.loc[t]))] for t in share.index}
    covered = {c for t in share.index for c in share.columns if share.at[t, c] >= cover_min}
    return {
        "units": int(len(df)),
        "one_to_one": one_to_one,
        "one_to_one_accuracy": matched / len(df),
        "many_to_one": many_to_one,
        "many_to_one_accuracy": float(table.max(axis=1).sum() / len(df)),
        "codes_no_theme_covers": [c for c in codes if c not in covered],
        "themes_no_code_covers": [str(t) for t in share.index if share.loc[t].max() < cover_min],
        "cover_min": cover_min,
    }


def theme_code_confusion(themes: list[int], labels: list[str]) -> list[dict]:
    """Rows {theme, code} for a DVC confusion plot (one row per unit)."""
    return [{"theme": str(t), "code": c} for t, c in zip(themes, labels, strict=True)]


# ---------------------------------------------------------------- spans -> segments


def human_segment_codes(segments: pd.DataFrame, codings: pd.DataFrame, *, min_overlap: float) -> pd.DataFrame:
    """Map human-coded spans onto segments: a segment carries a code when the coded span
    covers at least `min_overlap` of the segment's characters (in the original text).

    Returns long table id, coder, code, overlap.
    """
    rows = []
    for tid, segs in segments.groupby("transcript_id"):
        spans = codings[codings["transcript_id"] == tid]
        if spans.empty:
            continue
        s_start, s_end = segs["orig_start"].to_numpy(), segs["orig_end"].to_numpy()
        length = np.maximum(s_end - s_start, 1)
        for span in spans.itertuples(index=False):
            overlap = np.minimum(s_end, span.end) - np.maximum(s_start, span.start)
            share = np.clip(overlap, 0, None) / length
            for i in np.nonzero(share >= min_overlap)[0]:
                rows.append((segs["segment_id"].iloc[i], span.coder, span.code, float(share[i])))
    df = pd.DataFrame(rows, columns=["id", "coder", "code", "overlap"])
    return df.sort_values("overlap", ascending=False).drop_duplicates(["id", "coder", "code"])


def spans_reaching_no_segment(segments: pd.DataFrame, codings: pd.DataFrame) -> int:
    """How many coded spans overlap no segment at all (by even one character)."""
    n = 0
    bounds = {
        t: (g["orig_start"].to_numpy(), g["orig_end"].to_numpy())
        for t, g in segments.groupby("transcript_id")
    }
    for span in codings.itertuples(index=False):
        starts, ends = bounds.get(span.transcript_id, (np.array([]), np.array([])))
        if not np.any((np.minimum(ends, span.end) - np.maximum(starts, span.start)) > 0):
            n += 1
    return n


# ---------------------------------------------------------------- the report


def humans_alpha(
    gold: pd.DataFrame, *, ids: list[str], codes: list[str], coverage: dict[str, set[str]] | None
) -> dict:
    """Per code, Krippendorff's alpha over all human coders; a coder's value is missing
    for units outside `coverage[coder]` (the units of the transcripts they coded)."""
    coders = sorted(gold["coder"].unique())
    mats = {c: indicator_matrix(gold[gold["coder"] == c], ids, codes).astype(float) for c in coders}
    if coverage is not None:
        for c in coders:
            missing = np.array([i not in coverage.get(c, set()) for i in ids])
            mats[c][missing, :] = np.nan
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


def agreement_report(
    gold: pd.DataFrame,
    pred: pd.DataFrame | None,
    *,
    ids: list[str],
    codes: list[str],
    themes: pd.DataFrame | None = None,
    groups: list[str] | None = None,
    coverage: dict[str, set[str]] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    cover_min: float = 0.3,
) -> dict:
    """Machine vs each human coder, human vs human, and themes vs the reference coder.

    `groups`: the transcript of each unit in `ids`, for bootstrap resampling (default:
    each unit its own group). `coverage`: coder -> unit ids they coded (missing data).
    """
    coders = sorted(gold["coder"].unique())
    if not coders:
        raise UserError("no human codings to compare with")
    reference = coders[0]
    ref = gold[gold["coder"] == reference]
    group_arr = np.array(groups if groups is not None else ids)
    report: dict = {"reference_coder": reference, "coders": coders, "units": len(ids)}
    report["bootstrap"] = {
        "resamples": n_boot,
        "resampling": "transcripts" if groups is not None else "units",
        "groups": int(len(set(group_arr.tolist()))),
    }
    if pred is not None:
        # the machine is compared only where the reference coder coded (their transcripts)
        covered = [k for k, i in enumerate(ids) if coverage is None or i in coverage.get(reference, set())]
        ref_ids, ref_groups = [ids[k] for k in covered], group_arr[covered]
        machine = compare_coders(ref, pred, ids=ref_ids, codes=codes)
        _add_intervals(
            machine,
            indicator_matrix(ref, ref_ids, codes),
            indicator_matrix(pred, ref_ids, codes),
            ref_groups,
            n_boot=n_boot,
            seed=seed,
            codes=codes,
        )
        report |= machine
        report["by_coder"] = {}
        for c in coders:
            c_ids = [i for i in ids if coverage is None or i in coverage.get(c, set())]
            report["by_coder"][c] = compare_coders(gold[gold["coder"] == c], pred, ids=c_ids, codes=codes)[
                "overall"
            ]
    if len(coders) > 1:
        report["human"] = {}
        for a, b in combinations(coders, 2):
            ga, gb = gold[gold["coder"] == a], gold[gold["coder"] == b]
            pair_ids = ids
            if coverage is not None:  # only units both coders coded
                pair_ids = [i for i in ids if i in coverage.get(a, set()) and i in coverage.get(b, set())]
            pair = compare_coders(ga, gb, ids=pair_ids, codes=codes)
            keep = np.array([i in set(pair_ids) for i in ids])
            _add_intervals(
                pair,
                indicator_matrix(ga, pair_ids, codes),
                indicator_matrix(gb, pair_ids, codes),
                group_arr[keep],
                n_boot=n_boot,
                seed=seed,
                codes=codes,
            )
            report["human"][f"{a}_vs_{b}"] = pair
        report["humans"] = humans_alpha(gold, ids=ids, codes=codes, coverage=coverage)
        if pred is not None:
            ceiling = report["human"][f"{coders[0]}_vs_{coders[1]}"]["overall"]["macro_cohen_kappa"]
            machine_k = report["overall"]["macro_cohen_kappa"]
            report["overall"]["human_ceiling_macro_cohen_kappa"] = ceiling
            report["overall"]["gap_to_human_ceiling"] = (
                None if ceiling is None or machine_k is None else machine_k - ceiling
            )
    if themes is not None:
        primary = (
            ref.sort_values("overlap", ascending=False).drop_duplicates("id")
            if "overlap" in ref
            else ref.drop_duplicates("id")
        )
        labelled = themes.merge(primary[["id", "code"]], left_on="segment_id", right_on="id")
        if len(labelled):
            t, lab = labelled["theme_id"].tolist(), labelled["code"].tolist()
            report["themes_vs_codes"] = partition_agreement(t, lab) | {
                "mapping": theme_code_mapping(t, lab, codes=codes, cover_min=cover_min)
            }
        else:
            report["themes_vs_codes"] = None
    return report


def per_code_plot(report: dict) -> list[dict]:
    """Rows for a DVC plot: machine kappa per code with its 95% interval, and the human kappa."""
    human = next(iter(report.get("human", {}).values()), {}).get("per_code", {})
    rows = []
    for code, m in report.get("per_code", {}).items():
        lo, hi = m.get("cohen_kappa_ci95", [None, None])
        rows.append(
            {
                "code": code,
                "machine_kappa": m["cohen_kappa"],
                "machine_kappa_lo": lo,
                "machine_kappa_hi": hi,
                "human_kappa": human.get(code, {}).get("cohen_kappa"),
            }
        )
    return rows


def run(
    params: Params,
    *,
    segments_path: Path,
    themes_path: Path,
    codes_path: Path,
    codings: pd.DataFrame,
    codebook: Codebook | None,
    out: Path,
    plot: Path | None = None,
    confusion: Path | None = None,
    input_report: dict | None = None,
) -> dict:
    segments = read_table(segments_path, SEGMENTS)
    themes = read_table(themes_path, ASSIGNMENTS)
    codes = read_table(codes_path, CODES).rename(columns={"segment_id": "id"})
    confusion_rows: list[dict] = []
    if codings.empty or codebook is None:
        report: dict = {"status": "no human codings or codebook in the study; nothing to compare"}
    else:
        opts = params.agreement
        gold = human_segment_codes(segments, codings, min_overlap=opts.min_overlap)
        ids = segments["segment_id"].tolist()
        tid_of = dict(zip(segments["segment_id"], segments["transcript_id"], strict=True))
        coded = {c: set(g["transcript_id"]) for c, g in codings.groupby("coder")}
        coverage = {c: {i for i in ids if tid_of[i] in ts} for c, ts in coded.items()}
        report = agreement_report(
            gold,
            codes,
            ids=ids,
            codes=[c.code_id for c in codebook.leaves],
            themes=themes,
            groups=[tid_of[i] for i in ids],
            coverage=coverage,
            n_boot=opts.n_boot,
            seed=params.seed,
            cover_min=opts.cover_min,
        )
        report["min_overlap"] = opts.min_overlap
        ref = gold[gold["coder"] == report["reference_coder"]].drop_duplicates("id")
        labelled = themes.merge(ref[["id", "code"]], left_on="segment_id", right_on="id", how="left")
        labelled["code"] = labelled["code"].fillna(NO_CODE)
        confusion_rows = theme_code_confusion(labelled["theme_id"].tolist(), labelled["code"].tolist())
    if input_report is not None:
        report["input"] = dict(input_report)
    if not codings.empty:
        # spans past the end of a transcript, or over interviewer turns only, reach no segment
        report.setdefault("input", {})["spans_reaching_no_segment"] = spans_reaching_no_segment(
            segments, codings
        )
    write_json(out, report)
    if plot is not None:
        write_json(plot, per_code_plot(report))
    if confusion is not None:
        write_json(confusion, confusion_rows)
    return report


def run_csv(*, gold_path: Path, pred_path: Path, out: Path, n_boot: int = 0, seed: int = 0) -> dict:
    """The CLI contract: long tables `id,code[,coder]` (pred may add `score`) -> agreement JSON.

    Units are every id in either file; a row with an empty code marks an id with no code.
    """
    gold = read_csv(gold_path, ("id", "code"))
    pred = read_csv(pred_path, ("id", "code"))
    if "coder" not in gold.columns:
        gold["coder"] = "gold"
    ids = sorted(set(gold["id"]) | set(pred["id"]))
    gold, pred = gold[gold["code"] != ""], pred[pred["code"] != ""]
    cols = ["id", "code"]
    if "score" in pred.columns:
        pred = pred.assign(score=pd.to_numeric(pred["score"], errors="coerce").fillna(-np.inf))
        cols.append("score")
    codes = sorted(set(gold["code"]) | set(pred["code"]))
    report = agreement_report(gold, pred[cols], ids=ids, codes=codes, n_boot=n_boot, seed=seed)
    write_json(out, report)
    return report
