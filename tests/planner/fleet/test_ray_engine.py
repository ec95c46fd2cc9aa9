"""The Ray engine: the same bytes as the local engine, and a killed worker is retried.

Ray is started in-process, on this machine, with two CPUs (as `themis fleet --engine ray`
does without --address). Starting it takes about 15 s on a busy 2-core machine, so these
tests share one instance and are marked slow.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from support.fleet_support import NODE, cheap_fleet, shard_bytes

from themis.planner.fleet.engines import LocalEngine, RayEngine
from themis.planner.fleet.plan import plan_fleet
from themis.planner.fleet.run import RunSettings

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_and_the_local_engine_write_byte_identical_tables_for_the_200_bundled_functions(local_ray, tmp_path) -> None:
    fleet = cheap_fleet(None)
    assert len(fleet.services) == 200
    plan_fleet(fleet, NODE, RunSettings(tmp_path / "local", shard_size=25), LocalEngine(2))
    result = plan_fleet(fleet, NODE, RunSettings(tmp_path / "ray", shard_size=25), RayEngine())
    assert result.engine == "ray"
    local, remote = shard_bytes(tmp_path / "local"), shard_bytes(tmp_path / "ray")
    assert len(local) == 8 and local == remote
    for name in ("totals.parquet", "services.parquet"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()


def _task_workers(task: str) -> list[int]:
    """Pids of Ray worker processes running `task` now (Ray titles them `ray::<task>`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(f"ray::{task}".encode()):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_worker_killed_mid_shard_is_retried_and_the_tables_are_unchanged(local_ray, planned_fleet, small_fleet, tmp_path) -> None:
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            pids = _task_workers("plan_shard")
            if pids:
                time.sleep(0.1)  # let it get into the shard (a shard of 3 services plans in about a third of a second)
                if pids[0] in _task_workers("plan_shard"):  # still on it: killed mid-shard
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    result = plan_fleet(small_fleet, NODE, RunSettings(tmp_path / "ray", shard_size=3), RayEngine())
    killer.join()
    assert killed, "no Ray worker was seen running a shard"
    assert not Path(f"/proc/{killed[0]}").exists() or b"plan_shard" not in Path(f"/proc/{killed[0]}/cmdline").read_bytes()
    assert (result.shards, result.shards_planned) == (2, 2)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / "plans"), pd.read_parquet(planned_fleet.out_dir / "plans"))
    pd.testing.assert_frame_equal(result.totals, planned_fleet.totals)
