"""A small real fleet planned once per session, in-process, shared by the fleet tests."""

from __future__ import annotations

import pytest
from support.fleet_support import NODE, busiest_fleet

from themis.planner.fleet.engines import LocalEngine
from themis.planner.fleet.plan import FleetPlanResult, plan_fleet
from themis.planner.fleet.run import RunSettings
from themis.planner.fleet.spec import FleetSpec


@pytest.fixture(scope="session")
def small_fleet() -> FleetSpec:
    return busiest_fleet(6)


@pytest.fixture(scope="session")
def planned_fleet(small_fleet: FleetSpec, tmp_path_factory: pytest.TempPathFactory) -> FleetPlanResult:
    out = tmp_path_factory.mktemp("fleet") / "out"
    return plan_fleet(small_fleet, NODE, RunSettings(out, shard_size=2), LocalEngine(1))
