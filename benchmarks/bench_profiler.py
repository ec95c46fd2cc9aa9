"""Profiler benchmark: measurement overhead against a bare torch loop.

For each (model, batch), one process set up exactly like a 1-core worker alternates
themis's timing of a window (`measure.time_window`, what every worker runs) and a bare
`perf_counter` loop over the same module and input, many short rounds, so the shared
machine's noise hits both alike. The ratio of the two medians should stay within
0.95-1.05: themis adds nothing to what it times. (The default grid's wall time, and what
the stability machinery costs, are in `bench_measurement.py`.)

Run: `.venv/bin/python benchmarks/bench_profiler.py`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from _results import markdown_table, record

from themis.profiler.devices import available_cpus
from themis.profiler.measure import cpu_timer, time_window
from themis.profiler.models import load_model, resolve_model
from themis.profiler.worker import confine

CASES = [("small_cnn", 8), ("mobilenet_v2", 1), ("resnet18", 1)]
ROUNDS = 21
CALLS = 30
WARMUP = 3


def paired_medians_ms(model: str, batch: int) -> tuple[list[float], list[float]]:
    """In ONE process confined like a 1-core worker: alternate themis's `time_window` and a
    bare loop on the same module and input, ROUNDS times (order swapped every round), so
    machine noise hits both alike. Returns the per-round medians (themis, bare)."""
    torch = confine(1, available_cpus())
    module, make_input = load_model(resolve_model(model), "float32", "cpu")
    inputs = make_input(batch)

    def themis() -> float:
        with torch.inference_mode():
            for _ in range(WARMUP):
                module(inputs)
            return statistics.median(time_window(lambda: module(inputs), cpu_timer, CALLS, 0.0))  # exactly CALLS calls

    def bare() -> float:
        times = []
        with torch.inference_mode():
            for i in range(WARMUP + CALLS):
                start = time.perf_counter_ns()
                module(inputs)
                if i >= WARMUP:
                    times.append((time.perf_counter_ns() - start) / 1e6)
        return statistics.median(times)

    themis_ms, bare_ms = [], []
    for round_index in range(ROUNDS):
        if round_index % 2:
            bare_ms.append(bare())
            themis_ms.append(themis())
        else:
            themis_ms.append(themis())
            bare_ms.append(bare())
    return themis_ms, bare_ms


def overhead_rows() -> list[list[object]]:
    rows = []
    for model, batch in CASES:
        # A fresh process per model, so the affinity of this one is left alone.
        out = subprocess.run([sys.executable, __file__, "--pair", model, str(batch)], capture_output=True, text=True, check=True)
        themis, bare = json.loads(out.stdout)
        ratios = [t / b for t, b in zip(themis, bare)]
        themis_ms, bare_ms = statistics.median(themis), statistics.median(bare)
        rows.append([model, batch, f"{themis_ms:.3f}", f"{bare_ms:.3f}", f"{themis_ms / bare_ms:.3f}",
                     f"{statistics.median(ratios):.3f}", f"{min(ratios):.2f}-{max(ratios):.2f}"])
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--pair"]:
    print(json.dumps(paired_medians_ms(sys.argv[2], int(sys.argv[3]))))
elif __name__ == "__main__":
    rows = overhead_rows()
    body = (
        f"One process confined like a 1-core worker (`worker.confine`: affinity to 1 CPU, 1 torch thread) "
        f"alternates themis's `time_window` and a bare `perf_counter` loop on the same module and input: "
        f"{ROUNDS} rounds of {CALLS} timed calls after {WARMUP} warm-ups each, order swapped every round. "
        "Columns: median over rounds of each side's per-round median, their ratio, and the median and range "
        "of the per-round ratios.\n\n"
        + markdown_table(["model", "batch", "themis p50 ms", "bare loop p50 ms", "ratio of medians", "per-round ratio (median)", "per-round range"], rows)
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body += (
        f"\n\nLoad average at the end: {load} (2 vCPUs, shared); the paired ratios cancel most of the noise."
    )
    record("profiler", "Profiler: overhead against a bare torch loop", body)
