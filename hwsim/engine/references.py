"""Published figures that presets are calibrated on and that the simulator is validated against.

They live in one module so that a preset's provenance text and the validation table quote the same
number, and so that no simulated figure is ever written down here: only what was published, each with
where it was published.  `SOURCES` names the documents; the figures cite them by key.
"""

SOURCES = {  # key: (short name used in tables, full citation)
    "sn40l": ("SN40L paper", "Prabhakar et al., 'SambaNova SN40L: Scaling the AI Memory Wall with Dataflow and "
                             "Composition of Experts', arXiv 2405.07518"),
    "hotchips": ("Hot Chips 2024", "SambaNova's SN40L talk at Hot Chips 2024 (no transcript was available to "
                                   "re-check the figure)"),
    "nemo": ("NeMo Llama-2 results", "NVIDIA NeMo Framework user guide, performance/llama.html, 'Llama-2 Results', "
                                     "inference configuration 1 (input 128, output 20 tokens), A100 80GB SXM4 and "
                                     "H100 80GB HBM3; the page the SN40L paper cites as [57] for its DGX latencies"),
    "argonne": ("Argonne LLM-Inference-Bench", "Chitty-Venkata et al., 'LLM-Inference-Bench', arXiv 2411.00136; "
                                               "repository argonne-lcf/LLM-Inference-Bench, Plots/All_results.csv "
                                               "and Plots/Fig_18/SN40L_latency_throughput.csv"),
    "nccl123": ("nccl-tests #123", "NVIDIA/nccl-tests issue #123 'Understanding the latency of NCCL': all_reduce_perf "
                                   "on a DGX-A100, NCCL_ALGO=Ring, one channel, 8-128 B"),
    "sllm_bench": ("ServerlessLLM H100 benchmark", "ServerlessLLM repository, benchmarks/results/h100_2025/README.md: "
                                                   "8x H100 SXM, NVMe SSD 29.4 GB/s, December 2025; averages of 30 "
                                                   "random and 5 cached loads"),
    "sllm_readme": ("ServerlessLLM Store README", "ServerlessLLM repository, sllm_store/README.md performance table "
                                                  "(the same runs, rounded)"),
}


def short(key: str) -> str:
    return SOURCES[key][0]


def full(key: str) -> str:
    return f"{SOURCES[key][0]} ({SOURCES[key][1]})"


# Reference models (parameter counts as published by their authors).
LLAMA2_7B_PARAMS = 6.74e9  # Llama 2 paper (arXiv 2307.09288), Table 1; HF config: 6,738,415,616
LLAMA2_7B_LAYERS = 32
LLAMA2_7B_KV_BYTES_PER_TOKEN = 2 * 32 * 4096 * 2  # K and V, 32 layers, d_model 4096, multi-head, BF16
LLAMA31_8B_PARAMS = 8.03e9  # Llama 3.1 model card
QWEN3_32B_PARAMS = 32.8e9  # Qwen3-32B model card: "Number of Parameters: 32.8B"
DEEPSEEK_R1_QWEN_32B_PARAMS = 32.8e9  # DeepSeek-R1-Distill-Qwen-32B model card (Qwen2.5-32B base): 32.8B
BF16_BYTES = 2.0

# SN40L switch times.  13.5 ms is quoted from the paper's switching comparison (Fig. 1 / Table V context); the
# stored text of Table V lists only the ratios (15x, 31x), so 13.5 ms could not be re-checked here, and it
# equals 13.48 GB / 1 TB/s.  The Hot Chips figure could not be re-checked either (no transcript stored).
SN40L8_SWITCH_7B_MS = 13.5
SN40L16_SWITCH_8B_MS = 10.0
# SN40L paper, Table V ("Model Switching Time"): 15x vs DGX H100, 31x vs DGX A100 (the text says 16x), from
# host->GPU links of 64 GB/s (H100) and 32 GB/s (A100) that the paper takes from NVIDIA's specs [60], [61].
SWITCH_SPEEDUP_VS_DGX_H100 = 15.0
SWITCH_SPEEDUP_VS_DGX_A100 = 31.0
DGX_H100_HOST_LINK = 64e9
DGX_A100_HOST_LINK = 32e9

# SN40L paper, VI-C: "A single SN40L Node can hold and serve a CoE of up to 850 experts"; "Latency spikes on
# DGXs (around 50 7B experts) happens when experts spill over to host DRAM".
SN40L8_MAX_7B_EXPERTS = 850
DGX_SPILL_AT_7B_EXPERTS = 50

