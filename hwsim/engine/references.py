"""Published figures that presets are derived from and that the simulator is validated against.

They live in one module so that a preset's provenance text and the validation table quote the same
number, and so that no simulated figure is ever written down here: only what was published.
"""

# Reference models (parameter counts as published by their authors).
LLAMA2_7B_PARAMS = 6.74e9  # Llama 2 paper (arXiv 2307.09288), Table 1; HF config: 6,738,415,616
LLAMA2_7B_LAYERS = 32
LLAMA2_7B_KV_BYTES_PER_TOKEN = 2 * 32 * 4096 * 2  # K and V, 32 layers, d_model 4096, multi-head, BF16
LLAMA31_8B_PARAMS = 8.03e9  # Llama 3.1 model card
BF16_BYTES = 2.0

# SN40L paper (arXiv 2405.07518) Table V: time to switch a 7B-class BF16 expert into HBM.
SN40L8_SWITCH_7B_MS = 13.5
SWITCH_SPEEDUP_VS_DGX_H100 = 15.0
SWITCH_SPEEDUP_VS_DGX_A100 = 31.0
# SambaNova, Hot Chips 2024: Llama-3.1-8B switched in about 10 ms on a 16-socket (two-node) system.
SN40L16_SWITCH_8B_MS = 10.0

# Capacity: SN40L paper — one SN40L-8 node holds 850+ 7B-class experts in DDR; DGX H100 latency climbs
# at ~50 experts, i.e. when 8 x 80 GB HBM (~47 BF16 7B experts) is full and experts spill to host memory.
SN40L8_MIN_7B_EXPERTS_IN_DDR = 850
DGX_H100_7B_EXPERTS_IN_HBM = 47

# Roofline ceiling: one H100 cannot decode a 13.5 GB model faster than 3.35 TB/s / 13.5 GB per token.
H100_7B_DECODE_CEILING_TPS = 3.35e12 / 13.5e9

# SN40L paper: overall Samba-CoE latency (150 experts, batch 8, 20 output tokens) vs DGX nodes.
COE_EXPERTS = 150
COE_BATCH = 8
COE_OUTPUT_TOKENS = 20
COE_LATENCY_RATIO_VS_DGX_H100 = 3.7
COE_LATENCY_RATIO_VS_DGX_A100 = 6.6
