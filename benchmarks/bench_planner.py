"""Planner benchmarks: wall time of `plan()` end to end with the default forecast
(`forecast="auto"`, policy themis) on real traces tiled to the benchmark's length, golden
profiles measured on this machine, up to 64 replicas, cores {1, 2, 4, 8, 16} (node of 16
cores), batches 1..32.

1. one stage, 14 days at 1-minute intervals (the Azure Functions 2019 day, tiled): target 2 s
2. one stage, one day at 1-second intervals (the Azure LLM hour of per-request times, tiled): target 10 s
3. three stages, one day at 1-minute intervals: target 5 s

The timed region is the whole `plan()` call, rolling forecast included, as a user gets it.
The forecast alone (`forecast_peaks(peaks, "auto")`) is timed separately on the same peaks
and reported next to it with its share of the plan's time. Each case runs `REPEATS` times
in fresh solvers (no cache carried over); medians are reported. The first forecast in the
process also imports statsmodels (about 1 s here), which the medians leave out.
Run: `.venv/bin/python benchmarks/bench_planner.py`
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from _results import markdown_table, record

from themis.data import bundled_trace
from themis.planner.traffic.forecast import forecast_peaks
from themis.planner.model.latency import load_latency_models
from themis.planner.model.config import PlanConfig
from themis.planner.optimise.plan import plan
from themis.planner.model.serving import Stage
from themis.planner.traffic.trace import Trace
from themis.planner.traffic.loading import load_trace

PROFILES = Path(__file__).resolve().parents[1] / "tests" / "data" / "profiles"
REPEATS = 3
BATCHES = tuple(range(1, 33))
CORES = (1, 2, 4, 8, 16)


def tiled_minutes(days: int) -> Trace:
    day = load_trace(bundled_trace("azure_functions_2019"))
    counts = np.tile(day.counts, days)
    return Trace("functions-2019 x%d" % days, "tiled", day.start, day.interval_s, counts)


def tiled_seconds() -> Trace:
    hour = load_trace(bundled_trace("azure_llm_2023_code"))
    span = np.ceil(hour.duration_s)
    copies = int(np.ceil(86400 / span))
    arrivals = np.concatenate([hour.arrivals_s + k * span for k in range(copies)])
    arrivals = arrivals[arrivals < 86400]
    counts = np.bincount(arrivals.astype(np.int64), minlength=86400)[:86400]
    return Trace("llm-2023 tiled to a day", "tiled", hour.start, 1.0, counts, arrivals)


def scale_to(trace: Trace, peak_rps: float, interval_s: float) -> Trace:
    return trace.scaled(peak_rps / float(trace.peak_rates(interval_s).max()), seed=0)


def timed(trace: Trace, stages, interval_s: float) -> tuple[float, float, int, bool]:
    """Median seconds of `plan()` (forecast "auto" inside) and of the forecast alone."""
    config = PlanConfig(slo_ms=1000.0, interval_s=interval_s, max_replicas=64, node_cores=16, cores=CORES,
                        batch_sizes=BATCHES, forecast="auto")
    peaks = trace.peak_rates(interval_s, window_s=min(config.peak_window_s, interval_s))
    plan_s, forecast_s = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        forecast_peaks(peaks, config.forecast, interval_s=interval_s)
        forecast_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = plan(trace, stages, config, "themis")
        plan_s.append(time.perf_counter() - start)
    return statistics.median(plan_s), statistics.median(forecast_s), len(result.schedule.steps), result.feasible


def main() -> None:
    models = {name: load_latency_models([PROFILES / f"{name}_cpu.parquet"])[name] for name in ("resnet18", "small_cnn", "mlp")}
    one = [(Stage("classify", "resnet18"), models["resnet18"])]
    three = [
        (Stage("screen", "small_cnn"), models["small_cnn"]),
        (Stage("embed", "mlp", visit_ratio=0.8), models["mlp"]),
        (Stage("classify", "resnet18", visit_ratio=0.5), models["resnet18"]),
    ]
    cases = [
        ("1 stage, 14 days @ 1 min", scale_to(tiled_minutes(14), 300.0, 60.0), one, 60.0, 2.0),
        ("1 stage, 1 day @ 1 s", scale_to(tiled_seconds(), 300.0, 1.0), one, 1.0, 10.0),
        ("3 stages, 1 day @ 1 min", scale_to(tiled_minutes(1), 150.0, 60.0), three, 60.0, 5.0),
    ]
    rows = []
    for title, trace, stages, interval_s, target_s in cases:
        seconds, forecast_s, steps, feasible = timed(trace, stages, interval_s)
        met = "yes" if seconds <= target_s else "NO"
        share = f"{forecast_s:.2f} ({forecast_s / seconds:.0%})"
        rows.append([title, f"{steps:,}", f"{seconds:.2f}", share, f"{target_s:g}", met, "yes" if feasible else "no"])
        print(rows[-1], flush=True)
    headers = ["case", "intervals", "plan median s", "forecast alone median s (share)", "target s", "met", "plan feasible"]
    table = markdown_table(headers, rows)
    print(table)
    record(
        "planner",
        "Planner: time to plan (policy themis, forecast auto, end to end)",
        "Up to 64 replicas, cores {1,2,4,8,16}, batches 1..32, golden CPU profiles, SLO 1 s; traces are real "
        "(Azure Functions 2019 day, Azure LLM 2023 hour) tiled to length and scaled to a 300 rps peak (150 for 3 stages); "
        f"median of {REPEATS}. `plan median s` times the whole `plan()` call including the rolling `auto` forecast "
        "(the default); the forecast alone is timed on the same peaks, its share is of the plan's median. "
        "The first forecast in a process also pays the statsmodels import, which the medians leave out.\n\n" + table,
    )


if __name__ == "__main__":
    main()
