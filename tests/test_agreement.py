import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from pipeline.agreement import (
    binary_agreement,
    compare_coders,
    gwet_ac1,
    human_segment_codes,
    krippendorff_alpha,
    partition_agreement,
)

A = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 0])
B = np.array([1, 0, 0, 0, 1, 0, 1, 0, 1, 0])


def test_perfect_agreement_is_one():
    m = binary_agreement(A, A)
    for key in (
        "cohen_kappa",
        "krippendorff_alpha",
        "gwet_ac1",
        "percent_agreement",
        "precision",
        "recall",
        "f1",
    ):
        assert m[key] == pytest.approx(1.0), key


def test_hand_computed_case():
    # po = 0.8; pA(1)=0.4, pB(1)=0.4 -> pe = 0.16 + 0.36 = 0.52; kappa = 0.28/0.48
    m = binary_agreement(A, B)
    assert m["cohen_kappa"] == pytest.approx(0.28 / 0.48)
    assert m["cohen_kappa"] == pytest.approx(cohen_kappa_score(A, B))
    assert m["percent_agreement"] == pytest.approx(0.8)
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 4)
    assert m["support"] == 4
    # AC1: pi = 0.4, pe = 2*0.4*0.6 = 0.48
    assert gwet_ac1(A, B) == pytest.approx((0.8 - 0.48) / 0.52)


def test_symmetry_and_label_permutation_invariance():
    assert binary_agreement(A, B)["cohen_kappa"] == pytest.approx(binary_agreement(B, A)["cohen_kappa"])
    assert krippendorff_alpha(A, B) == pytest.approx(krippendorff_alpha(1 - A, 1 - B))
    assert gwet_ac1(A, B) == pytest.approx(gwet_ac1(1 - A, 1 - B))


def test_undefined_cases_are_reported_not_crashed():
    zeros = np.zeros(5, dtype=int)
    m = binary_agreement(zeros, zeros)
    assert m["cohen_kappa"] is None and m["krippendorff_alpha"] is None
    assert m["percent_agreement"] == 1.0 and m["precision"] is None and m["support"] == 0
    assert binary_agreement(np.array([]), np.array([]))["cohen_kappa"] is None


def test_single_label_data_get_nominal_kappa():
    ids = ["1", "2", "3", "4"]
    gold = pd.DataFrame({"id": ids, "code": ["x", "y", "x", "y"]})
    pred = pd.DataFrame({"id": ids, "code": ["x", "y", "y", "y"]})
    report = compare_coders(gold, pred, ids=ids, codes=["x", "y"])
    assert report["overall"]["nominal_kappa"] == pytest.approx(cohen_kappa_score(gold.code, pred.code))
    multi = pd.concat([gold, pd.DataFrame({"id": ["1"], "code": ["y"]})])
    assert "nominal_kappa" not in compare_coders(multi, pred, ids=ids, codes=["x", "y"])["overall"]


def test_partition_agreement_ignores_label_names():
    r = partition_agreement([0, 0, 1, 1], ["a", "a", "b", "b"])
    assert r["ari"] == pytest.approx(1.0) and r["nmi"] == pytest.approx(1.0)


def test_span_overlap_rule():
    segments = pd.DataFrame(
        {
            "segment_id": ["s1", "s2"],
            "transcript_id": ["T1", "T1"],
            "orig_start": [0, 100],
            "orig_end": [100, 200],
        }
    )
    codings = pd.DataFrame(
        {"transcript_id": ["T1"], "coder": ["A"], "code": ["c"], "start": [40], "end": [130]}
    )
    assert human_segment_codes(segments, codings, min_overlap=0.5)["id"].tolist() == ["s1"]
    assert human_segment_codes(segments, codings, min_overlap=0.3)["id"].tolist() == ["s1", "s2"]
