import json

import numpy as np
import pytest

from pipeline.encoder import embed_texts
from pipeline.errors import UserError


def test_embeddings_are_normalised_and_cached(tmp_path, encoded):
    texts = ["The health visitor referred us.", "Funding ends next year.", "The health visitor referred us."]
    first = embed_texts(texts, model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path)
    assert first.shape == (3, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.allclose(first[0], first[2])
    cache_files = list(tmp_path.iterdir())
    assert len(cache_files) == 1
    encoded.clear()
    again = embed_texts(texts[:2], model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path)
    assert encoded == []  # both rows read from the cache file, the model not asked
    assert np.array_equal(again, first[:2])
    # similar sentences are closer than unrelated ones
    pair = embed_texts(
        ["My health visitor made the referral."], model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path
    )[0]
    assert pair @ first[0] > pair @ first[1]


def test_unknown_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="embed.model"):
        embed_texts(["x"], model="no-such-model", batch_size=2, cache_dir=tmp_path)


def test_embeddings_must_belong_to_the_segments(tmp_path):
    from pipeline.encoder import read_embeddings
    from pipeline.io import write_matrix

    path = tmp_path / "embeddings.npy"
    write_matrix(path, np.eye(2, dtype=np.float32), {"segment_ids_sha256": "not-these"})
    with pytest.raises(UserError, match="other segments"):
        read_embeddings(path, ["a", "b"])


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_embeddings_are_the_same_bits_whatever_the_batch_thread_or_process_count(precision, monkeypatch):
    import torch

    import pipeline.engine

    words = "the referral came through our health visitor after a long wait for support".split()
    texts = [" ".join(words[: 3 + i % 11]) + f" number {i}" for i in range(40)]

    def encode(batch: list[str], *, threads: int, batch_size: int, processes: int) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        monkeypatch.setattr(pipeline.engine, "fork_processes", lambda: processes)
        try:
            return embed_texts(
                batch, model="all-MiniLM-L6-v2", batch_size=batch_size, cache_dir=None, precision=precision
            )
        finally:
            torch.set_num_threads(before)

    # 40 texts in chunks of 8 x batch_size texts: 3 chunks with batch size 2, on 2 processes
    reference = encode(texts, threads=2, batch_size=16, processes=1)
    assert np.array_equal(encode(texts, threads=1, batch_size=2, processes=2), reference)
    assert np.array_equal(encode(texts[::-1], threads=2, batch_size=5, processes=1)[::-1], reference)
    assert np.array_equal(encode(texts[7:9], threads=1, batch_size=1, processes=1), reference[7:9])


@pytest.fixture
def encoded(monkeypatch) -> list[list[str]]:
    """Every chunk of texts the model is asked to encode, in order (in this process)."""
    import pipeline.encoder as encoder
    import pipeline.engine

    monkeypatch.setattr(pipeline.engine, "fork_processes", lambda: 1)
    chunks: list[list[str]] = []
    real = encoder.encoder_batches

    def counting(*args):
        encode = real(*args)

        def fn(texts: list[str]) -> list:
            chunks.append(list(texts))
            return encode(texts)

        return fn

    monkeypatch.setattr(encoder, "encoder_batches", counting)
    return chunks


def test_each_distinct_text_is_encoded_once_and_a_cached_one_never_again(tmp_path, encoded):
    texts = ["Funding ends next year.", "We waited.", "Funding ends next year.", "The team rang back."]
    first = embed_texts(texts, model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path)
    assert sorted(t for chunk in encoded for t in chunk) == sorted(set(texts))
    encoded.clear()
    again = embed_texts(["A new answer.", *texts], model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path)
    assert encoded == [["A new answer."]]
    assert np.array_equal(again[1:], first)


def test_texts_go_to_the_model_longest_first_in_chunks_of_model_batches(encoded):
    from pipeline.encoder import CHUNK_BATCHES

    texts = [" ".join(["word"] * (1 + i % 13)) + f" {i}" for i in range(3 * CHUNK_BATCHES + 1)]
    out = embed_texts(texts, model="all-MiniLM-L6-v2", batch_size=2, cache_dir=None)
    assert [len(c) for c in encoded][:-1] == [2 * CHUNK_BATCHES] * (len(encoded) - 1)
    sent = [t for chunk in encoded for t in chunk]
    assert sorted(sent) == sorted(texts)
    assert [len(t) for t in sent] == sorted((len(t) for t in texts), reverse=True)
    # and the rows come back in the order of the texts
    alone = embed_texts([texts[5]], model="all-MiniLM-L6-v2", batch_size=2, cache_dir=None)
    assert np.array_equal(out[5], alone[0])


