"""The scale benchmark's generated studies (bench/scale_data.py), at small sizes: distinct texts
of the intended length, planted identifiers where identifiers.jsonl says (half the names and
places outside the gazetteers), and folders the ingest stage reads. No timings here."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

from bench.scale import STAGES, stage_commands
from bench.scale_data import ANSWER_CHARS, TURN_CHARS, outside_gazetteers, write_study
from pipeline.config import load_params
from pipeline.ingest import run as ingest
from pipeline.study import load_codebook


def _ingested(study, tmp_path) -> tuple[pd.DataFrame, dict]:
    outputs = ingest(load_params(None, []), study=study)  # the ingest stage's node
    return outputs["turns"], outputs["ingest_metrics"]


def _gold(study) -> list[dict]:
    return [json.loads(line) for line in (study / "identifiers.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def interview(tmp_path_factory):
    study = tmp_path_factory.mktemp("scale") / "interview"
    return study, write_study("interview", study, 120, seed=3)


def test_interview_study_reads_with_ingest_and_its_turns_are_distinct(interview, tmp_path):
    study, summary = interview
    turns, counts = _ingested(study, tmp_path)
    speech = turns[turns["role"] == "participant"]
    assert counts["participant_turns"] == summary["units"] == 120
    assert counts["files"] == 2 and counts["interviewer_turns"] == 120  # about 50 turns a transcript
    assert speech["text"].is_unique
    assert abs(speech["text"].str.len().mean() - TURN_CHARS) < 0.15 * TURN_CHARS
    assert len(load_codebook(study).codes) >= 8


def test_interview_identifiers_are_where_the_gold_says(interview):
    study, summary = interview
    gold = _gold(study)
    texts = {p.stem: p.read_text() for p in (study / "transcripts").iterdir()}
    assert {g["label"] for g in gold} >= {"PERSON", "LOCATION", "ORGANIZATION"}
    for g in gold:
        surface = texts[g["transcript_id"]][g["start"] : g["end"]]
        assert surface and surface == surface.strip()
    speech_chars = summary["units"] * summary["mean_chars"]
    density = summary["demo_density_per_1000_chars"]
    persons = sum(g["label"] == "PERSON" for g in gold)
    assert 0.5 * density["PERSON"] < 1000 * persons / speech_chars < 1.5 * density["PERSON"]


def test_half_the_names_and_places_are_outside_the_gazetteers(interview):
    study, _ = interview
    texts = {p.stem: p.read_text() for p in (study / "transcripts").iterdir()}
    named = [g for g in _gold(study) if g["label"] in ("PERSON", "LOCATION")]
    invented = [g for g in named if g["source"] == "invented"]
    assert 0.3 < len(invented) / len(named) < 0.7
    for g in invented:
        for word in texts[g["transcript_id"]][g["start"] : g["end"]].split():
            assert outside_gazetteers(word)


def test_survey_study_reads_with_ingest(tmp_path):
    study = tmp_path / "survey"
    summary = write_study("survey", study, 400, seed=3)
    turns, counts = _ingested(study, tmp_path)
    answers = turns[turns["role"] == "participant"]
    assert counts["answers"] == 400 and counts["questions"] == 3
    assert answers["text"].is_unique and answers["group"].nunique() == 3
    assert abs(answers["text"].str.len().mean() - ANSWER_CHARS) < 0.15 * ANSWER_CHARS
    gold = _gold(study)
    assert 0 < sum(g["label"] == "PERSON" for g in gold) < 0.15 * 400
    text = dict(zip(answers["transcript_id"], answers["text"], strict=True))
    assert all(text[g["transcript_id"]][g["start"] : g["end"]].strip() for g in gold)
    assert summary["distinct_units"] == 400


def test_generation_is_deterministic(tmp_path):
    a = write_study("survey", tmp_path / "a", 60, seed=5)
    b = write_study("survey", tmp_path / "b", 60, seed=5)
    assert a == b
    assert (tmp_path / "a" / "responses.csv").read_bytes() == (tmp_path / "b" / "responses.csv").read_bytes()


def test_stage_commands_mirror_dvc_yaml(tmp_path):
    import yaml

    from bench.data import ROOT

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    commands = dict(stage_commands(tmp_path / "study", tmp_path / "out", ["deid.key_file=k"]))
    assert list(commands) == list(STAGES)
    for name, argv in commands.items():
        dvc_cmd = dvc[name]["cmd"].split()
        assert argv[:3] == [sys.executable, "-m", "pipeline"] and argv[3] == dvc_cmd[3]
        options = [a for a in argv if a.startswith("--") and a != "--set"]
        assert options == [a for a in dvc_cmd if a.startswith("--")]
