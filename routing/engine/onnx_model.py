"""The sentence-transformers encoder as an ONNX graph, optionally with int8 weights, run by onnxruntime.

Why: on 2 CPU cores onnxruntime runs MiniLM's small, dynamically shaped batches about twice as fast as eager
PyTorch for one prompt, and int8 weights (per-channel, dynamic activations) double batch throughput again while
keeping cosine ≥ 0.97 to the float model on the seed prompts (docs/ROUTER.md). The graph is exported once from the
local model (BERT → mean pooling → L2 normalise), quantised, and cached on disk keyed by the model's files, so every
process after the first loads it in well under a second without loading PyTorch weights at all.
"""
import hashlib
import logging
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

RUNTIMES = ("torch", "onnx", "onnx-int8")
_EXPORT_VERSION = "1"  # bump when the exported graph changes


def cache_dir():
    return Path(os.environ.get("COE_MODEL_CACHE") or Path.home() / ".cache" / "coe-dashboard")


def _fingerprint(model_path):
    """Hash of the model's weight and config files (names, sizes, mtimes): a changed model re-exports."""
    h = hashlib.sha256(_EXPORT_VERSION.encode())
    for p in sorted(Path(model_path).rglob("*")):
        if p.is_file() and p.suffix in {".json", ".safetensors", ".bin", ".txt"}:
            st = p.stat()
            h.update(f"{p.relative_to(model_path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def _export(model_path, target):
    import torch
    from sentence_transformers import SentenceTransformer

    bert = SentenceTransformer(model_path, device="cpu")[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    # A padded example, so no branch on "the mask is all ones" can be traced in as a constant.
    example_ids = torch.ones((2, 8), dtype=torch.long)
    example_mask = torch.ones((2, 8), dtype=torch.long)
    example_mask[1, 5:] = 0
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "embedding": {0: "batch"}}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about shape arithmetic, which is constant per call anyway
        torch.onnx.export(Pooled(bert), (example_ids, example_mask), str(target), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False)


def model_file(model_path, runtime):
    """Path of the cached ONNX file for ``runtime`` ("onnx" or "onnx-int8"), exporting it first if needed.

    Writes go to a temporary file renamed into place, so processes starting together never read half a file.
    """
    folder = cache_dir() / f"{Path(model_path).name}-{_fingerprint(model_path)}"
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "model.onnx"
    if not fp32.exists():
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            _export(model_path, Path(tmp) / "model.onnx")
            os.replace(Path(tmp) / "model.onnx", fp32)
    if runtime == "onnx":
        return fp32
    int8 = folder / "model-int8.onnx"
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs a "consider pre-processing" warning on the root logger
        try:
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                quantize_dynamic(str(fp32), str(Path(tmp) / "q.onnx"), weight_type=QuantType.QInt8,
                                 per_channel=True)
                os.replace(Path(tmp) / "q.onnx", int8)
        finally:
            root.setLevel(level)
    return int8


class OnnxEncoder:
    """Runs the exported graph: (input_ids, attention_mask) int64 arrays → unit-norm float32 embeddings.

    ``per_prompt`` (used for int8): dynamic quantisation scales activations per tensor, so in a padded batch a
    prompt's embedding would depend on its batch-mates. Each prompt runs alone, unpadded, on a pool with one
    single-threaded run per core (up to 4) — deterministic per prompt, and about as fast as padded batches for short prompts.
    """

    def __init__(self, model_path, runtime, per_prompt=False):
        import onnxruntime as ort

        cores = min(os.cpu_count() or 1, 4)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1 if per_prompt else cores
        options.inter_op_num_threads = 1
        # Shapes change with every call: memory patterns would be planned per shape and kept, so a long-running
        # worker's memory would grow with the variety of shapes. Plan nothing; the arena is reused.
        options.enable_mem_pattern = False
        self.session = ort.InferenceSession(str(model_file(model_path, runtime)), options,
                                            providers=["CPUExecutionProvider"])
        self.per_prompt = per_prompt
        self._pool = ThreadPoolExecutor(cores, thread_name_prefix="embed") if per_prompt and cores > 1 else None

    def __call__(self, input_ids, attention_mask):
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def _one(self, ids):
        row = np.asarray([ids], dtype=np.int64)
        return self(row, np.ones_like(row))[0]

    def each(self, encoded):
        """Embed token-id lists one by one (see ``per_prompt``) → (n, dim) array in input order."""
        rows = self._pool.map(self._one, encoded) if self._pool else map(self._one, encoded)
        return np.stack(list(rows))
