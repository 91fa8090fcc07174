"""Deductive coding: the zero-shot rule, few-shot classifiers, and honest cross-fitting."""

import numpy as np
import pandas as pd
import pytest

from pipeline.codebook import Code, Codebook, code_prototypes, code_views
from pipeline.coding.cross_fit import cross_fit
from pipeline.coding.few_shot import NYSTROEM_COMPONENTS, FewShotCoder
from pipeline.coding.stage import read_training
from pipeline.coding.zero_shot import calibrated_scores, code_scores, zero_shot
from pipeline.config import CodingParams
from pipeline.context import coding_inputs, preceding_questions, with_turn_context
from pipeline.errors import UserError
from pipeline.vectors import unit_rows

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


def test_calibration_is_per_code_against_the_background_and_shift_invariant():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(50, 3)) * [1, 2, 3] + [0.1, 0.5, 0.9]
    z = calibrated_scores(raw)
    top = raw.argmax(axis=1)
    for j in range(3):  # each code against the units another code won
        assert np.isclose(z[top != j, j].mean(), 0) and np.isclose(z[top != j, j].std(), 1)
    # the same shift and scale for every code (the top codes unchanged): the same z-scores
    assert np.allclose(calibrated_scores(2 * raw + 0.3), z)


def test_a_common_codes_own_units_keep_their_standing():
    # 40 units of a common code, 10 of a rare one: against all units (the common code's own
    # units among them) the common code's units stood 0.5 SD up; against its background, far up
    rng = np.random.default_rng(1)
    common = np.column_stack([0.8 + 0.02 * rng.normal(size=40), 0.2 + 0.02 * rng.normal(size=40)])
    rare = np.column_stack([0.2 + 0.02 * rng.normal(size=10), 0.8 + 0.02 * rng.normal(size=10)])
    raw = np.vstack([common, rare])
    z = calibrated_scores(raw)
    all_units = (raw[:40, 0] - raw[:, 0].mean()) / raw[:, 0].std()
    assert all_units.mean() < 0.6 and z[:40, 0].min() > 10


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
    assert ((out["score"] >= 0) & (out["score"] <= 1)).all()
    # a bar no unit reaches (each stands a finite number of SDs above its code's background)
    strict = zero_shot(ids, emb, BOOK, embed=fake_embed, options=CodingParams(min_z=1e6))
    assert strict.empty


def test_zero_shot_ranks_codes_by_a_score_comparable_across_codes():
    rng = np.random.default_rng(0)
    emb = unit_rows(rng.normal(size=(80, 4)) * [1.0, 0.3, 2.0, 1.0])  # codes spread unevenly
    ids, protos, _, _ = code_prototypes(BOOK, embed=fake_embed)
    raw = code_scores(emb, protos)
    out = zero_shot([str(i) for i in range(80)], emb, BOOK, embed=fake_embed, options=CodingParams(min_z=-10))
    top = out.sort_values("score", ascending=False, kind="stable").drop_duplicates("segment_id")
    top = top.set_index("segment_id")["code"]
    assert all(top[str(i)] == ids[int(raw[i].argmax())] for i in range(80))
    # where ranking by per-code z-scores would have chosen another code
    assert (calibrated_scores(raw).argmax(axis=1) != raw.argmax(axis=1)).any()


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


def test_single_label_settings_are_chosen_on_the_training_units_unless_given():
    from pipeline.coding.few_shot import SELECT_CS

    rng = np.random.default_rng(0)
    # the words say the code; the embeddings are noise: TF-IDF is what the coder needs
    texts = [f"{w} item {i}" for i, w in enumerate(["alpha", "beta", "gamma"] * 20)]
    labels = [{c} for c in ["a", "b", "c"] * 20]
    emb = rng.normal(size=(60, 4))
    groups = [f"T{i % 6}" for i in range(60)]
    auto = FewShotCoder(["a", "b", "c"], seed=1).fit(texts, emb, labels, groups=groups)
    again = FewShotCoder(["a", "b", "c"], seed=1).fit(texts, emb, labels, groups=groups)
    assert (auto.C_, auto.tfidf_) == (again.C_, again.tfidf_)
    assert auto.C_ in SELECT_CS and auto.tfidf_ is True
    given = FewShotCoder(["a", "b", "c"], C=5.0, tfidf=False).fit(texts, emb, labels, groups=groups)
    assert (given.C_, given.tfidf_) == (5.0, False)
    # multi-label data keep C = 10 with TF-IDF under auto
    multi = [{"a", "b"} if i % 2 else {"c"} for i in range(60)]
    coder = FewShotCoder(["a", "b", "c"]).fit(texts, emb, multi, groups=groups)
    assert not coder.single_label_ and (coder.C_, coder.tfidf_) == (10.0, True)


