"""Report stage: the run's results as one self-contained HTML page, plus REFI-QDA exports.

Reads only its declared inputs (`pipeline.stages`): pseudonymised text (segments, pseudonymised
turns), counts, the human codings as offsets, the scrubbed codebook, and the review stage's
snapshot of the study's theme review decisions. Applies those decisions to the candidate
themes first, so the
report, the theme x code comparison and the exports show the reviewed themes without
re-running discovery. Writes:
- `reports/index.html`: run summary, theme cards, prevalence heatmap by group, 2-D map of
  segments, agreement with human coders, theme x code comparison, de-identification counts;
- `exports/candidate_themes.qdc`: the (reviewed) candidate themes as a REFI-QDA codebook;
- `exports/study.qdpx`: pseudonymised transcripts, participant groups as case variables,
  the study codebook and candidate themes, machine codings and human codings.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

import pipeline.report.compare as compare
import pipeline.report.figures as figures
from pipeline import __version__
from pipeline.codebook import Codebook
from pipeline.codings import human_segment_codes, primary_codes, reference_coder
from pipeline.config import Params
from pipeline.layout import METRIC_STAGES
from pipeline.report.experiments import flatten_params
from pipeline.report.exports import build_exports
from pipeline.report.tables import kappa_rows, level_rows
from pipeline.schemas import UNASSIGNED
from pipeline.theme_review import REVIEW_FILE, Review, apply_review, review_from_snapshot

# the inputs whose digests the report shows, in this order (the review only when there is one)
_HASHED = ("segments", "assignments", "cards", "embeddings", "codes", "deid_turns", "codebook", "codings")
LIBRARIES = ("bertopic", "sentence-transformers", "torch", "scikit-learn", "umap-learn", "hdbscan", "spacy")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def render_report(context: dict) -> str:
    env = Environment(loader=PackageLoader("pipeline.report", "."), autoescape=select_autoescape())
    env.filters["num"] = lambda v, fmt="%.2f": "n/a" if v is None else fmt % v
    return env.get_template("template.html").render(**context)


def theme_comparison(
    assignments: pd.DataFrame,
    segments: pd.DataFrame,
    cards: dict,
    codebook: Codebook | None,
    codings: pd.DataFrame,
    *,
    params: Params,
    reference: str | None,
) -> dict | None:
    """The reviewed themes against the reference coder's codes: the mapping, per-theme rows,
    emergent themes, codes no theme covers (and where their segments went), and a heatmap;
    None without a codebook or human codings."""
    if codebook is None or codings.empty:
        return None
    gold = human_segment_codes(segments, codings, min_overlap=params.agreement.min_overlap)
    reference = reference or reference_coder(codings)
    leaf_ids = [c.code_id for c in codebook.leaves]
    # leaf codes only, as the agreement stage compares them (a parent-coded span is no leaf's)
    gold = gold[(gold["coder"] == reference) & gold["code"].isin(leaf_ids)]
    primary = primary_codes(gold)
    table = compare.theme_code_table(assignments, primary, codes=leaf_ids)
    mapping = compare.reviewed_mapping(
        assignments, gold, codes=leaf_ids, cover_min=params.agreement.cover_min
    )
    mapping["themes"] = compare.theme_rows(assignments, gold, table)
    mapping["emergent_themes"] = [int(t) for t in mapping.get("themes_no_code_covers", [])]
    support = primary.groupby("code").size()
    mapping["uncovered"] = [
        {
            "code": c,
            "support": int(support.get(c, 0)),
            # where the code's segments went: the theme holding most of them
            "best_theme": int(table[c].idxmax()) if c in table and table[c].max() > 0 else None,
            "best_theme_share": float(table[c].max() / support[c]) if support.get(c, 0) else 0.0,
        }
        for c in mapping.get("codes_no_theme_covers", [])
    ]
    labels = {c["theme_id"]: c["label"] for c in cards["themes"]}
    shown = table.drop(index=UNASSIGNED, errors="ignore")
    shown.index = [f"{t}: {labels.get(t, '')}" for t in shown.index]
    return {
        "reference": reference,
        "mapping": mapping,
        "figure": figures.confusion_heatmap(shown) if len(shown) and len(shown.columns) else None,
        "labels": labels,
        "code_names": {c.code_id: c.name for c in codebook.codes},
    }


def _models(params: Params, emb_meta: dict) -> list[tuple[str, str, str]]:
    """The models and libraries behind the run, with their versions."""
    # which device and precision embedded: the embed stage's sidecar (older ones name no device)
    device = emb_meta.get("device", "cpu")
    precision = emb_meta.get("precision", params.embed.model_precision)
    return [
        (
            f"Sentence embeddings (embedded on {device}, {precision})",
            emb_meta.get("model", params.embed.model),
            emb_meta.get("model_version", ""),
        ),
        ("spaCy pipeline (de-identification)", params.deid.spacy_model, _version(params.deid.spacy_model)),
        ("pipeline", "pipeline", __version__),
        *[(lib, lib, _version(lib)) for lib in LIBRARIES],
    ]


def _param_rows(params: Params) -> list[tuple[str, str]]:
    """Every param as (dotted key, shown value)."""
    return [
        (k, ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v))
        for k, v in flatten_params(params.model_dump()).items()
    ]


def _figures(params: Params, embeddings: np.ndarray, theme: np.ndarray, cards: dict, groups, deid, krows):
    """The report's figures: segment map, prevalence heatmap, per-code kappa, de-identification."""
    opts = params.report
    labels = {c["theme_id"]: c["label"] for c in cards["themes"]}
    if len(theme) > opts.map_points:  # a seeded sample, stratified by theme: the map stays readable
        rows = figures.map_sample(theme, limit=opts.map_points, seed=params.seed)
        xy = figures.segment_map_xy(embeddings[rows], method=opts.map, seed=params.seed)
        map_figure = figures.theme_map(xy, theme[rows], labels, annotate=opts.map_labels, total=len(theme))
    else:
        rows = np.arange(len(theme))
        xy = figures.segment_map_xy(embeddings, method=opts.map, seed=params.seed)
        map_figure = figures.theme_map(xy, theme, labels, annotate=opts.map_labels)
    return {
        "map_figure": map_figure,
        "map_points": len(rows),
        "map_method": opts.map,
        "prevalence_figure": figures.prevalence_heatmap(cards["themes"], groups) if cards["themes"] else None,
        "kappa_figure": figures.kappa_chart(krows) if krows else None,
        "deid_figure": figures.deid_bars(deid["by_type"]) if deid.get("by_type") else None,
    }


