"""Deductive coding: the zero-shot rule, few-shot classifiers, and honest cross-fitting."""

import numpy as np
import pandas as pd
import pytest

from pipeline.coding import (
    FewShotCoder,
    calibrated_scores,
    code_views,
    cross_fit,
    read_training,
    with_turn_context,
    zero_shot,
)
from pipeline.config import CodingParams
from pipeline.errors import UserError
from pipeline.study import Code, Codebook

BOOK = Codebook(
    (
        Code("parent", "P"),
        Code("a", "Alpha", definition="about alpha", examples=("alpha quote",), parent="parent"),
        Code("b", "Beta", definition="about beta", parent="parent"),
        Code("c", "Gamma", definition="about gamma"),
    )
)
AXIS = {"alpha": 0, "beta": 1, "gamma": 2}


def fake_embed(texts):
    """Each text points along the axis of the code word it mentions (a 4th axis otherwise)."""
    out = np.zeros((len(texts), 4))
    for i, t in enumerate(texts):
        hits = [AXIS[w] for w in AXIS if w in t.lower()]
        for h in hits:
            out[i, h] = 1.0
        if not hits:
            out[i, 3] = 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_views_cover_leaf_codes_only():
    views = code_views(BOOK)
    assert {c for c, _, _ in views} == {"a", "b", "c"}
    assert ("a", "example 1", "alpha quote") in views
    assert ("b", "name: definition", "Beta: about beta") in views


def test_calibration_is_per_code_and_shift_invariant():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(50, 3)) * [1, 2, 3] + [0.1, 0.5, 0.9]
    z = calibrated_scores(raw)
    assert np.allclose(z.mean(axis=0), 0) and np.allclose(z.std(axis=0), 1)
    assert np.allclose(calibrated_scores(raw + [0.3, -0.2, 0.0]), z)  # a code "near everything" gains nothing


def test_zero_shot_rule_best_code_threshold_and_no_code():
    texts = ["alpha"] * 4 + ["beta"] * 4 + ["gamma"] * 4 + ["weather report"] * 8
    emb = fake_embed(texts)
    ids = [str(i) for i in range(len(texts))]
    out = zero_shot(ids, emb, BOOK, embed=fake_embed, options=CodingParams(min_z=1.0))
    got = out.groupby("segment_id")["code"].apply(list).to_dict()
    assert all(got[str(i)] == ["a"] for i in range(4))
    assert all(got[str(i)] == ["c"] for i in range(8, 12))
    assert not any(str(i) in got for i in range(12, 20))  # no code applies
    assert out["evidence"].str.startswith("zero-shot: nearest").all()
    assert ((out["score"] > 0.5) & (out["score"] <= 1)).all()  # 0.5 = at the threshold
    strict = zero_shot(ids, emb, BOOK, embed=fake_embed, options=CodingParams(min_z=5.0))
    assert strict.empty


def test_few_shot_single_label_uses_none_as_a_class():
    rng = np.random.default_rng(0)
    texts = ["alpha one", "alpha two", "beta one", "beta two", "nothing here", "other stuff"] * 5
    labels = [{"a"}, {"a"}, {"b"}, {"b"}, set(), set()] * 5
    emb = fake_embed(texts) + rng.normal(scale=0.01, size=(30, 4))
    coder = FewShotCoder(["a", "b", "c"], C=10, tfidf=False).fit(texts, emb, labels)
    assert coder.single_label_
    out = coder.predict(
        ["x", "y", "z"], ["alpha", "beta", "nothing"], fake_embed(["alpha", "beta", "nothing"])
    )
    assert out[["segment_id", "code"]].values.tolist() == [["x", "a"], ["y", "b"]]  # z: "(none)" wins
    assert out["evidence"].str.startswith("few-shot: nearest coded unit").all()


def test_few_shot_multi_label_calibrates_a_threshold_per_code():
    texts, labels = [], []
    for i in range(40):
        words = [w for w, k in (("alpha", 2), ("beta", 3)) if i % k == 0] or ["plain"]
        texts.append(" ".join(words) + f" {i}")
        labels.append({c for w, c in (("alpha", "a"), ("beta", "b")) if w in words})
    coder = FewShotCoder(["a", "b", "c"], C=10).fit(texts, fake_embed(texts), labels)
    assert not coder.single_label_
    assert set(coder.thresholds_) == {"a", "b"}  # "c" never used: not learnable, never predicted
    assert all(0.05 <= t <= 0.95 for t in coder.thresholds_.values())
    out = coder.predict(["u"], ["alpha beta"], fake_embed(["alpha beta"]))
    assert sorted(out["code"]) == ["a", "b"]


