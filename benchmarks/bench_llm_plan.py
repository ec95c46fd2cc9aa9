"""LLM planning end to end on the bundled Azure LLM code trace (57 minutes, 8,819 requests):
`plan_llm` (capacity searches included) and `compare_llm` (five policies replayed through the
fleet simulator), for tiny_llm measured on this CPU (the committed profile, 1 and 2 cores)
and for the published Llama-2-7B profiles on A100 and H100 with the trace scaled 10x.

Each row is one cold run in a fresh capacity cache (numba compiled beforehand), with the
plan's cost per million tokens and the load average beside it.

    python benchmarks/bench_llm_plan.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import markdown_table, record  # noqa: E402

from themis.data import bundled_trace  # noqa: E402
from themis.planner.llm.compare import compare_llm  # noqa: E402
from themis.planner.llm.iteration import fit_iteration_model, load_iteration_models  # noqa: E402
from themis.planner.llm.plan import LlmPlanConfig, plan_llm  # noqa: E402
from themis.planner.llm.published import published_profile  # noqa: E402
from themis.planner.llm.service import LlmSlo, ServerConfig  # noqa: E402
from themis.planner.llm.simulate import ReplicaType  # noqa: E402
from themis.planner.model.cost import Prices  # noqa: E402
from themis.planner.traffic.loading import load_trace  # noqa: E402

TINY = Path(__file__).resolve().parents[1] / "tests" / "data" / "profiles" / "tiny_llm_cpu.parquet"


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def cases():
    trace = load_trace(bundled_trace("azure_llm_2023_code"))
    tiny = [ReplicaType(m, ServerConfig(kv_capacity_tokens=131_072, max_num_batched_tokens=256)) for m in load_iteration_models(TINY)]
    gpus = []
    for gpu in ("a100", "h100"):
        frame = published_profile("Llama-2-7b-hf", gpu)
        gpus.append(ReplicaType(fit_iteration_model(frame), ServerConfig(kv_capacity_tokens=frame.attrs["llm"]["kv_capacity_tokens"])))
    yield ("tiny_llm, cpu x1 and x2 (committed profile)", trace, tiny,
           LlmPlanConfig(slo=LlmSlo(8000.0, 200.0), interval_s=300.0, max_replicas=128, prices=Prices(0.05)))
    yield ("Llama-2-7B, A100 and H100 (published), trace x10", trace.scaled(10.0), gpus,
           LlmPlanConfig(slo=LlmSlo(2000.0, 150.0), interval_s=300.0, prices=Prices(0.0, {"a100": 2.0, "h100": 3.5})))


def main() -> None:
    rows = []
    for name, trace, types, config in cases():
        plan_llm(trace.window(0.0, 600.0), types, config)  # compile the simulator outside the timings
        before = load()
        started = time.perf_counter()
        plan = plan_llm(trace, types, config, "themis")
        plan_s = time.perf_counter() - started
        started = time.perf_counter()
        comparison = compare_llm(trace, types, config)
        compare_s = time.perf_counter() - started
        totals = plan.to_dict()["totals"]
        rows.append([name, f"{trace.requests:,}", f"{plan_s:.1f}", f"{compare_s:.1f}", f"{len(plan.capacities)}",
                     f"{totals['cost_per_mtok']:.4f}", str(plan.feasible), f"{before} / {load()}"])
        print(rows[-1], flush=True)
        del comparison
    headers = ["service", "requests", "plan s (themis)", "compare s (5 policies)", "capacity searches", "themis cost / Mtok",
               "feasible", "load before / after"]
    notes = (
        "\n\nSLOs: tiny_llm p99 TTFT 8 s, TPOT 200 ms, 256-token prefill chunks, at 0.05 per core-hour; Llama-2-7B p99 TTFT 2 s, "
        "TPOT 150 ms, at 2.0 (A100) and 3.5 (H100) per GPU-hour (illustrative prices). 5-minute intervals, 10-minute token "
        "mixes, 2,000 Poisson requests per capacity probe. One cold run each (fresh capacity cache); load is os.getloadavg() "
        "on this shared 2-vCPU machine (1, 5, 15 min)."
    )
    markdown = markdown_table(headers, rows)
    print(markdown + notes)
    record("llm_plan", "LLM planning and comparison on the bundled trace", markdown + notes)


if __name__ == "__main__":
    main()
