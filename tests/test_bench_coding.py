"""The coding benchmark's own parts: the Zipf-skewed resampling, the tuned baselines and the
paired targets (no shared data needed)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.baselines import LOGREG_CS, SVC_CS, tuned
from bench.coding import paired, targets
from bench.skew import FLOOR, SHARE_RANGE, zipf_indices


def _labels(per_code: list[int]) -> list[str]:
    return [f"c{j:02d}" for j, n in enumerate(per_code) for _ in range(n)]


def test_the_skewed_resampling_is_deterministic_and_skewed_as_stated():
    primary = _labels([60] * 20) + [""] * 5  # units with no code are left out
    a, b = zipf_indices(primary, seed=3), zipf_indices(primary, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, zipf_indices(primary, seed=4))
    assert len(set(a.tolist())) == len(a)  # without replacement
    codes, counts = np.unique([primary[i] for i in a], return_counts=True)
    assert "" not in codes and len(codes) == 20
    assert counts.min() >= FLOOR
    assert SHARE_RANGE[0] <= counts.max() / counts.sum() <= SHARE_RANGE[1]


def test_a_set_that_cannot_be_skewed_so_far_says_so():
    # 77 codes of 40 units: one code cannot hold 35% while 76 others keep 3 each
    with pytest.raises(ValueError, match="largest code"):
        zipf_indices(_labels([40] * 77), seed=0)
    with pytest.raises(ValueError, match="at least 3"):
        zipf_indices(_labels([50, 2]), seed=0)


def _clusters(n_per: int, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = np.eye(4) * 5
    X = np.vstack([c + rng.normal(scale=0.3, size=(n_per, 4)) for c in centres])
    return X, _labels([n_per] * 4)


def test_tuned_logistic_regression_learns_separable_codes_and_names_its_c():
    X, y = _clusters(30, 0)
    X_te, y_te = _clusters(10, 1)
    pred, C = tuned("logreg", X, y, X_te, codes=sorted(set(y)), single_label=True, groups=None, seed=0)
    assert C in LOGREG_CS
    assert [next(iter(p)) for p in pred] == y_te


def test_tuned_svm_on_multi_label_data_thresholds_each_code():
    X, y = _clusters(30, 0)
    X_te, y_te = _clusters(10, 1)
    # a unit of c00 or c01 also carries "both"; "never" is never used in training
    labels = [{c} | ({"both"} if c in ("c00", "c01") else set()) for c in y]
    codes = ["both", "c00", "c01", "c02", "c03", "never"]
    pred, C = tuned("svc", X, labels, X_te, codes=codes, single_label=False, groups=None, seed=0)
    assert C in SVC_CS
    expected = [{c} | ({"both"} if c in ("c00", "c01") else set()) for c in y_te]
    assert pred == expected


def test_paired_differences_and_targets():
    d = paired([0.5, 0.6, 0.7, None], [0.4, 0.4, 0.4, 0.3])
    assert d["splits"] == 3 and d["mean"] == pytest.approx(0.2)
    # t(0.975, 2) = 4.303; sd of (0.1, 0.2, 0.3) = 0.1
    assert d["lower95"] == pytest.approx(0.2 - 4.3027 * 0.1 / np.sqrt(3), abs=1e-4)
    runs = {
        "pipeline_few_shot": [0.60, 0.62, 0.61],
        "logreg_cv": [0.50, 0.52, 0.50],
        "tfidf_svc_cv": [0.55, 0.57, 0.56],  # the better tuned baseline: the one to beat
        "pipeline_zero_shot": [0.30, 0.31, 0.29],
        "nearest_name_definition": [0.29, 0.30, 0.30],
    }
    t = targets(runs)
    assert t["few_shot"]["vs"] == "tfidf_svc_cv" and t["few_shot"]["met"]
    assert t["few_shot"]["mean"] == pytest.approx(0.05)
    assert t["zero_shot"]["mean"] == pytest.approx(0.01 / 3) and not t["zero_shot"]["met"]


def test_a_partial_run_keeps_the_other_methods_figures_and_recomputes_the_targets():
    from bench.coding import merge

    def entry(methods: dict) -> dict:
        return {
            "methods": {m: {"kappa": float(np.mean(v)), "kappa_per_split": v} for m, v in methods.items()}
        }

    previous = {
        "command": "python -m bench coding",
        "seeds": 3,
        "methods": ["logreg_cv", "pipeline_few_shot"],
        "datasets": {
            "serdif": entry({"logreg_cv": [0.4, 0.4, 0.4], "pipeline_few_shot": [0.3, 0.3, 0.3]}),
            "banking77": entry({"logreg_cv": [0.8, 0.8, 0.8]}),
        },
    }
    new = {
        "seeds": 3,
        "methods": ["pipeline_few_shot"],
        "datasets": {"serdif": entry({"pipeline_few_shot": [0.5, 0.46, 0.48]})},
    }
    out = merge(previous, new)
    serdif = out["datasets"]["serdif"]
    assert serdif["methods"]["logreg_cv"]["kappa"] == pytest.approx(0.4)  # kept
    assert serdif["methods"]["pipeline_few_shot"]["kappa"] == pytest.approx(0.48)  # replaced
    assert (
        serdif["targets"]["few_shot"]["mean"] == pytest.approx(0.08) and serdif["targets"]["few_shot"]["met"]
    )
    assert "banking77" in out["datasets"] and out["earlier_commands"] == ["python -m bench coding"]
    # other splits than the earlier run's: nothing is paired with them
    other = merge(previous, {**new, "seeds": 5})
    assert set(other["datasets"]["serdif"]["methods"]) == {"pipeline_few_shot"}
