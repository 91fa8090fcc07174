"""Report stage: the run's results as one self-contained HTML page, plus REFI-QDA exports.

Reads only pseudonymised text (segments, pseudonymised turns), counts, the human codings as
offsets (`outputs/codings.parquet`) and the scrubbed codebook (`outputs/codebook.json`);
from the study folder only participants.csv and theme_review.yaml. Applies the
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
import logging
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline import __version__, refi
from pipeline.config import Params
from pipeline.embed import read_embeddings
from pipeline.io import read_json, read_table, write_text
from pipeline.report import compare, figures
from pipeline.review import REVIEW_FILE, apply_review, load_review
from pipeline.schemas import ASSIGNMENTS, CODES, DEID_TURNS, SEGMENTS
from pipeline.study import Codebook, load_participants, read_codebook_json, read_codings_table

log = logging.getLogger(__name__)

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


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += _flatten(v, key + ".")
        else:
            rows.append((key, ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)))
    return rows


def kappa_rows(agreement: dict) -> list[dict]:
    """Per code: machine kappa, its interval (when the agreement stage gives one) and the
    human ceiling (coder vs coder kappa, and its interval when given)."""
    human = next(iter(agreement.get("human", {}).values()), {}).get("per_code", {})
    rows = []
    for code, m in agreement.get("per_code", {}).items():
        low, high = _interval(m, "cohen_kappa")
        h = human.get(code, {})
        h_low, h_high = _interval(h, "cohen_kappa")
        rows.append(
            {
                "code": code,
                "support": m.get("support"),
                "machine": m.get("cohen_kappa"),
                "machine_low": low,
                "machine_high": high,
                "human": h.get("cohen_kappa"),
                "human_low": h_low,
                "human_high": h_high,
                "f1": m.get("f1"),
                "flags": [
                    f"{k.removesuffix('_flag')} {m[k]}" for k in ("kappa_flag", "alpha_flag") if m.get(k)
                ],
            }
        )
    return rows


def _interval(m: dict, key: str) -> tuple[float | None, float | None]:
    """An interval for `key` in any of the shapes an agreement report may give it."""
    for name in (f"{key}_ci95", f"{key}_ci", f"{key}_interval", "ci", "interval"):
        v = m.get(name)
        if isinstance(v, dict):
            v = m[name].get(key, v)
        if isinstance(v, dict) and {"low", "high"} <= set(v):
            return v["low"], v["high"]
        if isinstance(v, list | tuple) and len(v) == 2:
            return v[0], v[1]
    v = m.get("intervals", {}).get(key) if isinstance(m.get("intervals"), dict) else None
    if isinstance(v, dict) and {"low", "high"} <= set(v):
        return v["low"], v["high"]
    if isinstance(v, list | tuple) and len(v) == 2:
        return v[0], v[1]
    return None, None


def export_codebook(study_codebook: Codebook | None, cards: dict) -> Codebook:
    """The study's codebook and the candidate themes, in one codebook for the project export."""
    themes = refi.theme_codebook(cards)
    own = study_codebook.codes if study_codebook else ()
    clash = {c.code_id for c in own} & {c.code_id for c in themes.codes}
    if clash:
        from pipeline.errors import UserError

        raise UserError(f"codebook: code id '{sorted(clash)[0]}' is reserved for candidate themes; rename it")
    return Codebook((*own, *themes.codes))


def write_exports(
    *,
    study_name: str,
    turns: pd.DataFrame,
    segments: pd.DataFrame,
    assignments: pd.DataFrame,
    codes: pd.DataFrame,
    cards: dict,
    codebook: Codebook | None,
    codings: pd.DataFrame,
    participants: pd.DataFrame,
    exports_dir: Path,
) -> dict:
    """Write candidate_themes.qdc and study.qdpx; return counts of what went in."""
    refi.write_codebook_qdc(
        refi.theme_codebook(cards), exports_dir / "candidate_themes.qdc", study=study_name
    )
    sources = refi.pseudonymised_sources(turns)
    themed = assignments[assignments["theme_id"] != -1].assign(
        code=lambda d: "theme_" + d["theme_id"].astype(str)
    )
    machine = pd.concat(
        [
            refi.segment_codings(segments, codes, sources, code_column="code"),
            refi.segment_codings(segments, themed, sources, code_column="code"),
        ],
        ignore_index=True,
    )
    human, unplaced = refi.human_codings_to_sources(codings, turns, sources)
    if unplaced:
        log.warning("%d human coded spans cover no turn text and are not exported", unplaced)
    refi.write_project_qdpx(
        exports_dir / "study.qdpx",
        study=study_name,
        sources={t: s.text for t, s in sources.items()},
        codebook=export_codebook(codebook, cards),
        codings=pd.concat([machine, human], ignore_index=True),
        participants=participants,
    )
    return {
        "sources": len(sources),
        "machine_codings": int(len(machine)),
        "human_codings": int(len(human)),
        "human_codings_unplaced": unplaced,
        "theme_codes": len(cards["themes"]),
    }


