"""Fine-tuning the encoder on coded units (pipeline.coding.fine_tune): on small real data
(banking77's queries, read from ../shared; skipped, saying so, when absent)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.coding.cross_fit import fine_tune_decision
from pipeline.config import CodingParams

BANKING = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77" / "test.csv"
needs_banking = pytest.mark.skipif(not BANKING.exists(), reason=f"{BANKING} not found")
CODES = ("card_arrival", "exchange_rate", "lost_or_stolen_card")

# fine-tunes on 16 queries of each of three codes, embeds six others, prints the rows' digest
SCRIPT = f"""
import hashlib, sys
import pandas as pd
import pipeline
from pipeline.coding.fine_tune import fine_tune
df = pd.read_csv({str(BANKING)!r}, dtype=str)
df = df[df["category"].isin({CODES!r})].groupby("category").head(18)
train = df.groupby("category").head(16)
rest = df.drop(train.index)
embed = fine_tune("all-MiniLM-L6-v2", train["text"].tolist(), [{{c}} for c in train["category"]], seed=3)
print(hashlib.sha256(embed(rest["text"].tolist()).tobytes()).hexdigest())
"""


@pytest.mark.slow  # two fresh processes each load the model and train 12 steps
@needs_banking
def test_a_fine_tuned_encoder_is_the_same_bits_in_two_fresh_processes():
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    assert run() == run()


@needs_banking
def test_fine_tuning_pulls_each_codes_units_together():
    import pandas as pd

    from pipeline.coding.fine_tune import fine_tune
    from pipeline.encoder import embed_texts

    df = pd.read_csv(BANKING, dtype=str)
    df = df[df["category"].isin(CODES)].groupby("category").head(16)
    texts, codes = df["text"].tolist(), df["category"].to_numpy()
    tuned = fine_tune("all-MiniLM-L6-v2", texts, [{c} for c in codes], seed=0)(texts)
    frozen = embed_texts(texts, model="all-MiniLM-L6-v2", batch_size=16, cache_dir=None)
    assert tuned.shape == frozen.shape and np.allclose(np.linalg.norm(tuned, axis=1), 1, atol=1e-5)

    def separation(e: np.ndarray) -> float:
        """Mean cosine to units of the same code minus to units of other codes."""
        sim = e @ e.T
        same = codes[:, None] == codes[None, :]
        np.fill_diagonal(same, False)
        other = codes[:, None] != codes[None, :]
        return float(sim[same].mean() - sim[other].mean())

    assert separation(tuned) > separation(frozen) + 0.05


def test_auto_fine_tunes_only_within_the_budget_and_never_without_an_encoder():
    texts, labels = ["we waited", "the nurse came", "no one called"] * 4, [{"a"}, {"b"}, set()] * 4
    decide = lambda options, encoder=("all-MiniLM-L6-v2", "cpu"): fine_tune_decision(  # noqa: E731
        options, encoder, texts, labels, n_folds=21, seed=0
    )
    tune, info = decide(CodingParams(fine_tune="auto", fine_tune_budget_s=0.0))
    assert not tune and info["used"] is False and "budget" in info["why"]
    tune, info = decide(CodingParams(fine_tune="always"))
    assert tune and info == {"mode": "always", "device": "cpu", "folds": 5, "used": True}
    assert decide(CodingParams(fine_tune="never"))[0] is False
    assert decide(CodingParams(fine_tune="always"), encoder=None)[0] is False  # frozen inputs only
    tune, info = decide(CodingParams(fine_tune="auto"), encoder=("all-MiniLM-L6-v2", "cuda"))
    assert tune and "estimate_s" not in info  # a GPU fine-tunes without a probe


@pytest.mark.slow  # fine-tunes the encoder once per fold
def test_the_coding_stage_cross_fits_fine_tuned_encoders_over_at_most_five_folds(tiny_run_copy):
    import json

    from pipeline.config import load_params
    from pipeline.io import read_table
    from pipeline.schemas import CODES, SEGMENTS
    from pipeline.stages import layout_paths, run_stage, stage_named
    from tests.conftest import FAST

    study, lay, _ = tiny_run_copy
    frozen = read_table(lay.codes, CODES)
    params = load_params(None, [*FAST, "coding.fine_tune=always", "coding.folds=25"])
    stage = stage_named("coding")
    run_stage(stage, params, paths=layout_paths(stage, lay, study=study))
    info = json.loads((lay.metrics / "coding.json").read_text())
    folds = min(5, info["coded_transcripts"])
    assert info["folds"] == folds
    assert info["fine_tune"] == {"mode": "always", "device": "cpu", "folds": folds, "used": True}
    tuned = read_table(lay.codes, CODES)
    assert set(tuned["segment_id"]) <= set(read_table(lay.segments, SEGMENTS)["segment_id"])
    # the evidence names training segments, never text; the codes differ from the frozen run's
    assert tuned["evidence"].str.startswith("few-shot").all()
    same_codes = tuned[["segment_id", "code"]].equals(frozen[["segment_id", "code"]])
    assert not (same_codes and np.allclose(tuned["score"], frozen["score"]))
