"""Fleet planning on real data: each service's plan is `themis plan`'s, the totals and node
counts are recounts of the per-service table, shards resume, engines agree byte for byte."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.fleet_support import NODE, PROFILES, RESNET18, cheap_fleet, shard_bytes
from support.packing_reference import first_fit_decreasing_one_by_one

from themis.cli.app import app
from themis.data import bundled_trace
from themis.planner.fleet.engines import LocalEngine
from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.models import ModelLibrary
from themis.planner.fleet.plan import FleetPlanResult, plan_fleet
from themis.planner.fleet.run import RunSettings
from themis.planner.fleet.shard import PLAN_SCHEMA, PLANS, PlannedRows, ServiceJob, service_rows
from themis.planner.fleet.spec import per_function_fleet
from themis.planner.fleet.traffic import TrafficLoader, read_functions
from themis.planner.model.config import PlanConfig
from themis.planner.optimise.plan import plan


def plan_table(result: FleetPlanResult) -> pd.DataFrame:
    return pd.read_parquet(result.out_dir / PLANS)


def test_a_service_planned_in_the_fleet_is_byte_identical_to_themis_plan(planned_fleet, small_fleet, cli_runner) -> None:
    fleet_rows = pq.read_table(planned_fleet.out_dir / PLANS)
    library, loader = ModelLibrary(), TrafficLoader()
    for service in small_fleet.services[:3:2]:  # the first and third busiest, in different shards
        models = library.models(service.stages)
        alone = plan(loader.trace(service.traffic), models.stages, service.config, service.policy)  # no shared solver
        job = ServiceJob(service.name, loader.trace(service.traffic), models.key, service.config, "themis")
        mine = fleet_rows.filter(pa.compute.equal(fleet_rows["service"], service.name))
        assert mine.equals(pa.table(service_rows(job, models, alone), schema=PLAN_SCHEMA))
        # and `themis plan` on the command line says the same, step by step
        done = cli_runner.invoke(app, ["plan", "--trace", str(bundled_trace("azure_functions_2019")), "--function", service.name,
                                       "--scale", "3", "--profile", str(PROFILES / "resnet18_cpu.parquet"), "--slo", "300ms", "--json"])
        assert done.exit_code == 0, done.output
        data = json.loads(done.stdout)
        steps = [(i, g["replicas"], g["cores"], s["batch"], s["est_latency_ms"], step["forecast_rps"])
                 for i, step in enumerate(data["steps"]) for s in step["stages"] for g in s["groups"]]
        rows = mine.to_pandas()
        assert steps == list(zip(rows["interval"], rows["replicas"], rows["cores_per_replica"], rows["batch"], rows["est_latency_ms"],
                                 rows["forecast_rps"]))
        assert rows.groupby("interval")["est_violation"].max().sum() == data["estimated_violation_intervals"]
        assert rows["cores"].sum() * 60.0 == data["totals"]["core_seconds"]


def test_node_count_per_interval_equals_an_independent_recount(planned_fleet) -> None:
    rows = plan_table(planned_fleet)
    assert planned_fleet.totals["nodes"].max() > 1  # the fleet needs several nodes at its peak
    for interval, part in rows[rows["device"] == "cpu"].groupby("interval"):
        pods = [(int(r.cores_per_replica), int(r.memory_mb)) for r in part.itertuples() for _ in range(r.replicas)]
        assert planned_fleet.totals.at[interval, "nodes"] == first_fit_decreasing_one_by_one(pods, NODE.cores, NODE.memory_mb)


def test_totals_and_service_summaries_are_sums_of_the_per_service_table(planned_fleet, small_fleet) -> None:
    rows = plan_table(planned_fleet)
    totals = planned_fleet.totals.set_index("interval")
    by_interval = rows.groupby("interval")
    assert (totals["pods"] == by_interval["replicas"].sum()).all()
    assert (totals["cores"] == by_interval["cores"].sum()).all()
    assert np.allclose(totals["node_cost"], totals["nodes"] * NODE.price_per_hour / 60.0)
    services = planned_fleet.services.set_index("service")
    assert list(services.index) == [s.name for s in small_fleet.services]
    assert np.allclose(services["core_hours"], rows.groupby("service", sort=False)["cores"].sum() / 60.0)
    data = json.loads((planned_fleet.out_dir / "fleet.json").read_text())
    assert data["kind"] == "fleet_plan" and data["synthetic"] is False
    assert data["totals"]["node_hours"] == pytest.approx(totals["nodes"].sum() / 60.0, rel=1e-12)
    assert pq.read_schema(planned_fleet.out_dir / "totals.parquet").metadata[b"themis.kind"] == b"fleet_totals"


def test_resume_redoes_only_the_missing_and_torn_shards(tmp_path) -> None:
    fleet = cheap_fleet(3)
    out = tmp_path / "out"
    first = plan_fleet(fleet, NODE, RunSettings(out, shard_size=1), LocalEngine(1))
    before = shard_bytes(out)
    assert (first.shards, first.shards_planned) == (3, 3)
    (out / PLANS / "shard-00001.parquet").unlink()  # a shard that never finished
    (out / PLANS / "shard-00002.parquet").write_bytes(before["shard-00002.parquet"][:100])  # a torn file
    with pytest.raises(FleetError, match="--resume"):
        plan_fleet(fleet, NODE, RunSettings(out, shard_size=1), LocalEngine(1))
    again = plan_fleet(fleet, NODE, RunSettings(out, shard_size=1, resume=True), LocalEngine(1))
    assert (again.shards_planned, again.shards_kept) == (2, 1)
    assert shard_bytes(out) == before
    pd.testing.assert_frame_equal(again.totals, first.totals)
    with pytest.raises(FleetError, match="another fleet"):
        plan_fleet(cheap_fleet(2), NODE, RunSettings(out, shard_size=1, resume=True), LocalEngine(1))


def test_a_pool_of_two_processes_writes_the_same_bytes_as_one_process(tmp_path) -> None:
    fleet = cheap_fleet(4)
    plan_fleet(fleet, NODE, RunSettings(tmp_path / "one", shard_size=1), LocalEngine(1))
    plan_fleet(fleet, NODE, RunSettings(tmp_path / "two", shard_size=1), LocalEngine(2))
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "two")
    assert (tmp_path / "one" / "totals.parquet").read_bytes() == (tmp_path / "two" / "totals.parquet").read_bytes()


def test_services_with_the_same_traffic_reuse_one_plan_and_get_the_rows_planning_alone_gives(tmp_path) -> None:
    table = read_functions([bundled_trace("azure_functions_2019")])
    seen: dict[bytes, int] = {}
    twins = next((seen[c.tobytes()], i) for i, c in enumerate(table.counts) if c.any() and seen.setdefault(c.tobytes(), i) != i)
    fleet = per_function_fleet(table.paths, [table.names[r] for r in twins], twins, RESNET18, PlanConfig(slo_ms=300.0))
    plan_fleet(fleet, NODE, RunSettings(tmp_path / "out", shard_size=2), LocalEngine(1))
    rows = pd.read_parquet(tmp_path / "out" / PLANS)
    first, second = (rows[rows["service"] == s.name].drop(columns="service").reset_index(drop=True) for s in fleet.services)
    pd.testing.assert_frame_equal(first, second)
    loader, models = TrafficLoader(), ModelLibrary().models(RESNET18)
    service = fleet.services[1]
    alone = plan(loader.trace(service.traffic), models.stages, service.config, "themis")
    job = ServiceJob(service.name, loader.trace(service.traffic), models.key, service.config, "themis")
    pd.testing.assert_frame_equal(rows[rows["service"] == service.name].reset_index(drop=True),
                                  pa.table(service_rows(job, models, alone), schema=PLAN_SCHEMA).to_pandas())
    bounded = PlannedRows(max_rows=3)
    for key in "abc":
        bounded.put((key,), {"interval": np.arange(2)})
    assert bounded.get(("a",)) is None and bounded.get(("c",)) is not None and bounded.rows == 2


def _pool_workers() -> list[int]:
    """Pids of this process's spawned pool workers (not multiprocessing's resource tracker)."""
    me, pids = str(os.getpid()), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status, command = (entry / "status").read_text(), (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = any(line.split()[1:] == [me] for line in status.splitlines() if line.startswith("PPid:"))
            if parent and b"spawn_main" in command:
                pids.append(int(entry.name))
    return pids


def test_a_local_worker_killed_mid_shard_is_replaced_and_the_tables_are_unchanged(planned_fleet, small_fleet, tmp_path) -> None:
    killed: list[int] = []

    def kill_a_worker(done: int, total: int) -> None:
        if done and not killed:  # one shard is back; the workers are busy with the next ones
            pid = _pool_workers()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    engine = LocalEngine(2)
    result = plan_fleet(small_fleet, NODE, RunSettings(tmp_path / "out", shard_size=2), engine, progress=kill_a_worker)
    assert killed and engine.restarts == 1 and result.shards_planned == 3
    assert shard_bytes(tmp_path / "out") == shard_bytes(planned_fleet.out_dir)
