"""Agreement stage: machine codes and candidate themes vs human codings.

Per code, two coders' binary decisions over the same units are compared with Cohen's
kappa, Krippendorff's alpha (nominal), Gwet's AC1, percent agreement and, taking the
first as reference, precision/recall/F1/support. Undefined figures are reported as null
with the reason, never as a crash or a made-up number.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.io import read_csv, read_table, write_json
from pipeline.schemas import ASSIGNMENTS, CODES, SEGMENTS
from pipeline.study import Codebook


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0 or (len(set(a.tolist()) | set(b.tolist())) < 2):
        return None  # one category only: chance agreement is 1, kappa undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _nan_to_none(cohen_kappa_score(a, b))


def krippendorff_alpha(a: np.ndarray, b: np.ndarray) -> float | None:
    import krippendorff

    if len(a) == 0 or len(set(a.tolist()) | set(b.tolist())) < 2:
        return None
    data = np.vstack([a, b]).astype(float)
    return _nan_to_none(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def gwet_ac1(a: np.ndarray, b: np.ndarray) -> float | None:
    """Gwet's AC1 for two raters and binary decisions."""
    if len(a) == 0:
        return None
    pa = float(np.mean(a == b))
    pi = (float(np.mean(a)) + float(np.mean(b))) / 2
    pe = 2 * pi * (1 - pi)
    return None if pe >= 1 else (pa - pe) / (1 - pe)


def binary_agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, float | int | None]:
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
    return {
        "cohen_kappa": cohen_kappa(reference, other),
        "krippendorff_alpha": krippendorff_alpha(reference, other),
        "gwet_ac1": gwet_ac1(reference, other),
        "percent_agreement": float(np.mean(reference == other)) if len(reference) else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": int(reference.sum()),
        "predicted": int(other.sum()),
    }


def _indicator(long: pd.DataFrame, ids: list[str], code: str) -> np.ndarray:
    coded = set(long.loc[long["code"] == code, "id"])
    return np.array([i in coded for i in ids], dtype=int)


def compare_coders(reference: pd.DataFrame, other: pd.DataFrame, *, ids: list[str], codes: list[str]) -> dict:
    """Per-code and macro agreement between two long tables (id, code) over `ids`."""
    per_code = {c: binary_agreement(_indicator(reference, ids, c), _indicator(other, ids, c)) for c in codes}
    overall: dict[str, float | int | None] = {}
    for key in (
        "cohen_kappa",
        "krippendorff_alpha",
        "gwet_ac1",
        "percent_agreement",
        "precision",
        "recall",
        "f1",
    ):
        values = [m[key] for m in per_code.values() if m[key] is not None]
        overall[f"macro_{key}"] = float(np.mean(values)) if values else None
    overall["units"] = len(ids)
    single = _single_labels(reference, ids), _single_labels(other, ids)
    if single[0] is not None and single[1] is not None:
        overall["nominal_kappa"] = cohen_kappa(np.array(single[0]), np.array(single[1]))
    return {"overall": overall, "per_code": per_code}


def _single_labels(long: pd.DataFrame, ids: list[str]) -> list[str] | None:
    """One code per id (or none) if the data are single-label, else None."""
    counts = long.groupby("id")["code"].nunique()
    if (counts > 1).any():
        return None
    first = dict(zip(long["id"], long["code"], strict=False))
    return [first.get(i, "") for i in ids]


def partition_agreement(themes: list[int], labels: list[str]) -> dict[str, float]:
    """Clustering agreement between candidate themes and single human labels."""
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

    return {
        "ari": float(adjusted_rand_score(labels, themes)),
        "nmi": float(normalized_mutual_info_score(labels, themes)),
        "ami": float(adjusted_mutual_info_score(labels, themes)),
        "units": len(labels),
    }


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


def agreement_report(
    gold: pd.DataFrame,
    pred: pd.DataFrame | None,
    *,
    ids: list[str],
    codes: list[str],
    themes: pd.DataFrame | None = None,
) -> dict:
    """Machine vs each human coder, human vs human, and themes vs the reference coder."""
    coders = sorted(gold["coder"].unique())
    if not coders:
        raise UserError("no human codings to compare with")
    reference = coders[0]
    ref = gold[gold["coder"] == reference]
    report: dict = {"reference_coder": reference, "coders": coders, "units": len(ids)}
    if pred is not None:
        machine = compare_coders(ref, pred, ids=ids, codes=codes)
        report |= machine
        report["by_coder"] = {
            c: compare_coders(gold[gold["coder"] == c], pred, ids=ids, codes=codes)["overall"] for c in coders
        }
    if len(coders) > 1:
        report["human"] = {
            f"{reference}_vs_{c}": compare_coders(ref, gold[gold["coder"] == c], ids=ids, codes=codes)
            for c in coders[1:]
        }
    if themes is not None:
        primary = (
            ref.sort_values("overlap", ascending=False).drop_duplicates("id")
            if "overlap" in ref
            else ref.drop_duplicates("id")
        )
        labelled = themes.merge(primary[["id", "code"]], left_on="segment_id", right_on="id")
        report["themes_vs_codes"] = (
            partition_agreement(labelled["theme_id"].tolist(), labelled["code"].tolist())
            if len(labelled)
            else None
        )
    return report


def per_code_plot(report: dict) -> list[dict]:
    """Rows for a DVC bar plot: machine and human kappa per code."""
    human = next(iter(report.get("human", {}).values()), {}).get("per_code", {})
    return [
        {
            "code": code,
            "machine_kappa": m["cohen_kappa"],
            "human_kappa": human.get(code, {}).get("cohen_kappa"),
        }
        for code, m in report.get("per_code", {}).items()
    ]


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
) -> dict:
    segments = read_table(segments_path, SEGMENTS)
    themes = read_table(themes_path, ASSIGNMENTS)
    codes = read_table(codes_path, CODES).rename(columns={"segment_id": "id"})
    if codings.empty or codebook is None:
        report: dict = {"status": "no human codings or codebook in the study; nothing to compare"}
    else:
        gold = human_segment_codes(segments, codings, min_overlap=params.agreement.min_overlap)
        report = agreement_report(
            gold,
            codes,
            ids=segments["segment_id"].tolist(),
            codes=[c.code_id for c in codebook.leaves],
            themes=themes,
        )
        report["min_overlap"] = params.agreement.min_overlap
    write_json(out, report)
    if plot is not None:
        write_json(plot, per_code_plot(report))
    return report


def run_csv(*, gold_path: Path, pred_path: Path, out: Path) -> dict:
    """The CLI contract: long tables `id,code[,coder]` -> agreement JSON.

    Units are every id in either file; a row with an empty code marks an id with no code.
    """
    gold = read_csv(gold_path, ("id", "code"))
    pred = read_csv(pred_path, ("id", "code"))
    if "coder" not in gold.columns:
        gold["coder"] = "gold"
    ids = sorted(set(gold["id"]) | set(pred["id"]))
    gold, pred = gold[gold["code"] != ""], pred[pred["code"] != ""]
    codes = sorted(set(gold["code"]) | set(pred["code"]))
    report = agreement_report(gold, pred[["id", "code"]], ids=ids, codes=codes)
    write_json(out, report)
    return report
