"""The whole pipeline over a tiny study: every output exists and has its schema."""

import json

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from pipeline.codings import human_segment_codes, primary_codes, read_codings_table
from pipeline.io import read_matrix, read_table
from pipeline.schemas import ASSIGNMENTS, CODES, DEID_TURNS, SEGMENTS, TURNS


def test_run_all_outputs(tiny_run):
    _study, lay, params = tiny_run
    turns = read_table(lay.turns, TURNS)
    deid = read_table(lay.deid_turns, DEID_TURNS)
    segments = read_table(lay.segments, SEGMENTS)
    assert len(turns) == len(deid)
    emb, meta = read_matrix(lay.embeddings)
    assert emb.shape == (len(segments), 384) and meta["model"] == "all-MiniLM-L6-v2"
    assignments = read_table(lay.assignments, ASSIGNMENTS)
    assert assignments["segment_id"].tolist() == segments["segment_id"].tolist()
    read_table(lay.codes, CODES)
    cards = json.loads(lay.cards.read_text())
    assert sum(c["size"] for c in cards["themes"]) + cards["unassigned"] == len(segments)
    agreement = json.loads((lay.metrics / "agreement.json").read_text())
    assert set(agreement["per_code"]) == {"communication", "consultation", "engagement", "funding"}
    assert "A_vs_B" in agreement["human"]
    pair = agreement["human"]["A_vs_B"]
    # the tiny study's coders share too few units for a figure: "n/a", with the count
    assert pair["shared_units"] == agreement["coverage"]["shared_units"]["A_vs_B"]
    assert pair["shared_units"] < 30 and pair["per_code"] == {}
    assert "fewer than 30" in pair["undefined_reason"]
    # themes against the reference coder: the NMI of the discovered themes and the code that
    # covers most of each segment that coder coded
    gold = human_segment_codes(
        segments, read_codings_table(lay.codings), min_overlap=params.agreement.min_overlap
    )
    ref = primary_codes(gold[gold["coder"] == agreement["reference_coder"]])
    paired = assignments.merge(ref, left_on="segment_id", right_on="id")
    versus = agreement["themes_vs_codes"]
    assert versus["units"] == len(paired) > 0
    assert versus["nmi"] == pytest.approx(normalized_mutual_info_score(paired["code"], paired["theme_id"]))
    html = lay.report.read_text()
    assert "Candidate themes" in html and "Agreement with human coding" in html
    # nothing downstream of de-identification holds the names in the transcripts
    downstream = " ".join(segments["text"]) + lay.cards.read_text() + html
    for name in ("Kirsty", "Karen", "Poppy", "Rachel", "07700", "RG39"):
        assert name not in downstream
    assert np.isfinite(emb).all()