def test_the_cache_is_kept_per_device_precision_and_cpu_kernels(tmp_path, monkeypatch):
    from pipeline.encoder import _cache_file

    embed_texts(
        ["We waited."], model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path, precision="float64"
    )
    embed_texts(["We waited."], model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2
    # float32 rows of padded batches (before) were not reproducible: never read as valid
    assert "-float32-unpadded-kernels-" in names[0] and "-float64-kernels-" in names[1]
    gpu = _cache_file(tmp_path, "all-MiniLM-L6-v2", "cuda", "float16")
    assert gpu.name.endswith("-cuda-float16.npz") and gpu.name not in names
    # rows computed under other CPU kernels (their last bits differ) go to another file
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    other = _cache_file(tmp_path, "all-MiniLM-L6-v2", "cpu", "float32")
    assert "-float32-unpadded-kernels-" in other.name and other.name not in names


def test_cuda_without_a_gpu_is_a_user_error_naming_the_param(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="embed.device: cuda") as err:
        embed_texts(
            ["x"],
            model="all-MiniLM-L6-v2",
            batch_size=2,
            cache_dir=tmp_path,
            device="cuda",
            precision="float16",
        )
    assert "\n" not in str(err.value)


def test_the_embed_stage_and_the_report_say_which_device_and_precision_embedded(tmp_path):
    import pandas as pd

    from pipeline.config import load_params
    from pipeline.report.stage import _models
    from pipeline.schemas import SEGMENTS
    from pipeline.stages import run_stage

    segments = pd.DataFrame(
        [("s1", "T1", "P1", "parent", 0, "participant", 0, 10, 0, 10, "We waited for weeks.")],
        columns=SEGMENTS.names,
    )
    SEGMENTS.conform(segments, source="test").to_parquet(tmp_path / "segments.parquet")
    params = load_params(None, [f"embed.cache_dir={tmp_path / 'cache'}"])
    paths = {"segments": tmp_path / "segments.parquet", "embeddings": tmp_path / "emb.npy"}
    run_stage("embed", params, paths=paths)
    meta = json.loads((tmp_path / "emb.json").read_text())
    assert (meta["device"], meta["precision"]) == ("cpu", "float32")
    role = _models(params, meta)[0][0]
    assert "cpu" in role and "float32" in role
    assert "cuda" in _models(params, {**meta, "device": "cuda", "precision": "float16"})[0][0]


def test_the_command_line_pins_the_cpu_kernels_unless_the_user_chose_them():
    import os
    import subprocess
    import sys

    from pipeline.engine import kernel_env

    if not kernel_env():
        pytest.skip("kernels are pinned on x86-64 machines with AVX2 only")
    names = ["ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "NUMBA_CPU_NAME", "OPENBLAS_CORETYPE"]
    npy = "from numpy._core._multiarray_umath import __cpu_features__ as f; "
    # what the CLI sets, and which kernels numpy's OpenBLAS then loaded (it reads the pin once)
    probe = (
        "import os, pipeline.__main__, numpy; from threadpoolctl import threadpool_info; "
        f"{npy}print(*[os.environ[n] for n in {names}], 'avx512' if f.get('X86_V4') else 'no-avx512', "
        "*{i['architecture'] for i in threadpool_info() if i['internal_api'] == 'openblas'})"
    )
    env = {k: v for k, v in os.environ.items() if k not in [*names, "NPY_DISABLE_CPU_FEATURES"]}
    run = lambda extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", probe], env={**env, **extra}, capture_output=True, text=True, check=True
    ).stdout.split()
    # numpy's AVX-512 loops are off, whatever the CPU has
    assert run({}) == ["avx2", "AVX2", "AVX2", "haswell", "Haswell", "no-avx512", "Haswell"]
    assert run({"ATEN_CPU_CAPABILITY": "default"})[0] == "default"


@pytest.mark.slow  # a fresh process loads the model
def test_rows_embedded_in_any_process_are_the_bits_the_command_line_computes():
    """The embedding cache is shared by every process that embeds (the stages, Ray actors, a
    notebook, the tests): a row computed in this process must be the row the command line,
    with its pinned kernels, computes."""
    import hashlib
    import subprocess
    import sys

    texts = ["We waited weeks for the referral.", "The health visitor rang the team."]
    here = embed_texts(texts, model="all-MiniLM-L6-v2", batch_size=2, cache_dir=None)
    probe = (
        "import hashlib, pipeline.__main__; from pipeline.encoder import embed_texts; "
        f"print(hashlib.sha256(embed_texts({texts!r}, model='all-MiniLM-L6-v2', batch_size=2, "
        "cache_dir=None).tobytes()).hexdigest())"
    )
    there = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == hashlib.sha256(here.tobytes()).hexdigest()
