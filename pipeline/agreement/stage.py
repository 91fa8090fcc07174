"""Agreement stage: machine codes and candidate themes vs human codings (machine vs each coder,
coder vs coder, all coders together, themes vs the reference coder's codes); and the CLI's
CSV contract (`id,code[,coder]` tables -> agreement JSON)."""

from __future__ import annotations

from functools import partial
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.agreement.levels import agreement_by_level
from pipeline.agreement.metrics import (
    add_intervals,
    compare_coders,
    humans_alpha,
    indicator_matrix,
    valid_matrix,
)
from pipeline.agreement.themes_vs_codes import partition_agreement, theme_code_confusion
from pipeline.codebook import Codebook
from pipeline.codings import (
    human_segment_codes,
    primary_codes,
    reference_coder,
    segment_coverage,
    spans_reaching_no_segment,
)
from pipeline.comparison import human_ceiling_per_code, theme_code_mapping
from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.hierarchy import merge_missing, n_levels, roll_up_by_coder
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
    exclude: dict[str, dict[str, set[str]]] | None = None,
    min_shared: int = 30,
    reference: str | None = None,
) -> dict:
    """Machine vs each human coder, human vs human, and themes vs the reference coder.

    `groups`: the transcript of each unit in `ids`, for bootstrap resampling (default:
    each unit its own group). `coverage`: coder -> unit ids they reviewed (outside them the
    coder is missing, not negative). `exclude`: coder -> code -> unit ids missing for that code
    (`pipeline.hierarchy`). Two coders sharing fewer than `min_shared` units get no figures
    (null: "n/a"); each pair shows the machine against both coders on the same units.
    `reference`: the reference coder (default: `pipeline.codings.reference_coder` of `gold`);
    the stage names it once, so that every level of a code hierarchy compares with the same coder.
    """
    exclude = exclude or {}
    coders = sorted(set(gold["coder"]) | set(coverage or {}))
    if not coders:
        raise UserError("no human codings to compare with")
    reference = reference if reference is not None else reference_coder(gold)
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
        report |= _pair(
            ref,
            pred,
            [ids[k] for k in covered],
            group_arr[covered],
            codes,
            n_boot,
            seed,
            exclude.get(reference),
        )
        report["by_coder"] = {}
        for c in coders:
            c_ids = [i for i in ids if coverage is None or i in coverage.get(c, set())]
            report["by_coder"][c] = compare_coders(
                gold[gold["coder"] == c], pred, ids=c_ids, codes=codes, exclude=exclude.get(c)
            )["overall"]
    if len(coders) > 1:
        report["human"] = {}
        for a, b in combinations(coders, 2):
            pair_ids = ids
            if coverage is not None:  # only units both coders reviewed
                pair_ids = [i for i in ids if i in coverage.get(a, set()) and i in coverage.get(b, set())]
            keep = np.isin(np.array(ids, dtype=object), np.array(pair_ids, dtype=object))
            args = (pair_ids, group_arr[keep], codes, n_boot, seed)
            report["human"][f"{a}_vs_{b}"] = _human_pair(
                gold, pred, a, b, args, exclude=exclude, min_shared=min_shared
            )
        report["humans"] = humans_alpha(gold, ids=ids, codes=codes, coverage=coverage, exclude=exclude)
        report |= _human_ceiling(report)
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
    exclude: dict[str, set[str]] | None = None,
) -> dict:
    """Agreement between two long tables over `ids`, with bootstrap intervals over `groups`;
    `exclude`: code -> ids missing for it."""
    result = compare_coders(a, b, ids=ids, codes=codes, exclude=exclude)
    add_intervals(
        result,
        indicator_matrix(a, ids, codes),
        indicator_matrix(b, ids, codes),
        groups,
        n_boot=n_boot,
        seed=seed,
        codes=codes,
        valid=valid_matrix(ids, codes, exclude),
    )
    return result


def _human_pair(
    gold: pd.DataFrame,
    pred: pd.DataFrame | None,
    a: str,
    b: str,
    args: tuple,
    *,
    exclude: dict[str, dict[str, set[str]]],
    min_shared: int,
) -> dict:
    """Coder `a` vs coder `b` on the units both reviewed (`args`: those ids, their groups, the
    codes, resamples, seed), with the machine against each of them on the same units: figures
    only from `min_shared` shared units on, else null ("n/a")."""
    n = len(args[0])
    if n < min_shared:
        na = {"units": n, "macro_cohen_kappa": None, "macro_f1": None}
        out: dict = {"shared_units": n, "overall": na, "per_code": {}}
        out["undefined_reason"] = f"fewer than {min_shared} shared units"
        if pred is not None:
            out["machine"] = {c: {"macro_cohen_kappa": None, "macro_f1": None} for c in (a, b)}
        return out
    by = {c: gold[gold["coder"] == c] for c in (a, b)}
    out = {"shared_units": n} | _pair(by[a], by[b], *args, merge_missing(exclude.get(a), exclude.get(b)))
    if pred is not None:
        out["machine"] = {}
        for c in (a, b):
            m = compare_coders(by[c], pred, ids=args[0], codes=args[2], exclude=exclude.get(c))["overall"]
            out["machine"][c] = {k: m[k] for k in ("macro_cohen_kappa", "macro_f1")}
    return out


