"""LLM simulator speed: the numba iteration loop against the plain SimPy model, and a day of
the bundled Azure LLM code trace scaled to 50 requests/s.

Both use the published Llama-2-7B profile on A100 (vidur's operators plus the attention
estimate; `themis.planner.llm.published`), vLLM-default limits (256 sequences, 2,048-token
budget, chunked prefill, 16-token blocks) and the KV capacity the profile suggests.

1. Speed: the trace (its real arrival gaps and tokens), time compressed so that 1 replica
   runs at 75 % of its capacity, repeated 20 times (176k requests); SimPy simulates the
   first 1,000, numba all of them; the 1,000 requests' token times must be identical.
   Medians of repeated runs, the ratio from one process.
2. A day: the 57-minute trace, its time compressed to 50 requests/s and repeated to 24 h
   (4.3 M requests, real token counts), on as many replicas as the capacity search says
   50 requests/s needs at the SLO, plus 10 %. One timed run (the compile is outside it).

    python benchmarks/bench_llm_sim.py
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
sys.path.insert(0, str(Path(__file__).parent))
from _results import markdown_table, record  # noqa: E402
from simpy_llm_reference import simulate_llm_reference  # noqa: E402

from themis.data import bundled_trace  # noqa: E402
from themis.planner.llm.capacity import TokenMix, search_capacity  # noqa: E402
from themis.planner.llm.iteration import fit_iteration_model  # noqa: E402
from themis.planner.llm.published import published_profile  # noqa: E402
from themis.planner.llm.service import LlmRequests, LlmSlo, ServerConfig  # noqa: E402
from themis.planner.llm.simulate import simulate_llm  # noqa: E402

REPEATS = 3
SLO = LlmSlo(ttft_ms=2000.0, tpot_ms=150.0)
DAY_S = 86_400.0
DAY_RATE_RPS = 50.0


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def trace() -> pd.DataFrame:
    frame = pd.read_csv(bundled_trace("azure_llm_2023_code"))
    stamps = pd.to_datetime(frame["TIMESTAMP"])
    frame["t_s"] = (stamps - stamps.iloc[0]).dt.total_seconds()
    return frame


def median_s(run) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def tiled(frame: pd.DataFrame, rate_rps: float, copies: int, until_s: float = np.inf) -> LlmRequests:
    """The trace's requests with time compressed to `rate_rps` on average, repeated `copies` times."""
    span_s = frame["t_s"].iloc[-1] * (len(frame) + 1) / len(frame)  # the trace hour plus a mean gap
    scale = (len(frame) / span_s) / rate_rps
    arrivals = np.concatenate([(frame["t_s"].to_numpy() + k * span_s) * scale for k in range(copies)])
    keep = arrivals < until_s
    prompt = np.tile(frame["ContextTokens"].to_numpy(), copies)[keep]
    return LlmRequests(arrivals[keep], prompt, np.tile(frame["GeneratedTokens"].to_numpy(), copies)[keep])


def speed_rows(frame: pd.DataFrame, model, server: ServerConfig, capacity_rps: float) -> list[list[object]]:
    full = tiled(frame, 0.75 * capacity_rps, copies=20)  # one replica at 75 % of its capacity
    n_ref = 1000
    prefix = LlmRequests(full.arrival_s[:n_ref], full.prompt_tokens[:n_ref], full.output_tokens[:n_ref])
    ours = simulate_llm(prefix, model, server)
    ref = simulate_llm_reference(prefix, model, server)
    same = np.array_equal(ours.first_token_s, ref["first_token_s"]) and np.array_equal(ours.last_token_s, ref["last_token_s"])
    before = load()
    fast_s = median_s(lambda: simulate_llm(full, model, server))
    slow_s = median_s(lambda: simulate_llm_reference(prefix, model, server))
    iterations = int(simulate_llm(full, model, server).iterations.sum())
    fast_rps, slow_rps = len(full) / fast_s, n_ref / slow_s
    return [[
        f"{len(full):,}", f"{iterations:,}", f"{fast_rps:,.0f}", f"{iterations / fast_s:,.0f}", f"{n_ref:,}", f"{slow_rps:,.0f}",
        f"{fast_rps / slow_rps:,.0f}x", "yes" if same else "NO", f"{before} / {load()}",
    ]]


def day_rows(frame: pd.DataFrame, model, server: ServerConfig, capacity_rps: float) -> list[list[object]]:
    copies = math.ceil(DAY_S * DAY_RATE_RPS / len(frame))  # each compressed copy lasts len(frame) / rate seconds
    reqs = tiled(frame, DAY_RATE_RPS, copies, until_s=DAY_S)
    replicas = math.ceil(1.1 * DAY_RATE_RPS / capacity_rps)
    before = load()
    started = time.perf_counter()
    result = simulate_llm(reqs, model, server, replicas)
    wall_s = time.perf_counter() - started
    return [[
        f"{len(reqs):,}", f"{len(reqs) / reqs.duration_s:.1f}", replicas, f"{int(result.iterations.sum()):,}", f"{wall_s:.1f}",
        f"{result.percentile_ms('ttft', 99):,.0f}", f"{result.percentile_ms('tpot', 99):.0f}",
        f"{result.goodput_rps(SLO):.1f}", f"{int(result.preemptions.sum()):,}", f"{before} / {load()}",
    ]]


def main() -> None:
    profile = published_profile("Llama-2-7b-hf", "a100")
    model = fit_iteration_model(profile)
    server = ServerConfig(kv_capacity_tokens=profile.attrs["llm"]["kv_capacity_tokens"])
    frame = trace()
    mix = TokenMix(frame["ContextTokens"].to_numpy(), frame["GeneratedTokens"].to_numpy())
    simulate_llm(LlmRequests(np.zeros(1), np.ones(1), np.ones(1)), model, server)  # compile outside the timings
    capacity = search_capacity(model, server, mix, SLO, requests=3000)
    speed = markdown_table(
        ["requests (numba)", "iterations", "numba req/s (median)", "numba iterations/s", "requests (SimPy)", "SimPy req/s (median)",
         "speed-up", "same token times", "load before / after"],
        speed_rows(frame, model, server, capacity.rate_rps),
    )
    day = markdown_table(
        ["requests", "mean rps", "replicas", "iterations", "wall s", "p99 TTFT ms", "p99 TPOT ms", "goodput rps", "preemptions",
         "load before / after"],
        day_rows(frame, model, server, capacity.rate_rps),
    )
    note = (
        f"Published Llama-2-7B on A100 (vidur operators + attention estimate), vLLM defaults, KV {server.kv_capacity_tokens:,} tokens. "
        f"Capacity per replica at p99 TTFT {SLO.ttft_ms:g} ms / TPOT {SLO.tpot_ms:g} ms on the trace's token mix: "
        f"{capacity.rate_rps:.2f} requests/s. Speed: {REPEATS} runs each, median; one replica at 75 % of capacity. "
        "Day: the 2023 code trace compressed to 50 requests/s and repeated to 24 h, replicas = 1.1 x 50 / capacity, one run. "
        "Load is os.getloadavg() on this shared 2-vCPU machine (1, 5, 15 min). Target: >= 20x SimPy, a day in < 60 s."
    )
    print(speed, "\n\n" + day, "\n\n" + note)
    record("llm_simulator", "LLM simulator (numba vs SimPy; a day at 50 requests/s)", speed + "\n\n" + day + "\n\n" + note)


if __name__ == "__main__":
    main()
