"""Shared helpers of the fleet tests: real fleets made of the busiest bundled Azure Functions
(2019), each planned with the golden resnet18 profile, and small node types."""

from __future__ import annotations

from pathlib import Path

from themis.data import bundled_trace
from themis.planner.fleet.packing import NodeType
from themis.planner.fleet.spec import FleetSpec, StageSource, per_function_fleet
from themis.planner.fleet.traffic import read_functions, select_rows
from themis.planner.model.config import PlanConfig

PROFILES = Path(__file__).resolve().parents[1] / "data" / "profiles"
RESNET18 = StageSource((str(PROFILES / "resnet18_cpu.parquet"),))
NODE = NodeType(cores=8, memory_mb=2_048.0, price_per_hour=0.4)
"""Small nodes, so that the fleet needs several and memory (about 300-600 MB a resnet18 pod) binds too."""


def busiest_fleet(top: int | None, config: PlanConfig | None = None, scale: float = 3.0) -> FleetSpec:
    """The `top` busiest bundled functions (all 200 with None), traffic x `scale`."""
    path = bundled_trace("azure_functions_2019")
    table = read_functions([path])
    rows = select_rows(table, top=top)
    return per_function_fleet(table.paths, [table.names[r] for r in rows], rows, RESNET18, config or PlanConfig(slo_ms=300.0),
                              scale=scale)


def cheap_fleet(services: int | None) -> FleetSpec:
    """Busiest functions with the `last` forecast: seconds to plan, for tests of the run itself."""
    return busiest_fleet(services, PlanConfig(slo_ms=300.0, forecast="last"))


def shard_bytes(out: Path, table: str = "plans") -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / table).glob("shard-*.parquet"))}