def test_few_shot_needs_two_classes():
    with pytest.raises(UserError, match="at least two different codes"):
        FewShotCoder(["a"], tfidf=False).fit(["alpha"] * 3, fake_embed(["alpha"] * 3), [{"a"}] * 3)


def _segments(n_transcripts=4, per=6):
    rows = []
    for t in range(n_transcripts):
        for k in range(per):
            word = ("alpha", "beta", "gamma")[k % 3]
            rows.append((f"T{t}:{k}", f"T{t}", k // 2, f"{word} sentence {k}"))
    return pd.DataFrame(rows, columns=["segment_id", "transcript_id", "turn_id", "text"])


def test_cross_fitting_never_learns_from_the_segments_transcript():
    segs = _segments()
    labels = {s: {("a", "b", "c")[int(s.split(":")[1]) % 3]} for s in segs["segment_id"]}
    del labels["T3:0"], labels["T3:1"], labels["T3:2"], labels["T3:3"], labels["T3:4"], labels["T3:5"]
    codes, info = cross_fit(
        segs,
        fake_embed(segs["text"].tolist()),
        labels,
        BOOK,
        embed=fake_embed,
        options=CodingParams(folds=3, context="none", tfidf=False),
    )
    assert info["folds"] == 3 and info["coded_transcripts"] == 3
    assert set(codes["segment_id"]) == set(segs["segment_id"])
    for row in codes.itertuples():
        source = row.evidence.split("unit ")[1].split(" ")[0]
        assert source.split(":")[0] != row.segment_id.split(":")[0], row  # never its own transcript
    right = sum(labels.get(r.segment_id, {r.code}) == {r.code} for r in codes.itertuples())
    assert right == len(codes)


def test_turn_context_joins_the_segments_of_one_turn():
    segs = _segments(1, 4)
    texts, emb, ctx = with_turn_context(segs, fake_embed(segs["text"].tolist()))
    assert texts[0] == "alpha sentence 0 || alpha sentence 0 beta sentence 1"
    assert emb.shape == (4, 8) and np.allclose(ctx[0], ctx[1]) and not np.allclose(ctx[1], ctx[2])


def test_training_csv_allows_several_codes_and_none(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("id,text,code\n1,alpha,a\n1,alpha,b\n2,None,\n")
    ids, texts, labels = read_training(path, BOOK)
    assert ids == ["1", "2"] and texts == ["alpha", "None"] and labels == [{"a", "b"}, set()]
    path.write_text("id,text,code\n1,alpha,parent\n")
    with pytest.raises(UserError, match="line 2: code not in the codebook's leaf codes"):
        read_training(path, BOOK)


def test_csv_contract_with_training_rows_is_few_shot(tmp_path):
    from pipeline.coding import run_csv
    from pipeline.config import load_params

    (tmp_path / "book.csv").write_text(
        "name,description\nmoney,Funding and budgets\nwait,Waiting lists and delays\n"
    )
    train = ["id,text,code"]
    for i in range(6):
        train.append(f"m{i},The budget for next year was cut by {i} percent,money")
        train.append(f"w{i},Families waited {i + 2} months on the waiting list,wait")
    (tmp_path / "train.csv").write_text("\n".join(train) + "\n")
    (tmp_path / "in.csv").write_text(
        "id,text\n1,The funding and the budget ran out\n2,We waited months on the list\n"
    )
    params = load_params(None, [f"embed.cache_dir={tmp_path / 'cache'}"])
    info = run_csv(
        params,
        in_path=tmp_path / "in.csv",
        codebook_path=tmp_path / "book.csv",
        out=tmp_path / "out.csv",
        train=tmp_path / "train.csv",
    )
    out = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert info["method"] == "few_shot" and list(out.columns) == ["id", "code", "score"]
    assert out[["id", "code"]].values.tolist() == [["1", "money"], ["2", "wait"]]
