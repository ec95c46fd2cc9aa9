"""Rules of thumb that size an experiment to the measured model (used by `themis demo`).

A bundled trace peaks at a few dozen requests per second, which one replica of a small
model serves alone; to show scaling decisions the trace is scaled so that its peak needs
several replicas of the model as measured on this machine.
"""

from __future__ import annotations

import pandas as pd

from themis.planner.model.config import DEFAULT_INTERVAL_S
from themis.planner.traffic.trace import Trace
from themis.profiler.table import MEASURED_STATUSES


def slo_for_profile(profile: pd.DataFrame, factor: float = 5.0) -> float:
    """An SLO (ms) that leaves room for batching and queueing: `factor` x the fastest
    measured batch-1 median, rounded to two significant digits."""
    measured = profile[profile["status"].isin(MEASURED_STATUSES)]
    ok = measured[measured["batch_size"] == 1]
    if ok.empty:
        ok = measured
    fastest_ms = float(ok["p50_ms"].min())
    return float(f"{factor * fastest_ms:.2g}")


def replica_throughput_rps(profile: pd.DataFrame, slo_ms: float) -> float:
    """Best measured throughput of one replica among cells whose p99 fits in half the SLO
    (the other half is left for batch fill and queueing)."""
    ok = profile[profile["status"].isin(MEASURED_STATUSES)]
    usable = ok[ok["p99_ms"] <= slo_ms / 2]
    return float((usable if not usable.empty else ok.nsmallest(1, "p99_ms"))["throughput_ips"].max())


def scale_for_replicas(trace: Trace, profile: pd.DataFrame, slo_ms: float, replicas: int, interval_s: float = DEFAULT_INTERVAL_S) -> float:
    """Factor by which to scale `trace` so that its peak needs about `replicas` replicas."""
    peak_rps = float(trace.peak_rates(interval_s).max())
    return replicas * replica_throughput_rps(profile, slo_ms) / peak_rps
