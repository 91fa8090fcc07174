"""Cross-fitted few-shot coding: every segment coded by a model that never saw its transcript
(`coding.folds` folds over the human-coded transcripts), the folds' models fitted on every core."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook, Embed
from pipeline.coding.few_shot import (
    CodingJob,
    FewShotCoder,
    Predict,
    codebook_rows,
    fit_few_shot,
    predict_here,
)
from pipeline.coding.fine_tune import MAX_FOLDS, estimate, fine_tune
from pipeline.config import CodingParams
from pipeline.context import coding_inputs
from pipeline.engine import fork_processes, forked_map
from pipeline.errors import UserError
from pipeline.schemas import CODES

log = logging.getLogger(__name__)


def cross_fit(
    segments: pd.DataFrame,
    embeddings: np.ndarray,
    labels: dict[str, set[str]],
    codebook: Codebook,
    *,
    embed: Embed,
    options: CodingParams,
    seed: int = 0,
    questions: tuple[list[str], np.ndarray] | None = None,
    predict: Predict = predict_here,
    encoder: tuple[str, str] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Few-shot codes for every segment from models that never saw the segment's transcript.

    `labels`: segment_id -> human codes, for every segment of the human-coded transcripts
    (an empty set = coded, no code applies). `questions`: per segment, the text and embedding
    of the interviewer turn it answers. `predict` runs the folds' coders (fitted on every core
    side by side) over their segments, in fold order. `encoder`: (model, device) to fine-tune
    per fold as `coding.fine_tune` says (`fine_tune_decision`); None: frozen embeddings."""
    seg_ids = segments["segment_id"].tolist()
    tids = segments["transcript_id"].to_numpy()
    coded_t, order, n_folds, tune, tuned_info = _plan(segments, labels, options, encoder, seed)
    fold_of = {t: i % n_folds for i, t in enumerate(order)}
    texts, embeddings = coding_inputs(segments, embeddings, context=options.context, questions=questions)

    fold = np.array([fold_of.get(t, -1) for t in tids], dtype=np.int64)  # -1: no human codings
    coded = np.array([s in labels for s in seg_ids], dtype=bool)

    # fold -1: transcripts without human codings, coded by a model trained on all coded ones
    folds = [f for f in range(-1, n_folds) if (fold == f).any()]
    extra = codebook_rows(codebook, embed=embed)  # encoded here, once: workers load no model

    def fit_fold(f: int) -> tuple[FewShotCoder, np.ndarray]:
        """The fold's coder and its units' features (from the fold's own encoder if tuned)."""
        from threadpoolctl import threadpool_limits

        tidx = np.nonzero(coded & (fold != f))[0]
        features, rows = embeddings, extra
        if tune:  # an encoder that never read this fold's transcripts
            features, rows = _tuned_inputs(
                segments, tidx, labels, codebook, options, encoder, seed, questions
            )
        # one BLAS thread, in any process: the same bits whatever the machine's core count
        with threadpool_limits(limits=1, user_api="blas"):
            coder = fit_few_shot(
                [seg_ids[j] for j in tidx],
                [texts[j] for j in tidx],
                features[tidx],
                [labels[seg_ids[j]] for j in tidx],
                codebook,
                embed=embed,
                options=options,
                seed=seed,
                train_groups=[str(tids[j]) for j in tidx],
                extra=rows,
            )
        return coder, features[fold == f]

    def jobs() -> Iterator[CodingJob]:
        """The folds' coders, fitted on every core (`pipeline.engine.forked_map`), in order."""
        processes = min(fork_processes(), len(folds))
        batches = forked_map(lambda fs: [fit_fold(f) for f in fs], [[f] for f in folds], processes)
        fitted = (result for batch in batches for result in batch)
        for f, (coder, features) in zip(folds, fitted, strict=True):
            idx = np.nonzero(fold == f)[0]
            yield coder, [seg_ids[j] for j in idx], [texts[j] for j in idx], features

    parts = predict(jobs())
    codes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CODES.names)
    info = {
        "method": "few_shot_cross_fitted",
        "folds": n_folds,
        "coded_transcripts": len(coded_t),
        "context": options.context,
        "fine_tune": tuned_info,
    }
    return codes, info