def render_report(context: dict) -> str:
    env = Environment(loader=PackageLoader("pipeline.report", "."), autoescape=select_autoescape())
    env.filters["num"] = lambda v, fmt="%.2f": "n/a" if v is None else fmt % v
    return env.get_template("template.html").render(**context)


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
    from pipeline.agreement import human_segment_codes

    opts = params.report
    ingest = read_json(metrics_dir / "ingest.json")
    deid = read_json(metrics_dir / "deid.json")
    seg_metrics = read_json(metrics_dir / "segment.json")
    theme_metrics = read_json(metrics_dir / "themes.json")
    agreement = read_json(metrics_dir / "agreement.json")
    # how the code stage coded (method, context); absent in runs made before it was written
    coding = read_json(metrics_dir / "coding.json") if (metrics_dir / "coding.json").exists() else {}
    segments = read_table(segments_path, SEGMENTS)
    assignments = read_table(assignments_path, ASSIGNMENTS)
    embeddings, emb_meta = read_embeddings(embeddings_path, segments["segment_id"].tolist())
    codes = read_table(codes_path, CODES)
    turns = read_table(turns_path, DEID_TURNS)
    cards = read_json(cards_path)

    review_path = study / REVIEW_FILE
    review = load_review(review_path)
    assignments, cards = apply_review(
        review,
        assignments,
        cards,
        segments,
        embeddings=embeddings,
        n_quotes=opts.n_quotes,
        source=str(review_path),
    )

    participants = load_participants(study)
    codebook = read_codebook_json(codebook_path)  # scrubbed by the deidentify stage
    codings = read_codings_table(codings_path)
    groups = sorted(participants["group"].unique())

    comparison = None
    if codebook is not None and not codings.empty:
        gold = human_segment_codes(segments, codings, min_overlap=params.agreement.min_overlap)
        reference = agreement.get("reference_coder") or sorted(gold["coder"].unique())[0]
        gold = gold[gold["coder"] == reference]
        leaf_ids = [c.code_id for c in codebook.leaves]
        table = compare.theme_code_table(assignments, compare.primary_codes(gold), codes=leaf_ids)
        mapping = compare.reviewed_mapping(
            assignments, gold, codes=leaf_ids, cover_min=params.agreement.cover_min
        )
        mapping["themes"] = compare.theme_rows(assignments, gold, table)
        mapping["emergent_themes"] = [int(t) for t in mapping.get("themes_no_code_covers", [])]
        support = compare.primary_codes(gold).groupby("code").size()
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
        comparison = {
            "reference": reference,
            "mapping": mapping,
            "figure": figures.confusion_heatmap(shown) if len(shown) and len(shown.columns) else None,
            "labels": labels,
            "code_names": {c.code_id: c.name for c in codebook.codes},
        }

    theme = assignments["theme_id"].to_numpy()
    xy = figures.segment_map_xy(embeddings, method=opts.map, seed=params.seed)
    labels = {c["theme_id"]: c["label"] for c in cards["themes"]}
    krows = kappa_rows(agreement)

    exports = write_exports(
        study_name=ingest.get("study") or study.name,
        turns=turns,
        segments=segments,
        assignments=assignments,
        codes=codes,
        cards=cards,
        codebook=codebook,
        codings=codings,
        participants=participants,
        exports_dir=exports_dir,
    )

    hashed = [segments_path, assignments_path, cards_path, embeddings_path, codes_path, turns_path]
    hashed += [codebook_path, codings_path, study / "participants.csv", review_path]
    context = {
        "study_name": ingest.get("study", ""),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "ingest": ingest,
        "deid": deid,
        "segments": seg_metrics,
        "themes": theme_metrics,
        "cards": cards,
        "groups": groups,
        "review": [d.to_dict() for d in review.decisions],
        "review_path": str(review_path),
        "params": _flatten(params.model_dump()),
        "models": [
            (
                "Sentence embeddings",
                emb_meta.get("model", params.embed.model),
                emb_meta.get("model_version", ""),
            ),
            (
                "spaCy pipeline (de-identification)",
                params.deid.spacy_model,
                _version(params.deid.spacy_model),
            ),
            ("pipeline", "pipeline", __version__),
            *[(lib, lib, _version(lib)) for lib in LIBRARIES],
        ],
        "hashes": [(str(p), file_digest(p), p.stat().st_size) for p in hashed if p.exists()],
        "assigned": int((theme != -1).sum()),
        "unassigned": int((theme == -1).sum()),
        "map_figure": figures.theme_map(xy, theme, labels, annotate=opts.map_labels),
        "map_method": opts.map,
        "prevalence_figure": figures.prevalence_heatmap(cards["themes"], groups) if cards["themes"] else None,
        "agreement": agreement,
        "coding": coding,
        "kappa_rows": krows,
        "kappa_figure": figures.kappa_chart(krows) if krows else None,
        "has_intervals": any(r["machine_low"] is not None for r in krows),
        "comparison": comparison,
        "deid_figure": figures.deid_bars(deid["by_type"]) if deid.get("by_type") else None,
        "exports": exports,
    }
    write_text(out, render_report(context))
    return {"themes": len(cards["themes"]), "review_decisions": len(review.decisions), **exports}
