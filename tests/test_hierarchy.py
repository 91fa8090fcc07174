"""Code hierarchies: codebook parents from every format, their bad-input lines, the roll-up rule
(a leaf codes its ancestors; a parent coded above a level is missing for its descendants there),
agreement at every level against hand-computed 2x2 tables, and the machine's top code per level."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from pipeline.agreement.levels import agreement_by_level
from pipeline.agreement.stage import agreement_report
from pipeline.codebook import Code, Codebook
from pipeline.coding.stage import segment_labels
from pipeline.errors import UserError
from pipeline.formats.readers import read_codebook
from pipeline.formats.refi import write_codebook_qdc
from pipeline.hierarchy import ancestors, at_level, depth, level_codes, n_levels, roll_up, top_code_per_level
from pipeline.report.tables import level_rows

BOOK = Codebook(
    (
        Code("A", "A"),
        Code("a1", "a1", parent="A"),
        Code("a2", "a2", parent="A"),
        Code("B", "B"),
        Code("b1", "b1", parent="B"),
        Code("b2", "b2", parent="B"),
    )
)
IDS = [f"u{k}" for k in range(1, 9)]
# reference coder (REF): u6 coded with the parent A only; u8 coded, no code applies
REF = {"u1": ["a1"], "u2": ["a2"], "u3": ["b1"], "u4": ["b2"], "u5": ["a1"], "u6": ["A"], "u7": ["b1"]}
# second coder (SECOND): u3 coded with the parent B only
SECOND = {
    "u1": ["a2"],
    "u2": ["a2"],
    "u3": ["B"],
    "u4": ["b2"],
    "u5": ["a1"],
    "u6": ["a1"],
    "u7": ["b2"],
    "u8": ["b1"],
}
MACHINE = [
    ("u1", "a1", 0.9),
    ("u2", "a1", 0.8),
    ("u3", "b1", 0.7),
    ("u4", "a2", 0.6),
    ("u5", "a1", 0.9),
    ("u5", "b2", 0.4),
    ("u6", "a2", 0.5),
    ("u7", "b2", 0.7),
    ("u8", "b1", 0.3),
]


def _gold(**coders: dict) -> pd.DataFrame:
    rows = [(i, coder, c) for coder, codes in coders.items() for i, cs in codes.items() for c in cs]
    return pd.DataFrame(rows, columns=["id", "coder", "code"])


def _machine() -> pd.DataFrame:
    return pd.DataFrame(MACHINE, columns=["id", "code", "score"])


def test_ancestors_depth_and_levels():
    assert ancestors(BOOK, "a1") == ("A",)
    assert (depth(BOOK, "A"), depth(BOOK, "b2"), n_levels(BOOK)) == (1, 2, 2)
    assert level_codes(BOOK, 1) == ["A", "B"]
    assert level_codes(BOOK, 2) == ["a1", "a2", "b1", "b2"]
    # a leaf shallower than a level stays itself there; a parent above it counts as nothing
    book = Codebook((*BOOK.codes, Code("C", "C")))
    assert level_codes(book, 2) == ["a1", "a2", "b1", "b2", "C"]
    assert (at_level(book, "C", 2), at_level(book, "A", 2), at_level(book, "b2", 1)) == ("C", None, "B")


def test_parent_coded_spans_are_missing_for_children():
    r = _gold(R=REF)
    top, missing_top = roll_up(r, BOOK, 1)
    assert sorted(zip(top["id"], top["code"], strict=True)) == sorted(
        [("u1", "A"), ("u2", "A"), ("u3", "B"), ("u4", "B"), ("u5", "A"), ("u6", "A"), ("u7", "B")]
    )
    assert missing_top == {}
    leaves, missing = roll_up(r, BOOK, 2)
    assert "u6" not in set(leaves["id"])
    assert missing == {"a1": {"u6"}, "a2": {"u6"}}  # missing, not a "no", for A's children only
    # a unit coded with the parent and one of its children: that child is a "yes"
    both = _gold(R={"u6": ["A", "a2"]})
    assert roll_up(both, BOOK, 2)[1] == {"a1": {"u6"}}


def _copies(n: int):
    """The 8 units n times over (coders need 30 shared units for a figure): every count of each
    2x2 table times n, every kappa as for the 8."""
    ids = [f"{i}#{k}" for k in range(n) for i in IDS]
    times = lambda coded: {f"{i}#{k}": c for k in range(n) for i, c in coded.items()}  # noqa: E731
    machine = pd.DataFrame(
        [(f"{i}#{k}", c, s) for k in range(n) for i, c, s in MACHINE], columns=["id", "code", "score"]
    )
    return ids, _gold(ann=times(REF), bob=times(SECOND)), machine  # ann: the reference coder (first by name)


def test_roll_up_kappas_at_each_level_equal_hand_computed_tables():
    ids, gold, machine = _copies(4)
    out = agreement_by_level(gold, machine, codebook=BOOK, ids=ids, coverage=None, figures=agreement_report)
    assert out["hierarchy"] == {"levels": 2}
    one, two = out["levels"]["1"], out["levels"]["2"]
    assert one["codes"] == ["A", "B"]
    kappa = lambda level, code: level["per_code"][code]["cohen_kappa"]  # noqa: E731
    # machine vs ann (REF) at level 1. A: tp 4, fp 1, fn 0, tn 3 -> po 7/8, pe 1/2, kappa 3/4
    assert kappa(one, "A") == pytest.approx(0.75)
    assert one["per_code"]["A"]["f1"] == pytest.approx(8 / 9)
    # B: tp 2, fp 2, fn 1, tn 3 -> po 5/8, pe 1/2, kappa 1/4
    assert kappa(one, "B") == pytest.approx(0.25)
    assert one["overall"]["macro_cohen_kappa"] == pytest.approx(0.5)
    # level 2: u6 (R coded A only) is missing for a1 and a2. a1 over 7 units: tp 2, fp 1, tn 4
    assert kappa(two, "a1") == pytest.approx(16 / 23)  # 5/7 if u6 counted as R's "no"
    assert two["per_code"]["a1"]["support"] == 2 * 4
    assert kappa(two, "a2") == pytest.approx(-1 / 6)  # tp 0, fp 1, fn 1, tn 5 over 7
    assert kappa(two, "b1") == pytest.approx(1 / 3)  # tp 1, fp 1, fn 1, tn 5 over 8
    assert kappa(two, "b2") == pytest.approx(-0.2)  # tp 0, fp 2, fn 1, tn 5 over 8
    # coder vs coder: level 1 A agree everywhere; B: tp 3, fp 1, tn 4 -> 3/4
    human_1 = one["human"]["ann_vs_bob"]["per_code"]
    assert human_1["A"]["cohen_kappa"] == pytest.approx(1.0)
    assert human_1["B"]["cohen_kappa"] == pytest.approx(0.75)
    # level 2, missing for either coder: a1 without u6 (tp 1, fn 1, tn 5) -> 10/17; b1 without u3
    human_2 = two["human"]["ann_vs_bob"]["per_code"]
    assert human_2["a1"]["cohen_kappa"] == pytest.approx(10 / 17)
    assert human_2["b1"]["cohen_kappa"] == pytest.approx(-1 / 6)
    for key in ("krippendorff_alpha", "gwet_ac1", "f1"):
        assert key in one["per_code"]["A"] and key in two["per_code"]["b2"]


def test_report_rows_per_level():
    ids, gold, machine = _copies(4)
    report = agreement_by_level(
        gold, machine, codebook=BOOK, ids=ids, coverage=None, figures=agreement_report
    )
    rows = level_rows(report)
    assert [(r["level"], r["n_codes"]) for r in rows] == [(1, 2), (2, 4)]
    assert rows[0]["cohen_kappa"] == pytest.approx((0.75 + 0.25) / 2)
    assert rows[0]["human"] == pytest.approx((1.0 + 0.75) / 2)
    assert [(c["code"], c["cohen_kappa"]) for c in rows[0]["codes"]] == [
        ("A", pytest.approx(0.75)),
        ("B", pytest.approx(0.25)),
    ]
    assert level_rows({"hierarchy": {"levels": 1}}) == []


def test_leaf_figures_of_the_report_treat_parent_coded_units_as_missing():
    gold, missing = roll_up(_gold(R=REF), BOOK, 2)
    report = agreement_report(
        gold, _machine(), ids=IDS, codes=level_codes(BOOK, 2), exclude={"R": missing}, n_boot=50
    )
    assert report["per_code"]["a1"]["cohen_kappa"] == pytest.approx(16 / 23)
    lo, hi = report["per_code"]["a1"]["cohen_kappa_ci95"]
    assert lo is not None and lo <= hi


def _eight_segments() -> tuple[pd.DataFrame, dict, dict]:
    """u1..u4 in t1, u5..u8 in t2, one 10-character segment each; their starts and transcripts."""
    seg = [(f"u{k}", f"t{1 + (k - 1) // 4}", 10 * ((k - 1) % 4)) for k in range(1, 9)]
    segments = pd.DataFrame(seg, columns=["segment_id", "transcript_id", "orig_start"])
    segments["orig_end"] = segments["orig_start"] + 10
    start = dict(zip(segments["segment_id"], segments["orig_start"], strict=True))
    tid = dict(zip(segments["segment_id"], segments["transcript_id"], strict=True))
    return segments, start, tid


def test_agreement_stage_reports_every_level_of_the_study_codebook():
    from pipeline.agreement import run
    from pipeline.config import load_params

    # u1..u4 in transcript t1, u5..u8 in t2; one 10-character segment each; ann codes every
    # segment (u6 with the parent A, u8 with nothing), as in the tables above
    segments, start, tid = _eight_segments()
    codings = pd.DataFrame(
        [(tid[i], "ann", c, start[i], start[i] + 10) for i, cs in REF.items() for c in cs],
        columns=["transcript_id", "coder", "code", "start", "end"],
    )
    codes = _machine().rename(columns={"id": "segment_id"}).assign(evidence="")
    assignments = pd.DataFrame({"segment_id": IDS, "theme_id": 0, "theme_label": "t"})
    out = run(
        load_params(None, ["agreement.n_boot=0"]),
        segments=segments,
        assignments=assignments,
        codes=codes,
        codebook=BOOK,
        codings=codings,
    )["agreement_metrics"]
    assert out["hierarchy"] == {"levels": 2}
    assert out["levels"]["1"]["per_code"]["A"]["cohen_kappa"] == pytest.approx(0.75)
    assert out["levels"]["1"]["per_code"]["B"]["cohen_kappa"] == pytest.approx(0.25)
    # the leaves, at the top of the report as before: u6 missing for a1 and a2, not a "no"
    assert out["per_code"]["a1"]["cohen_kappa"] == pytest.approx(16 / 23)
    assert out["per_code"]["a1"] == out["levels"]["2"]["per_code"]["a1"] | {"cohen_kappa_ci95": [None, None]}


def test_flat_codebook_has_one_level():
    flat = Codebook((Code("x", "x"), Code("y", "y")))
    out = agreement_by_level(
        _gold(R={"u1": ["x"]}), None, codebook=flat, ids=["u1", "u2"], coverage=None, figures=agreement_report
    )
    assert out == {"hierarchy": {"levels": 1}}


def test_top_code_per_level_takes_the_best_descendant_score():
    codes = pd.DataFrame(
        [("s1", "a1", 0.3), ("s1", "a2", 0.6), ("s1", "b1", 0.5), ("s2", "b2", 0.4)],
        columns=["segment_id", "code", "score"],
    )
    top = top_code_per_level(codes, BOOK)
    assert list(top.itertuples(index=False, name=None)) == [
        ("s1", 1, "A", 0.6),
        ("s1", 2, "a2", 0.6),
        ("s2", 1, "B", 0.4),
        ("s2", 2, "b2", 0.4),
    ]


def _three_segments() -> pd.DataFrame:
    """Three 10-character segments of one transcript."""
    return pd.DataFrame(
        {
            "segment_id": ["t1-0", "t1-1", "t1-2"],
            "transcript_id": "t1",
            "orig_start": [0, 10, 20],
            "orig_end": [10, 20, 30],
        }
    )


def test_training_leaves_out_segments_coded_with_a_parent():
    segments = _three_segments()
    codings = pd.DataFrame(
        [("t1", "R", "a1", 0, 10), ("t1", "R", "A", 10, 20)],
        columns=["transcript_id", "coder", "code", "start", "end"],
    )
    labels = segment_labels(segments, codings, min_overlap=0.5, coder="R", codebook=BOOK)
    assert labels == {"t1-0": {"a1"}, "t1-2": set()}  # t1-1: which of A's leaves is unknown


# ---- the codebook files ----
def _yaml(tmp_path, codes: list[dict]):
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump({"codes": codes}))
    return path


def test_csv_parent_column_gives_the_same_hierarchy_as_yaml_and_qdc(tmp_path):
    csv = tmp_path / "codebook.csv"
    csv.write_text(
        "name,description,parent\nA,group A,\na1,first,A\na2,second,A\nB,group B,\nb1,x,B\nb2,y,B\n"
    )
    from_csv = read_codebook(csv)
    assert [(c.code_id, c.parent) for c in from_csv.codes] == [(c.code_id, c.parent) for c in BOOK.codes]
    from_yaml = read_codebook(
        _yaml(tmp_path, [{"id": c.code_id, "name": c.name, "parent": c.parent} for c in BOOK.codes])
    )
    qdc = tmp_path / "codebook.qdc"
    write_codebook_qdc(from_csv, qdc, study="s")
    from_qdc = read_codebook(qdc)
    gold = _gold(R=REF)
    for book in (from_csv, from_yaml, from_qdc):
        assert {c.code_id: c.parent for c in book.codes} == {c.code_id: c.parent for c in BOOK.codes}
        assert roll_up(gold, book, 2)[1] == {"a1": {"u6"}, "a2": {"u6"}}


def test_csv_without_parent_column_is_flat(tmp_path):
    csv = tmp_path / "codebook.csv"
    csv.write_text("name,description\nx,one\ny,two\n")
    assert all(c.parent is None for c in read_codebook(csv).codes)


def test_missing_parent_is_one_clear_line(tmp_path):
    csv = tmp_path / "codebook.csv"
    csv.write_text("name,description,parent\nA,group,\na1,first,Z\n")
    with pytest.raises(UserError) as err:
        read_codebook(csv)
    msg = str(err.value)
    assert "codebook.csv" in msg and "'a1'" in msg and "'Z'" in msg and "\n" not in msg


def test_parent_cycle_is_one_clear_line(tmp_path):
    codes = [{"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}, {"id": "c"}]
    with pytest.raises(UserError) as err:
        read_codebook(_yaml(tmp_path, codes))
    msg = str(err.value)
    assert "codebook.yaml" in msg and "cycle" in msg and "'a'" in msg and "\n" not in msg
    csv = tmp_path / "codebook.csv"
    csv.write_text("name,description,parent\nx,,x\ny,,\n")  # its own parent
    with pytest.raises(UserError, match=r"codebook\.csv: code 'x' is its own ancestor"):
        read_codebook(csv)


def test_ingest_keeps_spans_coded_with_a_parent(tmp_path):
    from pipeline.ingest.codings_files import read_codings

    (tmp_path / "codings.csv").write_text(
        "transcript_id,coder,code,start,end\nt1,ann,A,0,10\nt1,ann,a1,10,20\n"
    )
    codings, report = read_codings(tmp_path, {"t1"}, BOOK)
    assert sorted(codings["code"]) == ["A", "a1"]
    assert report.skipped == {}


# ---- the agreement stage and training on a hierarchy: one reference coder, leaves only ----
def _stage_report(coders: dict[str, dict]) -> dict:
    """The agreement stage on u1..u8 (u1-u4 in t1, u5-u8 in t2; one 10-character segment each),
    each coder's codes (`REF`'s shape) as spans over whole segments, against `MACHINE`."""
    from pipeline.agreement import run
    from pipeline.config import load_params

    segments, start, tid = _eight_segments()
    codings = pd.DataFrame(
        [
            (tid[i], coder, c, start[i], start[i] + 10)
            for coder, codes in coders.items()
            for i, cs in codes.items()
            for c in cs
        ],
        columns=["transcript_id", "coder", "code", "start", "end"],
    )
    return run(
        load_params(None, ["agreement.n_boot=0"]),
        segments=segments,
        assignments=pd.DataFrame({"segment_id": IDS, "theme_id": 0, "theme_label": "t"}),
        codes=_machine().rename(columns={"id": "segment_id"}).assign(evidence=""),
        codebook=BOOK,
        codings=codings,
    )


def test_the_reference_coder_is_the_same_at_every_level():
    # ann (first by name) coded only parent codes: at the leaves she has no codes at all, yet
    # the leaf headline and every level compare the machine with her, not with bob
    ann = {i: [c.upper()[0]] for i, cs in REF.items() for c in cs}
    out = _stage_report({"ann": ann, "bob": SECOND})["agreement_metrics"]
    assert out["reference_coder"] == "ann"
    assert out["levels"]["1"]["reference_coder"] == out["levels"]["2"]["reference_coder"] == "ann"
    # level 1: ann's top codes are REF's rolled up, so the machine scores as against REF there
    ref_only = _stage_report({"ann": REF})["agreement_metrics"]
    assert out["levels"]["1"]["per_code"]["A"]["cohen_kappa"] == pytest.approx(
        ref_only["levels"]["1"]["per_code"]["A"]["cohen_kappa"]
    )
    # the leaves: every unit is missing for ann (parent codes only), so no leaf figure
    assert out["per_code"]["a1"]["support"] == 0 and out["per_code"]["a1"]["cohen_kappa"] is None
    assert out["by_coder"]["bob"]["units"] == 8


def test_themes_are_compared_with_the_reference_coders_leaf_codes():
    # REF codes u6 with the parent A only: the confusion plot (and themes_vs_codes) see her
    # leaves, so u6 has no code there, never the parent
    rows = _stage_report({"ann": REF})["confusion_plot"]
    by_unit = dict(zip(IDS, [r["code"] for r in rows], strict=True))
    assert by_unit == {
        "u1": "a1",
        "u2": "a2",
        "u3": "b1",
        "u4": "b2",
        "u5": "a1",
        "u6": "(no code)",
        "u7": "b1",
        "u8": "(no code)",
    }


def test_double_coded_units_count_the_leaf_labels_training_uses():
    from pipeline.coding.stage import _training_labels
    from pipeline.config import load_params

    segments = _three_segments()
    # both reviewed t1 (the transcripts they coded in); S coded t1-1 with the parent A, so t1-1
    # is missing for S: only R teaches it, and it is not double-coded
    codings = pd.DataFrame(
        [("t1", "R", "a1", 0, 10), ("t1", "S", "a1", 0, 10), ("t1", "S", "A", 10, 20)],
        columns=["transcript_id", "coder", "code", "start", "end"],
    )
    labels, info = _training_labels(load_params(None, []), segments, codings, None, BOOK)
    assert labels == {"t1-0": {"a1"}, "t1-1": set(), "t1-2": set()}
    assert info == {
        "train_coders": ["R", "S"],
        "double_coded": "union",
        "training_units": 3,
        "double_coded_units": 2,
    }
