"""The standard setting of issue 10 for tests (README, "Evidence"): a ResNet-18-like Amdahl
law l(b, c) = (0.025 b + 0.004)/c + 0.002 b + 0.001 s, written as a real profile Parquet
through `themis.profiler.table` (labelled synthetic: it is a law, not a measurement), the
simulator's service tables of it, and a plan's surge rule for one stage."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from themis.planner.model.config import PlanConfig
from themis.planner.model.latency import LatencyModel, load_latency_models
from themis.planner.model.serving import SurgeRule
from themis.planner.simulation.tables import ServiceTables
from themis.planner.traffic.trace import Trace
from themis.profiler.table import write_profile

CORES = (1, 2, 4, 8, 16)
BATCHES = (1, 2, 4, 8, 16)
MODEL = "amdahl_synthetic"


def latency_ms(batch: float, cores: float) -> float:
    return 1000.0 * ((0.025 * batch + 0.004) / cores + 0.002 * batch + 0.001)


def standard_model(directory: Path) -> LatencyModel:
    """The law as a fitted `LatencyModel`, read back from a profile Parquet in `directory`."""
    rows = []
    for cores in CORES:
        for batch in BATCHES:
            ms = latency_ms(batch, cores)
            rows.append({
                "model": MODEL, "device_kind": "cpu", "device_name": "synthetic (issue 10 standard setting)", "device_id": "",
                "cores": cores, "batch_size": batch, "dtype": "float32", "input_shape": "3x224x224",
                "p50_ms": ms, "p90_ms": ms, "p95_ms": ms, "p99_ms": ms, "mean_ms": ms, "std_ms": 0.0, "min_ms": ms,
                "max_ms": ms, "samples": 1, "throughput_ips": batch * 1000.0 / ms, "peak_memory_mb": float("nan"),
                "status": "ok", "error": "",
            })
    environment = {"host": "synthetic", "cpu_model": "synthetic Amdahl law (not measured)", "created_at": datetime.now(UTC).isoformat()}
    path = write_profile(Path(directory) / "standard_profile.parquet", rows, environment)
    return load_latency_models([path])[MODEL]


def service_row_ms(cores: int, max_batch: int = max(BATCHES)) -> np.ndarray:
    """service[k] for k = 0..max_batch (index 0 unused)."""
    return np.array([np.nan] + [latency_ms(k, cores) for k in range(1, max_batch + 1)])


def standard_tables(max_batch: int = max(BATCHES)) -> ServiceTables:
    service = np.stack([service_row_ms(c, max_batch) for c in CORES], axis=1)[None, :, :]
    return ServiceTables(CORES, np.nan_to_num(service))


def standard_rule(budget_ms: float = 400.0, max_replicas: int = 64) -> SurgeRule:
    return SurgeRule(
        budget_ms=budget_ms,
        cores=CORES,
        batches=BATCHES,
        service_ms=tuple(tuple(float(x) for x in service_row_ms(c)[1:]) for c in CORES),
        max_replicas=max_replicas,
    )


def amplified(trace: Trace, copies: int) -> Trace:
    """The standard setting's amplification: `copies` copies of every request, each shifted
    by an independent uniform [0, 1) s jitter from numpy's `default_rng(copies)`."""
    base = np.asarray(trace.arrivals_s, dtype=float)
    arrivals = np.sort((base[:, None] + np.random.default_rng(copies).random((base.size, copies))).ravel())
    seconds = math.ceil(max(trace.duration_s, float(arrivals[-1]) + 1e-9))
    counts = np.bincount(arrivals.astype(np.int64), minlength=seconds)[:seconds]
    return Trace(f"{trace.name} x{copies}", trace.source_format, trace.start, 1.0, counts, arrivals)


def standard_plan_config(cold_start_s: float = 30.0) -> PlanConfig:
    """Planning options of the standard setting (SLO p99 400 ms, resize 1 s, 60 s intervals,
    at most 16 cores per replica and 64 replicas)."""
    return PlanConfig(
        slo_ms=400.0, cold_start_s=cold_start_s, resize_s=1.0, interval_s=60.0, node_cores=16, max_replicas=64,
        cores=CORES, batch_sizes=BATCHES,
    )
