import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from pipeline.agreement.metrics import binary_agreement, compare_coders, gwet_ac1, krippendorff_alpha
from pipeline.agreement.themes_vs_codes import partition_agreement
from pipeline.codings import human_segment_codes

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


# ---- any number of coders, intervals, flags, themes vs codes

from pipeline.agreement.metrics import bootstrap_kappa, flag, krippendorff_alpha_coders  # noqa: E402
from pipeline.agreement.stage import agreement_report  # noqa: E402
from pipeline.agreement.themes_vs_codes import harmonic_purity  # noqa: E402
from pipeline.comparison import theme_code_mapping  # noqa: E402
from pipeline.kappa import binary_kappa, kappa_from_counts  # noqa: E402


def test_alpha_for_three_coders_with_missing_data_matches_hand_cases_and_the_published_example():
    data = np.array(
        [
            [1, 0, 1, 1, np.nan, 0],
            [1, 0, 0, 1, 1, np.nan],
            [np.nan, 0, 1, 1, 1, 0],
        ]
    )
    # coincidences o00=5, o11=8, o01=o10=1; n0=6, n1=9, n=15: alpha = 1 - 14*2/(2*6*9) = 20/27
    assert krippendorff_alpha_coders(data) == pytest.approx(20 / 27)
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units,
    # missing values, nominal alpha 0.743
    nan = np.nan
    published = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
        ]
    )
    assert krippendorff_alpha_coders(published) == pytest.approx(0.743, abs=5e-4)
    # hand case: 2 coders, 4 units, one disagreement. Coincidences o00=2, o11=4, o01=o10=1;
    # n=8, n0=3, n1=5: alpha = 1 - (n-1) * o01*2 / (2*n0*n1) = 1 - 7*2/30
    hand = np.array([[0, 1, 1, 0], [0, 1, 1, 1]], dtype=float)
    assert krippendorff_alpha_coders(hand) == pytest.approx(1 - 14 / 30)
    # a unit only one coder coded adds nothing
    extra = np.hstack([hand, [[1.0], [np.nan]]])
    assert krippendorff_alpha_coders(extra) == pytest.approx(1 - 14 / 30)
    assert krippendorff_alpha_coders(np.array([[1, 1], [1, np.nan]], dtype=float)) is None


def test_vectorised_kappa_equals_scikit_learn():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        k = kappa_from_counts(30, a.sum(), b.sum(), (a * b).sum())
        assert k == pytest.approx(cohen_kappa_score(a, b))
        assert binary_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    # many resamples at once: one call, one kappa per row
    a, b = rng.integers(0, 2, (50, 40)), rng.integers(0, 2, (50, 40))
    many = kappa_from_counts(40, a.sum(axis=1), b.sum(axis=1), (a * b).sum(axis=1))
    assert many == pytest.approx([cohen_kappa_score(x, y) for x, y in zip(a, b, strict=True)])


def test_binary_kappa_is_undefined_with_one_category_or_no_units():
    assert binary_kappa(np.array([]), np.array([])) is None
    assert binary_kappa(np.zeros(5), np.zeros(5)) is None
    assert np.isnan(kappa_from_counts(5, 5, 5, 5))
    assert binary_kappa(np.array([1, 0, 1, 0]), np.array([1, 0, 1, 0])) == 1.0


def test_bootstrap_resamples_transcripts():
    groups = np.repeat(["T1", "T2", "T3", "T4"], 5)
    ref = np.tile([[1], [0], [0], [1], [0]], (4, 1))
    per_code, macro = bootstrap_kappa(ref, ref, groups, n_boot=50, seed=0)
    assert per_code[0] == pytest.approx([1.0, 1.0]) and macro == pytest.approx([1.0, 1.0])
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(ref.shape) < 0.2, 1 - ref, ref)
    per_code, _ = bootstrap_kappa(ref, noisy, groups, n_boot=200, seed=0)
    point = cohen_kappa_score(ref[:, 0], noisy[:, 0])
    assert per_code[0, 0] <= point <= per_code[0, 1]
    # one transcript: nothing to resample
    assert np.isnan(bootstrap_kappa(ref, ref, np.repeat("T1", 20), n_boot=50, seed=0)[0]).all()


def test_flags_at_the_conventional_cut_points():
    assert [flag(v, (0.6, 0.8)) for v in (0.59, 0.6, 0.8, None)] == [
        "unreliable",
        "tentative",
        "reliable",
        None,
    ]
    assert flag(0.667, (0.667, 0.8)) == "tentative" and flag(0.66, (0.667, 0.8)) == "unreliable"
    m = binary_agreement(A, B)
    assert m["kappa_flag"] == "unreliable" and m["alpha_flag"] == "unreliable"


