"""Code stage: apply a codebook deductively to segments, multi-label, with a score and evidence:
few-shot cross-fitted over transcripts (`pipeline.coding.cross_fit`) when the study has human
codings, else zero-shot; and the CLI's CSV contract. Method: README, section "Agreement with
human coding" (How the machine codes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook, Embed
from pipeline.coding.cross_fit import cross_fit
from pipeline.coding.few_shot import fit_few_shot
from pipeline.coding.inference import predict_on
from pipeline.coding.zero_shot import zero_shot
from pipeline.codings import human_segment_codes, segment_coverage
from pipeline.config import Params
from pipeline.context import preceding_questions, question_vectors, turn_means
from pipeline.encoder import embed_with
from pipeline.errors import UserError
from pipeline.formats.readers import read_codebook
from pipeline.hierarchy import top_code_per_level
from pipeline.io import read_csv, write_csv
from pipeline.schemas import CODES, CODES_LEVELS


def _embedder(params: Params, progress: bool) -> Embed:
    def embed(texts: list[str]) -> np.ndarray:
        return embed_with(texts, options=params.embed, progress=progress)

    return embed


def _questions(
    segments: pd.DataFrame, turns: pd.DataFrame, embed: Embed
) -> tuple[list[str], np.ndarray] | None:
    """Each segment's preceding question and its embedding; None when there is none at all."""
    texts = preceding_questions(segments, turns)
    vectors = question_vectors(texts, embed)
    return None if vectors is None else (texts, vectors)


def coder_labels(
    segments: pd.DataFrame,
    codings: pd.DataFrame,
    *,
    min_overlap: float,
    coverage: pd.DataFrame | None = None,
    codebook: Codebook | None = None,
) -> dict[str, dict[str, set[str]]]:
    """coder -> segment_id -> the codes that coder gave it, for every segment inside their
    coverage (`pipeline.codings.segment_coverage`; None: the transcripts they coded in), in the
    segments' order; an empty set is their "no". A segment a coder coded with a parent code is
    left out for them: which of its leaves apply is unknown, and none is a "no"
    (`pipeline.hierarchy`)."""
    covered = segment_coverage(segments, codings, coverage, min_overlap=min_overlap)
    gold = human_segment_codes(segments, codings, min_overlap=min_overlap)
    leaves = {c.code_id for c in codebook.leaves} if codebook is not None else None
    out: dict[str, dict[str, set[str]]] = {}
    for coder, ids in covered.items():
        mine: dict[str, set[str]] = {s: set() for s in segments["segment_id"] if s in ids}
        given = gold[gold["coder"] == coder]
        for sid, code in zip(given["id"], given["code"], strict=True):
            if sid in mine:  # a coded span outside the coder's coverage: missing, not a "yes"
                mine[sid].add(code)
        out[coder] = mine if leaves is None else {s: c for s, c in mine.items() if c <= leaves}
    return out


def segment_labels(
    segments: pd.DataFrame,
    codings: pd.DataFrame,
    *,
    min_overlap: float,
    coder: str | None = None,
    codebook: Codebook | None = None,
    coverage: pd.DataFrame | None = None,
    double_coded: str = "union",
) -> dict[str, set[str]]:
    """segment_id -> the codes a model learns for it, for every segment inside some coder's
    coverage (spans map to segments by the agreement.min_overlap rule; see `coder_labels`).
    `coder`: that coder's codes, on their coverage only. Else every coder's: a segment several
    coders covered learns `double_coded` of their code sets: "union", "intersection" (with two
    coders, also their majority) or "reference" (the first coder by name among those who
    covered it). The rule is chosen by measurement: README, "Several coders"."""
    per_coder = coder_labels(segments, codings, min_overlap=min_overlap, coverage=coverage, codebook=codebook)
    if coder is not None:
        return per_coder.get(coder, {})
    return combine_coders(per_coder, segments["segment_id"].tolist(), double_coded=double_coded)


def combine_coders(
    per_coder: dict[str, dict[str, set[str]]], segment_ids: list[str], *, double_coded: str
) -> dict[str, set[str]]:
    """segment_id -> `double_coded` of the code sets the coders of `per_coder` (`coder_labels`)
    gave it, for the segments (in `segment_ids` order) inside some coder's coverage."""
    sets: dict[str, list[set[str]]] = {}
    for name in sorted(per_coder):
        for sid, codes in per_coder[name].items():
            sets.setdefault(sid, []).append(codes)
    combine = {
        "union": lambda xs: set().union(*xs),
        "intersection": lambda xs: set.intersection(*xs),
        "reference": lambda xs: set(xs[0]),
    }[double_coded]
    return {s: combine(sets[s]) for s in segment_ids if s in sets}


def _training_labels(
    params: Params, segments: pd.DataFrame, codings: pd.DataFrame, coverage, codebook: Codebook
) -> tuple[dict[str, set[str]], dict]:
    """What few-shot learns (`segment_labels` with the coding params) and how it was chosen
    (coding.train_coder need not have codings: only few-shot checks it)."""
    opts = params.coding
    per_coder = coder_labels(
        segments, codings, min_overlap=params.agreement.min_overlap, coverage=coverage, codebook=codebook
    )
    if opts.train_coder is not None:
        labels = per_coder.get(opts.train_coder, {})
        return labels, {"train_coder": opts.train_coder, "training_units": len(labels)}
    labels = combine_coders(per_coder, segments["segment_id"].tolist(), double_coded=opts.double_coded)
    shared = sum(sum(s in c for c in per_coder.values()) >= 2 for s in labels)
    return labels, {
        "train_coders": sorted(per_coder),
        "double_coded": opts.double_coded,
        "training_units": len(labels),
        "double_coded_units": int(shared),
    }