def _plan(
    segments: pd.DataFrame,
    labels: dict[str, set[str]],
    options: CodingParams,
    encoder: tuple[str, str] | None,
    seed: int,
) -> tuple[list[str], list[str], int, bool, dict]:
    """The coded transcripts, their seeded order, the number of folds, and whether (and why)
    the folds fine-tune the encoder (at most `MAX_FOLDS` folds when they do)."""
    seg_ids = segments["segment_id"].tolist()
    tids = segments["transcript_id"].to_numpy()
    coded_t = sorted({t for t, s in zip(tids, seg_ids, strict=True) if s in labels})
    order = list(np.random.default_rng(seed).permutation(coded_t))
    rows = [j for j, s in enumerate(seg_ids) if s in labels]
    texts = [str(segments["text"].iat[j]) for j in rows]
    n = min(options.folds, len(order))
    tune, info = fine_tune_decision(
        options, encoder, texts, [labels[seg_ids[j]] for j in rows], n_folds=n, seed=seed
    )
    n_folds = min(n, MAX_FOLDS) if tune else n
    if n_folds < 2:
        raise UserError("few-shot cross-fitting needs human codings on at least two transcripts")
    return coded_t, order, n_folds, tune, info


def _tuned_inputs(
    segments: pd.DataFrame,
    train: np.ndarray,
    labels: dict[str, set[str]],
    codebook: Codebook,
    options: CodingParams,
    encoder: tuple[str, str],
    seed: int,
    questions: tuple[list[str], np.ndarray] | None,
) -> tuple[np.ndarray, tuple[list[str], np.ndarray, list[str]]]:
    """Every segment's features and the codebook's rows from an encoder fine-tuned on the
    segments at `train` (their texts alone, as the coders read them)."""
    ids = segments["segment_id"].tolist()
    tuned = fine_tune(
        encoder[0],
        [str(segments["text"].iat[j]) for j in train],
        [labels[ids[j]] for j in train],
        seed=seed,
        device=encoder[1],
    )
    q = None if questions is None else (questions[0], tuned(questions[0]))
    emb = tuned(segments["text"].tolist())
    features = coding_inputs(segments, emb, context=options.context, questions=q)[1]
    return features, codebook_rows(codebook, embed=tuned)


def fine_tune_decision(
    options: CodingParams,
    encoder: tuple[str, str] | None,
    texts: list[str],
    labels: list[set[str]],
    *,
    n_folds: int,
    seed: int,
) -> tuple[bool, dict]:
    """Whether the folds fine-tune the encoder, and why. `always` and `never` say so; `auto`
    fine-tunes on a GPU, and on the CPU when the estimate (each fold's steps x the seconds per
    step measured here, the folds side by side on the machine's cores) fits
    `coding.fine_tune_budget_s`."""
    if encoder is None or options.fine_tune == "never":
        return False, {"mode": options.fine_tune, "used": False}
    folds = min(n_folds, MAX_FOLDS)
    info: dict = {"mode": options.fine_tune, "device": encoder[1], "folds": folds}
    if options.fine_tune == "auto" and encoder[1] == "cpu":
        probe = estimate(encoder[0], texts, labels, seed=seed, device=encoder[1])
        # a fold trains on (folds - 1) / folds of the coded units; the folds share the cores
        per_fold = probe.seconds * (folds - 1) / folds
        total = per_fold * -(-folds // max(1, min(fork_processes(), folds)))
        # timings stay out of the metrics (they differ run to run); the log says them
        log.info(
            "coding: fine-tuning %d folds estimated at %.0f s (%d steps x %.2f s per fold of every unit), "
            "budget %.0f s",
            folds,
            total,
            probe.steps,
            probe.seconds_per_step,
            options.fine_tune_budget_s,
        )
        if total > options.fine_tune_budget_s:
            return False, info | {"used": False, "why": "the estimate exceeds coding.fine_tune_budget_s"}
    return True, info | {"used": True}
