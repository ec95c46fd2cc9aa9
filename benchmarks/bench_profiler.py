"""Profiler benchmarks: measurement overhead against a bare torch loop, and the default grid's wall time.

1. For each (model, batch), alternate rounds of a one-cell `themis` profile (its own
   worker, pinned to 1 CPU, 1 thread) and a bare loop in a fresh process pinned and
   threaded the same way, timing the same number of calls with `perf_counter`. The ratio
   of the two medians should stay within 0.95-1.05: themis adds nothing to what it times.
2. The wall time of `themis profile resnet18` with its defaults on this machine.

Run: `.venv/bin/python benchmarks/bench_profiler.py` (add `--quick` to skip the grid).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import markdown_table, record

from themis.profiler.devices import available_cpus, cpu_device
from themis.profiler.measure import Budget
from themis.profiler.models import resolve_model
from themis.profiler.run import ProfileRequest, run_profile

CASES = [("small_cnn", 8), ("mobilenet_v2", 1), ("resnet18", 1)]
ROUNDS = 5
CALLS = 40
WARMUP = 3

BARE_LOOP = """
import os, sys, time, statistics
os.sched_setaffinity(0, [int(sys.argv[3])])
os.environ["OMP_NUM_THREADS"] = "1"
import torch
torch.set_num_threads(1)
from themis.sample_models import SAMPLE_MODELS
sample = SAMPLE_MODELS[sys.argv[1]]
model = sample.build()
x = torch.randn(int(sys.argv[2]), *sample.input_shape, generator=torch.Generator().manual_seed(0))
times = []
with torch.inference_mode():
    for i in range({warmup} + {calls}):
        start = time.perf_counter_ns()
        model(x)
        if i >= {warmup}:
            times.append((time.perf_counter_ns() - start) / 1e6)
print(statistics.median(times))
""".format(warmup=WARMUP, calls=CALLS)


def bare_median_ms(model: str, batch: int) -> float:
    out = subprocess.run([sys.executable, "-c", BARE_LOOP, model, str(batch), str(available_cpus()[0])], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def themis_median_ms(model: str, batch: int, directory: Path) -> float:
    # budget_s ~ 0 and min_samples = CALLS: exactly CALLS timed calls, like the bare loop.
    budget = Budget(budget_s=1e-6, min_samples=CALLS, warmup=WARMUP, stable_after=10**9)
    request = ProfileRequest(resolve_model(model), [cpu_device()], [1], [batch], "float32", budget, directory / f"{model}.parquet", overwrite=True)
    return float(run_profile(request).frame.p50_ms.iloc[0])


def overhead_rows() -> list[list[object]]:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for model, batch in CASES:
            themis, bare = [], []
            for _ in range(ROUNDS):  # interleaved so drifts in machine load hit both sides alike
                themis.append(themis_median_ms(model, batch, Path(directory)))
                bare.append(bare_median_ms(model, batch))
            ratios = [t / b for t, b in zip(themis, bare)]
            rows.append([model, batch, f"{statistics.median(themis):.3f}", f"{statistics.median(bare):.3f}",
                         f"{statistics.median(ratios):.3f}", f"{min(ratios):.3f}-{max(ratios):.3f}"])
            print(rows[-1], flush=True)
    return rows


def default_grid_wall_s() -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "resnet18.parquet"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from themis.cli.app import main; main()", "profile", "resnet18", "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        wall_s = time.perf_counter() - started
        from themis.profiler.table import read_profile

        return wall_s, len(read_profile(out))


if __name__ == "__main__":
    rows = overhead_rows()
    body = (
        f"Median latency of {CALLS} timed calls after {WARMUP} warm-ups, 1 CPU (affinity) and 1 thread, "
        f"{ROUNDS} interleaved rounds; ratio = themis / bare loop per round, median and range.\n\n"
        + markdown_table(["model", "batch", "themis p50 ms", "bare loop p50 ms", "ratio (median)", "ratio range"], rows)
    )
    if "--quick" not in sys.argv:
        wall_s, cells = default_grid_wall_s()
        body += (
            f"\n\nDefault grid `themis profile resnet18` (cores {', '.join(map(str, [1, 2] if len(available_cpus()) >= 2 else [1]))}, "
            f"batch sizes 1-32, budget 1 s, 10 samples min per cell): **{wall_s:.0f} s** wall for {cells} cells."
        )
        print(f"default resnet18 grid: {wall_s:.1f} s, {cells} cells")
    body += "\n\nThe 2-vCPU machine was shared with three other engineers' test runs while this ran, so absolute latencies are noisy (2-core cells most)."
    record("profiler", "Profiler: overhead against a bare torch loop, default grid wall time", body)
