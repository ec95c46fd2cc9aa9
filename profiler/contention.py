"""What a measuring worker really got of its CPUs while it timed a cell (Linux /proc).

A latency measured while other processes ran on the worker's CPUs is the latency of a
shared machine, not of the cores the profile names. Around every measurement window the
worker takes a `Snapshot` and accumulates the difference into a `Usage`:

- its CPU time (`getrusage`, all threads) against wall time x threads (`cpu_share`);
- the run-queue wait of its threads (`/proc/self/task/*/schedstat`): time they were
  runnable but another task had the CPU (`runqueue_wait`), less any CFS throttling of the
  worker's own cgroup, which is the CPU limit being measured, not contention;
- other processes' CPU time on the worker's CPUs: `/proc/stat` busy time of those CPUs
  minus the worker's own (`other_load`), and the hypervisor's `steal` time there;
- `/proc/pressure/cpu` (`some` total), where the kernel has PSI (`cpu_pressure`).

The verdict (`evidence`) uses run-queue wait and steal, which are precise to the
nanosecond over a short window; `cpu_share` is recorded but not judged, because a model
with little parallel work leaves its threads idle without anyone taking its CPUs.
`other_load` stands in for run-queue wait where schedstat is missing (it has /proc/stat's
10 ms resolution).
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONTENTION_THRESHOLD = 0.10
"""A window (or cell) is contended when the worker lost more than this share of its CPUs."""

_PROC = Path("/proc")


@dataclass(frozen=True)
class Snapshot:
    """Cumulative counters at one instant (differences make a `Usage`)."""

    wall_s: float
    cpu_s: float
    thread_ns: dict[int, tuple[int, int]]  # thread id -> (on-CPU ns, run-queue wait ns)
    cpu_ticks: dict[int, tuple[int, int]]  # watched CPU -> (busy ticks, steal ticks)
    pressure_us: int | None  # /proc/pressure/cpu `some` total
    throttled_s: float | None  # CFS throttled time of the worker's cgroup


class Probe:
    """Takes snapshots for a worker that may run on `cpus` with `threads` threads."""

    def __init__(self, cpus: list[int], threads: int, throttled_s: Callable[[], float] | None = None) -> None:
        self.cpus, self.threads, self._throttled_s = list(cpus), threads, throttled_s
        self._tick_s = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01

    def snapshot(self) -> Snapshot:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return Snapshot(
            wall_s=time.perf_counter(),
            cpu_s=usage.ru_utime + usage.ru_stime,
            thread_ns=_thread_schedstat(),
            cpu_ticks=_cpu_ticks(self.cpus),
            pressure_us=_pressure_some_us(),
            throttled_s=self._throttled_s() if self._throttled_s is not None else None,
        )

    def usage(self, before: Snapshot, after: Snapshot) -> Usage:
        """What the worker got between two snapshots."""
        throttled_s = (after.throttled_s or 0.0) - (before.throttled_s or 0.0)
        run_s = wait_s = 0.0
        for tid, (run_ns, wait_ns) in after.thread_ns.items():
            if tid in before.thread_ns:
                run_s += (run_ns - before.thread_ns[tid][0]) / 1e9
                wait_s += max(0.0, (wait_ns - before.thread_ns[tid][1]) / 1e9 - throttled_s)
        watched = [c for c in after.cpu_ticks if c in before.cpu_ticks]
        busy_s = sum(after.cpu_ticks[c][0] - before.cpu_ticks[c][0] for c in watched) * self._tick_s
        steal_s = sum(after.cpu_ticks[c][1] - before.cpu_ticks[c][1] for c in watched) * self._tick_s
        cpu_s = after.cpu_s - before.cpu_s
        has_pressure = after.pressure_us is not None and before.pressure_us is not None
        return Usage(
            wall_s=after.wall_s - before.wall_s,
            cpu_s=cpu_s,
            run_s=run_s,
            wait_s=wait_s,
            others_s=max(0.0, busy_s - cpu_s),
            steal_s=steal_s,
            pressure_s=(after.pressure_us - before.pressure_us) / 1e6 if has_pressure else 0.0,
            throttled_s=max(0.0, throttled_s),
            threads=self.threads,
            cpus=max(1, len(watched)),
            has_schedstat=bool(after.thread_ns),
            has_pressure=has_pressure,
        )


@dataclass
class Usage:
    """CPU time a worker got over some windows; adds up across windows and processes."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    run_s: float = 0.0
    wait_s: float = 0.0
    others_s: float = 0.0
    steal_s: float = 0.0
    pressure_s: float = 0.0
    throttled_s: float = 0.0
    threads: int = 1
    cpus: int = 1
    has_schedstat: bool = True
    has_pressure: bool = True
    windows: int = field(default=1)

    def __add__(self, other: Usage) -> Usage:
        if self.windows == 0:
            return other
        if other.windows == 0:
            return self
        sums = {name: getattr(self, name) + getattr(other, name) for name in
                ("wall_s", "cpu_s", "run_s", "wait_s", "others_s", "steal_s", "pressure_s", "throttled_s", "windows")}
        return Usage(**sums, threads=self.threads, cpus=self.cpus, has_schedstat=self.has_schedstat and other.has_schedstat,
                     has_pressure=self.has_pressure and other.has_pressure)

    @classmethod
    def none(cls) -> Usage:
        """The neutral element of `+` (no window yet)."""
        return cls(windows=0)

    @property
    def cpu_share(self) -> float:
        return _ratio(self.cpu_s, self.wall_s * self.threads)

    @property
    def runqueue_wait(self) -> float:
        return _ratio(self.wait_s, self.run_s + self.wait_s) if self.has_schedstat else math.nan

    @property
    def other_load(self) -> float:
        return _ratio(self.others_s, self.wall_s * self.cpus)

    @property
    def steal(self) -> float:
        return _ratio(self.steal_s, self.wall_s * self.cpus)

    @property
    def cpu_pressure(self) -> float:
        return _ratio(self.pressure_s, self.wall_s) if self.has_pressure else math.nan

    def evidence(self) -> float:
        """Share of its CPUs the worker lost to others: run-queue wait (else other load), or steal."""
        lost = self.runqueue_wait if self.has_schedstat else self.other_load
        return max((v for v in (lost, self.steal) if math.isfinite(v)), default=0.0)

    def is_contended(self, threshold: float = CONTENTION_THRESHOLD) -> bool:
        return self.windows > 0 and self.evidence() > threshold

    def describe(self) -> str:
        """One phrase of evidence, for a cell's `error` text."""
        parts = [f"got {self.cpu_share:.0%} of its {self.threads} thread(s)' CPU time"]
        if math.isfinite(self.runqueue_wait):
            parts.append(f"waited {self.runqueue_wait:.0%} of its runnable time for a CPU")
        parts.append(f"other processes used {self.other_load:.0%} of its CPUs")
        if self.steal > 0.01:
            parts.append(f"steal {self.steal:.0%}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        return cls(**data)


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else math.nan


def _thread_schedstat() -> dict[int, tuple[int, int]]:
    """(on-CPU ns, run-queue wait ns) of every thread of this process; {} without schedstat."""
    out: dict[int, tuple[int, int]] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(_PROC / "self" / "task"):
            with contextlib.suppress(OSError, ValueError):
                run_ns, wait_ns, _ = (_PROC / "self" / "task" / tid / "schedstat").read_text().split()
                out[int(tid)] = (int(run_ns), int(wait_ns))
    return out


def _cpu_ticks(cpus: list[int]) -> dict[int, tuple[int, int]]:
    """(busy, steal) clock ticks of each CPU in `cpus` from /proc/stat; {} where it is missing."""
    wanted, out = set(cpus), {}
    with contextlib.suppress(OSError):
        for line in (_PROC / "stat").read_text().splitlines():
            name, *fields = line.split()
            if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in wanted):
                continue
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in (fields + ["0"] * 8)[:8])
            out[int(name[3:])] = (user + nice + system + irq + softirq, steal)
    return out


def _pressure_some_us() -> int | None:
    """`some ... total=` of /proc/pressure/cpu in microseconds; None without PSI."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in (_PROC / "pressure" / "cpu").read_text().splitlines():
            if line.startswith("some"):
                return int(line.split("total=")[1].split()[0])
    return None
