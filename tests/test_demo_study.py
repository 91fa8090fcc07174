"""The bundled demo study (data/demo) holds what its README promises."""

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.agreement.metrics import compare_coders
from pipeline.codings import human_segment_codes
from pipeline.deid.register import read_register
from pipeline.ingest import ingest_study
from pipeline.ingest.codings_files import load_codings
from pipeline.segment import sentence_bounds
from pipeline.study import load_codebook

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
LABELS = {
    "PERSON",
    "LOCATION",
    "ORGANIZATION",
    "ADDRESS",
    "POSTCODE",
    "NHS_NUMBER",
    "PHONE",
    "EMAIL",
    "DATE",
    "AGE",
    "HANDLE",
    "JOB_TITLE",
    "URL",
}


@pytest.fixture(scope="module")
def turns():
    return ingest_study(DEMO)[0]


@pytest.fixture(scope="module")
def texts():
    return {p.stem: p.read_text(encoding="utf-8") for p in (DEMO / "transcripts").glob("*.txt")}


@pytest.fixture(scope="module")
def codings(texts):
    return load_codings(DEMO, set(texts), load_codebook(DEMO))


def test_participants_by_group():
    groups = pd.read_csv(DEMO / "participants.csv", dtype=str)["group"].value_counts().to_dict()
    assert groups == {"parent": 5, "clinician": 4, "referrer": 9, "commissioner": 3}


def test_size(turns, texts):
    assert sum(len(t.split()) for t in texts.values()) >= 50_000
    assert (turns["role"] == "participant").sum() >= 700
    assert set(turns.loc[turns["role"] == "interviewer", "speaker"]) == {"Interviewer"}


def test_few_verbatim_repeats(turns):
    sentences = []
    for text in turns.loc[turns["role"] == "participant", "text"]:
        sentences += [text[s:e] for s, e in sentence_bounds(text) if len(text[s:e].split()) >= 6]
    counts = Counter(sentences)
    repeated = sum(n for n in counts.values() if n > 1)
    assert repeated / len(sentences) <= 0.03


def test_codebook_is_complete():
    book = load_codebook(DEMO)
    assert len(book.leaves) >= 10
    for code in book.leaves:
        assert code.definition and code.include and code.exclude, code.code_id
        assert len(code.examples) >= 2, code.code_id


def test_two_independent_coders_code_every_transcript(codings, texts):
    for coder in ("A", "B"):
        assert set(codings.loc[codings["coder"] == coder, "transcript_id"]) == set(texts)
    a = codings[codings["coder"] == "A"]
    per_code = a.drop_duplicates(["transcript_id", "code", "start", "end"])["code"].value_counts()
    leaves = {c.code_id for c in load_codebook(DEMO).leaves}
    assert set(per_code.index) == leaves
    assert per_code.min() >= 40, per_code.to_dict()


def test_coded_spans_lie_in_participant_turns(codings, turns):
    spans = turns[turns["role"] == "participant"]
    for tid, coded in codings.groupby("transcript_id"):
        own = spans[spans["transcript_id"] == tid]
        # the participant turns that hold each coded span whole: exactly one
        holds = (own["start"].to_numpy()[None, :] <= coded["start"].to_numpy()[:, None]) & (
            own["end"].to_numpy()[None, :] >= coded["end"].to_numpy()[:, None]
        )
        outside = coded.loc[holds.sum(axis=1) != 1, ["start", "end"]].values.tolist()
        assert not outside, (tid, outside[:5])


def test_coder_a_vs_b_kappa_per_code(codings, turns):
    units = turns[turns["role"] == "participant"].rename(columns={"start": "orig_start", "end": "orig_end"})
    units = units.assign(segment_id=units["transcript_id"] + ":" + units["turn_id"].astype(str))
    gold = human_segment_codes(units, codings, min_overlap=0.5)
    ids = units["segment_id"].tolist()
    leaves = [c.code_id for c in load_codebook(DEMO).leaves]
    report = compare_coders(gold[gold["coder"] == "A"], gold[gold["coder"] == "B"], ids=ids, codes=leaves)
    kappas = {c: m["cohen_kappa"] for c, m in report["per_code"].items()}
    assert all(k is not None for k in kappas.values()), kappas
    # independent coders agree well above chance, and not perfectly
    assert 0.3 < report["overall"]["macro_cohen_kappa"] < 0.95


def test_identifiers(texts):
    rows = [json.loads(line) for line in (DEMO / "identifiers.jsonl").read_text().splitlines()]
    assert len(rows) >= 400
    assert {r["label"] for r in rows} <= LABELS
    assert LABELS - {"ADDRESS", "URL"} <= {r["label"] for r in rows}
    surfaces: dict[str, set[str]] = {}
    for r in rows:
        text = texts[r["transcript_id"]]
        span = text[r["start"] : r["end"]]
        assert span and span == span.strip() and "\n" not in span, r
        # spans end at a word boundary (a plural "s", as in "the Leannes", aside)
        assert not re.match(r"[^\Ws]", text[r["end"] : r["end"] + 1] or " "), r
        assert not re.match(r"\w", text[r["start"] - 1 : r["start"]] if r["start"] else " "), r
        surfaces.setdefault(r["entity_id"], set()).add(span)
    assert sum(len(s) > 1 for s in surfaces.values()) >= 10  # entities mentioned several ways
    ordinary = {"Poppy", "Rose", "Hope", "Summer", "Grace", "Reading"}
    assert ordinary <= set().union(*surfaces.values())


def test_register_lists_only_what_consent_records_know():
    register = read_register(DEMO / "register.yaml")
    terms = {term for term, _ in register.terms()}
    assert "Little Roots" in terms and "Helen Okafor" in terms
    assert "Poppy" not in terms and "Reading" not in terms
    assert {e.role for e in register.entries if e.label == "PERSON"} == {
        "parent",
        "clinician",
        "referrer",
        "commissioner",
        "staff",
    }
    assert yaml.safe_load((DEMO / "study.yaml").read_text())["interviewer_labels"] == ["Interviewer"]
