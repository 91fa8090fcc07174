"""Coding inference on the run's engine (param `engine`, see pipeline/engine.py): fitted few-shot
coders predict batches of units in this process or on Ray actors, while every fit stays in
this process. Both engines predict exactly the same batches (`UNITS_PER_BATCH` units of one
coder) with one BLAS thread, so the codes are the same bytes either way, on any machine.

Zero-shot coding has no per-unit model to ship: its scores are calibrated over all the units
being coded together (pipeline.coding.zero_shot), so it runs in this process on any engine."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import numpy as np
import pandas as pd

from pipeline.coding.few_shot import CodingJob, FewShotCoder, Predict
from pipeline.engine import Shared, batched, map_batches

# Units per prediction batch: a few MB of features (a unit with its turn and question: 1,152
# float64) per call, and a whole interview's segments in one batch, as in-process coding
# always predicted them.
UNITS_PER_BATCH = 1000


class JobPredictor:
    """A worker's batch function. A batch holds units of one job, (job, id, text, features)
    each; the job's coder is fetched once per worker and job."""

    def __init__(self, coders: tuple[Shared[FewShotCoder], ...]) -> None:
        self.coders = coders
        self.job: int | None = None
        self.coder: FewShotCoder | None = None

    def __call__(self, batch: list[tuple[int, str, str, np.ndarray]]) -> list[pd.DataFrame]:
        from threadpoolctl import threadpool_limits

        job = batch[0][0]
        if job != self.job:
            self.job, self.coder = job, self.coders[job].get()
        ids, texts = [u[1] for u in batch], [u[2] for u in batch]
        # one BLAS thread: a matrix product's sums are split by the thread count, so two threads
        # here and one on a Ray actor gave scores a bit apart; one gives the same bits anywhere
        with threadpool_limits(limits=1, user_api="blas"):
            return [self.coder.predict(ids, texts, np.stack([u[3] for u in batch]))]


def _predict_batches(jobs: Iterable[CodingJob], *, engine: str) -> list[pd.DataFrame]:
    coders: list[Shared[FewShotCoder]] = []
    batches: list[list[tuple]] = []
    for coder, ids, texts, features in jobs:
        units = [(len(coders), i, t, f) for i, t, f in zip(ids, texts, features, strict=True)]
        batches += batched(units, UNITS_PER_BATCH)
        coders.append(Shared(coder, engine=engine))
    return map_batches(batches, partial(JobPredictor, tuple(coders)), engine=engine)


def predict_on(engine: str) -> Predict:
    """A `Predict` (see `cross_fit`) for the engine. Locally each job is predicted as its coder
    is fitted (one coder in memory at a time); with Ray every coder goes to the object store as
    it is fitted and all jobs' batches are then spread over one pool of actors."""

    def predict(jobs: Iterable[CodingJob]) -> list[pd.DataFrame]:
        if engine == "local":
            return [part for job in jobs for part in _predict_batches([job], engine=engine)]
        return _predict_batches(jobs, engine=engine)

    return predict
