"""Forecast benchmark: the planning loss of every method on every bundled trace, and the
time of the `auto` forecast on the planner benchmark's long series.

1. Planning loss (`themis.planner.traffic.forecast.planning_loss`: 4 x shortfall + excess,
   per unit of actual peak) of each method's rolling forecasts, per bundled trace: the LLM
   trace at 60, 10 and 1 s, the Azure Functions 2019 sum of all and busiest function, and
   the 2021 sample, at 60 s. `lstm` is left out (optional, slow; never the best here).
2. `forecast_peaks(peaks, "auto")` on 14 days at 1 minute and one day at 1 second (the
   planner benchmark's traces), median of `REPEATS`; the imports and the Holt-Winters fit's
   numba code are loaded first.

The machine's load average is printed and recorded beside the timings.
Run: `.venv/bin/python benchmarks/bench_forecast.py`
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
from _results import markdown_table, record
from bench_planner import tiled_minutes, tiled_seconds

from themis.data import bundled_trace
from themis.planner.traffic.forecast import METHODS, forecast_peaks, planning_loss
from themis.planner.traffic.loading import load_trace

REPEATS = 3
CASES = [
    ("Azure LLM 2023 code", "azure_llm_2023_code", None, 60.0),
    ("Azure LLM 2023 code", "azure_llm_2023_code", None, 10.0),
    ("Azure LLM 2023 code", "azure_llm_2023_code", None, 1.0),
    ("Azure Functions 2019, sum of all", "azure_functions_2019", None, 60.0),
    ("Azure Functions 2019, busiest function", "azure_functions_2019", 1, 60.0),
    ("Azure Functions 2021 sample", "azure_functions_2021", None, 60.0),
]
SINGLE_METHODS = [m for m in METHODS if m not in ("auto", "lstm")]


def losses() -> str:
    rows = []
    for title, name, top, interval_s in CASES:
        peaks = load_trace(bundled_trace(name), top=top).peak_rates(interval_s)
        scores = {m: planning_loss(peaks, forecast_peaks(peaks, m, interval_s=interval_s)) for m in [*SINGLE_METHODS, "auto"]}
        best = min(SINGLE_METHODS, key=scores.__getitem__)
        rows.append([f"{title}, {interval_s:g} s", f"{len(peaks):,}", *(f"{scores[m]:.4f}" for m in SINGLE_METHODS),
                     f"**{scores['auto']:.4f}**", f"{scores['auto'] / scores[best]:.3f} ({best})"])
        print(rows[-1], flush=True)
    return markdown_table(["trace", "intervals", *SINGLE_METHODS, "auto", "auto / best single"], rows)


def timings() -> str:
    forecast_peaks(np.linspace(1.0, 5.0, 100), "holt_winters", interval_s=60.0)  # imports, numba code
    rows = []
    for title, trace, interval_s in (("14 days @ 1 min", tiled_minutes(14), 60.0), ("1 day @ 1 s", tiled_seconds(), 1.0)):
        peaks = trace.peak_rates(interval_s)
        seconds = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            forecast_peaks(peaks, "auto", interval_s=interval_s)
            seconds.append(time.perf_counter() - start)
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        rows.append([title, f"{len(peaks):,}", f"{statistics.median(seconds):.2f}", load])
        print(rows[-1], flush=True)
    return markdown_table(["series", "intervals", "auto forecast median s", "load average 1/5/15 min"], rows)


def main() -> None:
    loss_table, time_table = losses(), timings()
    print(loss_table)
    print(time_table)
    record(
        "forecast",
        "Forecasts: planning loss on the bundled traces, and the time of `auto`",
        "Planning loss (4 x shortfall + excess, per unit of actual peak; lower is better) of rolling one-interval-ahead "
        "forecasts of each interval's 1 s peak. `auto / best single` is auto's loss over the best other method's.\n\n"
        + loss_table + f"\n\nTime of the `auto` forecast alone, median of {REPEATS}:\n\n" + time_table,
    )


if __name__ == "__main__":
    main()
