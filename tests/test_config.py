from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.config import Params, load_params
from pipeline.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def test_repo_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.study == "data/demo"


def test_defaults_without_a_file():
    assert load_params(None) == Params()


def test_overrides_are_typed():
    params = load_params(None, ["themes.min_cluster_size=5", "segment.unit=turn", "seed=7"])
    assert params.themes.min_cluster_size == 5
    assert params.segment.unit == "turn"
    assert params.seed == 7


def test_unknown_key_names_the_key_and_allowed_keys(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("themes:\n  min_clustr_size: 5\n")
    with pytest.raises(UserError) as err:
        load_params(path)
    message = str(err.value)
    assert "themes.min_clustr_size" in message and "min_cluster_size" in message
    assert str(path) in message


def test_bad_value_names_the_key(tmp_path):
    with pytest.raises(UserError, match="segment.unit"):
        load_params(None, ["segment.unit=paragraph"])


def test_unknown_section_is_an_error():
    with pytest.raises(UserError, match="unknown key 'clustering'"):
        load_params(None, ["clustering.k=3"])


def test_set_needs_an_equals_sign():
    with pytest.raises(UserError, match="section.key=value"):
        load_params(None, ["themes.min_cluster_size"])


def test_params_are_frozen():
    params = Params()
    with pytest.raises(ValidationError):
        params.seed = 1  # type: ignore[misc]


def test_engine_is_a_top_level_param_local_by_default():
    assert Params().engine == "local"
    assert load_params(REPO / "params.yaml").engine == "local"
    assert load_params(None, ["engine=ray"]).engine == "ray"
    with pytest.raises(UserError, match="'engine'"):
        load_params(None, ["engine=spark"])


def test_embed_device_is_cpu_by_default_and_cuda_runs_half_precision():
    assert (Params().embed.device, Params().embed.model_precision) == ("cpu", "float32")
    assert load_params(None, ["embed.precision=float32"]).embed.model_precision == "float32"
    cuda = load_params(None, ["embed.device=cuda"]).embed
    assert (cuda.device, cuda.model_precision) == ("cuda", "float16")
    with pytest.raises(UserError, match="embed.device"):
        load_params(None, ["embed.device=tpu"])
