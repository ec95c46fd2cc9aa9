"""Capacity of each LLM replica type at an SLO, on the token mix of the bundled Azure LLM code trace.

    .venv/bin/python examples/llm_capacity.py

Replica types: tiny_llm measured on this CPU at each core count (tests/data/profiles/
tiny_llm_cpu.parquet), and the published Llama-2-7B and CodeLlama-34B profiles on A100 and
H100. For each it prints the p99 TTFT and TPOT at zero load and the largest Poisson request
rate whose simulated p99 TTFT and TPOT meet the SLO (`search_capacity`, 2,000 requests per
probe, tokens drawn from the trace's 8,819 requests).

SLOs: the GPUs get 2 s TTFT and 150 ms TPOT. tiny_llm cannot reach a 2 s TTFT on these
prompts (up to 7,437 tokens) even idle, so its TTFT SLO is twice the zero-load p99 TTFT of
its 1-core replica, rounded up to 100 ms (the load at which queueing doubles the tail), and
its TPOT SLO 200 ms (reading speed, 5 tokens/s); every core count gets the same SLO, so they
compare. CPU replicas chunk prefills at 256 tokens: a 2,048-token chunk takes ~0.45 s on
one core, and every decoding sequence would wait for it. `--cpu-slo TTFT_MS,TPOT_MS`
overrides the CPU SLO.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import pandas as pd

from themis.data import bundled_trace
from themis.planner.llm.capacity import TokenMix, search_capacity
from themis.planner.llm.iteration import IterationTimeModel, fit_iteration_model, load_iteration_models
from themis.planner.llm.published import GPUS, MODELS, published_profile
from themis.planner.llm.service import LlmSlo, ServerConfig

TINY_PROFILE = Path(__file__).parents[1] / "tests" / "data" / "profiles" / "tiny_llm_cpu.parquet"
CPU_KV_TOKENS = 131_072
"""tiny_llm's KV cache: 8 KiB per token (2 x 4 layers x 256 x 4 B), so 1 GiB of memory."""
GPU_SLO = LlmSlo(ttft_ms=2000.0, tpot_ms=150.0)
REQUESTS = 2000


def row(model: IterationTimeModel, server: ServerConfig, mix: TokenMix, slo: LlmSlo) -> dict[str, object]:
    found = search_capacity(model, server, mix, slo, requests=REQUESTS)
    idle = found.probes[0]
    return {
        "replica type": f"{model.model} on {model.label}", "provenance": model.provenance,
        "zero-load p99 TTFT ms": f"{idle.ttft_ms:,.0f}", "zero-load p99 TPOT ms": f"{idle.tpot_ms:.1f}",
        "SLO p99 TTFT/TPOT ms": f"{slo.ttft_ms:g}/{slo.tpot_ms:g}", "capacity rps": f"{found.rate_rps:.3f}",
    }


def cpu_slo(model: IterationTimeModel, server: ServerConfig, mix: TokenMix) -> LlmSlo:
    """TTFT: twice the zero-load p99 of `model`, rounded up to 100 ms; TPOT: 200 ms."""
    idle = search_capacity(model, server, mix, LlmSlo(ttft_ms=1e-3, tpot_ms=1e-3), requests=REQUESTS)
    return LlmSlo(ttft_ms=100.0 * math.ceil(2 * idle.ttft_ms / 100.0), tpot_ms=200.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", type=Path, default=TINY_PROFILE)
    parser.add_argument("--cpu-slo", help="TTFT_MS,TPOT_MS for the CPU replicas (default: see the docstring)")
    args = parser.parse_args()
    trace = pd.read_csv(bundled_trace("azure_llm_2023_code"))
    mix = TokenMix(trace["ContextTokens"].to_numpy(), trace["GeneratedTokens"].to_numpy())
    cpu_server = ServerConfig(kv_capacity_tokens=CPU_KV_TOKENS, max_num_batched_tokens=256)
    cpu_models = load_iteration_models(args.profile)
    slo = LlmSlo(*map(float, args.cpu_slo.split(","))) if args.cpu_slo else cpu_slo(cpu_models[0], cpu_server, mix)
    rows = [row(model, cpu_server, mix, slo) for model in cpu_models]
    for name in MODELS:
        for gpu in GPUS:
            profile = published_profile(name, gpu)
            server = ServerConfig(kv_capacity_tokens=profile.attrs["llm"]["kv_capacity_tokens"])
            rows.append(row(fit_iteration_model(profile), server, mix, GPU_SLO))
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"token mix: the {len(trace):,} requests of the Azure LLM code trace (2023); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