# SN40L paper, VI-B and VI-C: streaming dataflow saturates "close to 85% of HBM bandwidth"; VII: collectives are
# fused and pipelined with the other operators of a kernel.
SN40L_HBM_FRACTION = 0.85
# SN40L paper, Table IV: Llama 3.1 8B, 16 SN40L sockets, BF16, 1042 output tokens/s per user (no speculative
# decoding for 8B, VI-B).
SN40L16_LLAMA31_8B_TOKENS_PER_S = 1042.0

# Argonne LLM-Inference-Bench, Llama-2-7b-hf, batch 1, 128 input and 128 output tokens, end-to-end latency (s).
# TensorRT-LLM on NVIDIA A100 / H100 (1, 2, 4 GPUs); SambaFlow on SambaNova SN40L (8 sockets).
ARGONNE_PROMPT = ARGONNE_OUTPUT = 128
ARGONNE_TRTLLM_S = {("H100", 1): 0.8444228172302246, ("H100", 2): 0.6011487960815429,
                    ("H100", 4): 0.4804847240447998, ("A100", 1): 1.5151852369308472,
                    ("A100", 2): 0.9646787643432617, ("A100", 4): 0.7403770923614502}
ARGONNE_SN40L8_S = 0.37317784256559766
ARGONNE_SN40L8_MISTRAL_S = 0.20874103065883887  # Mistral-7B-v0.1, the same run conditions

# nccl-tests issue #123: all_reduce latency on a DGX-A100 (NVLink/NVSwitch), by GPU count (microseconds).
NCCL_ALLREDUCE_US = {2: 10.0, 4: 16.88, 8: 33.7}

# NeMo, Llama-2-7B, input 128, output 20, batch 1, TP 8: average latency (ms).
NEMO_PROMPT, NEMO_OUTPUT = 128, 20
NEMO_TP8_BS1_MS = {"H100": 97.6, "A100": 136.5}

# SN40L paper, Table V: Samba-CoE (Llama2-7B experts and router, TP8, input 128 per NeMo) speed-ups of the
# SN40L Node, as (versus DGX A100, versus DGX H100), by (metric, batch size, output tokens).
COE_EXPERTS = 150  # "Samba-CoE with 150 experts" (II, IX)
COE_TABLE_V = {
    ("overall", 8, 20): (6.6, 3.7),
    ("overall", 1, 20): (4.8, 2.8),
    ("expert", 1, 20): (2.0, 1.5),
    ("overall", 8, 200): (4.2, 2.7),
    ("overall", 1, 200): (3.9, 2.6),
    ("expert", 1, 200): (3.2, 2.3),
}

# ServerlessLLM Store on 8x H100 SXM with an NVMe SSD of 29.4 GB/s (benchmark page); seconds to load a model
# into GPU memory.  "random" loads 30 different copies (from NVMe), "cached" reloads one model (from DRAM: the
# store's pinned memory pool, or the OS page cache for safetensors).
NVME_BANDWIDTH = 29.4e9
SLLM_LOADS = {
    # (loader, medium, model): seconds
    ("optimised", "nvme", "Llama-3.1-8B-Instruct"): 0.678,
    ("optimised", "nvme", "Qwen3-32B"): 3.216,
    ("optimised", "nvme", "DeepSeek-R1-Distill-Qwen-32B"): 3.220,
    ("naive", "nvme", "Llama-3.1-8B-Instruct"): 4.437,
    ("naive", "nvme", "Qwen3-32B"): 20.592,
    ("naive", "nvme", "DeepSeek-R1-Distill-Qwen-32B"): 19.090,
    ("optimised", "dram", "Qwen3-32B"): 1.253,
    ("optimised", "dram", "DeepSeek-R1-Distill-Qwen-32B"): 1.184,
    ("naive", "dram", "Qwen3-32B"): 12.466,
    ("naive", "dram", "DeepSeek-R1-Distill-Qwen-32B"): 10.165,
}
SLLM_MODEL_PARAMS = {"Llama-3.1-8B-Instruct": LLAMA31_8B_PARAMS, "Qwen3-32B": QWEN3_32B_PARAMS,
                     "DeepSeek-R1-Distill-Qwen-32B": DEEPSEEK_R1_QWEN_32B_PARAMS}
# DGX H100 internal storage: 8 x 3.84 TB NVMe U.2 (data cache).
DGX_H100_NVME_BYTES = 8 * 3.84e12
