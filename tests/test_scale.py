"""Large corpora: the paths that keep discovery, coding, agreement and the report linear in the
units, exercised on small data with their thresholds lowered. Below the thresholds the exact
paths run (the other test files and the demo's figures hold those)."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import pipeline.agreement.metrics as agreement_metrics
from pipeline.codebook import Code, Codebook
from pipeline.coding.few_shot import FewShotCoder
from pipeline.coding.zero_shot import code_scores, zero_shot
from pipeline.codings import human_segment_codes
from pipeline.config import CodingParams, Params, ThemesParams
from pipeline.kappa import kappa_from_counts
from pipeline.report.figures import map_sample, theme_map
from pipeline.themes import discover_themes
from pipeline.themes.discover import SUBSAMPLE_SHARE, stability_pool
from pipeline.themes.stage import summary
from pipeline.vectors import bucketed_neighbours, nearest_neighbours, unit_rows

few_shot_module = importlib.import_module(
    "pipeline.coding.few_shot"
)  # the package exports a function of that name


def _clusters(n=2000, k=12, dim=24, spread=0.35, seed=0):
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.normal(size=(k, dim)))
    truth = rng.integers(k, size=n)
    return unit_rows(centres[truth] + spread * rng.normal(size=(n, dim)) / np.sqrt(dim)), truth


def test_bucketed_neighbours_agree_with_the_exact_ones():
    x, _ = _clusters()
    exact = nearest_neighbours(x, 10)
    approx = bucketed_neighbours(x, 10, seed=0, bucket_rows=100)  # 20 buckets, 3 searched per row
    shared = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert shared >= 0.9
    assert not (approx == np.arange(len(x))[:, None]).any()  # never a row's own neighbour
    assert all(len(set(row)) == 10 for row in approx)
    assert (approx == bucketed_neighbours(x, 10, seed=0, bucket_rows=100)).all()  # seeded


def test_the_threshold_chooses_exact_or_bucketed_neighbours():
    x, _ = _clusters(n=600)
    assert (nearest_neighbours(x, 5, exact_below=601) == nearest_neighbours(x, 5)).all()
    assert (nearest_neighbours(x, 5, exact_below=600, seed=3) == bucketed_neighbours(x, 5, seed=3)).all()


def test_a_row_whose_buckets_hold_too_few_rows_is_searched_exactly():
    x, _ = _clusters(n=300)
    far = np.zeros((3, x.shape[1]))
    far[:, 0] = [1.0, 0.99, 0.98]
    x = unit_rows(np.vstack([x, far + 0.01]))
    near = bucketed_neighbours(x, 8, seed=0, bucket_rows=4, probes=1)  # buckets of a few rows
    assert (near >= 0).all() and not (near == np.arange(len(x))[:, None]).any()
    assert all(len(set(row)) == 8 for row in near)


def _texts(truth, words=("waiting list referral", "training course", "funding budget", "baby play")):
    return [f"{words[t % len(words)]} point {i % 5}" for i, t in enumerate(truth)]


def test_discovery_above_the_thresholds_samples_and_says_so():
    x, truth = _clusters(n=900, k=4, dim=16, spread=0.3, seed=1)
    options = ThemesParams(
        min_themes=2,
        max_themes=8,
        small_corpus=20,
        stability_runs=3,
        lexical_weights=(0.0,),
        smooth_neighbors=5,
        ward_sample=300,
        fit_sample=300,
        exact_neighbours_below=500,
    )
    a = discover_themes(_texts(truth), x, options=options, seed=4)
    assert "on a sample of 300 of 900 units" in a.mode and "searched within k-means buckets" in a.mode
    assert adjusted_rand_score(truth, a.topics) > 0.95
    assert a.stability["pool"] == 334 and a.stability["refit_units"] == int(SUBSAMPLE_SHARE * 334)
    assert summary(a, 900)["stability_pool"] == 334  # metrics/themes.json says what was done
    b = discover_themes(_texts(truth), x, options=options, seed=4)
    assert (a.topics == b.topics).all() and a.k_scores == b.k_scores  # seeded
    # below the thresholds: the exact method, and nothing said of samples
    exact = discover_themes(_texts(truth), x, options=options.model_copy(update={"fit_sample": 900}), seed=4)
    assert "sample" not in exact.mode and "pool" not in exact.stability
    assert "stability_pool" not in summary(exact, 900)


def test_k_means_restarts_also_choose_k_on_a_sample():
    from pipeline.themes.cluster import cluster

    x, truth = _clusters(n=600, k=4, dim=16, spread=0.3, seed=1)
    options = ThemesParams(clusterer="kmeans", min_themes=2, max_themes=8, small_corpus=20, fit_sample=200)
    labels, mode, scores = cluster(x, options=options, seed=0)
    assert mode.startswith("kmeans (k=4 of 2-8, by silhouette on a sample of 200 of 600 units")
    assert (
        len(labels) == 600 and adjusted_rand_score(truth, labels) > 0.95 and max(scores, key=scores.get) == 4
    )


def test_the_stability_pool_is_every_unit_below_the_sample_size():
    options = ThemesParams(fit_sample=500)
    assert (stability_pool(500, options=options, seed=0) == np.arange(500)).all()
    pool = stability_pool(10_000, options=options, seed=0)
    assert len(pool) == 556 and len(set(pool.tolist())) == 556 and (np.diff(pool) > 0).all()
    assert (pool == stability_pool(10_000, options=options, seed=0)).all()


def _few_shot(multi: bool):
    x, truth = _clusters(n=400, k=4, dim=16, seed=2)
    rng = np.random.default_rng(0)
    labels = [
        {f"c{t}"} | ({f"c{(t + 1) % 4}"} if multi and rng.random() < 0.4 else set()) for t in truth[:300]
    ]
    coder = FewShotCoder([f"c{j}" for j in range(4)], tfidf=False, seed=0)
    coder.fit(
        _texts(truth[:300]),
        x[:300],
        labels,
        unit_ids=[f"u{i}" for i in range(300)],
        groups=[str(i % 6) for i in range(300)],
    )
    return coder, x, truth, labels


@pytest.mark.parametrize("multi", [False, True])
def test_few_shot_prediction_in_blocks_equals_the_whole_at_once(monkeypatch, multi):
    coder, x, truth, labels = _few_shot(multi)
    assert coder.single_label_ is not multi
    ids, texts = [f"s{i}" for i in range(300, 400)], _texts(truth[300:])
    whole = coder.predict(ids, texts, x[300:])
    monkeypatch.setattr(few_shot_module, "EVIDENCE_BLOCK", 7)  # a handful of units per block
    monkeypatch.setattr(few_shot_module, "PREDICT_ROWS", 9)  # and coded 9 units at a time
    blocks = coder.predict(ids, texts, x[300:])
    pd.testing.assert_frame_equal(whole, blocks)
    sim = unit_rows(x[300:]) @ unit_rows(x[:300]).T  # the old way: units x training units
    for row in whole.itertuples(index=False):
        i = ids.index(row.segment_id)
        with_code = [j for j, s in enumerate(labels) if row.code in s]
        j = with_code[int(np.argmax(sim[i, with_code]))]
        assert row.evidence == f"few-shot: nearest coded unit u{j} ({sim[i, j]:.2f})"


def test_few_shot_models_learn_from_at_most_max_train_coded_units():
    from pipeline.coding.few_shot import fit_few_shot

    x, truth = _clusters(n=300, k=4, dim=16, seed=2)
    codebook = Codebook(tuple(Code(code_id=f"c{j}", name=f"code {j}") for j in range(4)))
    args = ([f"u{i}" for i in range(300)], _texts(truth), x, [{f"c{t}"} for t in truth], codebook)
    kw = {
        "embed": lambda texts: np.zeros((len(texts), 16)),
        "seed": 3,
        "train_groups": [str(i % 6) for i in range(300)],
    }
    capped = fit_few_shot(*args, options=CodingParams(max_train=120, tfidf=False), **kw)
    assert len(capped.train_ids_) == 120 and len(set(capped.train_ids_)) == 120
    again = fit_few_shot(*args, options=CodingParams(max_train=120, tfidf=False), **kw)
    assert capped.train_ids_ == again.train_ids_  # seeded
    assert len(fit_few_shot(*args, options=CodingParams(tfidf=False), **kw).train_ids_) == 300


def test_zero_shot_with_bucketed_neighbours_ranks_codes_like_the_exact_search():
    x, truth = _clusters(n=1500, k=6, dim=16, seed=5)
    protos = unit_rows(np.vstack([x[truth == j].mean(axis=0) for j in range(6)]))
    exact = code_scores(x, protos).argmax(axis=1)
    bucketed = code_scores(x, protos, exact_below=1000).argmax(axis=1)
    assert np.mean(exact == bucketed) >= 0.95
    codebook = Codebook(tuple(Code(code_id=f"c{j}", name=f"code {j}") for j in range(6)))

    def embed(texts):
        return np.vstack([protos[int(t.split()[-1])] for t in texts])

    out = zero_shot(
        [str(i) for i in range(len(x))],
        x,
        codebook,
        embed=embed,
        options=CodingParams(exact_neighbours_below=1000),
    )
    assert len(out) and out["evidence"].str.startswith("zero-shot: nearest").all()


def test_bootstrap_in_blocks_equals_the_units_by_groups_matrix(monkeypatch):
    rng = np.random.default_rng(1)
    ref, oth = (rng.random((500, 3)) < 0.3).astype(int), (rng.random((500, 3)) < 0.3).astype(int)
    groups = np.array([f"T{i}" for i in range(500)])  # a survey: every unit its own transcript
    whole = agreement_metrics.bootstrap_kappa(ref, oth, groups, n_boot=60, seed=2)
    monkeypatch.setattr(agreement_metrics, "BOOT_BLOCK", 1200)  # two resamples at a time
    blocks = agreement_metrics.bootstrap_kappa(ref, oth, groups, n_boot=60, seed=2)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(whole, blocks, strict=True))
    # the old computation, through a groups x units matrix
    uniq, inv = np.unique(groups, return_inverse=True)
    onehot = np.zeros((len(uniq), len(groups)))
    onehot[inv, np.arange(len(groups))] = 1
    w = np.random.default_rng(2).multinomial(len(uniq), np.full(len(uniq), 1 / len(uniq)), size=60)
    k = kappa_from_counts(
        (w @ onehot.sum(axis=1))[:, None], w @ (onehot @ ref), w @ (onehot @ oth), w @ (onehot @ (ref * oth))
    )
    assert np.array_equal(np.nanpercentile(k, [2.5, 97.5], axis=0).T, whole[0], equal_nan=True)


def test_human_codes_of_a_survey_map_answer_by_answer():
    n = 300
    segments = pd.DataFrame(
        {
            "segment_id": [f"R{i}:1:0" for i in range(n)],
            "transcript_id": [f"R{i}" for i in range(n)],
            "orig_start": 0,
            "orig_end": 50,
        }
    )
    codings = pd.DataFrame(
        {
            "transcript_id": [f"R{i}" for i in range(0, n, 3)] * 2,
            "coder": ["A"] * 100 + ["B"] * 100,
            "code": ["x"] * 100 + ["y"] * 100,
            "start": [0] * 100 + [30] * 100,  # B's spans cover 40% of the answer: too little
            "end": [50] * 100 + [50] * 100,
        }
    )
    gold = human_segment_codes(segments, codings, min_overlap=0.5)
    assert sorted(gold["id"]) == sorted(f"R{i}:1:0" for i in range(0, n, 3))
    assert set(gold["coder"]) == {"A"} and (gold["overlap"] == 1.0).all()


def test_the_map_sample_is_bounded_stratified_and_seeded():
    theme = np.repeat([0, 1, 2, 3, -1], [6000, 2500, 1000, 3, 497])
    rows = map_sample(theme, limit=1000, seed=7)
    assert len(rows) == 1000 and (np.diff(rows) > 0).all()
    counts = pd.Series(theme[rows]).value_counts()
    assert set(counts.index) == {0, 1, 2, 3, -1}  # every theme keeps a point
    for t, size in pd.Series(theme).value_counts().items():
        assert abs(counts[t] - max(1, size * 1000 / len(theme))) <= 1.5
    assert (rows == map_sample(theme, limit=1000, seed=7)).all()
    assert (map_sample(theme[:800], limit=1000, seed=7) == np.arange(800)).all()  # few: all of them


def test_the_report_map_of_a_large_corpus_draws_a_sample(monkeypatch):
    import base64

    import pipeline.report.figures as figures
    from pipeline.report.stage import _figures

    drawn = []
    monkeypatch.setattr(
        figures, "theme_map", lambda xy, theme, labels, **kw: drawn.append((len(xy), kw)) or ""
    )
    x, truth = _clusters(n=700, k=5, dim=8, seed=3)
    report = Params().report.model_copy(update={"map": "pca", "map_points": 150})
    shown = _figures(
        Params().model_copy(update={"report": report}), x, truth, {"themes": []}, ["all"], {}, []
    )
    assert shown["map_points"] == 150 and drawn[0][0] == 150 and drawn[0][1]["total"] == 700
    monkeypatch.undo()
    png = theme_map(np.zeros((3, 2)), np.array([0, 0, 1]), {0: "a", 1: "b"}, total=30)
    assert base64.b64decode(png.split(",", 1)[1])[:4] == b"\x89PNG"
