"""Discover stage: segments + embeddings -> candidate themes (assignments), theme cards and a
summary; and the CLI's CSV contract (`id,text[,group]` -> `id,theme_id,theme_label`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.codebook import code_prototypes
from pipeline.codings import human_segment_codes, reference_coder
from pipeline.comparison import best_matching_codes
from pipeline.config import Params, ThemesParams
from pipeline.context import preceding_questions, turn_means, turn_texts
from pipeline.encoder import embed_with
from pipeline.errors import UserError
from pipeline.io import read_csv, write_csv
from pipeline.schemas import UNASSIGNED
from pipeline.themes.cards import theme_cards
from pipeline.themes.discover import Discovery, discover_themes
from pipeline.themes.per_question import discover_per_question


def assignments_table(ids: list[str], found: Discovery) -> pd.DataFrame:
    labels = [
        found.labels.get(int(t), "unassigned") if t != UNASSIGNED else "unassigned" for t in found.topics
    ]
    return pd.DataFrame({"segment_id": ids, "theme_id": found.topics, "theme_label": labels})


def codebook_prototypes(codebook, *, params: Params) -> np.ndarray | None:
    """One embedding per applied (leaf) code: its name, definition, criteria and examples."""
    if codebook is None or not params.themes.guided:
        return None
    if not codebook.leaves:
        return None
    return code_prototypes(codebook, embed=lambda texts: embed_with(texts, options=params.embed))[1]


def turn_context(
    segments: pd.DataFrame, embeddings: np.ndarray, *, options: ThemesParams
) -> np.ndarray | None:
    """Each segment's turn mean embedding, when `options.context` is "turn" and turns are known."""
    if options.context != "turn" or "turn_id" not in segments.columns:
        return None
    return turn_means(segments, embeddings)


def _discover(
    texts: list[str],
    embeddings: np.ndarray,
    *,
    params: Params,
    codebook,
    context: np.ndarray | None = None,
    context_texts: list[str] | None = None,
) -> Discovery:
    return discover_themes(
        texts,
        embeddings,
        options=params.themes,
        seed=params.seed,
        prototypes=codebook_prototypes(codebook, params=params),
        embed_model=params.embed.model,
        context=context,
        context_texts=context_texts,
    )


def discover_study(
    segments: pd.DataFrame,
    embeddings: np.ndarray,
    *,
    params: Params,
    codebook=None,
    turns: pd.DataFrame | None = None,
) -> tuple[Discovery, list[dict] | None]:
    """Themes of the segments, with their turns as context; with `themes.per_question` and the
    pseudonymised `turns`, the answers to each question apart (`pipeline.themes.per_question`:
    the groups come back beside the result)."""
    texts = segments["text"].tolist()
    context = turn_context(segments, embeddings, options=params.themes)
    context_texts = None if context is None else turn_texts(segments)

    def on(idx: np.ndarray) -> Discovery:
        return _discover(
            [texts[i] for i in idx],
            embeddings[idx],
            params=params,
            codebook=codebook,
            context=None if context is None else context[idx],
            context_texts=None if context_texts is None else [context_texts[i] for i in idx],
        )

    if params.themes.per_question and turns is not None:
        questions = preceding_questions(segments, turns)
        if len(set(questions)) > 1:
            return discover_per_question(questions, on)
    return on(np.arange(len(segments))), None


def summary(found: Discovery, n: int, groups: list[dict] | None = None) -> dict:
    """Figures for metrics/themes.json (counts and scores only, never text)."""
    stab = found.stability
    # per question group (the last: units left unassigned): its number, units and theme count
    rows = [{"number": g["number"], "units": g["units"], "themes": len(g["themes"])} for g in groups or []]
    extra = {"per_question": rows} if rows else {}
    # a large corpus: the stability refits' pool and their size
    extra |= {f"stability_{k}": stab[k] for k in ("pool", "refit_units") if k in stab}
    return extra | {
        "mode": found.mode,
        "themes": len(found.keywords),
        "parent_themes": len(set(found.parents.values())),
        "segments": int(n),
        "unassigned_share": float(np.mean(found.topics == UNASSIGNED)) if n else 0.0,
        "silhouette_by_k": {str(k): round(v, 4) for k, v in found.k_scores.items()},
        "stability_runs": stab.get("runs", 1),
        "stability_ari_mean": stab.get("ari_mean"),
        "stability_ari_min": stab.get("ari_min"),
        "unstable_themes": sum(t["unstable"] for t in stab.get("themes", {}).values()),
        "representations": [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()} for c in found.candidates
        ],
        "representation_rule": "the words' view weight whose partition is steadiest across subsamples",
    }


def _best_codes(
    segments: pd.DataFrame, topics: np.ndarray, codings: pd.DataFrame | None, *, min_overlap: float
) -> dict[int, dict] | None:
    """Per theme, the reference (first) coder's best-matching code and its F1; None without codings."""
    if codings is None or codings.empty:
        return None
    gold = human_segment_codes(segments, codings, min_overlap=min_overlap)
    if gold.empty:
        return None
    coder = reference_coder(codings)
    matches = best_matching_codes(topics, segments["segment_id"].tolist(), gold[gold["coder"] == coder])
    return {t: m | {"coder": coder} for t, m in matches.items()}


def run(
    params: Params,
    *,
    segments: pd.DataFrame,
    embeddings: tuple[np.ndarray, dict],
    codebook=None,
    codings: pd.DataFrame | None = None,
    deid_turns: pd.DataFrame | None = None,
) -> dict:
    """The stage's node (see `pipeline.stages`). `codings` (human codings as offsets): each card
    then names the reference coder's code that matches the theme best. `deid_turns`: the
    questions, for `themes.per_question`."""
    turns = deid_turns if params.themes.per_question else None
    embeddings = embeddings[0]
    found, groups = discover_study(segments, embeddings, params=params, codebook=codebook, turns=turns)
    assignments = assignments_table(segments["segment_id"].tolist(), found)
    best = _best_codes(segments, found.topics, codings, min_overlap=params.agreement.min_overlap)
    cards = theme_cards(
        segments, embeddings, assignments, found, n_quotes=params.themes.n_quotes, best_codes=best
    )
    for group in groups or []:  # each card names the question its answers answer
        for card in cards["themes"]:
            if card["theme_id"] in group["themes"]:
                card["question"] = {"number": group["number"], "text": group["question"]}
    return {
        "assignments": assignments,
        "cards": cards,
        "themes_metrics": summary(found, len(segments), groups),
    }


def run_csv(params: Params, *, in_path: Path, out: Path, codebook=None, progress: bool = False) -> dict:
    """The CLI contract: `id,text[,group]` rows -> `id,theme_id,theme_label` rows."""
    df = read_csv(in_path, ("id", "text"))
    if df["id"].duplicated().any():
        line = int(df.index[df["id"].duplicated()][0]) + 2
        raise UserError(f"{in_path} line {line}: duplicate id")
    embeddings = embed_with(df["text"].tolist(), options=params.embed, progress=progress)
    found = _discover(df["text"].tolist(), embeddings, params=params, codebook=codebook)
    table = assignments_table(df["id"].tolist(), found).rename(columns={"segment_id": "id"})
    write_csv(out, table)
    return summary(found, len(df))
