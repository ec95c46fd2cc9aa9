"""Profiler benchmarks: measurement overhead against a bare torch loop, and the default grid's wall time.

1. For each (model, batch), one process set up exactly like a 1-core worker alternates
   themis's cell measurement and a bare `perf_counter` loop over the same module and
   input, many short rounds, so the shared machine's noise hits both alike. The ratio of
   the two medians should stay within 0.95-1.05: themis adds nothing to what it times.
2. The wall time of `themis profile resnet18` with its defaults on this machine.

Run: `.venv/bin/python benchmarks/bench_profiler.py` (add `--quick` to skip the grid).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import markdown_table, record

from themis.profiler.devices import available_cpus
from themis.profiler.measure import Budget, CellRecord, measure_cell
from themis.profiler.models import load_model, resolve_model
from themis.profiler.table import read_profile
from themis.profiler.worker import confine

CASES = [("small_cnn", 8), ("mobilenet_v2", 1), ("resnet18", 1)]
ROUNDS = 21
CALLS = 30
WARMUP = 3


def paired_medians_ms(model: str, batch: int) -> tuple[list[float], list[float]]:
    """In ONE process confined like a 1-core worker: alternate themis's `measure_cell` and a
    bare loop on the same module and input, ROUNDS times (order swapped every round), so
    machine noise hits both alike. Returns the per-round medians (themis, bare)."""
    torch = confine(1, available_cpus())
    module, make_input = load_model(resolve_model(model), "float32", "cpu")
    inputs = make_input(batch)
    budget = Budget(budget_s=1e-6, min_samples=CALLS, warmup=WARMUP, stable_after=10**9)  # exactly CALLS timed calls

    def themis() -> float:
        record = CellRecord(model, "cpu", "", "", 1, batch, "float32", "")
        return measure_cell(record, module, lambda _: inputs, budget).p50_ms

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


def default_grid_wall_s() -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "resnet18.parquet"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from themis.cli.app import main; main()", "profile", "resnet18", "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        wall_s = time.perf_counter() - started
        return wall_s, len(read_profile(out))


if __name__ == "__main__" and sys.argv[1:2] == ["--pair"]:
    print(json.dumps(paired_medians_ms(sys.argv[2], int(sys.argv[3]))))
elif __name__ == "__main__":
    rows = overhead_rows()
    body = (
        f"One process confined like a 1-core worker (`worker.confine`: affinity to 1 CPU, 1 torch thread) "
        f"alternates themis's `measure_cell` and a bare `perf_counter` loop on the same module and input: "
        f"{ROUNDS} rounds of {CALLS} timed calls after {WARMUP} warm-ups each, order swapped every round. "
        "Columns: median over rounds of each side's per-round median, their ratio, and the median and range "
        "of the per-round ratios.\n\n"
        + markdown_table(["model", "batch", "themis p50 ms", "bare loop p50 ms", "ratio of medians", "per-round ratio (median)", "per-round range"], rows)
    )
    if "--quick" not in sys.argv:
        wall_s, cells = default_grid_wall_s()
        body += (
            f"\n\nDefault grid `themis profile resnet18` (cores {', '.join(map(str, [1, 2] if len(available_cpus()) >= 2 else [1]))}, "
            f"batch sizes 1-32, budget 1 s, 10 samples min per cell): **{wall_s:.0f} s** wall for {cells} cells."
        )
        print(f"default resnet18 grid: {wall_s:.1f} s, {cells} cells")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body += (
        f"\n\nThe 2-vCPU machine was shared with three other engineers' test runs while this ran (load average {load} "
        "at the end), so absolute latencies are noisy, 2-core cells most; the paired ratios cancel most of it."
    )
    record("profiler", "Profiler: overhead against a bare torch loop, default grid wall time", body)
