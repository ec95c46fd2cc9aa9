"""CPU quotas through Linux cgroups: a child group whose CFS quota is N cores.

A Kubernetes pod that can be resized in place gets a CFS quota (`cpu.max` under cgroup
v2, `cpu.cfs_quota_us` / `cpu.cfs_period_us` under v1) rather than exclusive cores;
the quota is enforced in 100 ms periods and throttles a process that uses it up early.
`themis profile --cpu-limit quota` measures under such a quota, and the replay server
resizes running replicas with the same calls:

    controller = find_cpu_controller()          # raises CgroupUnavailableError (exit 2)
    with CpuGroup.create(controller, "replica-1") as group:
        group.set_cpu_quota(2)                   # 2 cores: 200 ms per 100 ms period
        group.add_process(pid)                   # moves every thread of the process
        group.set_cpu_quota(4)                   # a live resize
    # leaving the block moves any process left back to the parent and removes the group

Which hierarchy is used: cgroup v2 where the process's own v2 group offers the `cpu`
controller to children, else cgroup v1's `cpu` hierarchy; where neither lets us create a
child group (not root, no delegation), `find_cpu_controller` says so in one line.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from themis.profiler.errors import ProfilerInputError

PERIOD_US = 100_000
"""The CFS period: the kernel's and Kubernetes' default, 100 ms."""


class CgroupUnavailableError(ProfilerInputError):
    """No cgroup CPU controller this process may create child groups in."""


@dataclass(frozen=True)
class CpuController:
    """Where child groups with a CPU quota can be made: a cgroup directory and its version."""

    version: int  # 1 or 2
    parent: Path  # the process's own group in that hierarchy


@dataclass(frozen=True)
class Mount:
    """One cgroup mount from /proc/self/mountinfo."""

    root: str  # the path inside the hierarchy that is mounted (not "/" in a cgroup namespace)
    mount_point: Path
    fs_type: str  # "cgroup" (v1) or "cgroup2"
    options: frozenset[str]  # super options: the v1 controllers, e.g. {"rw", "cpu", "cpuacct"}


def find_cpu_controller(
    mountinfo: Path = Path("/proc/self/mountinfo"), cgroup_file: Path = Path("/proc/self/cgroup")
) -> CpuController:
    """The first of `cpu_controllers` in which this process can really create a child group with a quota."""
    tried = []
    for controller in cpu_controllers(mountinfo, cgroup_file):
        reason = _why_unusable(controller)
        if reason is None:
            return controller
        tried.append(f"v{controller.version} {controller.parent}: {reason}")
    found = "; ".join(tried) if tried else "no cgroup v2 group with the cpu controller and no cgroup v1 cpu hierarchy is mounted"
    raise CgroupUnavailableError(
        f"cannot set a CPU quota ({found}); run as root or in a delegated cgroup, or use --cpu-limit pin", option="--cpu-limit"
    )


def cpu_controllers(mountinfo: Path = Path("/proc/self/mountinfo"), cgroup_file: Path = Path("/proc/self/cgroup")) -> list[CpuController]:
    """Where this process's own groups offer a CPU controller, in order of preference: cgroup v2
    (its group lists `cpu` in `cgroup.controllers`), then cgroup v1's `cpu` hierarchy."""
    mounts, own = read_mounts(mountinfo), read_own_groups(cgroup_file)
    out = []
    for mount in mounts:
        if mount.fs_type == "cgroup2" and "" in own:
            directory = _inside(mount, own[""])
            if "cpu" in _words(directory / "cgroup.controllers"):
                out.append(CpuController(2, directory))
    for mount in mounts:
        if mount.fs_type == "cgroup" and "cpu" in mount.options and "cpu" in own:
            out.append(CpuController(1, _inside(mount, own["cpu"])))
    return out


def read_mounts(mountinfo: Path) -> list[Mount]:
    """The cgroup and cgroup2 mounts listed in a mountinfo file."""
    mounts = []
    with contextlib.suppress(OSError):
        for line in mountinfo.read_text().splitlines():
            fields, _, tail = line.partition(" - ")
            parts, rest = fields.split(), tail.split()
            if len(parts) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
                continue
            mounts.append(Mount(parts[3], Path(parts[4]), rest[0], frozenset(rest[2].split(","))))
    return mounts


def read_own_groups(cgroup_file: Path) -> dict[str, str]:
    """Controller -> this process's group path ("" is the v2 unified hierarchy)."""
    groups = {}
    with contextlib.suppress(OSError):
        for line in cgroup_file.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                groups[controller] = path
    return groups


def _inside(mount: Mount, group: str) -> Path:
    """The directory of `group` under `mount` (its path is relative to the mount's root)."""
    relative = os.path.relpath(group, mount.root) if mount.root != "/" else group.lstrip("/")
    return mount.mount_point if relative in (".", "") else mount.mount_point / relative


def _why_unusable(controller: CpuController) -> str | None:
    """None when a child group can be created there and the kernel gives it a quota file, else why not."""
    quota_file = "cpu.max" if controller.version == 2 else "cpu.cfs_quota_us"
    try:
        if controller.version == 2 and "cpu" not in _words(controller.parent / "cgroup.subtree_control"):
            (controller.parent / "cgroup.subtree_control").write_text("+cpu")
        probe = CpuGroup.create(controller, "probe")
    except OSError as error:
        return error.strerror or str(error)
    has_quota = (probe.path / quota_file).exists()
    probe.remove()
    return None if has_quota else f"a new group there has no {quota_file}"


@dataclass(frozen=True)
class CpuGroup:
    """One child cgroup with a CPU quota; processes moved in share it."""

    path: Path
    version: int

    @classmethod
    def create(cls, controller: CpuController, name: str) -> CpuGroup:
        """Make `themis-<pid>-<name>` under the controller's group (OSError if not allowed)."""
        path = controller.parent / f"themis-{os.getpid()}-{name}"
        path.mkdir()
        return cls(path, controller.version)

    def set_cpu_quota(self, cores: float, period_us: int = PERIOD_US) -> None:
        """Allow `cores` CPUs' worth of time per period (takes effect at once, also on a running process)."""
        quota_us = max(1000, round(cores * period_us))
        if self.version == 2:
            (self.path / "cpu.max").write_text(f"{quota_us} {period_us}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(period_us))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota_us))

    def cpu_quota(self) -> float | None:
        """The quota in cores; None when unlimited."""
        if self.version == 2:
            quota, period = (self.path / "cpu.max").read_text().split()
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((self.path / "cpu.cfs_quota_us").read_text())
        return None if quota_us < 0 else quota_us / int((self.path / "cpu.cfs_period_us").read_text())

    def add_process(self, pid: int) -> None:
        """Move process `pid` (all its threads) into the group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]

    def throttled_s(self) -> float:
        """Time the group has been throttled since it was made, in seconds (0 if unreadable)."""
        stats = {}
        with contextlib.suppress(OSError, ValueError):
            stats = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        if "throttled_usec" in stats:  # v2
            return int(stats["throttled_usec"]) / 1e6
        return int(stats.get("throttled_time", 0)) / 1e9  # v1, in ns

    def remove(self) -> None:
        """Move any process left to the parent group and remove this one."""
        with contextlib.suppress(OSError):
            for pid in self.pids():
                with contextlib.suppress(OSError):  # it may have exited meanwhile
                    (self.path.parent / "cgroup.procs").write_text(str(pid))
        with contextlib.suppress(FileNotFoundError):
            self.path.rmdir()

    def __enter__(self) -> CpuGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()
