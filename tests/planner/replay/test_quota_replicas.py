"""The reference server under CPU quotas (`--cpu-limit quota` profiles): replicas live in a
cgroup of their own, made and resized with the profiler's cgroup code.

These need a cgroup CPU controller this process may create groups in (root, or a delegated
cgroup); where there is none they are skipped, since nothing here can stand in for the kernel.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.replay_support import SMALL_CNN_PROFILE as GOLDEN
from support.replay_support import SMALL_CNN_QUOTA_PROFILE as QUOTA_PROFILE
from support.replay_support import write_plan

from themis.cli.app import app
from themis.planner.model.serving import Group, StageAllocation
from themis.planner.replay.cpus import CpuPool
from themis.planner.replay.errors import ReplayInputError
from themis.planner.replay.replayer import TraceClock
from themis.planner.replay.server import ReferenceServer, StageModel
from themis.planner.replay.targets import profile_cpu_limit
from themis.profiler.cgroups import CgroupUnavailableError, CpuController, find_cpu_controller
from themis.profiler.devices import available_cpus
from themis.profiler.models import resolve_model
from themis.profiler.table import read_profile


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def controller() -> CpuController:
    try:
        return find_cpu_controller()
    except CgroupUnavailableError as error:
        pytest.skip(f"no cgroup CPU controller here: {error}")


def _cpu_group_of(pid: int, version: int) -> str:
    """The process's group in the hierarchy the quota lives in: v1's cpu controller, or v2's unified one."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (version == 1 and "cpu" in controllers.split(",")) or (version == 2 and controllers == ""):
            return path
    return ""


def test_a_resize_changes_the_quota_the_replica_process_lives_under(controller: CpuController) -> None:
    async def scenario() -> tuple[list[float | None], list[str], int, bool, bool]:
        stage = StageModel(resolve_model("small_cnn"), "float32", 2)
        server = ReferenceServer([stage], CpuPool(available_cpus()), TraceClock.starting_in(0.0), warmup_calls=1, quota=controller)
        try:
            await server.open([StageAllocation((Group(1, 1),), 2)])
            replica = server.replicas[0]
            group = replica.group
            assert group is not None and replica.pid is not None
            quotas, groups = [group.cpu_quota()], [_cpu_group_of(replica.pid, group.version)]
            server.apply(0, StageAllocation((Group(1, 2),), 2))
            for _ in range(200):
                if server.resizes:
                    break
                await asyncio.sleep(0.05)
            quotas.append(group.cpu_quota())
            groups.append(_cpu_group_of(replica.pid, group.version))
            answer = await replica.command("batch", k=2)  # it still serves, under the new quota
            in_group = replica.pid in group.pids()
        finally:
            await server.close()
        return quotas, [g.rsplit("/", 1)[-1] for g in groups], answer["k"], in_group, group.path.exists()

    quotas, group_names, served, in_group, left_behind = asyncio.run(scenario())
    assert quotas == [1.0, 2.0]
    assert group_names[0] == group_names[1] and "replica0" in group_names[0]
    assert served == 2 and in_group
    assert not left_behind  # the group is removed with its replica


def test_the_server_holds_replicas_as_the_profile_was_measured(controller, cli_runner, llm_window, tmp_path) -> None:
    """A profile measured under a quota (`small_cnn_cpu_quota.parquet`) makes `--serve` run its replicas under quotas."""
    assert profile_cpu_limit([read_profile(QUOTA_PROFILE)], [QUOTA_PROFILE]) == "quota"
    assert profile_cpu_limit([read_profile(GOLDEN)], [GOLDEN]) == "pin"

    plan = write_plan(tmp_path / "plan.json", [(0, 1.5, [(1, 1)]), (1.5, 3, [(1, 2)])])
    trace, arrivals = llm_window(3.0)
    out = tmp_path / "served.parquet"
    result = cli_runner.invoke(app, ["replay", "--trace", str(trace), "--serve", "small_cnn", "--plan", str(plan),
                                     "--profile", str(QUOTA_PROFILE), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["server"]["cpu_limit"] == "quota"
    assert [(r["from_cores"], r["to_cores"]) for r in data["server"]["resizes"]] == [(1, 2)]
    assert len(pq.read_table(out)) == data["ok"] == arrivals.size


def test_profiles_measured_both_ways_are_refused() -> None:
    pinned = read_profile(GOLDEN)
    quota = pinned.copy()
    quota["cpu_limit"] = "quota"  # the column as a quota profile writes it, to mix the two
    with pytest.raises(ReplayInputError, match="different CPU limits"):
        profile_cpu_limit([pinned, quota], [GOLDEN, GOLDEN])
