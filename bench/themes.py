"""Benchmark theme discovery against human codes (prints figures; not a test).

Same embeddings for every method:
- ``pipeline``: pipeline.themes.discover_themes with the default params (params.yaml values);
  on the demo, as in the pipeline stage, segments are clustered with their turn as context;
  ``pipeline, guided=...`` is the same with the other choice of codebook guidance;
- ``bertopic-defaults``: BERTopic() as shipped (UMAP 15/5 + HDBSCAN min_cluster_size 10), seeded;
- ``kmeans-true-k``: k-means on the raw embeddings with k = the number of human codes.
Figures: AMI and ARI vs the human codes (one code per unit: the code covering most of it),
unassigned share, number of themes, seconds; on the demo study also the best-match F1 of each
code (coder A, multi-label) and the pipeline's ARI between seeds.

    .venv/bin/python bench/themes.py [--data demo serdif] [--seeds 5]

Data: ``data/demo`` (coder A) and ``../shared/datasets/serdif-usability/tags.csv`` (Taguette
tags; each distinct coded text once, with its first tag). Skipped with a reason if absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERDIF = ROOT.parent / "shared" / "datasets" / "serdif-usability" / "tags.csv"

from pipeline.config import load_params  # noqa: E402
from pipeline.embed import embed_texts  # noqa: E402


def _embed(texts: list[str], params) -> np.ndarray:
    return embed_texts(
        texts,
        model=params.embed.model,
        batch_size=params.embed.batch_size,
        cache_dir=ROOT / "cache/embeddings",
    )


def demo_data(params):
    """Segments of the demo study (pipeline defaults), coder A's codes, codebook prototypes."""
    from pipeline import deid, ingest, segment
    from pipeline.agreement import human_segment_codes
    from pipeline.io import read_table
    from pipeline.schemas import SEGMENTS
    from pipeline.study import load_codebook, load_codings, load_participants

    study = ROOT / "data" / "demo"
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        ingest.run(
            params, study=study, out=t / "turns.parquet", codings=t / "codings.parquet", metrics=t / "i.json"
        )
        deid.run(
            params,
            turns_path=t / "turns.parquet",
            out=t / "deid.parquet",
            metrics=t / "d.json",
            key_store=t / "deid.key",
            study=study,
        )
        segment.run(params, turns_path=t / "deid.parquet", out=t / "seg.parquet", metrics=t / "s.json")
        segs = read_table(t / "seg.parquet", SEGMENTS)
    codebook = load_codebook(study)
    codings = load_codings(study, set(load_participants(study)["transcript_id"]), codebook)
    gold = human_segment_codes(segs, codings, min_overlap=params.agreement.min_overlap)
    gold = gold[gold["coder"] == "A"]
    primary = gold.sort_values("overlap", ascending=False).drop_duplicates("id").set_index("id")["code"]
    labels = segs["segment_id"].map(primary).fillna("").to_numpy()
    multi = {c: set(g["id"]) for c, g in gold.groupby("code")}
    from pipeline.themes.discover import codebook_prototypes

    guided = params.themes.model_copy(update={"guided": True})

    return (
        segs["text"].tolist(),
        labels,
        (segs["segment_id"].to_numpy(), multi),
        codebook_prototypes(codebook, params=params.model_copy(deep=True, update={"themes": guided})),
        segs,
    )


def serdif_data():
    tags = pd.read_csv(SERDIF, dtype=str, keep_default_na=False)
    tags = tags[tags["content"].str.strip() != ""].drop_duplicates("content")
    return tags["content"].tolist(), tags["tag"].to_numpy(), None, None, None


def best_match_f1(themes: np.ndarray, extra) -> dict[str, float]:
    ids, multi = extra
    out = {}
    for code, members in multi.items():
        y = np.isin(ids, list(members))
        out[code] = max(
            (
                2 * (y & (themes == t)).sum() / (y.sum() + (themes == t).sum())
                for t in set(themes.tolist()) - {-1}
            ),
            default=0.0,
        )
    return out


