"""LLM profiles from published measurements: vidur's per-operator GPU profiles, plus attention
estimated from first principles. Everything here is labelled `provenance: published`.

The vidur project (microsoft/vidur, MIT licence) profiled every per-layer operator of
Llama-2-7B and CodeLlama-34B on A100 and H100 GPUs, except the attention kernel itself.
`data/llm/vidur_iteration_ms.csv` is the compact table derived from those files by
`data/llm/make_vidur_table.py` (`vidur_iteration_ms` below): for each number of tokens N in
an iteration, at tensor parallelism 1, the embedding plus `layers` x the sum of the
per-layer operators' median kernel times. `published_profile` turns it into an LLM
profile table (`attention = excluded`): a prefill row (1 prompt of N tokens) for every N,
and a decode row (N sequences) for N up to 256 (vLLM's default `max_num_seqs`); both
phases push N tokens through the same operators.

Attention is estimated, kept as the separate delta and epsilon terms and recorded in the
profile's footer (`attention_estimate`), so a measured attention table can replace it
(`IterationTimeModel.with_attention`):
- decode: each cached token is read once per step, 2 (K and V) x layers x kv_heads x
  head_dim x 2 bytes (fp16), at the GPU's published memory bandwidth;
- prefill: each causal (query, key) pair costs 4 x layers x heads x head_dim FLOPs (QK^T
  and PV, a multiply-add each), at the GPU's published dense FP16 tensor-core peak.
Both are lower bounds: real kernels reach a fraction of peak. Not in the published rows
either: KV-cache writes, the LM head, sampling and vLLM's CPU-side overheads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from themis.planner.errors import ProfileDataError
from themis.planner.llm.iteration import AttentionTerms
from themis.planner.llm.service import kv_capacity_tokens

VIDUR_SOURCE = (
    "microsoft/vidur data/profiling/compute/<gpu>/<model>/mlp.csv at commit 7d47513363ec447a741ac5e47241580b47724fbf "
    "(MIT licence, Copyright (c) Microsoft Corporation); tensor parallelism 1; iteration = emb + layers x sum of per-layer "
    "operator median kernel times (ms)"
)
PER_LAYER_OPS = (
    "input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj", "post_attention_layernorm",
    "mlp_up_proj", "mlp_act", "mlp_down_proj", "add",
)
"""vidur's per-layer operators (attention kernel excluded); `emb` runs once per iteration."""
DECODE_MAX_BATCH = 256
TABLE = "vidur_iteration_ms.csv"


@dataclass(frozen=True)
class GpuSpec:
    """Published figures of one GPU, with where they come from."""

    name: str
    memory_bytes: float
    memory_bandwidth_bytes_s: float
    fp16_dense_flops: float
    source: str


GPUS = {
    "a100": GpuSpec(
        "NVIDIA A100-SXM4-80GB", 80 * 2**30, 2.039e12, 312e12,
        "NVIDIA A100 Tensor Core GPU datasheet: A100 80GB SXM, GPU memory bandwidth 2,039 GB/s, FP16 Tensor Core 312 TFLOPS (dense)",
    ),
    "h100": GpuSpec(
        "NVIDIA H100 80GB HBM3", 80 * 2**30, 3.35e12, 989.4e12,
        "NVIDIA H100 Tensor Core GPU datasheet: H100 SXM, GPU memory bandwidth 3.35 TB/s, FP16 Tensor Core 1,979 TFLOPS "
        "with sparsity, i.e. 989.4 dense",
    ),
}
"""vidur's A100 compute profiles serve its a100_dgx (SXM) node type and its H100 ones h100_dgx,
so the SXM figures apply; vidur does not say which variant ran them."""


