"""The command-line contract of DESIGN.md, including bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import FAST

from pipeline.engine import offline_env
from pipeline.stages import STAGES

REPO = Path(__file__).resolve().parents[1]


def cli(*args, cwd=REPO):
    env = {**os.environ, **offline_env()}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_help_lists_the_contract():
    out = cli("--help").stdout
    for command in ("run", "reidentify", *(s.name for s in STAGES)):
        assert f" {command} " in out
    for earlier in ("deidentify", "discover", "code", "review-snapshot"):  # still answer
        assert cli(earlier, "--help").returncode == 0


def test_missing_study_folder(tmp_path):
    assert_user_error(
        cli("run", "--study", str(tmp_path / "nope"), "--out", str(tmp_path / "o")),
        "nope",
        "study folder not found",
    )


def test_mistyped_param(tmp_path, study):
    r = cli("run", "--study", str(study), "--out", str(tmp_path / "o"), "--set", "themes.min_clustr_size=3")
    assert_user_error(r, "themes.min_clustr_size", "min_cluster_size")
    assert not (tmp_path / "o").exists()


def test_csv_without_required_columns(tmp_path):
    bad = tmp_path / "in.csv"
    bad.write_text("key,words\n1,hello\n")
    assert_user_error(
        cli("discover", "--in", str(bad), "--out", str(tmp_path / "o.csv")),
        "in.csv",
        "missing column(s) id, text",
    )
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.slow  # a fresh process loads the de-identification models
def test_deidentify_jsonl_contract(tmp_path):
    src = tmp_path / "in.jsonl"
    text = "My GP Dr Ahmed in Reading gave me 07700 900461."
    src.write_text(json.dumps({"id": "a", "text": text}) + "\n")
    r = cli("deidentify", "--in", str(src), "--out", str(tmp_path / "out.jsonl"), "--quiet")
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "out.jsonl").read_text())
    assert rec["id"] == "a" and "07700" not in rec["text"] and "Ahmed" not in rec["text"]
    for span in rec["spans"]:
        assert {"start", "end", "label", "replacement"} <= set(span)
        assert text[span["start"] : span["end"]]  # offsets into the original


def test_deidentify_bad_jsonl_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "ok"}\n{"id": 2}\n')
    assert_user_error(cli("deidentify", "--in", str(src), "--out", str(tmp_path / "o.jsonl")), "line 2")


@pytest.mark.slow  # three fresh processes, each loading the models
def test_discover_code_and_agreement_contracts(tmp_path, study):
    texts = [
        "I heard nothing back after the referral for weeks.",
        "The referral letter went missing again.",
        "Nobody replied to my referral email.",
        "The consultation helped me think about the baby.",
        "A case consultation before referring is really useful.",
        "Consultations with the team support me.",
        "The funding is only for two years.",
        "Commissioners want evaluation data on outcomes.",
        "Money for the pilot runs out next spring.",
        "None",
    ]
    pd.DataFrame({"id": [f"u{i}" for i in range(10)], "text": texts}).to_csv(tmp_path / "in.csv", index=False)
    r = cli(
        "discover",
        "--in",
        str(tmp_path / "in.csv"),
        "--out",
        str(tmp_path / "themes.csv"),
        "--quiet",
        *[a for s in FAST for a in ("--set", s)],
    )
    assert r.returncode == 0, r.stderr
    themes = pd.read_csv(tmp_path / "themes.csv", dtype=str, keep_default_na=False)
    assert list(themes.columns) == ["id", "theme_id", "theme_label"]
    assert len(themes) == 10  # "None" is an answer, not a missing value

    r = cli(
        "code",
        "--in",
        str(tmp_path / "in.csv"),
        "--codebook",
        str(study / "codebook.yaml"),
        "--out",
        str(tmp_path / "codes.csv"),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    codes = pd.read_csv(tmp_path / "codes.csv")
    assert list(codes.columns) == ["id", "code", "score"]
    assert set(codes["code"]) <= {"communication", "consultation", "engagement", "funding"}

    gold = pd.DataFrame(
        {
            "id": [f"u{i}" for i in range(9)],
            "code": ["communication"] * 3 + ["consultation"] * 3 + ["funding"] * 3,
        }
    )
    gold.to_csv(tmp_path / "gold.csv", index=False)
    r = cli(
        "agreement",
        "--gold",
        str(tmp_path / "gold.csv"),
        "--pred",
        str(tmp_path / "codes.csv"),
        "--out",
        str(tmp_path / "m.json"),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert "macro_cohen_kappa" in m["overall"]
    for key in (
        "cohen_kappa",
        "krippendorff_alpha",
        "gwet_ac1",
        "percent_agreement",
        "precision",
        "recall",
        "f1",
        "support",
    ):
        assert key in m["per_code"]["funding"]


def test_engine_option_is_validated_as_the_param(tmp_path):
    result = cli(
        "embed", "--in", str(tmp_path / "s.parquet"), "--out", str(tmp_path / "e.npy"), "--engine", "spark"
    )
    assert_user_error(result, "engine")
