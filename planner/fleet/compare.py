"""`compare_fleet`: every service through every policy, and the fleet per policy.

Each service is run by `themis.planner.gates.compare.compare` (the same plans and
request-level simulations `themis compare` makes of it), and its outcome per policy is one
row of the `outcomes` table. Per policy the fleet then has:
- core-hours and cost: the simulated ones, summed over services (booting replicas and the
  themis surge controller's resizes included);
- node-hours: per interval, the pods each policy requests packed onto the node type by
  first-fit decreasing. A planned policy's pods are its plan's steps; `hpa`, which has no
  plan, holds in each interval the most replicas it ran during it, at its cores each;
- the distribution of per-service violation rates (median, p90, p99) and the worst services.

Writes `outcomes/` and `pods/` (a shard a file each), `nodes.parquet` (per policy and
interval) and `comparison.json` (`kind: fleet_comparison`) in the output directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from themis.common import SCHEMA_VERSION
from themis.common.atomic import write_text_atomic
from themis.planner.choices import POLICIES
from themis.planner.fleet.engines import Engine
from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.models import ServiceModels
from themis.planner.fleet.packing import NodeType, PodShape, first_fit_decreasing
from themis.planner.fleet.plan import WORST_SERVICES, json_value, write_frame
from themis.planner.fleet.run import Progress, RunSettings, run_sharded
from themis.planner.fleet.shard import ShardOutput, ShardTask, encode
from themis.planner.fleet.spec import FleetSpec
from themis.planner.gates.compare import compare
from themis.planner.model.serving import Schedule
from themis.planner.simulation.result import SimulationResult

OUTCOMES, PODS = "outcomes", "pods"
OUTCOME_SCHEMA = pa.schema(
    [("service", pa.string()), ("policy", pa.string()), ("requests", pa.int64()), ("violations", pa.int64()),
     ("violation_rate", pa.float64()), ("p99_ms", pa.float64()), ("core_seconds", pa.float64()), ("cost", pa.float64()),
     ("scale_actions", pa.int64()), ("plan_feasible", pa.bool_())]
)
POD_SCHEMA = pa.schema(
    [("policy", pa.string()), ("interval", pa.int32()), ("device", pa.string()), ("cores_per_replica", pa.int32()),
     ("memory_mb", pa.int32()), ("pods", pa.int64())]
)


def compare_shard(task: ShardTask) -> ShardOutput:
    """Every service of the shard through every policy: outcome rows, and pods per interval."""
    outcomes: dict[str, list] = {name: [] for name in OUTCOME_SCHEMA.names}
    pods: dict[tuple[str, int, str, int, int], int] = {}
    for job in task.services:
        models = task.models[job.models_key]
        comparison = compare(job.trace, models.stages, job.config, task.policies, seed=task.seed)
        intervals = len(job.trace.peak_rates(job.config.interval_s, window_s=min(job.config.peak_window_s, job.config.interval_s)))
        for outcome in comparison.outcomes:
            result = outcome.result
            row = (job.name, outcome.policy, result.requests, result.violations, result.violation_rate,
                   result.percentile_ms(99.0), result.core_seconds, result.cost, result.scale_actions, outcome.planned_feasible)
            for name, value in zip(OUTCOME_SCHEMA.names, row):
                outcomes[name].append(value)
            held = _planned_pods(outcome.schedule) if outcome.schedule is not None else _held_pods(result, intervals, job.config.interval_s, models)
            for interval, stage, device, cores, batch, count in held:
                memory = job.memory_mb if job.memory_mb is not None else models.pod_memory_mb(stage, device, batch)
                key = (outcome.policy, interval, device, cores, int(np.ceil(memory)))
                pods[key] = pods.get(key, 0) + count
    pod_columns = list(zip(*[(*key, count) for key, count in sorted(pods.items())])) or [[] for _ in POD_SCHEMA.names]
    files = {
        OUTCOMES: encode(pa.table(outcomes, schema=OUTCOME_SCHEMA), "fleet_outcomes_shard", task.fingerprint),
        PODS: encode(pa.table(dict(zip(POD_SCHEMA.names, pod_columns)), schema=POD_SCHEMA), "fleet_pods_shard", task.fingerprint),
    }
    return ShardOutput(task.index, files, len(task.services))


def _planned_pods(schedule: Schedule) -> list[tuple[int, int, str, int, int, int]]:
    """(interval, stage, device, cores, batch, pods) of every group a plan requests."""
    return [
        (i, j, a.device, g.cores, a.batch, g.replicas)
        for i, step in enumerate(schedule.steps) for j, a in enumerate(step.stages) for g in a.groups if g.replicas
    ]


def _held_pods(result: SimulationResult, intervals: int, interval_s: float, models: ServiceModels) -> list[tuple[int, int, str, int, int, int]]:
    """A runtime controller's pods per interval: the most replicas it ran during the interval
    (its decisions are in the simulation's timeline), at that decision's cores each."""
    out = []
    for j, (_, candidates) in enumerate(models.stages):
        device = candidates[0].device
        rows = sorted((r for r in result.timeline if r["stage"] == j), key=lambda r: r["t_s"])
        if not rows:
            continue
        times = np.array([r["t_s"] for r in rows])
        for i in range(intervals):
            start, end = i * interval_s, (i + 1) * interval_s
            first = max(int(np.searchsorted(times, start, side="right")) - 1, 0)
            last = int(np.searchsorted(times, end, side="left"))
            held = max(rows[first : max(last, first + 1)], key=lambda r: (r["replicas"], r["total_cores"]))
            if held["replicas"]:
                out.append((i, j, device, held["total_cores"] // held["replicas"], held["batch"], held["replicas"]))
    return out


@dataclass
class FleetComparison:
    """Per policy: the fleet's core-hours, node-hours, cost and per-service violation rates."""

    out_dir: Path
    source: str
    synthetic: bool
    engine: str
    node: NodeType
    interval_s: float
    policies: list[str]
    outcomes: pd.DataFrame
    nodes: pd.DataFrame

    def policy_summary(self, policy: str) -> dict[str, Any]:
        rows = self.outcomes[self.outcomes["policy"] == policy]
        per_interval = self.nodes[self.nodes["policy"] == policy]
        rates = rows["violation_rate"].to_numpy(dtype=float)
        requests, violations = int(rows["requests"].sum()), int(rows["violations"].sum())
        worst = rows.sort_values(["violation_rate", "violations", "service"], ascending=[False, False, True]).head(WORST_SERVICES)
        hours = self.interval_s / 3600.0
        return {
            "services": len(rows),
            "requests": requests,
            "violations": violations,
            "violation_rate": violations / requests if requests else 0.0,
            "core_hours": float(rows["core_seconds"].sum() / 3600.0),
            "cost": float(rows["cost"].sum()),
            "node_hours": float(per_interval["nodes"].sum() * hours),
            "node_cost": float(per_interval["nodes"].sum() * hours * self.node.price_per_hour),
            "peak_nodes": int(per_interval["nodes"].max()) if len(per_interval) else 0,
            "service_violation_rate": {
                "median": _quantile(rates, 0.5), "p90": _quantile(rates, 0.9), "p99": _quantile(rates, 0.99),
                "max": _quantile(rates, 1.0),
            },
            "worst_services": worst[["service", "violation_rate", "violations", "requests"]].to_dict(orient="records"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "fleet_comparison",
            "synthetic": self.synthetic,
            "source": self.source,
            "engine": self.engine,
            "interval_s": self.interval_s,
            "node": self.node.to_dict(),
            "policies": {p: self.policy_summary(p) for p in self.policies},
            "files": {"outcomes": str(self.out_dir / OUTCOMES), "nodes": str(self.out_dir / "nodes.parquet")},
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for policy in self.policies:
            summary = self.policy_summary(policy)
            spread = summary.pop("service_violation_rate")
            summary.pop("worst_services")
            rows.append({"policy": policy, **summary, **{f"service_violation_rate_{k}": v for k, v in spread.items()}})
        return pd.DataFrame(rows)


def compare_fleet(
    fleet: FleetSpec, policies: Sequence[str], node: NodeType, settings: RunSettings, engine: Engine, *, seed: int = 0,
    progress: Progress | None = None,
) -> FleetComparison:
    """Every service of `fleet` through `policies` on `engine` into `settings.out_dir`."""
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise FleetError(f"unknown policy {unknown[0]!r}; use any of {', '.join(POLICIES)}" if unknown else "no policy given",
                         option="--policies")
    ordered = tuple(dict.fromkeys(policies))
    run = run_sharded("fleet_compare", fleet, settings, engine, compare_shard, (OUTCOMES, PODS), policies=ordered, seed=seed,
                      progress=progress)
    outcomes = pd.concat([pq.read_table(p).to_pandas() for p in run.files[OUTCOMES]], ignore_index=True)
    nodes = _nodes(run.files[PODS], ordered, node, fleet.interval_s, _intervals(run.files[PODS]))
    metadata = {"synthetic": fleet.synthetic, "source": fleet.source, "fleet": run.fingerprint}
    write_frame(settings.out_dir / "nodes.parquet", nodes, "fleet_nodes", metadata)
    result = FleetComparison(settings.out_dir, fleet.source, fleet.synthetic, engine.name, node, fleet.interval_s, list(ordered),
                             outcomes, nodes)
    write_text_atomic(settings.out_dir / "comparison.json", json.dumps(result.to_dict(), indent=2, default=json_value) + "\n")
    return result


def _intervals(paths: Sequence[Path]) -> int:
    return max((int(pq.read_table(p, columns=["interval"]).column(0).to_numpy().max(initial=-1)) + 1 for p in paths), default=0)


def _nodes(paths: Sequence[Path], policies: Sequence[str], node: NodeType, interval_s: float, intervals: int) -> pd.DataFrame:
    """Per policy and interval: pods, cores and the nodes FFD packs the CPU pods onto."""
    shapes: dict[tuple[str, int], dict[PodShape, int]] = {}
    pods = {p: np.zeros(intervals, dtype=np.int64) for p in policies}
    cores = {p: np.zeros(intervals, dtype=np.int64) for p in policies}
    for path in paths:
        frame = pq.read_table(path).to_pandas()
        for row in frame.itertuples(index=False):
            pods[row.policy][row.interval] += row.pods
            if row.device == "cpu":
                cores[row.policy][row.interval] += row.pods * row.cores_per_replica
                held = shapes.setdefault((row.policy, row.interval), {})
                shape = (int(row.cores_per_replica), int(row.memory_mb))
                held[shape] = held.get(shape, 0) + int(row.pods)
    frames = []
    for policy in policies:
        nodes = np.array([first_fit_decreasing(shapes.get((policy, i), {}), node) for i in range(intervals)], dtype=np.int64)
        frames.append(pd.DataFrame({"policy": policy, "interval": np.arange(intervals), "t_start_s": np.arange(intervals) * interval_s,
                                    "pods": pods[policy], "cores": cores[policy], "nodes": nodes,
                                    "node_cost": nodes * node.price_per_hour * interval_s / 3600.0}))
    return pd.concat(frames, ignore_index=True)


def _quantile(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if values.size else None
