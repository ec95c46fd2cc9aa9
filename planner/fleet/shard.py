"""One task of fleet planning: plan a shard of services, return their rows as Parquet bytes.

A shard carries everything its services need (traces, fitted models, settings), so a
worker on any machine plans it without reading the driver's files, and returns the rows
encoded as Parquet (compact to send back; the driver writes them to disk as they are). The
same bytes come out whichever engine ran the task.

Planning many services is cheaper than planning each alone because the solver (the
candidate spaces, their latency grids per load level and the solutions per level) is
shared by the shard's services with the same models and settings: its caches are pure
functions of the load level, so a plan is the same with or without sharing. It is dropped
with the shard, so a worker's memory does not grow with the fleet.

Rows (`PLAN_SCHEMA`): one per (service, interval, stage, group of equal replicas): the
replicas requested at the start of the interval, their cores and memory each, the batch,
the device, the group's cost over the interval (the one pricing rule), the stage's
estimated latency, and whether the service's serving replicas miss the SLO in that
interval by the estimate (delays applied; the same count as the plan's
`estimated_violation_intervals`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import astuple, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from themis.common import SCHEMA_VERSION
from themis.planner.fleet.models import ServiceModels
from themis.planner.model.config import PlanConfig
from themis.planner.model.cost import cost
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
    columns: dict[str, list] = {name: [] for name in PLAN_SCHEMA.names}
    for job in task.services:
        models = task.models[job.models_key]
        key = (job.models_key, _config_key(job.config))
        if key not in solvers:
            solvers[key] = interval_solver(models.stages, job.config)
        result = plan(job.trace, models.stages, job.config, job.policy, solver=solvers[key])
        append_rows(columns, job, models, result)
    table = pa.table(columns, schema=PLAN_SCHEMA)
    return ShardOutput(task.index, {PLANS: encode(table, PLAN_KIND, task.fingerprint)}, len(task.services))


def append_rows(columns: dict[str, list], job: ServiceJob, models: ServiceModels, result: PlanResult) -> None:
    """The rows of one service's plan (`PLAN_SCHEMA`) appended to `columns`."""
    schedule = result.schedule
    violated = np.zeros(len(schedule.steps), dtype=bool)
    violated[list(result.estimated_violation_steps)] = True
    prices = schedule.prices
    add = [columns[name].append for name in PLAN_SCHEMA.names]
    for i, step in enumerate(schedule.steps):
        duration = step.duration_s
        for j, (stage, alloc) in enumerate(zip(schedule.stages, step.stages)):
            memory = job.memory_mb if job.memory_mb is not None else models.pod_memory_mb(j, alloc.device, alloc.batch)
            for g, group in enumerate(alloc.groups):
                row = (
                    job.name, i, step.t_start_s, stage.name, g, alloc.device, group.replicas, group.cores,
                    group.total_cores, int(np.ceil(memory)), alloc.batch,
                    cost({alloc.device: group.total_cores * duration}, prices), alloc.est_latency_ms,
                    bool(violated[i]), step.forecast_rps, result.feasible,
                )
                for append, value in zip(add, row):
                    append(value)


def encode(table: pa.Table, kind: str, fingerprint: str) -> bytes:
    """A table as Parquet bytes with themis's footer metadata (deterministic: same rows, same bytes)."""
    meta = {b"themis.kind": kind.encode(), b"themis.schema_version": str(SCHEMA_VERSION).encode(), b"themis.fleet": fingerprint.encode()}
    table = table.replace_schema_metadata(meta)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _config_key(config: PlanConfig) -> tuple:
    """PlanConfig as a hashable key (its GPU prices are a dict)."""
    return tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in astuple(config))


def shard_ranges(services: int, shard_size: int) -> Sequence[range]:
    """Service index ranges of the shards, in order."""
    return [range(start, min(start + shard_size, services)) for start in range(0, services, shard_size)]