def _summary_context(metrics: dict, cards: dict, groups: list[str], theme: np.ndarray) -> dict:
    """The report's header figures: the study, the stages' counts and the reviewed themes."""
    return {
        "study_name": metrics["deid"].get("study", ""),  # pseudonymised
        # no wall-clock time: the same inputs give the same report, byte for byte
        "results_digest": hashlib.sha256(json.dumps(metrics, sort_keys=True).encode()).hexdigest()[:12],
        "version": __version__,
        "ingest": metrics["ingest"],
        "deid": metrics["deid"],
        "segments": metrics["segment"],
        "themes": metrics["themes"],
        "cards": cards,
        "groups": groups,
        "assigned": int((theme != UNASSIGNED).sum()),
        "unassigned": int((theme == UNASSIGNED).sum()),
    }


def _hashes(digests: dict, snapshot: dict) -> list[tuple[str, str, int]]:
    """The inputs by digest, in the report's order, and the review file as the review stage
    read it (when the study has one)."""
    review = [tuple(snapshot["file"])] if snapshot.get("file") else []
    return [digests[k] for k in _HASHED if k in digests] + review


def _review(params: Params, snapshot: dict) -> tuple[Review, dict]:
    """The review decisions, and what the report says of them: which ones, from which file."""
    path = str(Path(params.study) / REVIEW_FILE)
    review = review_from_snapshot(snapshot, source=path)
    shown = {"review": [d.to_dict() for d in review.decisions], "review_path": path}
    return review, shown | {"review_exists": bool(snapshot.get("exists"))}


def run(
    params: Params,
    *,
    ingest_metrics: dict,
    deid_metrics: dict,
    segment_metrics: dict,
    themes_metrics: dict,
    agreement_metrics: dict,
    coding_metrics: dict | None = None,
    cards: dict,
    assignments: pd.DataFrame,
    segments: pd.DataFrame,
    embeddings: tuple[np.ndarray, dict],
    codes: pd.DataFrame,
    deid_turns: pd.DataFrame,
    codebook: Codebook | None,
    codings: pd.DataFrame,
    theme_review: dict,
    digests: dict[str, tuple[str, str, int]] | None = None,
) -> dict:
    """The stage's node (see `pipeline.stages`): the HTML report and the REFI-QDA exports
    (file name -> bytes). `digests`: input key -> (path, sha256, size), shown for provenance."""
    shown_metrics = (
        ingest_metrics,
        deid_metrics,
        segment_metrics,
        themes_metrics,
        coding_metrics,
        agreement_metrics,
    )
    # runs made before the coding stage wrote its metrics say nothing of how they coded
    metrics = {s: m or {} for s, m in zip(METRIC_STAGES, shown_metrics, strict=True)}
    embeddings, emb_meta = embeddings
    review, review_shown = _review(params, theme_review)
    assignments, cards = apply_review(
        review,
        assignments,
        cards,
        segments,
        embeddings=embeddings,
        n_quotes=params.report.n_quotes,
        source=review_shown["review_path"],
    )
    # transcripts, participants and groups as the deid stage passed them on
    participants = deid_turns[["transcript_id", "participant_id", "group"]].drop_duplicates("transcript_id")
    groups = sorted(participants["group"].unique())
    ref = agreement_metrics.get("reference_coder")
    comparison = theme_comparison(
        assignments, segments, cards, codebook, codings, params=params, reference=ref
    )
    theme = assignments["theme_id"].to_numpy()
    krows = kappa_rows(agreement_metrics)
    shown = _figures(params, embeddings, theme, cards, groups, deid_metrics, krows)
    exports, counts = build_exports(
        study_name=deid_metrics.get("study") or "study",
        turns=deid_turns,
        segments=segments,
        assignments=assignments,
        codes=codes,
        cards=cards,
        codebook=codebook,
        codings=codings,
        participants=participants,
    )
    context = {
        **_summary_context(metrics, cards, groups, theme),
        **review_shown,
        "params": _param_rows(params),
        "models": _models(params, emb_meta),
        "hashes": _hashes(digests or {}, theme_review),
        "agreement": agreement_metrics,
        "coding": metrics["coding"],
        "kappa_rows": krows,
        "level_rows": level_rows(agreement_metrics),
        "has_intervals": any(r["machine_low"] is not None for r in krows),
        "comparison": comparison,
        "exports": counts,
        **shown,
    }
    return {"report": render_report(context), "exports": exports}