def run(
    params: Params,
    *,
    segments: pd.DataFrame,
    embeddings: tuple[np.ndarray, dict],
    codebook: Codebook | None,
    codings: pd.DataFrame,
    coverage: pd.DataFrame | None = None,
    deid_turns: pd.DataFrame | None = None,
    progress: bool = False,
) -> dict:
    """The stage's node (see `pipeline.stages`). `coverage`: what each coder reviewed (None:
    the transcripts each coded in); `deid_turns`: the pseudonymised turns, for
    `coding.context: turn+question`; `coding_metrics`: how the segments were coded."""
    embeddings = embeddings[0]
    opts = params.coding
    info: dict = {}
    if codebook is None:
        codes = pd.DataFrame(columns=CODES.names)
        info["method"] = "none (the study has no codebook)"
    else:
        embed = _embedder(params, progress)
        has_codings = codings is not None and not codings.empty
        labels, trained_on = (
            _training_labels(params, segments, codings, coverage, codebook) if has_codings else ({}, {})
        )
        # auto: few-shot needs coded segments (a coder's yes, not only reviewed ones) in at least
        # two transcripts to cross-fit, and two codes to tell apart
        tid_of = dict(zip(segments["segment_id"], segments["transcript_id"], strict=True))
        coded_in = {tid_of[s] for s, c in labels.items() if c}
        enough = len(coded_in) >= 2 and len(set().union(*labels.values())) >= 2
        method = opts.method if opts.method != "auto" else ("few_shot" if enough else "zero_shot")
        if method == "few_shot":
            if not has_codings:
                raise UserError("params coding.method=few_shot: the study has no human codings to learn from")
            if opts.train_coder is not None and opts.train_coder not in set(codings["coder"]):
                raise UserError(f"params coding.train_coder: no codings by coder '{opts.train_coder}'")
            questions = None
            if opts.context == "turn+question" and deid_turns is not None:
                questions = _questions(segments, deid_turns, embed)
            options, note = opts, None
            if opts.context == "turn+question" and questions is None:  # say so, code with the turn
                options = opts.model_copy(update={"context": "turn"})
                note = "no interviewer questions found: segments coded with their turn only"
            codes, info = cross_fit(
                segments,
                embeddings,
                labels,
                codebook,
                embed=embed,
                options=options,
                seed=params.seed,
                questions=questions,
                predict=predict_on(params.engine),
                encoder=(params.embed.model, params.embed.device),
            )
            info |= trained_on | ({"context_note": note} if note else {})
        else:
            # zero-shot reads a segment with its turn; a question is not evidence of a code
            context = "none" if opts.context == "none" else "turn"
            codes = zero_shot(
                segments["segment_id"].tolist(),
                embeddings,
                codebook,
                embed=embed,
                options=opts,
                context=turn_means(segments, embeddings) if context == "turn" else None,
            )
            info = {"method": "zero_shot", "context": context}
    figures = {**info, "codes": int(len(codes)), "segments_coded": int(codes["segment_id"].nunique())}
    levels = (
        pd.DataFrame(columns=CODES_LEVELS.names) if codebook is None else top_code_per_level(codes, codebook)
    )
    return {"codes": codes, "codes_levels": levels, "coding_metrics": figures}


def read_training(path: Path, codebook: Codebook) -> tuple[list[str], list[str], list[set[str]]]:
    """Human-coded examples `id,text,code` (one row per code; empty code = no code applies)."""
    df = read_csv(path, ("id", "text", "code"))
    known = {c.code_id for c in codebook.leaves}
    bad = df.index[(df["code"] != "") & ~df["code"].isin(known)]
    if len(bad):
        raise UserError(f"{path} line {bad[0] + 2}: code not in the codebook's leaf codes")
    texts: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    for r in df.itertuples(index=False):
        texts.setdefault(r.id, r.text)
        labels.setdefault(r.id, set())
        if r.code:
            labels[r.id].add(r.code)
    ids = list(texts)
    return ids, [texts[i] for i in ids], [labels[i] for i in ids]


def run_csv(
    params: Params,
    *,
    in_path: Path,
    codebook_path: Path,
    out: Path,
    train: Path | None,
    progress: bool = False,
) -> dict:
    """The CLI contract: `id,text` rows (+ training `id,text,code`) -> `id,code,score` rows.

    With --train: few-shot (unless coding.method=zero_shot); without: zero-shot.
    """
    df = read_csv(in_path, ("id", "text"))
    codebook = read_codebook(codebook_path)
    embed = _embedder(params, progress)
    emb = embed(df["text"].tolist())
    opts = params.coding
    if train is not None and opts.method != "zero_shot":
        tr_ids, tr_texts, tr_labels = read_training(train, codebook)
        tr_emb = embed(tr_texts)
        coder = fit_few_shot(
            tr_ids, tr_texts, tr_emb, tr_labels, codebook, embed=embed, options=opts, seed=params.seed
        )
        parts = predict_on(params.engine)([(coder, df["id"].tolist(), df["text"].tolist(), emb)])
        codes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CODES.names)
        method = "few_shot"
    else:
        if opts.method == "few_shot":
            raise UserError("params coding.method=few_shot needs --train with human-coded examples")
        codes = zero_shot(df["id"].tolist(), emb, codebook, embed=embed, options=opts)
        method = "zero_shot"
    write_csv(out, codes[["segment_id", "code", "score"]].rename(columns={"segment_id": "id"}))
    return {"rows": len(df), "codes": len(codes), "method": method}