def _human_ceiling(report: dict) -> dict:
    """The human ceiling: the coder pair with figures that shares the most units (the first by
    name on a tie), and the machine's gap to it on that pair's units (its mean macro kappa
    against the two coders, minus theirs). Nothing when no pair has figures."""
    pairs = [
        (-p["shared_units"], k)
        for k, p in report["human"].items()
        if p["overall"]["macro_cohen_kappa"] is not None
    ]
    if not pairs:
        if "overall" in report:
            report["overall"] |= {"human_ceiling_macro_cohen_kappa": None, "gap_to_human_ceiling": None}
        return {"human_ceiling_pair": None}
    key = min(pairs)[1]
    pair = report["human"][key]
    if "overall" in report:
        ceiling = pair["overall"]["macro_cohen_kappa"]
        machine = [m["macro_cohen_kappa"] for m in pair.get("machine", {}).values()]
        gap = None if None in machine else float(np.mean(machine)) - ceiling
        report["overall"] |= {"human_ceiling_macro_cohen_kappa": ceiling, "gap_to_human_ceiling": gap}
    return {"human_ceiling_pair": key}


def _covered_gold(
    segments: pd.DataFrame, codings: pd.DataFrame, covered: dict[str, set[str]], *, min_overlap: float
) -> pd.DataFrame:
    """The human codes per segment (`pipeline.codings.human_segment_codes`) inside each coder's
    coverage (outside it a code is missing, like their "no" there); one line when none is left."""
    gold = human_segment_codes(segments, codings, min_overlap=min_overlap)
    inside = np.array([i in covered[c] for i, c in zip(gold["id"], gold["coder"], strict=True)], dtype=bool)
    gold = gold[inside]
    if gold.empty:
        raise UserError(
            f"no human codings to compare with: none of the {len(codings)} coded spans covers "
            f"agreement.min_overlap ({min_overlap:g}) of a segment's characters inside its coder's "
            f"coverage ({len(codings)} spans reach no segment); lower agreement.min_overlap or check "
            "the codings' offsets"
        )
    return gold


def coverage_summary(covered: dict[str, set[str]], tid_of: dict[str, str], *, source: str | None) -> dict:
    """Who reviewed what (units and transcripts per coder) and how much overlaps (shared units
    per pair of coders)."""
    coders = sorted(covered)
    return {
        "source": source,
        "coders": {
            c: {"units": len(covered[c]), "transcripts": len({tid_of[i] for i in covered[c]})} for c in coders
        },
        "shared_units": {f"{a}_vs_{b}": len(covered[a] & covered[b]) for a, b in combinations(coders, 2)},
    }


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
    coverage: pd.DataFrame | None = None,
    ingest_metrics: dict | None = None,
) -> dict:
    """The stage's node (see `pipeline.stages`): the agreement report, and the rows of its two
    plots. `coverage`: what each coder reviewed (None: the transcripts each coded in; see
    `pipeline.codings.segment_coverage`). `ingest_metrics`: their codings import report is
    repeated under `input`."""
    themes = assignments
    codes = codes.rename(columns={"segment_id": "id"})
    input_report = (ingest_metrics or {}).get("codings")  # what ingest did with the codings
    confusion_rows: list[dict] = []
    if codings.empty or codebook is None:
        report: dict = {"status": "no human codings or codebook in the study; nothing to compare"}
    else:
        opts = params.agreement
        ids = segments["segment_id"].tolist()
        tid_of = dict(zip(segments["segment_id"], segments["transcript_id"], strict=True))
        covered = segment_coverage(segments, codings, coverage, min_overlap=opts.min_overlap)
        gold = _covered_gold(segments, codings, covered, min_overlap=opts.min_overlap)
        leaf_gold, missing = roll_up_by_coder(gold, codebook, n_levels(codebook))
        # one reference coder for the headline and every level (at the leaves, a coder who coded
        # only parent codes has no rows, yet stays the reference)
        reference = reference_coder(codings)
        report = agreement_report(
            leaf_gold,
            codes,
            ids=ids,
            codes=[c.code_id for c in codebook.leaves],
            exclude=missing,
            themes=themes,
            groups=[tid_of[i] for i in ids],
            coverage=covered,
            n_boot=opts.n_boot,
            seed=params.seed,
            cover_min=opts.cover_min,
            min_shared=opts.min_shared_units,
            reference=reference,
        )
        report["min_overlap"] = opts.min_overlap
        source = ((ingest_metrics or {}).get("codings") or {}).get("coverage", {}).get("source")
        report["coverage"] = coverage_summary(covered, tid_of, source=source)
        report["coverage"]["min_shared_units"] = opts.min_shared_units
        report |= agreement_by_level(
            gold,
            codes,
            codebook=codebook,
            ids=ids,
            coverage=covered,
            figures=partial(agreement_report, min_shared=opts.min_shared_units, reference=reference),
        )
        # the reference coder's leaf codes (as the machine codes), by the share of the segment
        # each covers (`overlap`, which the rolled-up table does not carry)
        leaf_ids = {c.code_id for c in codebook.leaves}
        ref = primary_codes(gold[(gold["coder"] == reference) & gold["code"].isin(leaf_ids)])
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


def run_csv(params: Params, *, gold_path: Path, pred_path: Path, out: Path) -> dict:
    """The CLI contract: long tables `id,code[,coder]` (pred may add `score`) -> agreement JSON,
    with params agreement.n_boot resamples and `seed`.

    Units are every id in either file; a row with an empty code marks an id with no code. The
    tables carry no coverage: every coder reviewed every unit, so two coders share all of them,
    and with fewer than agreement.min_shared_units their figures are null (n/a), as in the stage.
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
    opts = params.agreement
    report = agreement_report(
        gold,
        pred[cols],
        ids=ids,
        codes=codes,
        n_boot=opts.n_boot,
        seed=params.seed,
        min_shared=opts.min_shared_units,
    )
    write_json(out, report)
    return report
