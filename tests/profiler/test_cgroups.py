"""CPU quotas through cgroups: the real v1 controller of this machine, detection from mountinfo,
and the one-line refusal where no controller is writable.

The quota tests run against the kernel's real `cpu` hierarchy (cgroup v1 here and in CI,
writable as root). Cgroup v2's `cpu` controller cannot be mounted beside v1's on one
machine, so the v2 file layout is exercised on a plain directory laid out like a v2 group
(named so below): that checks which files themis writes, not the kernel's enforcement.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from themis.profiler.cgroups import (
    CgroupUnavailableError,
    CpuController,
    CpuGroup,
    cpu_controllers,
    find_cpu_controller,
    read_mounts,
    read_own_groups,
)

V1_CPU = Path("/sys/fs/cgroup/cpu")
needs_v1 = pytest.mark.skipif(
    not (V1_CPU / "cpu.cfs_quota_us").exists() or os.geteuid() != 0, reason="needs root and the cgroup v1 cpu controller"
)

MOUNTINFO = """\
25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
32 31 0:27 / {v2} rw - cgroup2 cgroup2 rw,nsdelegate
33 31 0:28 / {v1} rw - cgroup cgroup rw,cpu,cpuacct
34 31 0:29 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
"""


def _files(tmp_path: Path, cgroup_text: str, v2_controllers: str = "") -> tuple[Path, Path, Path, Path]:
    """A mountinfo and /proc/self/cgroup pointing at plain directories laid out like cgroupfs."""
    v2, v1 = tmp_path / "unified", tmp_path / "cpu,cpuacct"
    (v2 / "app").mkdir(parents=True)
    (v2 / "app" / "cgroup.controllers").write_text(v2_controllers)
    (v2 / "app" / "cgroup.subtree_control").write_text("")
    (v1 / "app").mkdir(parents=True)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO.format(v2=v2, v1=v1))
    cgroup = tmp_path / "cgroup"
    cgroup.write_text(cgroup_text)
    return mountinfo, cgroup, v2, v1


def test_mounts_and_own_groups_are_read_from_proc_files(tmp_path: Path) -> None:
    mountinfo, cgroup, v2, v1 = _files(tmp_path, "0::/app\n4:cpu,cpuacct:/app\n3:cpuset:/\n")
    mounts = read_mounts(mountinfo)
    assert [(m.fs_type, m.mount_point) for m in mounts] == [("cgroup2", v2), ("cgroup", v1), ("cgroup", Path("/sys/fs/cgroup/cpuset"))]
    assert "cpu" in mounts[1].options and "cpu" not in mounts[2].options  # cpuset is not cpu
    assert read_own_groups(cgroup) == {"": "/app", "cpu": "/app", "cpuacct": "/app", "cpuset": "/"}


def test_a_v2_group_offering_cpu_comes_before_v1(tmp_path: Path) -> None:
    mountinfo, cgroup, v2, v1 = _files(tmp_path, "0::/app\n4:cpu,cpuacct:/app\n", v2_controllers="cpu memory")
    assert cpu_controllers(mountinfo, cgroup) == [CpuController(2, v2 / "app"), CpuController(1, v1 / "app")]
    mountinfo, cgroup, _, v1 = _files(tmp_path / "b", "0::/app\n4:cpu,cpuacct:/app\n", v2_controllers="memory pids")
    assert cpu_controllers(mountinfo, cgroup) == [CpuController(1, v1 / "app")]


def test_a_v2_group_gets_its_quota_in_cpu_max(tmp_path: Path) -> None:
    # A plain directory laid out like a delegated cgroup v2 group: the files themis writes are checked, not enforcement.
    group = CpuGroup.create(CpuController(2, tmp_path), "replica")
    group.set_cpu_quota(1.5)
    assert (group.path / "cpu.max").read_text() == "150000 100000" and group.cpu_quota() == 1.5
    (group.path / "cpu.stat").write_text("usage_usec 10\nnr_throttled 2\nthrottled_usec 2500000\n")
    assert group.throttled_s() == 2.5
    (group.path / "cpu.max").write_text("max 100000")
    assert group.cpu_quota() is None


def test_a_directory_that_is_not_a_cgroup_is_not_taken_for_one(tmp_path: Path) -> None:
    mountinfo, cgroup, _, v1 = _files(tmp_path, "4:cpu,cpuacct:/app\n")
    with pytest.raises(CgroupUnavailableError, match="has no cpu.cfs_quota_us"):
        find_cpu_controller(mountinfo, cgroup)
    assert not list((v1 / "app").iterdir())  # its probe group is gone


def test_no_cgroup_cpu_controller_is_one_clear_error(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("25 30 0:23 / /sys rw - sysfs sysfs rw\n")
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("0::/\n")
    with pytest.raises(CgroupUnavailableError, match="cannot set a CPU quota .*--cpu-limit pin") as error:
        find_cpu_controller(mountinfo, cgroup)
    assert "\n" not in str(error.value) and str(error.value).startswith("--cpu-limit:")


@needs_v1
def test_the_real_v1_controller_is_found_and_a_probe_group_left_behind_is_not() -> None:
    controller = find_cpu_controller()
    assert controller.version == 1 and controller.parent.is_relative_to(V1_CPU)
    assert not list(controller.parent.glob(f"themis-{os.getpid()}-probe"))


@needs_v1
def test_a_real_quota_throttles_a_spinning_process_and_resizes_live() -> None:
    controller = find_cpu_controller()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with CpuGroup.create(controller, "test-quota") as group:
            group.set_cpu_quota(0.2)
            assert group.cpu_quota() == pytest.approx(0.2)
            group.add_process(spinner.pid)
            assert group.pids() == [spinner.pid]
            before_s, started = _cpu_s(spinner.pid), time.monotonic()
            time.sleep(1.0)
            used_s, wall_s = _cpu_s(spinner.pid) - before_s, time.monotonic() - started
            assert used_s <= 0.2 * wall_s + 0.05  # the kernel holds it to its quota (it may get less on a busy machine)
            assert group.throttled_s() > 0.2
            group.set_cpu_quota(1)  # in place, on the running process
            assert group.cpu_quota() == 1.0 and group.pids() == [spinner.pid]
            path = group.path
    finally:
        spinner.kill()
        spinner.wait()
    assert not path.exists()


@needs_v1
def test_removing_a_group_moves_a_live_process_back_to_the_parent() -> None:
    controller = find_cpu_controller()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        group = CpuGroup.create(controller, "test-remove")
        group.add_process(sleeper.pid)
        group.remove()
        assert not group.path.exists() and sleeper.pid in CpuGroup(controller.parent, 1).pids()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root and util-linux unshare")
def test_profile_with_a_quota_where_no_cgroup_is_mounted_exits_2_in_one_line() -> None:
    # A private mount namespace with every cgroup unmounted: a real machine without cgroups, for this process only.
    themis = f"{sys.executable} -c 'from themis.cli.app import main; main()'"
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"umount -R /sys/fs/cgroup && {themis} profile mlp --cpu-limit quota --out /tmp/never.parquet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot set a CPU quota" in lines[0] and "no cgroup v1 cpu hierarchy is mounted" in lines[0]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
