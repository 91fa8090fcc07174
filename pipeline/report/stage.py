"""Report stage: the run's results as one self-contained HTML page, plus REFI-QDA exports.

Reads only pseudonymised text (segments, pseudonymised turns), counts, the human codings as
offsets (`outputs/codings.parquet`) and the scrubbed codebook (`outputs/codebook.json`);
from the study folder only theme_review.yaml. Applies the
study's theme review decisions (`theme_review.yaml`) to the candidate themes first, so the
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
from pipeline.codebook import Codebook, read_codebook_json
from pipeline.codings import human_segment_codes, primary_codes, read_codings_table
from pipeline.config import Params
from pipeline.encoder import read_embeddings
from pipeline.io import read_json, read_table, write_text
from pipeline.layout import metric_file
from pipeline.report.experiments import flatten_params
from pipeline.report.exports import write_exports
from pipeline.report.review import REVIEW_FILE, apply_review, load_review
from pipeline.report.tables import kappa_rows
from pipeline.schemas import ASSIGNMENTS, CODES, DEID_TURNS, SEGMENTS

LIBRARIES = ("bertopic", "sentence-transformers", "torch", "scikit-learn", "umap-learn", "hdbscan", "spacy")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    reference = reference or sorted(gold["coder"].unique())[0]
    gold = gold[gold["coder"] == reference]
    leaf_ids = [c.code_id for c in codebook.leaves]
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
    shown = table.drop(index=-1, errors="ignore")
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


def _review_context(review, path: Path) -> dict:
    """The decisions applied, and whether the review file exists (`decisions: []`) or is absent."""
    return {
        "review": [d.to_dict() for d in review.decisions],
        "review_path": str(path),
        "review_exists": path.is_file(),
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
        "assigned": int((theme != -1).sum()),
        "unassigned": int((theme == -1).sum()),
    }


def _stage_metrics(metrics_dir: Path) -> dict[str, dict]:
    """Every stage's metrics file; the code stage's may be absent (runs made before it was
    written say nothing of how they coded)."""
    found = {s: read_json(metric_file(metrics_dir, s)) for s in ("ingest", "deid", "segment", "themes")}
    found["agreement"] = read_json(metric_file(metrics_dir, "agreement"))
    coding = metric_file(metrics_dir, "coding")
    found["coding"] = read_json(coding) if coding.exists() else {}
    return found


def run(
    params: Params,
    *,
    study: Path,
    metrics_dir: Path,
    cards_path: Path,
    assignments_path: Path,
    segments_path: Path,
    embeddings_path: Path,
    codes_path: Path,
    turns_path: Path,
    codebook_path: Path,
    codings_path: Path,
    out: Path,
    exports_dir: Path,
) -> dict:
    metrics = _stage_metrics(metrics_dir)
    agreement, coding = metrics["agreement"], metrics["coding"]
    segments = read_table(segments_path, SEGMENTS)
    embeddings, emb_meta = read_embeddings(embeddings_path, segments["segment_id"].tolist())
    turns = read_table(turns_path, DEID_TURNS)

    review_path = study / REVIEW_FILE
    review = load_review(review_path)
    assignments, cards = apply_review(
        review,
        read_table(assignments_path, ASSIGNMENTS),
        read_json(cards_path),
        segments,
        embeddings=embeddings,
        n_quotes=params.report.n_quotes,
        source=str(review_path),
    )
    # transcripts, participants and groups as the deidentify stage passed them on
    participants = turns[["transcript_id", "participant_id", "group"]].drop_duplicates("transcript_id")
    codebook = read_codebook_json(codebook_path)  # scrubbed by the deidentify stage
    codings = read_codings_table(codings_path)
    groups = sorted(participants["group"].unique())
    comparison = theme_comparison(
        assignments,
        segments,
        cards,
        codebook,
        codings,
        params=params,
        reference=agreement.get("reference_coder"),
    )
    theme = assignments["theme_id"].to_numpy()
    krows = kappa_rows(agreement)
    shown = _figures(params, embeddings, theme, cards, groups, metrics["deid"], krows)
    exports = write_exports(
        study_name=metrics["deid"].get("study") or "study",
        turns=turns,
        segments=segments,
        assignments=assignments,
        codes=read_table(codes_path, CODES),
        cards=cards,
        codebook=codebook,
        codings=codings,
        participants=participants,
        exports_dir=exports_dir,
    )
    hashed = [segments_path, assignments_path, cards_path, embeddings_path, codes_path, turns_path]
    hashed += [codebook_path, codings_path, review_path]  # inputs, by digest
    context = {
        **_summary_context(metrics, cards, groups, theme),
        **_review_context(review, review_path),
        "params": _param_rows(params),
        "models": _models(params, emb_meta),
        "hashes": [(str(p), file_digest(p), p.stat().st_size) for p in hashed if p.exists()],
        "agreement": agreement,
        "coding": coding,
        "kappa_rows": krows,
        "has_intervals": any(r["machine_low"] is not None for r in krows),
        "comparison": comparison,
        "exports": exports,
        **shown,
    }
    write_text(out, render_report(context))
    return {"themes": len(cards["themes"]), "review_decisions": len(review.decisions), **exports}
