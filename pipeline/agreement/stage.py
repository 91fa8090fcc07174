"""Agreement stage: machine codes and candidate themes vs human codings (machine vs each coder,
coder vs coder, all coders together, themes vs the reference coder's codes); and the CLI's
CSV contract (`id,code[,coder]` tables -> agreement JSON)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.agreement.metrics import add_intervals, compare_coders, humans_alpha, indicator_matrix
from pipeline.agreement.themes_vs_codes import partition_agreement, theme_code_confusion
from pipeline.codebook import Codebook
from pipeline.codings import human_segment_codes, primary_codes, reference_coder, spans_reaching_no_segment
from pipeline.comparison import human_ceiling_per_code, theme_code_mapping
from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.io import read_csv, write_json

NO_CODE = "(no code)"


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
    reference = reference_coder(gold)
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
        report |= _pair(ref, pred, [ids[k] for k in covered], group_arr[covered], codes, n_boot, seed)
        report["by_coder"] = {}
        for c in coders:
            c_ids = [i for i in ids if coverage is None or i in coverage.get(c, set())]
            report["by_coder"][c] = compare_coders(gold[gold["coder"] == c], pred, ids=c_ids, codes=codes)[
                "overall"
            ]
    if len(coders) > 1:
        report["human"] = {}
        for a, b in combinations(coders, 2):
            pair_ids = ids
            if coverage is not None:  # only units both coders coded
                pair_ids = [i for i in ids if i in coverage.get(a, set()) and i in coverage.get(b, set())]
            pair_set = set(pair_ids)
            keep = np.array([i in pair_set for i in ids])
            report["human"][f"{a}_vs_{b}"] = _pair(
                gold[gold["coder"] == a],
                gold[gold["coder"] == b],
                pair_ids,
                group_arr[keep],
                codes,
                n_boot,
                seed,
            )
        report["humans"] = humans_alpha(gold, ids=ids, codes=codes, coverage=coverage)
        if pred is not None:
            ceiling = report["human"][f"{coders[0]}_vs_{coders[1]}"]["overall"]["macro_cohen_kappa"]
            machine_k = report["overall"]["macro_cohen_kappa"]
            report["overall"]["human_ceiling_macro_cohen_kappa"] = ceiling
            report["overall"]["gap_to_human_ceiling"] = (
                None if ceiling is None or machine_k is None else machine_k - ceiling
            )
    if themes is not None:
        report["themes_vs_codes"] = themes_vs_codes(themes, ref, codes=codes, cover_min=cover_min)
    return report


def _pair(
    a: pd.DataFrame,
    b: pd.DataFrame,
    ids: list[str],
    groups: np.ndarray,
    codes: list[str],
    n_boot: int,
    seed: int,
) -> dict:
    """Agreement between two long tables over `ids`, with bootstrap intervals over `groups`."""
    result = compare_coders(a, b, ids=ids, codes=codes)
    add_intervals(
        result,
        indicator_matrix(a, ids, codes),
        indicator_matrix(b, ids, codes),
        groups,
        n_boot=n_boot,
        seed=seed,
        codes=codes,
    )
    return result


def themes_vs_codes(
    themes: pd.DataFrame, ref: pd.DataFrame, *, codes: list[str], cover_min: float
) -> dict | None:
    """Candidate themes against the reference coder's primary code per segment (None when no
    segment has both)."""
    labelled = themes.merge(primary_codes(ref), left_on="segment_id", right_on="id")
    if not len(labelled):
        return None
    t, lab = labelled["theme_id"].tolist(), labelled["code"].tolist()
    return partition_agreement(t, lab) | {
        "mapping": theme_code_mapping(t, lab, codes=codes, cover_min=cover_min)
    }


def per_code_plot(report: dict) -> list[dict]:
    """Rows for a DVC plot: machine kappa per code with its 95% interval, and the human kappa."""
    human = human_ceiling_per_code(report)
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
    segments: pd.DataFrame,
    assignments: pd.DataFrame,
    codes: pd.DataFrame,
    codebook: Codebook | None,
    codings: pd.DataFrame,
    ingest_metrics: dict | None = None,
) -> dict:
    """The stage's node (see `pipeline.stages`): the agreement report, and the rows of its two
    plots. `ingest_metrics`: their codings import report is repeated under `input`."""
    themes = assignments
    codes = codes.rename(columns={"segment_id": "id"})
    input_report = (ingest_metrics or {}).get("codings")  # what ingest did with the codings
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
        ref = primary_codes(gold[gold["coder"] == report["reference_coder"]])
        labelled = themes.merge(ref, left_on="segment_id", right_on="id", how="left")
        labelled["code"] = labelled["code"].fillna(NO_CODE)
        confusion_rows = theme_code_confusion(labelled["theme_id"].tolist(), labelled["code"].tolist())
    if input_report is not None:
        report["input"] = dict(input_report)
    if not codings.empty:
        # spans past the end of a transcript, or over interviewer turns only, reach no segment
        report.setdefault("input", {})["spans_reaching_no_segment"] = spans_reaching_no_segment(
            segments, codings
        )
    return {
        "agreement_metrics": report,
        "agreement_plot": per_code_plot(report),
        "confusion_plot": confusion_rows,
    }


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