def figures(themes: np.ndarray, labels: np.ndarray, seconds: float, extra) -> dict:
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    m = labels != ""
    row = {
        "AMI": adjusted_mutual_info_score(labels[m], themes[m]),
        "ARI": adjusted_rand_score(labels[m], themes[m]),
        "unassigned": float(np.mean(themes == -1)),
        "themes": len(set(themes.tolist()) - {-1}),
        "seconds": seconds,
    }
    if extra is not None:
        f1 = best_match_f1(themes, extra)
        row["min code F1"] = min(f1.values())
        row["codes F1>=0.5"] = f"{sum(v >= 0.5 for v in f1.values())}/{len(f1)}"
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["demo", "serdif"])
    ap.add_argument("--seeds", type=int, default=5, help="pipeline fits for the stability figure")
    ap.add_argument("--set", action="append", default=[], help="params override, section.key=value")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    params = load_params(ROOT / "params.yaml", args.set)
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from sklearn.cluster import KMeans
    from umap import UMAP

    from pipeline.coding import turn_texts
    from pipeline.themes import discover_themes
    from pipeline.themes.discover import turn_context

    for name in args.data:
        if name == "serdif" and not SERDIF.exists():
            print(f"serdif: skipped, {SERDIF} not found")
            continue
        texts, labels, extra, protos, segs = demo_data(params) if name == "demo" else serdif_data()
        emb = _embed(texts, params)
        # As the pipeline stage does: segments with turn ids are clustered with turn context.
        ctx = None if segs is None else turn_context(segs, emb, options=params.themes)
        ctx_texts = None if ctx is None else turn_texts(segs)
        n_codes = len(set(labels.tolist()) - {""})
        print(
            f"\n## {name}: {len(texts)} units, {int((labels != '').sum())} with a human code, {n_codes} codes"
        )
        rows = {}
        opts = params.themes.model_copy(update={"stability_runs": args.seeds})
        t = time.perf_counter()
        found = discover_themes(
            texts,
            emb,
            options=opts,
            seed=params.seed,
            prototypes=protos,
            embed_model=params.embed.model,
            context=ctx,
            context_texts=ctx_texts,
        )
        secs = (time.perf_counter() - t) / max(1, args.seeds)  # one fit's share (keywords included)
        rows["pipeline"] = figures(found.topics, labels, secs, extra) | {
            f"ARI {args.seeds} seeds": found.stability.get("ari_mean")
        }
        if protos is not None:
            # The other choice of `themes.guided` (codebook guidance), for comparison.
            other = not opts.guided
            t = time.perf_counter()
            plain = discover_themes(
                texts,
                emb,
                options=opts.model_copy(update={"guided": other}),
                seed=params.seed,
                prototypes=protos,
                embed_model=params.embed.model,
                context=ctx,
                context_texts=ctx_texts,
            )
            rows[f"pipeline, guided={other}"] = figures(
                plain.topics, labels, (time.perf_counter() - t) / max(1, args.seeds), extra
            ) | {f"ARI {args.seeds} seeds": plain.stability.get("ari_mean")}
        t = time.perf_counter()
        model = BERTopic(
            umap_model=UMAP(
                n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=params.seed
            ),
            hdbscan_model=HDBSCAN(min_cluster_size=10, metric="euclidean", prediction_data=True),
        )
        topics, _ = model.fit_transform(texts, embeddings=emb)
        rows["bertopic-defaults"] = figures(np.asarray(topics), labels, time.perf_counter() - t, extra)
        t = time.perf_counter()
        km = KMeans(n_clusters=n_codes, random_state=params.seed, n_init=10).fit_predict(emb)
        rows["kmeans-true-k"] = figures(km, labels, time.perf_counter() - t, extra)
        table = pd.DataFrame(rows).T
        print(table.to_markdown(floatfmt=".3f") if _has_tabulate() else table.round(3).to_string())
        print(f"pipeline mode: {found.mode}")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
