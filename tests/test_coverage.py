"""Several coders who split transcripts and the passages within them (coverage.csv): each
coder's yes, no and missing, what training learns, the pairwise and all-coder figures on shared
coverage (hand-computed), and one clear line for each kind of bad coverage input.

The study: 6 transcripts of 20 participant lines each; a segment is a participant line.
- T1: A and B both review all of it; T2: B all of it, A lines 0-11, C lines 12-19 (the two
  double-coded transcripts);
- T3: A lines 0-9, C lines 10-19; T4: B lines 0-9, C lines 10-19; T5: A (no offsets: the
  whole transcript); T6: C.
Shared units: A and B 20 + 12 = 32; B and C 8 (T2 12-19); A and C none.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.agreement.stage import run as agreement_run
from pipeline.coding.stage import coder_labels, segment_labels
from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.ingest.stage import _ingest, import_human_coding
from pipeline.stages import layout_paths, run_stage, stage_named
from pipeline.study import load_codebook
from tests.conftest import make_study

LINES = 20
TIDS = [f"T{k}" for k in range(1, 7)]
TRANSCRIPTS = {
    t: "Interviewer: Tell me about the service?\n"
    + "".join(f"Pat: In {t} this is line number {k} of what I said.\n" for k in range(LINES))
    for t in TIDS
}
# (transcript, first line, last line + 1) each coder reviewed; None: the whole transcript
COVERAGE = {
    "A": [("T1", 0, 20), ("T2", 0, 12), ("T3", 0, 10), ("T5", None, None)],
    "B": [("T1", 0, 20), ("T2", 0, 20), ("T4", 0, 10)],
    "C": [("T2", 12, 20), ("T3", 10, 20), ("T4", 10, 20), ("T6", 0, 20)],
}
# (coder, code, transcript, lines coded)
CODINGS = [
    # communication in T1, the 2x2 table of A vs B on their 32 shared lines:
    # both 8 (lines 0-7), A only 2 (8, 9), B only 2 (10, 11), neither 20
    ("A", "communication", "T1", range(0, 10)),
    ("B", "communication", "T1", [*range(0, 8), 10, 11]),
    ("A", "funding", "T2", range(0, 3)),
    ("B", "funding", "T2", range(0, 3)),
    ("A", "funding", "T5", range(0, 5)),
    ("B", "consultation", "T4", range(3, 6)),
    ("C", "consultation", "T3", range(10, 15)),
    ("C", "funding", "T2", [12, 13]),
    ("C", "funding", "T6", range(0, 5)),
    ("A", "consultation", "T3", [15]),  # in C's passage: outside A's coverage, skipped
]


def _line_span(tid: str, k: int, *, body: bool) -> tuple[int, int]:
    """Offsets of participant line k of a transcript (its words only when `body`)."""
    text = TRANSCRIPTS[tid]
    lines = text.split("\n")
    start = sum(len(x) + 1 for x in lines[: k + 1])  # line 0 is the interviewer's
    end = start + len(lines[k + 1])
    return (start + len("Pat: "), end) if body else (start, end)


def _codings_csv(rows=CODINGS) -> str:
    out = ["transcript_id,coder,code,start,end"]
    for coder, code, tid, lines in rows:
        for k in lines:
            s, e = _line_span(tid, k, body=True)
            out.append(f"{tid},{coder},{code},{s},{e}")
    return "\n".join(out) + "\n"


def _coverage_csv(coverage=COVERAGE) -> str:
    out = ["transcript_id,coder,start,end"]
    for coder, parts in coverage.items():
        for tid, first, last in parts:
            if first is None:
                out.append(f"{tid},{coder},,")
            else:
                start, end = _line_span(tid, first, body=False)[0], _line_span(tid, last - 1, body=False)[1]
                out.append(f"{tid},{coder},{start},{end}")
    return "\n".join(out) + "\n"


def _study(tmp_path: Path, *, coverage: str | None = None, codings: str | None = None) -> Path:
    study = make_study(tmp_path, transcripts=TRANSCRIPTS)
    rows = "".join(f"{t},P{t},parent\n" for t in TIDS)
    (study / "participants.csv").write_text("transcript_id,participant_id,group\n" + rows)
    (study / "codings.csv").write_text(codings or _codings_csv())
    if coverage is not False:
        (study / "coverage.csv").write_text(coverage or _coverage_csv())
    return study


def _segments(study: Path) -> pd.DataFrame:
    """One segment per participant line, id `T<k>-<line>` (offsets into the ingested text)."""
    turns = _ingest(study)[0]
    turns = turns[turns["role"] == "participant"].copy()
    turns["segment_id"] = [
        f"{t}-{k - 1}" for t, k in zip(turns["transcript_id"], turns["turn_id"], strict=True)
    ]
    return turns.rename(columns={"start": "orig_start", "end": "orig_end"})[
        ["segment_id", "transcript_id", "orig_start", "orig_end"]
    ].reset_index(drop=True)


@pytest.fixture
def split(tmp_path: Path):
    study = _study(tmp_path)
    texts = _ingest(study)[2]
    codings, coverage, report = import_human_coding(study, texts)
    return study, _segments(study), codings, coverage, report


def test_coverage_csv_is_read_and_codings_outside_it_are_skipped_and_counted(split):
    _study_dir, _segments_t, codings, coverage, report = split
    assert report["coverage"] == {"source": "coverage.csv", "spans": 11, "coders": 3}
    assert report["skipped"] == {"outside_coder_coverage": 1}
    assert report["rows_in"] == report["used"] + 1
    assert not (
        (codings["coder"] == "A") & (codings["transcript_id"] == "T3") & (codings["code"] == "consultation")
    ).any()
    t5 = coverage[(coverage["coder"] == "A") & (coverage["transcript_id"] == "T5")]
    assert t5[["start", "end"]].values.tolist() == [[0, len(TRANSCRIPTS["T5"])]]  # no offsets: all of it


def test_each_coder_is_yes_no_or_missing_by_their_coverage(split):
    _study_dir, segments, codings, coverage, _report = split
    labels = coder_labels(segments, codings, min_overlap=0.5, coverage=coverage)
    assert {c: len(v) for c, v in labels.items()} == {"A": 62, "B": 50, "C": 48}
    assert labels["A"]["T1-8"] == {"communication"}  # yes
    assert labels["B"]["T1-8"] == set()  # no: inside B's coverage, not coded
    assert "T1-8" not in labels["C"]  # missing: C never reviewed T1
    assert "T3-15" not in labels["A"]  # A's coding there lies outside A's coverage: missing
    assert labels["C"]["T3-15"] == set()  # C reviewed it and gave no code
    assert labels["C"]["T3-12"] == {"consultation"}
    assert "T2-12" not in labels["A"] and labels["C"]["T2-12"] == {"funding"}
    assert "T4-12" not in labels["B"] and labels["B"]["T4-5"] == {"consultation"}


def test_training_labels_by_rule(split):
    _study_dir, segments, codings, coverage, _report = split

    def learn(rule: str, **kw) -> dict:
        return segment_labels(segments, codings, min_overlap=0.5, coverage=coverage, double_coded=rule, **kw)

    union, both, ref = learn("union"), learn("intersection"), learn("reference")
    # every reviewed segment, once: 62 + 50 + 48 minus the 32 + 8 reviewed twice
    assert len(union) == len(both) == len(ref) == 120
    assert (union["T1-8"], both["T1-8"], ref["T1-8"]) == ({"communication"}, set(), {"communication"})
    assert (union["T1-10"], both["T1-10"], ref["T1-10"]) == ({"communication"}, set(), set())  # A: no
    assert union["T1-3"] == both["T1-3"] == ref["T1-3"] == {"communication"}
    assert (union["T2-12"], ref["T2-12"]) == ({"funding"}, set())  # B (reference there) said no
    assert union["T3-12"] == both["T3-12"] == {"consultation"}  # C alone reviewed it
    only_c = learn("union", coder="C")
    assert len(only_c) == 48 and "T1-0" not in only_c


def _agreement(study: Path, segments: pd.DataFrame, codings, coverage, **opts) -> dict:
    params = Params().model_copy(
        update={"agreement": Params().agreement.model_copy(update={"n_boot": 0, **opts})}
    )
    ids = segments["segment_id"].tolist()
    # the machine: communication on T1 lines 0-9 (A's), nothing else
    machine = pd.DataFrame(
        {"segment_id": [f"T1-{k}" for k in range(10)], "code": "communication", "score": 1.0, "evidence": ""}
    )
    themes = pd.DataFrame({"segment_id": ids, "theme_id": 0, "theme_label": "t"})
    return agreement_run(
        params,
        segments=segments,
        assignments=themes,
        codes=machine,
        codebook=load_codebook(study),
        codings=codings,
        coverage=coverage,
        ingest_metrics={"codings": {"coverage": {"source": "coverage.csv"}}},
    )["agreement_metrics"]


def test_pairs_on_shared_coverage_with_hand_computed_kappa_and_na_under_30(split):
    study, segments, codings, coverage, _report = split
    report = _agreement(study, segments, codings, coverage)
    assert report["coverage"] == {
        "source": "coverage.csv",
        "coders": {
            "A": {"units": 62, "transcripts": 4},
            "B": {"units": 50, "transcripts": 3},
            "C": {"units": 48, "transcripts": 4},
        },
        "shared_units": {"A_vs_B": 32, "A_vs_C": 0, "B_vs_C": 8},
        "min_shared_units": 30,
    }
    ab = report["human"]["A_vs_B"]
    assert ab["shared_units"] == 32 and ab["overall"]["units"] == 32
    # both 8, A only 2, B only 2, neither 20: po = 28/32, pe = (10/32)^2 + (22/32)^2
    assert ab["per_code"]["communication"]["cohen_kappa"] == pytest.approx(39 / 55)
    assert ab["per_code"]["funding"]["cohen_kappa"] == pytest.approx(1.0)  # T2 lines 0-2, both
    for pair in ("A_vs_C", "B_vs_C"):
        assert report["human"][pair]["overall"]["macro_cohen_kappa"] is None  # n/a
        assert report["human"][pair]["machine"]["C"]["macro_cohen_kappa"] is None
    # the machine on the same 32 units: A's communication exactly (kappa 1, against B 39/55 as
    # A), no funding (kappa 0); the other codes occur in neither (undefined, out of the mean)
    assert ab["machine"]["A"]["macro_cohen_kappa"] == pytest.approx(0.5)
    assert ab["machine"]["B"]["macro_cohen_kappa"] == pytest.approx(39 / 55 / 2)
    assert report["overall"]["gap_to_human_ceiling"] == pytest.approx(
        (0.5 + 39 / 110) / 2 - (39 / 55 + 1) / 2
    )
    assert report["human_ceiling_pair"] == "A_vs_B"
    assert report["by_coder"]["C"]["units"] == 48 and report["by_coder"]["B"]["units"] == 50
    # alpha over all coders, pairable values only: 32 A-B units and 8 B-C units (80 values,
    # 20 of them "yes" to communication), 4 units in disagreement: 1 - 79 * 8 / (2 * 60 * 20)
    alpha = report["humans"]["per_code"]["communication"]["krippendorff_alpha"]
    assert alpha == pytest.approx(1 - 79 * 8 / 2400)
    assert report["humans"]["coders"] == ["A", "B", "C"]


def test_the_shared_unit_threshold_is_a_param(split):
    study, segments, codings, coverage, _report = split
    report = _agreement(study, segments, codings, coverage, min_shared_units=5)
    assert report["human"]["B_vs_C"]["shared_units"] == 8
    # T2 lines 12-19: C funding on 12 and 13, B on neither: po 6/8 = pe (B all "no"): kappa 0
    assert report["human"]["B_vs_C"]["per_code"]["funding"]["cohen_kappa"] == pytest.approx(0.0)
    report = _agreement(study, segments, codings, coverage, min_shared_units=33)
    assert report["human"]["A_vs_B"]["overall"]["macro_cohen_kappa"] is None
    assert report["human_ceiling_pair"] is None
    assert report["overall"]["human_ceiling_macro_cohen_kappa"] is None


def test_without_coverage_csv_each_coder_covers_the_transcripts_they_coded_in(tmp_path: Path):
    study = _study(tmp_path, coverage=False)
    codings, coverage, report = import_human_coding(study, _ingest(study)[2])
    assert report["coverage"]["source"].startswith("default")
    pairs = sorted(map(tuple, coverage[["coder", "transcript_id"]].values.tolist()))
    assert pairs == [
        ("A", "T1"), ("A", "T2"), ("A", "T3"), ("A", "T5"),
        ("B", "T1"), ("B", "T2"), ("B", "T4"),
        ("C", "T2"), ("C", "T3"), ("C", "T6"),
    ]  # fmt: skip
    assert (coverage["start"] == 0).all()
    assert (coverage["end"] == [len(TRANSCRIPTS[t]) for t in coverage["transcript_id"]]).all()
    assert report["skipped"] == {}  # A's coding in T3 is inside A's (whole-transcript) coverage


@pytest.mark.parametrize(
    ("coverage_rows", "message"),
    [
        (["T1,D,,"], r"coverage.csv line 13: coder 'D' has no codings \(coders with codings: A, B, C\)"),
        (["T9,A,,"], r"coverage.csv line 13: transcript 'T9' is not in the study"),
        (
            ["T1,A,0,99999"],
            r"coverage.csv line 13: span ends at 99999, past the end of transcript 'T1' \(\d+ characters\)",
        ),
        (["T1,A,20,"], r"coverage.csv line 13: start and end must both be whole numbers"),
        (["T1,A,30,20"], r"coverage.csv line 13: empty or reversed span 30-20"),
    ],
)
def test_bad_coverage_gets_one_line_naming_file_and_line(tmp_path: Path, coverage_rows, message):
    study = _study(tmp_path, coverage=_coverage_csv() + "\n".join(coverage_rows) + "\n")
    with pytest.raises(UserError, match=message):
        import_human_coding(study, _ingest(study)[2])


def test_a_coder_whose_codings_all_fall_outside_their_coverage(tmp_path: Path):
    moved = {**COVERAGE, "C": [("T1", 0, 20)]}  # C coded in T2, T3, T6 but reviewed only T1
    study = _study(tmp_path, coverage=_coverage_csv(moved))
    with pytest.raises(
        UserError, match=r"coverage.csv: all 12 codings by coder 'C' fall outside the coverage"
    ):
        import_human_coding(study, _ingest(study)[2])


def test_bad_coverage_writes_nothing(tmp_path: Path):
    study = _study(tmp_path, coverage=_coverage_csv() + "T9,A,,\n")
    from pipeline.layout import Layout

    lay = Layout(tmp_path / "run")
    stage = stage_named("ingest")
    with pytest.raises(UserError, match="T9"):
        run_stage(stage, Params(), paths=layout_paths(stage, lay, study=study))
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.*"))


def test_no_coded_span_reaching_a_segment_is_one_line_naming_min_overlap(tmp_path: Path):
    # two coders whose spans are 3 characters long: none covers half of any segment
    short = ["transcript_id,coder,code,start,end"]
    for coder in ("A", "B"):
        for k in (0, 1):
            s = _line_span("T1", k, body=True)[0]
            short.append(f"T1,{coder},communication,{s},{s + 3}")
    study = _study(tmp_path, coverage=False, codings="\n".join(short) + "\n")
    codings, coverage, _report = import_human_coding(study, _ingest(study)[2])
    with pytest.raises(
        UserError, match=r"agreement\.min_overlap \(0\.5\).*\(4 spans reach no segment\)"
    ) as err:
        _agreement(study, _segments(study), codings, coverage)
    assert "\n" not in str(err.value)


def test_a_coder_with_codings_but_no_coverage_row(tmp_path: Path):
    no_c = {k: v for k, v in COVERAGE.items() if k != "C"}  # C coded 12 spans, reviewed nothing
    study = _study(tmp_path, coverage=_coverage_csv(no_c))
    with pytest.raises(
        UserError, match=r"coverage.csv: coder 'C' has 12 codings but no row in coverage.csv$"
    ):
        import_human_coding(study, _ingest(study)[2])


@pytest.mark.parametrize("offsets", ["²,40", "20,4²", "٣,40"])
def test_non_ascii_digit_offsets_in_coverage_are_one_line(tmp_path: Path, offsets: str):
    study = _study(tmp_path, coverage=_coverage_csv() + f"T1,A,{offsets}\n")
    with pytest.raises(UserError, match=r"coverage.csv line 13: start and end must both be whole numbers"):
        import_human_coding(study, _ingest(study)[2])


def test_non_ascii_digit_offsets_in_codings_are_skipped_and_counted(tmp_path: Path):
    # "²".isdigit() is true and int("²") fails: such offsets are not integers, as "1.5" is not
    rows = _codings_csv()
    study = _study(tmp_path, coverage=False, codings=rows + "T1,A,funding,²,40\nT1,A,funding,3,4²\n")
    _codings, _coverage, report = import_human_coding(study, _ingest(study)[2])
    assert report["skipped"] == {"offsets_not_integers": 2}
    n = len(rows.splitlines())  # the header and the good rows
    assert report["skipped_examples"]["offsets_not_integers"] == [
        f"codings.csv line {n + 1}",
        f"codings.csv line {n + 2}",
    ]


# ---- the code stage: when few-shot runs, and what it checks ----
def _fake_embed(texts: list[str]) -> np.ndarray:
    """A seeded unit vector per text (no model)."""
    rows = [np.random.default_rng(sum(map(ord, t))).normal(size=8) for t in texts]
    out = np.array(rows).reshape(len(texts), 8)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _coding_run(monkeypatch, study: Path, *sets: str) -> dict:
    from pipeline.coding import stage as coding_stage
    from pipeline.config import load_params

    monkeypatch.setattr(coding_stage, "_embedder", lambda params, progress: _fake_embed)
    segments = _segments(study)
    codings, coverage, _report = import_human_coding(study, _ingest(study)[2])
    return coding_stage.run(
        load_params(None, ["coding.context=none", *sets]),
        segments=segments,
        embeddings=(_fake_embed(segments["segment_id"].tolist()), {}),
        codebook=load_codebook(study),
        codings=codings,
        coverage=coverage,
    )["coding_metrics"]


def test_train_coder_is_checked_only_when_few_shot_runs(tmp_path: Path, monkeypatch):
    study = _study(tmp_path)
    info = _coding_run(monkeypatch, study, "coding.method=zero_shot", "coding.train_coder=Z")
    assert info["method"] == "zero_shot"
    with pytest.raises(UserError, match=r"^params coding.train_coder: no codings by coder 'Z'$"):
        _coding_run(monkeypatch, study, "coding.method=few_shot", "coding.train_coder=Z")


def test_auto_counts_transcripts_with_coded_segments_not_reviewed_ones(tmp_path: Path, monkeypatch):
    # A reviewed T1 and T2 but coded (two codes) in T1 only: nothing to cross-fit on, zero-shot
    rows = [("A", "communication", "T1", range(0, 3)), ("A", "funding", "T1", range(5, 8))]
    coverage = {"A": [("T1", None, None), ("T2", None, None)]}
    study = _study(tmp_path, codings=_codings_csv(rows), coverage=_coverage_csv(coverage))
    assert _coding_run(monkeypatch, study)["method"] == "zero_shot"


def test_agreement_command_pairs_under_the_shared_unit_param_get_na(tmp_path: Path):
    """`agreement --gold --pred`: every coder shares every id; the threshold is the param."""
    from typer.testing import CliRunner

    from pipeline.__main__ import app

    # code x on 10 ids: A yes on u0-u4, B yes on u0-u3 and u5: po 0.8, pe 0.5, kappa 0.6
    ids = [f"u{k}" for k in range(10)]
    yes = {"A": {0, 1, 2, 3, 4}, "B": {0, 1, 2, 3, 5}}
    gold = [f"{i},{'x' if k in yes[c] else ''},{c}" for c in ("A", "B") for k, i in enumerate(ids)]
    (tmp_path / "gold.csv").write_text("id,code,coder\n" + "\n".join(gold) + "\n")
    pred = [f"{i},{'x' if k < 5 else ''}" for k, i in enumerate(ids)]
    (tmp_path / "pred.csv").write_text("id,code\n" + "\n".join(pred) + "\n")

    def agreement(*sets: str) -> dict:
        out = tmp_path / "m.json"
        args = ["agreement", "--gold", tmp_path / "gold.csv", "--pred", tmp_path / "pred.csv", "--out", out]
        for s in ("agreement.n_boot=0", *sets):
            args += ["--set", s]
        result = CliRunner().invoke(app, [str(a) for a in [*args, "--quiet"]])
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())

    default = agreement()["human"]["A_vs_B"]
    assert default["shared_units"] == 10 and default["overall"]["macro_cohen_kappa"] is None
    assert default["undefined_reason"] == "fewer than 30 shared units"
    lowered = agreement("agreement.min_shared_units=10")["human"]["A_vs_B"]
    assert lowered["overall"]["macro_cohen_kappa"] == pytest.approx(0.6)
    assert lowered["machine"]["A"]["macro_cohen_kappa"] == pytest.approx(1.0)
