"""Cross-fitted few-shot coding: every segment coded by a model that never saw its transcript
(`coding.folds` folds over the human-coded transcripts), the folds' models fitted on every core."""

from __future__ import annotations

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
from pipeline.config import CodingParams
from pipeline.context import coding_inputs
from pipeline.engine import fork_processes, forked_map
from pipeline.errors import UserError
from pipeline.schemas import CODES


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
) -> tuple[pd.DataFrame, dict]:
    """Few-shot codes for every segment from models that never saw the segment's transcript.

    `labels`: segment_id -> human codes, for every segment of the human-coded transcripts
    (an empty set = coded, no code applies). `questions`: per segment, the text and embedding
    of the interviewer turn it answers (`coding.context: turn+question`). `predict` runs the
    fitted folds' coders over their segments (fitted on this machine's cores side by side, and
    handed to it in fold order, as it asks for them).
    """
    seg_ids = segments["segment_id"].tolist()
    tids = segments["transcript_id"].to_numpy()
    coded_t = sorted({t for t, s in zip(tids, seg_ids, strict=True) if s in labels})
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(coded_t))
    n_folds = min(options.folds, len(order))
    if n_folds < 2:
        raise UserError("few-shot cross-fitting needs human codings on at least two transcripts")
    fold_of = {t: i % n_folds for i, t in enumerate(order)}
    texts, embeddings = coding_inputs(segments, embeddings, context=options.context, questions=questions)

    fold = np.array([fold_of.get(t, -1) for t in tids], dtype=np.int64)  # -1: no human codings
    coded = np.array([s in labels for s in seg_ids], dtype=bool)

    # fold -1: transcripts without human codings, coded by a model trained on all coded ones
    folds = [f for f in range(-1, n_folds) if (fold == f).any()]
    extra = codebook_rows(codebook, embed=embed)  # encoded here, once: workers load no model

    def fit_fold(f: int) -> FewShotCoder:
        from threadpoolctl import threadpool_limits

        tidx = np.nonzero(coded & (fold != f))[0]
        # one BLAS thread, in any process: the same bits whatever the machine's core count
        with threadpool_limits(limits=1, user_api="blas"):
            return fit_few_shot(
                [seg_ids[j] for j in tidx],
                [texts[j] for j in tidx],
                embeddings[tidx],
                [labels[seg_ids[j]] for j in tidx],
                codebook,
                embed=embed,
                options=options,
                seed=seed,
                train_groups=[str(tids[j]) for j in tidx],
                extra=extra,
            )

    def jobs() -> Iterator[CodingJob]:
        """The folds' coders, fitted on every core (`pipeline.engine.forked_map`), in order."""
        processes = min(fork_processes(), len(folds))
        batches = forked_map(lambda fs: [fit_fold(f) for f in fs], [[f] for f in folds], processes)
        fitted = (coder for batch in batches for coder in batch)
        for f, coder in zip(folds, fitted, strict=True):
            idx = np.nonzero(fold == f)[0]
            yield coder, [seg_ids[j] for j in idx], [texts[j] for j in idx], embeddings[idx]

    parts = predict(jobs())
    codes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CODES.names)
    info = {
        "method": "few_shot_cross_fitted",
        "folds": n_folds,
        "coded_transcripts": len(coded_t),
        "context": options.context,
    }
    return codes, info
