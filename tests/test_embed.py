import numpy as np
import pytest

from pipeline.encoder import embed_texts
from pipeline.errors import UserError


def test_embeddings_are_normalised_and_cached(tmp_path):
    texts = ["The health visitor referred us.", "Funding ends next year.", "The health visitor referred us."]
    first = embed_texts(texts, model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path)
    assert first.shape == (3, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.allclose(first[0], first[2])
    cache_files = list(tmp_path.iterdir())
    assert len(cache_files) == 1
    again = embed_texts(texts[:2], model="all-MiniLM-L6-v2", batch_size=2, cache_dir=tmp_path)
    assert np.allclose(again, first[:2], atol=1e-6)
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


def test_embeddings_are_the_same_bits_whatever_the_batch_or_thread_count():
    import torch

    words = "the referral came through our health visitor after a long wait for support".split()
    texts = [" ".join(words[: 3 + i % 11]) + f" number {i}" for i in range(40)]

    def encode(batch: list[str], *, threads: int, batch_size: int) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return embed_texts(batch, model="all-MiniLM-L6-v2", batch_size=batch_size, cache_dir=None)
        finally:
            torch.set_num_threads(before)

    reference = encode(texts, threads=2, batch_size=16)
    assert np.array_equal(encode(texts, threads=1, batch_size=16), reference)
    assert np.array_equal(encode(texts[::-1], threads=2, batch_size=5)[::-1], reference)
    assert np.array_equal(encode(texts[7:9], threads=1, batch_size=1), reference[7:9])