def test_nominal_kappa_uses_the_top_scoring_machine_code_against_single_label_gold():
    ids = [str(i) for i in range(8)]
    gold = pd.DataFrame({"id": ids, "code": list("xxyyzzxy")})
    pred = pd.DataFrame(
        {
            "id": ids + ids[:4],
            "code": list("xyyyzzxx") + list("zzzz"),
            "score": [0.9] * 8 + [0.1] * 4,
        }
    )
    overall = compare_coders(gold, pred, ids=ids, codes=["x", "y", "z"])["overall"]
    expected = cohen_kappa_score(list("xxyyzzxy"), list("xyyyzzxx"))
    assert round(overall["nominal_kappa"], 3) == round(expected, 3)
    assert "top-scoring" in overall["nominal_kappa_basis"]


def test_report_with_three_coders_and_a_coder_who_skipped_a_transcript():
    ids = [f"T{t}:{i}" for t in (1, 2) for i in range(6)]
    groups = [i.split(":")[0] for i in ids]
    rows = []
    for coder in ("A", "B", "C"):
        for i in ids:
            if coder == "C" and i.startswith("T2"):
                continue  # C never coded T2
            if int(i[-1]) % 2 == 0 or (coder == "B" and i.endswith("1")):
                rows.append((i, coder, "x"))
    gold = pd.DataFrame(rows, columns=["id", "coder", "code"])
    coverage = {"A": set(ids), "B": set(ids), "C": {i for i in ids if i.startswith("T1")}}
    report = agreement_report(
        gold,
        gold[gold["coder"] == "A"][["id", "code"]],
        ids=ids,
        codes=["x"],
        groups=groups,
        coverage=coverage,
        n_boot=20,
        min_shared=1,  # figures on 6 shared units: a test, not a study
    )
    assert set(report["human"]) == {"A_vs_B", "A_vs_C", "B_vs_C"}
    assert report["human"]["A_vs_C"]["overall"]["units"] == 6  # only the units both coded
    assert report["human"]["A_vs_C"]["per_code"]["x"]["cohen_kappa"] == pytest.approx(1.0)
    assert report["per_code"]["x"]["cohen_kappa"] == 1.0
    assert (
        report["overall"]["human_ceiling_macro_cohen_kappa"]
        == report["human"]["A_vs_B"]["overall"]["macro_cohen_kappa"]
    )
    assert report["humans"]["coders"] == ["A", "B", "C"]
    assert report["bootstrap"]["resampling"] == "transcripts"
    assert report["per_code"]["x"]["cohen_kappa_ci95"] == [1.0, 1.0]


def test_harmonic_purity_and_mappings():
    assert harmonic_purity([0, 0, 1, 1], ["a", "a", "b", "b"]) == pytest.approx(1.0)
    # one theme holding everything: purity 0.5, inverse purity 1 -> 2/3
    assert harmonic_purity([0, 0, 0, 0], ["a", "a", "b", "b"]) == pytest.approx(2 / 3)
    themes = [0, 0, 0, 1, 1, 2, 2, 2, -1]
    codes = ["a", "a", "b", "a", "a", "c", "d", "e", "f"]
    m = theme_code_mapping(themes, codes, codes=["a", "b", "c", "d", "e", "f"], cover_min=0.5)
    assert m["one_to_one"]["0"] != m["one_to_one"]["1"]  # one-to-one: each code once
    assert m["many_to_one"] == {"0": "a", "1": "a", "2": "c"}
    assert m["units"] == 8  # the unassigned segment is left out
    assert m["themes_no_code_covers"] == ["2"]  # no code holds half of theme 2
    assert m["codes_no_theme_covers"] == ["b", "c", "d", "e", "f"]
    assert m["many_to_one_accuracy"] == pytest.approx(5 / 8)  # themes 0, 1: 2 each; theme 2: 1


def test_spans_reaching_no_segment_are_counted():
    from pipeline.codings import spans_reaching_no_segment

    segments = pd.DataFrame(
        {"segment_id": ["s1"], "transcript_id": ["T1"], "orig_start": [0], "orig_end": [100]}
    )
    codings = pd.DataFrame(
        {
            "transcript_id": ["T1", "T1", "T2"],
            "coder": ["A"] * 3,
            "code": ["c"] * 3,
            "start": [90, 500, 0],
            "end": [120, 600, 10],
        }
    )
    assert spans_reaching_no_segment(segments, codings) == 2  # past the end; a transcript with no segments
