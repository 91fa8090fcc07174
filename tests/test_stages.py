"""The stage registry (`pipeline.stages`): every stage's node takes its declared inputs by key,
names resolve (earlier command names too), missing inputs are one clear error, and the command
line answers to each stage's name and its earlier names."""

from __future__ import annotations

import inspect

import pytest
from typer.testing import CliRunner

from pipeline.__main__ import app
from pipeline.config import load_params
from pipeline.errors import UserError
from pipeline.stages import ALIASES, STAGES, STUDY, run_stage, stage_named


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_each_node_takes_its_inputs_by_key_and_nothing_else_required(stage):
    parameters = inspect.signature(stage.node()).parameters
    assert list(parameters)[0] == "params"
    assert set(stage.inputs) <= set(parameters)
    required = {n for n, p in parameters.items() if p.default is inspect.Parameter.empty and n != "params"}
    assert required <= set(stage.inputs) - set(stage.optional)
    assert ("progress" in parameters) == stage.progress
    assert ("digests" in parameters) == stage.digests


def test_names_and_earlier_names_resolve_to_one_stage():
    assert stage_named("deidentify") is stage_named("deid")
    assert stage_named("discover") is stage_named("themes")
    assert stage_named("code") is stage_named("coding")
    assert stage_named("review-snapshot") is stage_named("review")
    with pytest.raises(UserError, match="no stage named 'cluster'"):
        stage_named("cluster")


def test_every_output_is_made_by_one_stage_and_read_only_after_it():
    made: dict[str, str] = {}
    for stage in STAGES:
        for key in stage.inputs:
            assert key == STUDY or key in made, f"{stage.name} reads {key} before any stage writes it"
        for key in stage.outputs:
            assert key not in made, f"{key} written by {made[key]} and {stage.name}"
            made[key] = stage.name


def test_a_missing_input_is_named(tmp_path):
    with pytest.raises(UserError, match="stage segment: no path given for input.*deid_turns"):
        run_stage("segment", load_params(None), paths={"segments": tmp_path / "s.parquet"})


@pytest.mark.parametrize("name", [s.name for s in STAGES] + sorted(ALIASES))
def test_the_command_line_answers_to_every_stage_name(name):
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "--root" in result.output


def test_a_stage_command_without_root_or_files_says_what_to_give(tmp_path):
    result = CliRunner().invoke(app, ["segment", "--quiet"])
    assert result.exit_code == 2
    assert "segment: give --root, or --in, --out" in result.output


def test_the_summary_shows_counts_and_shapes_never_texts():
    import numpy as np

    from pipeline.cli_options import summary

    outputs = {
        "segments": "a table of texts",
        "segment_metrics": {"segments": 3, "by_group": {"parent": 3}},
        "embeddings": (np.zeros((3, 4)), {"model": "m"}),
    }
    assert summary(outputs) == {"segment_metrics": {"segments": 3}, "embeddings": {"shape": [3, 4]}}
    assert summary({"theme_review": {"exists": False}}) == {"outputs": ["theme_review"]}
