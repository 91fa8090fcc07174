import numpy as np

from pipeline.coding import apply_codebook, code_prototypes
from pipeline.config import CodingParams
from pipeline.study import Code, Codebook


def test_codes_above_threshold_best_first_and_no_code_rule():
    protos = np.eye(3)
    emb = np.array([[0.9, 0.4, 0.0], [0.1, 0.1, 0.1], [0.0, 0.0, 1.0]])
    out = apply_codebook(
        ["s1", "s2", "s3"], emb, ["a", "b", "c"], protos, options=CodingParams(threshold=0.3, max_codes=3)
    )
    assert out.values.tolist() == [["s1", "a", 0.9], ["s1", "b", 0.4], ["s3", "c", 1.0]]
    capped = apply_codebook(
        ["s1"], emb[:1], ["a", "b", "c"], protos, options=CodingParams(threshold=0.3, max_codes=1)
    )
    assert capped["code"].tolist() == ["a"]


def test_prototypes_use_leaf_codes_and_training_examples():
    import pandas as pd

    book = Codebook(
        (Code("parent", "P"), Code("a", "Alpha", parent="parent"), Code("b", "Beta", parent="parent"))
    )
    calls = []

    def embed(texts):
        calls.append(texts)
        return np.array([[1.0, 0.0] if "Alpha" in t or "alpha" in t else [0.0, 1.0] for t in texts])

    training = pd.DataFrame({"id": ["1"], "text": ["more alpha"], "code": ["a"]})
    ids, protos = code_prototypes(book, embed=embed, training=training)
    assert ids == ["a", "b"]
    assert np.allclose(np.linalg.norm(protos, axis=1), 1)
    assert "more alpha" in calls[0]
