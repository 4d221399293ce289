"""Embeddings cached on disk by text hash: each distinct text is embedded once, rows come back in input order."""
import numpy as np

from designer.engine.embedding_cache import cache_file, cached_encode


class Counting:
    """A stand-in encoder (the real one is slow): a text's vector is derived from its characters."""

    def __init__(self):
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return np.array([[len(t), sum(map(ord, t)) % 97, 1.0] for t in texts], dtype=np.float32)


def test_each_distinct_text_is_embedded_once_and_rows_keep_input_order(tmp_path):
    encode = Counting()
    texts = ["alpha", "beta", "alpha", "gamma"]
    first = cached_encode(encode, "model+int8", texts, tmp_path)
    assert encode.calls == [["alpha", "beta", "gamma"]]
    assert np.array_equal(first, Counting()(texts))
    again = cached_encode(encode, "model+int8", ["gamma", "delta", "alpha"], tmp_path)
    assert encode.calls[1:] == [["delta"]]  # only the new text
    assert np.array_equal(again, Counting()(["gamma", "delta", "alpha"]))
    assert cached_encode(encode, "model+int8", [], tmp_path).shape[0] == 0 and len(encode.calls) == 2


def test_the_file_holds_digests_not_texts_and_models_do_not_share_vectors(tmp_path):
    encode = Counting()
    cached_encode(encode, "gt/all-MiniLM+onnx-int8", ["a secret prompt"], tmp_path)
    path = cache_file(tmp_path, "gt/all-MiniLM+onnx-int8")
    assert path.parent == tmp_path and b"secret" not in path.read_bytes()
    cached_encode(encode, "gt/all-MiniLM+torch", ["a secret prompt"], tmp_path)
    assert len(encode.calls) == 2  # another runtime: its own vectors
