"""The notebooks run headless (nbclient + ipykernel) against a small run's outputs, and the
review notebook's saved decisions change the report without re-running discovery."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipeline.io import read_json
from pipeline.report.experiments import experiment_runs, kappa_by_experiment, varying_params
from pipeline.runner import run_report
from pipeline.theme_review import REVIEW_FILE, load_review

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, monkeypatch, **env: str) -> nbformat.NotebookNode:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.slow  # a notebook kernel, then the report stage again
def test_review_notebook_saves_decisions_that_change_the_report(tiny_run_copy, monkeypatch):
    study, lay, params = tiny_run_copy  # the notebook saves a review file, the report is rewritten
    before = read_json(lay.cards)
    nb = execute(
        "01-review-themes.ipynb",
        monkeypatch,
        PIPELINE_RUN_DIR=str(lay.root),
        PIPELINE_STUDY_DIR=str(study),
        PIPELINE_SAVE_REVIEW="1",
    )
    assert "saved" in _text(nb)
    review = load_review(study / REVIEW_FILE)
    assert [d.action for d in review.decisions][0] == "merge"
    assert "rename" in [d.action for d in review.decisions]
    merged = review.decisions[0].themes[0]
    # the report stage alone picks the decisions up
    run_report(params, study=study, lay=lay)
    html = lay.report.read_text(encoding="utf-8")
    assert f"Theme {merged}: Reviewed:" in html
    assert read_json(lay.cards) == before  # discovery's cards untouched


@pytest.mark.slow  # a notebook kernel
def test_agreement_notebook_runs(tiny_run, monkeypatch, tmp_path):
    study, lay, _ = tiny_run
    nb = execute(
        "02-agreement.ipynb",
        monkeypatch,
        PIPELINE_RUN_DIR=str(lay.root),
        PIPELINE_STUDY_DIR=str(study),
        PIPELINE_REPO_DIR=str(tmp_path),  # not a DVC repository: the notebook says so
    )
    text = _text(nb)
    assert "communication" in text and "gap_to_ceiling" in text
    assert "no experiments to compare" in text


def _entry(name, rev, threshold, kappa, experiments=()):
    return {
        "rev": rev,
        "name": name,
        "data": {
            "rev": rev,
            "params": {"params.yaml": {"data": {"seed": 42, "coding": {"threshold": threshold}}}},
            "metrics": {
                "metrics/agreement.json": {
                    "data": {
                        "per_code": {"a": {"cohen_kappa": kappa, "f1": 0.5}},
                        "human": {"A_vs_B": {"per_code": {"a": {"cohen_kappa": 0.8}}}},
                    }
                }
            },
        },
        "experiments": [{"revs": list(experiments)}] if experiments else None,
    }


def test_experiment_runs_from_dvc_exp_show():
    """The shape `dvc exp show --json` prints: commits with their experiments nested."""
    shown = [
        {"rev": "workspace", "name": None, "data": None, "error": {"msg": "x"}, "experiments": None},
        _entry("main", "a" * 40, 0.35, 0.2, experiments=[_entry("exp-1", "b" * 40, 0.5, 0.4)]),
    ]
    runs = experiment_runs(shown)
    assert [r["name"] for r in runs] == ["main", "exp-1"] and runs[1]["baseline"] == "main"
    assert varying_params(runs) == ["coding.threshold"]
    table = kappa_by_experiment(runs)
    assert table[["run", "machine_kappa", "human_kappa", "coding.threshold"]].values.tolist() == [
        ["main", 0.2, 0.8, 0.35],
        ["exp-1", 0.4, 0.8, 0.5],
    ]
