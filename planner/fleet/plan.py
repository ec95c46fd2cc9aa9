"""`plan_fleet`: every service planned, the fleet's totals per interval, nodes by FFD.

Writes, in the output directory:
- `plans/shard-NNNNN.parquet`: the per-service plan table, one file per shard (read them as
  one table with `pandas.read_parquet(dir / "plans")`); columns in `shard.PLAN_SCHEMA`;
- `totals.parquet`: per interval, the fleet's pods, cores, GPUs, cost, nodes and node cost;
- `services.parquet`: per service, core-hours, cost, peaks and estimated violation intervals;
- `fleet.json`: the result below (`kind: fleet_plan`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.common.atomic import write_atomic, write_text_atomic
from themis.planner.fleet.engines import Engine
from themis.planner.fleet.packing import NodeType
from themis.planner.fleet.run import Progress, RunSettings, run_sharded
from themis.planner.fleet.shard import PLANS, plan_shard
from themis.planner.fleet.spec import FleetSpec
from themis.planner.fleet.totals import fold_shards

WORST_SERVICES = 10


@dataclass
class FleetPlanResult:
    """A planned fleet: its totals per interval and per service, and where they are."""

    out_dir: Path
    source: str
    synthetic: bool
    engine: str
    node: NodeType
    interval_s: float
    shards: int
    shards_planned: int
    shards_kept: int
    totals: pd.DataFrame
    services: pd.DataFrame
    policies: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Fleet-wide figures: core-hours, cost, node-hours, peaks, services at risk."""
        hours = self.interval_s / 3600.0
        t = self.totals
        at_risk = self.services[self.services["est_violation_intervals"] > 0]
        return {
            "services": len(self.services),
            "intervals": len(t),
            "core_hours": float(t["cores"].sum() * hours),
            "gpu_hours": float(t["gpus"].sum() * hours),
            "cost": float(t["cost"].sum()),
            "node_hours": float(t["nodes"].sum() * hours),
            "node_cost": float(t["node_cost"].sum()),
            "peak_nodes": int(t["nodes"].max()) if len(t) else 0,
            "peak_pods": int(t["pods"].max()) if len(t) else 0,
            "peak_cores": int(t["cores"].max()) if len(t) else 0,
            "services_at_risk": len(at_risk),
            "infeasible_services": int((~self.services["feasible"].astype(bool)).sum()),
        }

    def worst_services(self, count: int = WORST_SERVICES) -> pd.DataFrame:
        """The services with the most intervals over the SLO estimate (then the most core-hours)."""
        order = self.services.sort_values(["est_violation_intervals", "core_hours", "service"], ascending=[False, False, True])
        return order.head(count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "fleet_plan",
            "synthetic": self.synthetic,
            "source": self.source,
            "engine": self.engine,
            "policies": self.policies,
            "interval_s": self.interval_s,
            "node": self.node.to_dict(),
            "shards": {"total": self.shards, "planned": self.shards_planned, "kept": self.shards_kept},
            "totals": self.summary(),
            "worst_services": self.worst_services().to_dict(orient="records"),
            "files": {"plans": str(self.out_dir / PLANS), "totals": str(self.out_dir / "totals.parquet"),
                      "services": str(self.out_dir / "services.parquet")},
        }

    def to_frame(self) -> pd.DataFrame:
        return self.totals


def plan_fleet(fleet: FleetSpec, node: NodeType, settings: RunSettings, engine: Engine, progress: Progress | None = None) -> FleetPlanResult:
    """Plan every service of `fleet` on `engine` into `settings.out_dir`; fold the totals."""
    run = run_sharded("fleet_plan", fleet, settings, engine, plan_shard, (PLANS,), progress=progress)
    builder = fold_shards(run.files[PLANS], fleet.interval_s)
    totals = builder.totals(node)
    services = builder.service_table()
    out = settings.out_dir
    metadata = {"synthetic": fleet.synthetic, "source": fleet.source, "fleet": run.fingerprint}
    write_frame(out / "totals.parquet", totals, "fleet_totals", metadata)
    write_frame(out / "services.parquet", services, "fleet_services", metadata)
    policies = sorted({s.policy for s in fleet.services})
    result = FleetPlanResult(out, fleet.source, fleet.synthetic, engine.name, node, fleet.interval_s, run.shards, run.planned,
                             run.kept, totals, services, policies)
    write_text_atomic(out / "fleet.json", json.dumps(result.to_dict(), indent=2, default=json_value) + "\n")
    return result


def write_frame(path: Path, frame: pd.DataFrame, kind: str, metadata: dict[str, Any]) -> None:
    """A result table as Parquet, atomically, with themis's footer metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**(table.schema.metadata or {}), b"themis.kind": kind.encode(), b"themis.schema_version": str(SCHEMA_VERSION).encode(),
            **{f"themis.{k}".encode(): json.dumps(v).encode() for k, v in metadata.items()}}
    write_atomic(path, lambda tmp: pq.write_table(table.replace_schema_metadata(meta), tmp))


def json_value(value: Any) -> Any:
    """numpy scalars (and anything else) in a result as plain JSON values."""
    return value.item() if hasattr(value, "item") else str(value)
