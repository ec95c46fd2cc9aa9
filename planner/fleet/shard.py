"""One task of fleet planning: plan a shard of services, return their rows as Parquet bytes.

A shard carries everything its services need (traces, fitted models, settings), so a
worker on any machine plans it without reading the driver's files, and returns the rows
encoded as Parquet (compact to send back; the driver writes them to disk as they are). The
same bytes come out whichever engine ran the task.

Planning many services is cheaper than planning each alone, in two exact ways. The solver
(the candidate spaces, their latency grids per load level and the solutions per level) is
shared by the shard's services with the same models and settings: its caches are pure
functions of the load level, so a plan is the same with or without sharing; it is dropped
with the shard, so a worker's memory does not grow with the fleet. And a service whose
traffic, models, settings and policy equal one planned lately by the same worker reuses
its rows (`PlannedRows`).

Rows (`PLAN_SCHEMA`): one per (service, interval, stage, group of equal replicas): the
replicas requested at the start of the interval, their cores and memory each, the batch,
the device, the group's cost over the interval (the one pricing rule), the stage's
estimated latency, and whether the service's serving replicas miss the SLO in that
interval by the estimate (delays applied; the same count as the plan's
`estimated_violation_intervals`).
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import astuple, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from themis.common import SCHEMA_VERSION
from themis.planner.fleet.models import ServiceModels
from themis.planner.model.config import PlanConfig
from themis.planner.optimise.plan import PlanResult, interval_solver, plan
from themis.planner.optimise.solver import IntervalSolver
from themis.planner.traffic.trace import Trace

PLAN_KIND = "fleet_plan_shard"
PLANS = "plans"
"""The folder of the output directory that holds the per-service plan table, a shard a file."""
PLAN_SCHEMA = pa.schema(
    [
        ("service", pa.string()),
        ("interval", pa.int32()),
        ("t_start_s", pa.float64()),
        ("stage", pa.string()),
        ("group", pa.int8()),
        ("device", pa.string()),
        ("replicas", pa.int32()),
        ("cores_per_replica", pa.int32()),
        ("cores", pa.int32()),
        ("memory_mb", pa.int32()),
        ("batch", pa.int32()),
        ("cost", pa.float64()),
        ("est_latency_ms", pa.float64()),
        ("est_violation", pa.bool_()),
        ("forecast_rps", pa.float64()),
        ("feasible", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class ServiceJob:
    """One service as a worker plans it."""

    name: str
    trace: Trace
    models_key: str
    config: PlanConfig
    policy: str
    memory_mb: float | None = None


@dataclass(frozen=True)
class ShardTask:
    """A shard: its index, the fleet it belongs to, its services and their models."""

    index: int
    fingerprint: str
    services: tuple[ServiceJob, ...]
    models: dict[str, ServiceModels]
    policies: tuple[str, ...] = ()
    """`fleet compare`: the policies every service runs (a plan uses each service's own)."""
    seed: int = 0


@dataclass(frozen=True)
class ShardOutput:
    """What a task returns: its index and its tables as Parquet bytes, by table name (the
    folder of the output directory each goes to)."""

    index: int
    files: dict[str, bytes]
    services: int


def plan_shard(task: ShardTask) -> ShardOutput:
    """Plan every service of the shard; the rows in service order, as Parquet bytes."""
    solvers: dict[tuple, IntervalSolver] = {}
    parts: list[dict[str, np.ndarray]] = []
    for job in task.services:
        content = _content_key(job)
        rows = PLANNED.get(content)
        if rows is None:
            models = task.models[job.models_key]
            key = (job.models_key, _config_key(job.config))
            if key not in solvers:
                solvers[key] = interval_solver(models.stages, job.config)
            rows = service_rows(job, models, plan(job.trace, models.stages, job.config, job.policy, solver=solvers[key]))
            PLANNED.put(content, rows)
        parts.append({**rows, "service": np.full(len(rows["interval"]), job.name, dtype=object)})
    columns = {name: np.concatenate([part[name] for part in parts]) if parts else [] for name in PLAN_SCHEMA.names}
    table = pa.table(columns, schema=PLAN_SCHEMA)
    return ShardOutput(task.index, {PLANS: encode(table, PLAN_KIND, task.fingerprint)}, len(task.services))


def service_rows(job: ServiceJob, models: ServiceModels, result: PlanResult) -> dict[str, np.ndarray]:
    """The rows of one service's plan (`PLAN_SCHEMA` columns), one per (interval, stage, group)."""
    schedule = result.schedule
    records = [
        (i, step.t_start_s, step.duration_s, step.forecast_rps, j, g, alloc.device, group.replicas, group.cores, alloc.batch,
         alloc.est_latency_ms)
        for i, step in enumerate(schedule.steps)
        for j, alloc in enumerate(step.stages)
        for g, group in enumerate(alloc.groups)
    ]
    interval, t_start, duration, forecast, stage, group, device, replicas, cores, batch, latency = (
        list(column) for column in zip(*records)
    ) if records else ([] for _ in range(11))
    replicas_a, cores_a = np.asarray(replicas, dtype=np.int64), np.asarray(cores, dtype=np.int64)
    total_cores = replicas_a * cores_a
    memory: dict[tuple[int, str, int], int] = {}
    for key in zip(stage, device, batch):
        if key not in memory:
            memory[key] = int(np.ceil(job.memory_mb)) if job.memory_mb is not None else models.pod_memory_mb(*key)
    prices = schedule.prices
    unit_price = {d: prices.unit_price_per_hour(d) or 0.0 for d in set(device)}
    violated = np.zeros(len(schedule.steps), dtype=bool)
    violated[list(result.estimated_violation_steps)] = True
    n = len(records)
    interval_a = np.asarray(interval, dtype=np.int64)
    return {
        "service": np.full(n, job.name, dtype=object),
        "interval": interval_a,
        "t_start_s": np.asarray(t_start, dtype=float),
        "stage": np.array([schedule.stages[j].name for j in stage], dtype=object),
        "group": np.asarray(group, dtype=np.int64),
        "device": np.asarray(device, dtype=object),
        "replicas": replicas_a,
        "cores_per_replica": cores_a,
        "cores": total_cores,
        "memory_mb": np.array([memory[k] for k in zip(stage, device, batch)], dtype=np.int64),
        "batch": np.asarray(batch, dtype=np.int64),
        # the one pricing rule (`model.cost.cost`), applied per row: unit-seconds / 3600 x unit price
        "cost": total_cores * np.asarray(duration, dtype=float) / 3600.0 * np.array([unit_price[d] for d in device], dtype=float),
        "est_latency_ms": np.asarray(latency, dtype=float),
        "est_violation": violated[interval_a] if n else np.zeros(0, dtype=bool),
        "forecast_rps": np.asarray(forecast, dtype=float),
        "feasible": np.full(n, result.feasible, dtype=bool),
    }


def encode(table: pa.Table, kind: str, fingerprint: str) -> bytes:
    """A table as Parquet bytes with themis's footer metadata (deterministic: same rows, same bytes)."""
    meta = {b"themis.kind": kind.encode(), b"themis.schema_version": str(SCHEMA_VERSION).encode(), b"themis.fleet": fingerprint.encode()}
    table = table.replace_schema_metadata(meta)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


class PlannedRows:
    """The rows of services planned lately in this process, by content (LRU, bounded in rows).

    Services with the same traffic, models, settings and policy have the same plan, and real
    fleets have many: of the 200 bundled Azure functions, 82 repeat another's per-minute
    counts exactly (timer-triggered functions). Such a service costs a lookup, here and in
    any later shard the same worker plans.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.rows = 0
        self._entries: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()

    def get(self, key: tuple) -> dict[str, np.ndarray] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: tuple, rows: dict[str, np.ndarray]) -> None:
        size = len(rows["interval"])
        if size > self.max_rows:
            return
        self._entries[key] = rows
        self.rows += size
        while self.rows > self.max_rows:
            _, dropped = self._entries.popitem(last=False)
            self.rows -= len(dropped["interval"])


PLANNED = PlannedRows(max_rows=500_000)
"""This worker's recent plans (about 60 MB at most)."""


def _content_key(job: ServiceJob) -> tuple:
    """Everything a service's rows depend on but its name."""
    trace = job.trace
    digest = hashlib.sha256(np.ascontiguousarray(trace.counts, dtype=np.int64).tobytes())
    if trace.arrivals_s is not None:
        digest.update(np.ascontiguousarray(trace.arrivals_s, dtype=np.float64).tobytes())
    return (digest.hexdigest(), trace.arrivals_s is not None, trace.interval_s, trace.trace_start, job.models_key,
            _config_key(job.config), job.policy, job.memory_mb)


def _config_key(config: PlanConfig) -> tuple:
    """PlanConfig as a hashable key (its GPU prices are a dict)."""
    return tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in astuple(config))


def shard_ranges(services: int, shard_size: int) -> Sequence[range]:
    """Service index ranges of the shards, in order."""
    return [range(start, min(start + shard_size, services)) for start in range(0, services, shard_size)]
