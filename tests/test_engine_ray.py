"""pipeline/engine.py: the local path (fast), and `engine: ray` against `engine: local` on a
part of the demo study, on a local Ray instance of 2 CPUs (slow: one to two minutes)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import DEMO_PART as PART
from conftest import demo_part_study

from pipeline import engine
from pipeline.engine import Shared, batched, map_batches
from pipeline.stages import run_stage


def test_local_engine_runs_setup_once_and_each_batch_as_given_in_order():
    calls: list = []

    def setup():
        calls.append("setup")

        def fn(batch: list[int]) -> list[int]:
            calls.append(batch)
            return [10 * x for x in batch]

        return fn

    out = map_batches(batched(list(range(7)), 3), setup, engine="local")
    assert out == [0, 10, 20, 30, 40, 50, 60]
    assert calls == ["setup", [0, 1, 2], [3, 4, 5], [6]]


def test_a_batch_function_may_return_any_number_of_results():
    out = map_batches([["a", "b"], ["c"]], lambda: lambda batch: ["".join(batch)], engine="local")
    assert out == ["ab", "c"]


def test_no_batches_start_nothing():
    def setup():
        raise AssertionError("no worker is set up for an empty job")

    assert map_batches([], setup, engine="ray") == []
    assert batched([], 4) == []
    with pytest.raises(ValueError):
        batched([1], 0)


def test_shared_is_the_object_itself_locally():
    table = {"Hope": "[BABY_1]"}
    assert Shared(table, engine="local").get() is table


def test_spill_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(engine.SPILL_DIR_ENV, str(tmp_path / "spill"))
    assert engine.spill_dir() == (tmp_path / "spill").resolve()
    assert (tmp_path / "spill").is_dir()
    monkeypatch.delenv(engine.SPILL_DIR_ENV)
    monkeypatch.chdir(tmp_path)
    assert engine.spill_dir() == tmp_path.resolve() / engine.DEFAULT_SPILL_DIR


@pytest.fixture(scope="module")
def ray_instance():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def demo_part(tmp_path_factory) -> dict:
    """Segments of two demo transcripts, with their codings and codebook. The turns are taken
    as de-identified as they are (the engine, not de-identification, is under test)."""
    from pipeline.codebook import write_codebook_json
    from pipeline.config import load_params
    from pipeline.layout import Layout
    from pipeline.schemas import DEID_TURNS, TURNS
    from pipeline.study import load_codebook

    root = tmp_path_factory.mktemp("demo_part")
    study = demo_part_study(root / "study")
    lay, params = Layout(root), load_params(None)
    ingest_paths = {
        "study": study,
        "turns": lay.turns,
        "codings_ingested": lay.codings,
        "ingest_metrics": lay.metric("ingest"),
    }
    run_stage("ingest", params, paths=ingest_paths)
    turns = pd.read_parquet(lay.turns)[TURNS.names].assign(spans="[]")
    DEID_TURNS.conform(turns, source="test").to_parquet(lay.deid_turns)
    run_stage(
        "segment",
        params,
        paths={
            "deid_turns": lay.deid_turns,
            "segments": lay.segments,
            "segment_metrics": lay.metric("segment"),
        },
    )
    write_codebook_json(root / "codebook.json", load_codebook(study))
    return {"lay": lay, "codebook": root / "codebook.json"}


@pytest.mark.slow
def test_ray_engine_writes_the_same_bytes_as_local(ray_instance, demo_part, tmp_path, monkeypatch):
    from pipeline.config import load_params
    from pipeline.encoder import CHUNK_BATCHES

    lay = demo_part["lay"]
    ray_jobs = []
    on_ray = engine._map_on_ray
    monkeypatch.setattr(engine, "_map_on_ray", lambda *a, **k: ray_jobs.append(len(a[0])) or on_ray(*a, **k))
    written = {}
    for name in ("local", "ray"):
        out = tmp_path / name
        # the embed stage with a cache per engine: the Ray run encodes every segment again, on
        # its actors (batch_size 8: chunks of 64 texts, spread over both actors); the code
        # stage encodes its few texts (questions, codebook) in this process, with one cache
        params = load_params(
            None, [f"engine={name}", f"embed.cache_dir={out / 'cache'}", "embed.batch_size=8"]
        )
        run_stage("embed", params, paths={"segments": lay.segments, "embeddings": out / "embeddings.npy"})
        paths = {
            "segments": lay.segments,
            "embeddings": out / "embeddings.npy",
            "codebook": demo_part["codebook"],
            "codings": lay.codings,
            "deid_turns": lay.deid_turns,
            "codes": out / "codes.parquet",
            "coding_metrics": out / "coding.json",
        }
        run_stage(
            "coding",
            load_params(None, [f"engine={name}", f"embed.cache_dir={tmp_path / 'cache'}"]),
            paths=paths,
        )
        files = ("embeddings.npy", "embeddings.json", "codes.parquet", "coding.json")
        written[name] = {f: (out / f).read_bytes() for f in files}
    texts = pd.read_parquet(lay.segments)["text"].unique()
    assert ray_jobs[0] == -(-len(texts) // (8 * CHUNK_BATCHES)) > 1  # the embed stage's chunks
    assert ray_jobs[1] == len(PART)  # the coding stage: one batch per cross-fitted fold
    assert written["ray"] == written["local"]
    codes = pd.read_parquet(tmp_path / "ray" / "codes.parquet")
    assert len(codes) and codes["evidence"].str.startswith("few-shot").all()


@pytest.mark.slow
def test_a_user_error_on_a_worker_is_one_line_here(ray_instance):
    from functools import partial

    from pipeline.config import load_params
    from pipeline.errors import UserError

    bad_setup = partial(load_params, None, ["engine=spark"])  # raises, as a model a worker cannot load
    with pytest.raises(UserError, match="'engine'") as err:
        map_batches([["a text"]], bad_setup, engine="ray")
    assert "\n" not in str(err.value) and "Ray worker" in str(err.value)


@pytest.mark.slow
def test_ray_deidentification_writes_the_same_bytes_as_local(ray_instance, demo_part, tmp_path, monkeypatch):
    """Map (each text's detectors on the actors) -> reduce (the study's surfaces, pseudonyms)
    -> map (propagation and replacement): the same outputs as in one process."""
    from pipeline.config import load_params
    from pipeline.deid import detect
    from pipeline.deid.keystore import load_key, read_store

    lay = demo_part["lay"]
    monkeypatch.setattr(detect, "FIRST_PASS_BATCH", 16)  # several batches from two interviews
    ray_jobs: list[int] = []
    on_ray = engine._map_on_ray
    monkeypatch.setattr(engine, "_map_on_ray", lambda *a, **k: ray_jobs.append(len(a[0])) or on_ray(*a, **k))
    written, keys = {}, {}
    for name in ("local", "ray"):
        out = tmp_path / name
        params = load_params(None, [f"engine={name}", f"deid.key_file={tmp_path / 'deid.key'}"])
        paths = {
            "turns": lay.turns,
            "codings_ingested": lay.codings,
            "deid_turns": out / "turns_deid.parquet",
            "deid_metrics": out / "deid.json",
            "key_store": out / "key.enc",
            "codings": out / "codings.parquet",
        }
        run_stage("deid", params, paths=paths)
        written[name] = {
            f: (out / f).read_bytes() for f in ("turns_deid.parquet", "deid.json", "codings.parquet")
        }
        keys[name] = read_store(out / "key.enc", key=load_key(tmp_path / "deid.key", create=False))
    assert written["ray"] == written["local"]
    assert keys["ray"] == keys["local"]  # the encrypted key differs only in its nonce
    assert json.loads(written["local"]["deid.json"])["replacements"] > 0
    assert ray_jobs and ray_jobs[0] > 1  # the first passes went to the actors, in batches
