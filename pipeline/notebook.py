"""What the notebooks import: a run's outputs (paths from `pipeline.layout.Layout`), theme
review decisions and the helpers to make them, and the report's tables and figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.codebook import read_codebook_json
from pipeline.codings import human_segment_codes, primary_codes, read_codings_table
from pipeline.errors import UserError
from pipeline.io import read_json, read_matrix, read_table
from pipeline.layout import Layout
from pipeline.report import figures
from pipeline.report.compare import code_disagreements, reviewed_mapping, theme_code_table
from pipeline.report.experiments import experiment_runs, kappa_by_experiment, load_experiments
from pipeline.report.tables import kappa_rows, level_rows
from pipeline.schemas import ASSIGNMENTS, SEGMENTS
from pipeline.theme_review import (
    REVIEW_FILE,
    UNASSIGNED,
    Decision,
    Review,
    SplitPart,
    apply_review,
    load_review,
    save_review,
)
from pipeline.vectors import unit_rows

__all__ = [
    "REVIEW_FILE",
    "Decision",
    "Layout",
    "Review",
    "RunOutputs",
    "SplitPart",
    "apply_review",
    "closest_themes",
    "code_disagreements",
    "experiment_runs",
    "figures",
    "human_segment_codes",
    "kappa_by_experiment",
    "kappa_rows",
    "level_rows",
    "load_experiments",
    "load_review",
    "load_run",
    "primary_codes",
    "propose_split",
    "read_codebook_json",
    "read_codings_table",
    "reviewed_mapping",
    "save_review",
    "theme_code_table",
    "theme_quotes",
    "themes_table",
]


@dataclass(frozen=True)
class RunOutputs:
    """What theme review reads from a run: segments, discovery's assignments and cards, embeddings."""

    segments: pd.DataFrame
    assignments: pd.DataFrame
    cards: dict
    embeddings: np.ndarray


def load_run(run_dir: Path) -> RunOutputs:
    """A run's outputs, from the repository root (after `dvc repro`) or a `run --out` folder."""
    lay = Layout(run_dir)
    embeddings, _ = read_matrix(lay.embeddings)
    return RunOutputs(
        segments=read_table(lay.segments, SEGMENTS),
        assignments=read_table(lay.assignments, ASSIGNMENTS),
        cards=read_json(lay.cards),
        embeddings=embeddings,
    )


def theme_quotes(
    assignments: pd.DataFrame,
    segments: pd.DataFrame,
    theme_id: int,
    *,
    group: str | None = None,
    limit: int = 20,
) -> pd.DataFrame:
    """Segments of one theme (optionally one participant group), for reading quotes."""
    merged = segments.merge(assignments[["segment_id", "theme_id"]], on="segment_id")
    rows = merged[merged["theme_id"] == theme_id]
    if group is not None:
        rows = rows[rows["group"] == group]
    return rows[["segment_id", "group", "participant_id", "transcript_id", "turn_id", "text"]].head(limit)


def themes_table(cards: dict) -> pd.DataFrame:
    """One row per theme: id, label, size, keywords and the share of each group voicing it."""
    rows = []
    for c in cards["themes"]:
        row = {
            "theme_id": c["theme_id"],
            "label": c["label"],
            "size": c["size"],
            "keywords": ", ".join(c.get("keywords", [])[:6]),
        }
        for g, p in c.get("prevalence", {}).items():
            row[g] = f"{p['participants']}/{p['of']}"
        rows.append(row)
    return pd.DataFrame(rows)


def closest_themes(assignments: pd.DataFrame, embeddings: np.ndarray, *, top: int = 5) -> pd.DataFrame:
    """Pairs of themes whose centroids are most similar: candidates for a merge."""
    ids = sorted(t for t in assignments["theme_id"].unique() if t != UNASSIGNED)
    theme = assignments["theme_id"].to_numpy()
    cents = unit_rows(np.vstack([embeddings[theme == t].mean(axis=0) for t in ids]))
    sim = cents @ cents.T
    pairs = [(ids[i], ids[j], float(sim[i, j])) for i in range(len(ids)) for j in range(i + 1, len(ids))]
    pairs.sort(key=lambda p: -p[2])
    return pd.DataFrame(pairs[:top], columns=["theme_a", "theme_b", "similarity"])


def propose_split(
    assignments: pd.DataFrame, embeddings: np.ndarray, theme_id: int, *, parts: int = 2, seed: int = 0
) -> list[list[str]]:
    """Segment ids of a theme divided in `parts` by k-means on their embeddings, largest first.

    A proposal for the researcher to read and label; the saved decision lists the segment ids,
    so the report applies it without clustering anything.
    """
    from sklearn.cluster import KMeans

    mask = (assignments["theme_id"] == theme_id).to_numpy()
    if mask.sum() < parts:
        raise UserError(f"theme {theme_id} has fewer than {parts} segments; nothing to split")
    labels = KMeans(n_clusters=parts, random_state=seed, n_init=10).fit_predict(embeddings[mask])
    ids = assignments.loc[mask, "segment_id"].to_numpy()
    out = [ids[labels == k].tolist() for k in range(parts)]
    return sorted(out, key=len, reverse=True)