def test_few_shot_multi_label_calibrates_a_threshold_per_code():
    texts, labels = [], []
    for i in range(40):
        words = [w for w, k in (("alpha", 2), ("beta", 3)) if i % k == 0] or ["plain"]
        texts.append(" ".join(words) + f" {i}")
        labels.append({c for w, c in (("alpha", "a"), ("beta", "b")) if w in words})
    labels[1] = labels[1] | {"c"}  # "c" on two units only: too few to calibrate
    labels[5] = labels[5] | {"c"}
    groups = [f"T{i % 4}" for i in range(40)]  # folds grouped by transcript
    coder = FewShotCoder(["a", "b", "c", "d"], C=10).fit(texts, fake_embed(texts), labels, groups=groups)
    assert not coder.single_label_
    assert set(coder.thresholds_) == {"a", "b", "c"}  # "d" never used: not learnable, never predicted
    assert coder.thresholds_["c"] == 0.0  # the SVM's own boundary
    assert coder.thresholds_["a"] != 0.0 and coder.thresholds_["b"] != 0.0  # from out-of-fold decisions
    new = ["alpha beta", "alpha", "plain words"]
    out = coder.predict(["u", "v", "w"], new, fake_embed(new))
    assert sorted(out.loc[out["segment_id"] == "u", "code"]) == ["a", "b"]
    assert set(out.loc[out["segment_id"] == "v", "code"]) & {"a", "b"} == {"a"}
    assert not set(out.loc[out["segment_id"] == "w", "code"]) & {"a", "b"}
    assert ((out["score"] >= 0.5) & (out["score"] < 1)).all()  # 0.5 at the calibrated threshold
    # no n x n kernel: the model holds a fixed number of features per unit
    assert coder.feature_map_.components_.shape[0] <= NYSTROEM_COMPONENTS


def test_few_shot_memory_grows_linearly_with_the_coded_units():
    rng = np.random.default_rng(0)
    n = 3000  # an exact kernel would hold n x n = 9 million floats
    texts = [f"unit {i} alpha" if i % 2 else f"unit {i} beta" for i in range(n)]
    labels = [{"a", "c"} if i % 2 else {"b"} for i in range(n)]
    emb = rng.normal(size=(n, 8))
    coder = FewShotCoder(["a", "b", "c"], C=1).fit(texts, emb, labels)
    assert coder.feature_map_.components_.shape == (NYSTROEM_COMPONENTS, 8)
    assert not any(isinstance(v, np.ndarray) and v.size >= n * n for v in vars(coder).values())


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


def _interview(n_transcripts=4, n_questions=6):
    """Turns and segments where only the interviewer's question tells the code apart."""
    turns, segs, labels = [], [], {}
    for t in range(n_transcripts):
        for q in range(n_questions):
            word, code = [("alpha", "a"), ("beta", "b"), ("gamma", "c")][(q + t) % 3]
            turns.append((f"T{t}", 2 * q, "interviewer", f"Tell me about {word}?"))
            turns.append((f"T{t}", 2 * q + 1, "participant", "Well, I think so."))
            sid = f"T{t}:{q}"
            segs.append((sid, f"T{t}", 2 * q + 1, f"Well, I think so, number {q}."))
            labels[sid] = {code}
    turns = pd.DataFrame(turns, columns=["transcript_id", "turn_id", "role", "text"])
    segs = pd.DataFrame(segs, columns=["segment_id", "transcript_id", "turn_id", "text"])
    return turns, segs, labels


def test_preceding_question_is_the_last_interviewer_question_before():
    turns, segs, _ = _interview(1, 3)
    extra = [
        ("T0", 2.5, "interviewer", "Mm-hm."),  # backchannels and short prompts are not questions
        ("T0", 2.6, "interviewer", "[laughs] Right."),
        ("T0", 2.7, "participant", "And another thing."),
        ("T0", 4.5, "interviewer", "Walk me through a typical week."),  # a prompt, no "?"
        ("T9", 0, "participant", "Hi."),
    ]
    turns = pd.concat([turns, pd.DataFrame(extra, columns=turns.columns)])
    more = [("T0:x", "T0", 2.7, "And another thing."), ("T9:0", "T9", 0, "Hi.")]
    segs = pd.concat([segs, pd.DataFrame(more, columns=segs.columns)])
    assert preceding_questions(segs, turns) == [
        "Tell me about alpha?",
        "Tell me about beta?",
        "Walk me through a typical week.",
        "Tell me about beta?",
        "",
    ]


def test_question_context_lets_few_shot_code_uninformative_answers():
    turns, segs, labels = _interview()
    q = preceding_questions(segs, turns)
    emb = fake_embed(segs["text"].tolist())
    texts, X = coding_inputs(segs, emb, context="turn+question", questions=(q, fake_embed(q)))
    assert X.shape == (len(segs), 12) and texts[0].endswith("|| Tell me about alpha?")
    right = {}
    for context in ("turn+question", "none"):
        codes, _ = cross_fit(
            segs,
            emb,
            labels,
            BOOK,
            embed=fake_embed,
            options=CodingParams(folds=4, context=context, tfidf=False),
            questions=(q, fake_embed(q)),
        )
        right[context] = sum(labels[r.segment_id] == {r.code} for r in codes.itertuples())
    assert right["turn+question"] == len(segs) and right["none"] <= len(segs) // 2


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
