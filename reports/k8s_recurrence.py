"""A plan's timeline folded into one recurring period, as Kubernetes cron can express it.

Cron repeats; a plan happens once. So the manifests describe a typical period:

- **daily** (1,440 minutes) for every plan, except
- **weekly** (10,080 minutes, from Sunday 00:00 UTC, the cron day-of-week 0) for a plan
  with calendar time (`trace_start`) that spans at least 7 days, so that every weekday
  has data.

A dated plan sits at its own UTC time of day (and weekday), its start rounded down to the
minute (cron's resolution, so each step begins under a minute early); an undated one
starts at 00:00 UTC, and no date is ever invented. Every minute of the period takes the allocation,
among the plan's steps that fall on it (over all days of a folded multi-day plan, and
all steps of a minute when the interval is shorter), with the most capacity; minutes
the plan does not reach take the plan's steady allocation.

`replica_windows` then turns the per-minute replica counts into the fewest KEDA cron
windows that reproduce them exactly, given that KEDA runs the highest active trigger
and falls back to `minReplicaCount` (the period's minimum) when none is active.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

DAY_MINUTES = 1_440
WEEK_MINUTES = 7 * DAY_MINUTES


@dataclass(frozen=True)
class Recurrence:
    """How the plan's t = 0 maps onto a repeating period of `period_minutes`."""

    period: str
    """`daily` or `weekly`."""
    period_minutes: int
    offset_minutes: int
    """Minute of the period at which the plan starts (0 for an undated plan)."""
    anchor: datetime | None
    """The plan's start in UTC, or None when the trace has no calendar time."""

    def describe(self) -> str:
        """One line for an annotation: what recurs, and from when."""
        if self.anchor is None:
            return f"{self.period}, plan t=0 at 00:00 UTC (the trace has no calendar time)"
        return f"{self.period}, plan t=0 at {self.anchor.isoformat()} (UTC)"

    def cron(self, minute: int) -> str:
        """`minute hour * * day-of-week` for a minute of the period (never a date)."""
        minute %= self.period_minutes
        day, rest = divmod(minute, DAY_MINUTES)
        hour, mins = divmod(rest, 60)
        weekday = str(day) if self.period == "weekly" else "*"
        return f"{mins} {hour} * * {weekday}"

    def clock(self, minute: int) -> str:
        """`HH:MM` (daily) or `Sun HH:MM` (weekly) for a minute of the period."""
        day, rest = divmod(minute % self.period_minutes, DAY_MINUTES)
        text = f"{rest // 60:02d}:{rest % 60:02d}"
        return f"{_WEEKDAYS[day]} {text}" if self.period == "weekly" else text


_WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def recurrence(plan: dict[str, Any]) -> Recurrence:
    """The period a plan repeats with (see the module docstring for the rule)."""
    end_s = plan["steps"][-1]["t_end_s"] if plan["steps"] else 0.0
    start = plan.get("trace_start")
    if not start:
        return Recurrence("daily", DAY_MINUTES, 0, None)
    anchor = datetime.fromisoformat(start)
    anchor = (anchor if anchor.tzinfo else anchor.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    minute_of_day = anchor.hour * 60 + anchor.minute
    if end_s >= WEEK_MINUTES * 60.0:
        sunday_based_weekday = (anchor.weekday() + 1) % 7
        return Recurrence("weekly", WEEK_MINUTES, sunday_based_weekday * DAY_MINUTES + minute_of_day, anchor)
    return Recurrence("daily", DAY_MINUTES, minute_of_day, anchor)


def minute_allocations(steps: list[dict[str, Any]], j: int, rec: Recurrence, fallback: dict[str, Any]) -> list[dict[str, Any]]:
    """Stage `j`'s allocation for every minute of the period (most capacity wins a minute)."""
    chosen: list[dict[str, Any] | None] = [None] * rec.period_minutes
    for step in steps:
        allocation = step["stages"][j]
        first = int(math.floor(step["t_start_s"] / 60.0))
        last = max(first, int(math.ceil(step["t_end_s"] / 60.0)) - 1)
        for minute in range(first, min(last, first + rec.period_minutes - 1) + 1):
            slot = (rec.offset_minutes + minute) % rec.period_minutes
            current = chosen[slot]
            if current is None or _capacity_key(allocation) > _capacity_key(current):
                chosen[slot] = allocation
    return [a if a is not None else fallback for a in chosen]


def replicas(allocation: dict[str, Any]) -> int:
    return sum(int(g["replicas"]) for g in allocation["groups"])


def steady_allocation(steps: list[dict[str, Any]], j: int) -> dict[str, Any]:
    """The allocation the plan runs for the most time (the first such on a tie)."""
    durations: dict[str, float] = {}
    first: dict[str, dict[str, Any]] = {}
    for step in steps:
        allocation = step["stages"][j]
        key = json.dumps([allocation["groups"], allocation["batch"], allocation.get("device", "cpu")])
        durations[key] = durations.get(key, 0.0) + step["t_end_s"] - step["t_start_s"]
        first.setdefault(key, allocation)
    return first[max(durations, key=lambda k: durations[k])]


@dataclass(frozen=True)
class Window:
    """Minutes [start, start + length) of the period (wrapping past its end) at `replicas`."""

    start: int
    length: int
    replicas: int


def replica_windows(levels: list[int]) -> tuple[int, list[Window]]:
    """(baseline, windows): the fewest windows whose highest active level, or `baseline`
    where none is active, equals `levels` at every minute of the (circular) period.

    A window at level v may only cover minutes whose level is at least v, so it lies in
    one connected run of {level >= v}; every such run that holds a minute of exactly v
    needs its own window, and one window spanning the run is enough. That count is
    therefore the minimum, and it is what this returns: one window per (v, run) pair,
    for v above the baseline (the period's minimum, which needs none).
    """
    n = len(levels)
    baseline = min(levels)
    windows = []
    for level in sorted(set(levels)):
        if level == baseline:
            continue
        for start, length in _circular_runs([value >= level for value in levels]):
            if any(levels[(start + i) % n] == level for i in range(length)):
                windows.append(Window(start, length, level))
    return baseline, sorted(windows, key=lambda w: (w.start, w.replicas))


def _circular_runs(mask: list[bool]) -> list[tuple[int, int]]:
    """(start, length) of each maximal run of True on a circle (the mask is not all True)."""
    n = len(mask)
    if all(mask):
        raise ValueError("a run covering the whole period has no start")
    origin = mask.index(False)  # start scanning just after a False so no run is split
    runs = []
    start = None
    for k in range(1, n + 1):
        i = (origin + k) % n
        if mask[i] and start is None:
            start = i
        if not mask[i] and start is not None:
            runs.append((start, (i - start) % n))
            start = None
    return runs


def _capacity_key(allocation: dict[str, Any]) -> tuple[float, int, int]:
    capacity = allocation.get("capacity_rps")
    total_cores = sum(int(g["replicas"]) * int(g["cores"]) for g in allocation["groups"])
    return (float(capacity) if capacity is not None else -1.0, total_cores, replicas(allocation))