@dataclass(frozen=True)
class ModelShape:
    """A Llama-family model's shape, from its Hugging Face `config.json`."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    dtype_bytes: int = 2

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def params(self) -> int:
        """Weights of a Llama layout: attention, gated MLP, two norms per layer, embedding, head, final norm."""
        kv = self.kv_heads * self.head_dim
        layer = 2 * self.hidden * self.hidden + 2 * self.hidden * kv + 3 * self.hidden * self.intermediate + 2 * self.hidden
        return self.layers * layer + 2 * self.vocab * self.hidden + self.hidden

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    @property
    def attention_flops_per_pair(self) -> int:
        return 4 * self.layers * self.heads * self.head_dim


MODELS = {
    "Llama-2-7b-hf": ModelShape("Llama-2-7b-hf", layers=32, hidden=4096, heads=32, kv_heads=32, intermediate=11008, vocab=32000),
    "CodeLlama-34b-Instruct-hf": ModelShape(
        "CodeLlama-34b-Instruct-hf", layers=48, hidden=8192, heads=64, kv_heads=8, intermediate=22016, vocab=32000
    ),
}
"""meta-llama/Llama-2-7b-hf and codellama/CodeLlama-34b-Instruct-hf `config.json` (the head
and hidden sizes agree with the n_head, n_kv_head, n_embd and n_expanded_embd columns of
vidur's files)."""


def attention_estimate(shape: ModelShape, gpu: GpuSpec) -> AttentionTerms:
    """delta (ms per cached token per decode step) and epsilon (ms per causal prefill pair)."""
    delta_ms = shape.kv_bytes_per_token / gpu.memory_bandwidth_bytes_s * 1000.0
    epsilon_ms = shape.attention_flops_per_pair / gpu.fp16_dense_flops * 1000.0
    source = (
        f"first-principles estimate: decode reads {shape.kv_bytes_per_token:,} B of KV cache per cached token "
        f"(2 x {shape.layers} layers x {shape.kv_heads} KV heads x {shape.head_dim} x {shape.dtype_bytes} B) at "
        f"{gpu.memory_bandwidth_bytes_s / 1e9:,.0f} GB/s; prefill does {shape.attention_flops_per_pair:,} FLOPs per causal "
        f"(query, key) pair (4 x {shape.layers} x {shape.heads} heads x {shape.head_dim}) at {gpu.fp16_dense_flops / 1e12:,.1f} "
        f"TFLOP/s. Figures: {gpu.source}. Lower bounds (peak rates); replace with measured attention when available."
    )
    return AttentionTerms(delta_ms, epsilon_ms, source, basis="estimate")


def vidur_iteration_ms(mlp_csv: pd.DataFrame, shape: ModelShape) -> pd.DataFrame:
    """Per-iteration time without attention from one vidur `mlp.csv` (tensor parallelism 1):
    columns num_tokens, p50_ms (sum of operator medians), mean_ms (sum of means)."""
    rows = mlp_csv[mlp_csv["num_tensor_parallel_workers"] == 1]
    if rows.empty:
        raise ProfileDataError("the vidur table has no rows at tensor parallelism 1")
    out = {"num_tokens": rows["num_tokens"].to_numpy(dtype=np.int64)}
    for stat, column in (("median", "p50_ms"), ("mean", "mean_ms")):
        per_layer = sum(rows[f"time_stats.{op}.{stat}"].to_numpy(dtype=float) for op in PER_LAYER_OPS)
        out[column] = rows[f"time_stats.emb.{stat}"].to_numpy(dtype=float) + shape.layers * per_layer
    # 2048 and 4096 tokens appear twice upstream (overlapping ranges): average them
    return pd.DataFrame(out).groupby("num_tokens", as_index=False).mean().sort_values("num_tokens", ignore_index=True)


def bundled_table_path() -> Path:
    return Path(str(files("themis.data").joinpath("llm", TABLE)))


def published_profile(model: str, gpu: str) -> pd.DataFrame:
    """The LLM profile frame (`themis.profiler.llm_table` columns, `attrs["llm"]` footer) of
    `model` (a key of `MODELS`) on `gpu` (`a100`, `h100`) from the bundled vidur table."""
    if model not in MODELS or gpu.lower() not in GPUS:
        raise ProfileDataError(f"no published profile for {model!r} on {gpu!r} (have {', '.join(MODELS)} on {', '.join(GPUS)})")
    shape, spec = MODELS[model], GPUS[gpu.lower()]
    table = pd.read_csv(bundled_table_path())
    rows = table[(table["model"] == model) & (table["gpu"] == gpu.lower())]
    base = {
        "model": model, "device_kind": "cuda", "device_name": spec.name, "device_id": "", "cores": 1, "dtype": "float16",
        "p90_ms": np.nan, "p99_ms": np.nan, "std_ms": np.nan, "samples": 20, "status": "ok", "error": "",
        "provenance": "published", "attention": "excluded",
    }
    records = []
    for n, p50, mean in zip(rows["num_tokens"], rows["p50_ms"], rows["mean_ms"]):
        times = {**base, "p50_ms": p50, "mean_ms": mean}
        records.append({**times, "phase": "prefill", "batch_size": 1, "prompt_tokens": int(n), "context_tokens": 0})
        if n <= DECODE_MAX_BATCH:
            records.append({**times, "phase": "decode", "batch_size": int(n), "prompt_tokens": 0, "context_tokens": 0})
    frame = pd.DataFrame.from_records(records)
    frame.attrs["llm"] = published_metadata(shape, spec)
    frame.attrs["environment"] = {"gpu_name": spec.name, "source": "published (vidur)"}
    return frame


def published_metadata(shape: ModelShape, gpu: GpuSpec) -> dict[str, Any]:
    """The `themis.llm` footer of a published profile: sources, estimate, shape, KV sizing."""
    return {
        "provenance": "published",
        "source": VIDUR_SOURCE,
        "attention_estimate": attention_estimate(shape, gpu).to_dict(),
        "left_out": "attention kernels (estimated separately), KV-cache writes, LM head, sampling and vLLM CPU overheads",
        "model_shape": {**asdict(shape), "params": shape.params, "kv_bytes_per_token": shape.kv_bytes_per_token},
        "gpu": asdict(gpu),
        "kv_capacity_tokens": kv_capacity_tokens(gpu.memory_bytes, shape.params * shape.dtype_bytes, shape.kv_bytes_per_token),
    }


def write_published_profile(model: str, gpu: str, path: str | Path) -> Path:
    """Write `published_profile(model, gpu)` as an LLM profile Parquet file (atomically)."""
    from themis.profiler.llm_table import write_llm_profile

    frame = published_profile(model, gpu)
    return write_llm_profile(path, frame.to_dict(orient="records"), frame.attrs["environment"], frame.attrs["llm"])
