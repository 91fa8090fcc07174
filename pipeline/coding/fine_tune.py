"""Few-shot that learns the encoder: the sentence encoder fine-tuned on the human-coded units
(mean pooling, a linear head over the codes, cross-entropy), whose embeddings the few-shot
coder then reads. Rule, settings and figures: README, section "Agreement with human coding"
(Fine-tuning the encoder).

On the CPU a run is the same bits in two fresh processes on the same machine: the training
order and the head's start come from the seed, dropout from torch's seeded generator, and
torch runs deterministic algorithms on a fixed number of threads.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.encoder import encode_rows, load_model

EPOCHS = 4
LEARNING_RATE = 5e-5  # the encoder's
HEAD_LEARNING_RATE = 1e-3  # the linear head's, which starts from nothing
BATCH = 16
MAX_FOLDS = 5  # a fine-tuned coder is cross-fitted over at most this many transcript folds
PROBE_STEPS = 2  # steps timed (after one warm-up step) to estimate a run's seconds
NONE = "(none)"


@dataclass(frozen=True)
class Estimate:
    """What a fine-tuning run would cost: its steps and the measured seconds per step."""

    steps: int
    seconds_per_step: float

    @property
    def seconds(self) -> float:
        return self.steps * self.seconds_per_step


def training_rows(texts: list[str], labels: list[set[str]]) -> tuple[list[str], list[str]]:
    """One (text, class) row per code a unit carries, "(none)" for a coded unit no code fits."""
    rows = [(t, c) for t, s in zip(texts, labels, strict=True) for c in (sorted(s) or [NONE])]
    return [t for t, _ in rows], [c for _, c in rows]


def steps(n_rows: int, *, epochs: int = EPOCHS, batch: int = BATCH) -> int:
    return epochs * -(-n_rows // batch)


class _Trainer:
    """A copy of the encoder with a linear head, one optimiser step at a time."""

    def __init__(self, model_name: str, classes: list[str], *, seed: int, device: str):
        import torch

        self.torch = torch
        self.device = device
        self.model = copy.deepcopy(load_model(model_name, "float32", device))
        self.model.train()
        self.classes = {c: i for i, c in enumerate(classes)}
        generator = torch.Generator().manual_seed(seed)
        dim = self.model.get_embedding_dimension()
        self.head = torch.nn.Linear(dim, len(classes)).to(device)
        with torch.no_grad():
            bound = 1 / np.sqrt(dim)
            start = torch.rand(self.head.weight.shape, generator=generator) * 2 * bound - bound
            self.head.weight.copy_(start)
            self.head.bias.zero_()
        self.optimiser = torch.optim.AdamW(
            [
                {"params": self.model.parameters(), "lr": LEARNING_RATE},
                {"params": self.head.parameters(), "lr": HEAD_LEARNING_RATE},
            ]
        )

    def pooled(self, texts: list[str]):
        """Mean-pooled token embeddings (before the model's normalisation)."""
        features = self.model.preprocess(texts)
        features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
        return self.model[1](self.model[0](features))["sentence_embedding"]

    def step(self, texts: list[str], classes: list[str]) -> float:
        torch = self.torch
        target = torch.tensor([self.classes[c] for c in classes], device=self.device)
        loss = torch.nn.functional.cross_entropy(self.head(self.pooled(texts)), target)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        return float(loss.detach())


def estimate(
    model_name: str, texts: list[str], labels: list[set[str]], *, seed: int, device: str = "cpu"
) -> Estimate:
    """Steps x the measured seconds per step (the mean of `PROBE_STEPS` steps after a warm-up
    step, on a seeded batch of the units) of fine-tuning on these units."""
    rows, classes = training_rows(texts, labels)
    order = np.random.default_rng(seed).permutation(len(rows))[:BATCH]
    batch = [rows[i] for i in order]
    targets = [classes[i] for i in order]
    with _threads(device, seed):
        trainer = _Trainer(model_name, sorted(set(classes)), seed=seed, device=device)
        trainer.step(batch, targets)
        start = time.perf_counter()
        for _ in range(PROBE_STEPS):
            trainer.step(batch, targets)
        per_step = (time.perf_counter() - start) / PROBE_STEPS
    return Estimate(steps(len(rows)), per_step)


def fine_tune(
    model_name: str, texts: list[str], labels: list[set[str]], *, seed: int, device: str = "cpu"
) -> Callable[[list[str]], np.ndarray]:
    """The encoder fine-tuned on these units; returns its embed function (unit-normalised
    float32 rows, as `pipeline.encoder` computes them). Nothing is written anywhere."""
    rows, classes = training_rows(texts, labels)
    rng = np.random.default_rng(seed)
    with _threads(device, seed):
        trainer = _Trainer(model_name, sorted(set(classes)), seed=seed, device=device)
        for _ in range(EPOCHS):
            order = rng.permutation(len(rows))
            for start in range(0, len(order), BATCH):
                idx = order[start : start + BATCH]
                trainer.step([rows[i] for i in idx], [classes[i] for i in idx])
    model = trainer.model.eval()

    def embed(batch_texts: list[str]) -> np.ndarray:
        return encode_rows(model, batch_texts, batch_size=64, device=device)

    return embed


class _threads:
    """Deterministic torch on the CPU: seeded, deterministic algorithms and one thread (the
    cores are used by the folds' processes) while training; as before afterwards."""

    def __init__(self, device: str, seed: int):
        self.device, self.seed = device, seed

    def __enter__(self):
        import torch

        self.before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
        torch.manual_seed(self.seed)
        if self.device == "cpu":
            torch.set_num_threads(1)
            torch.use_deterministic_algorithms(True)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before[0])
        torch.use_deterministic_algorithms(self.before[1])
