"""The report's time series, aggregated so a person can read them.

A day of per-second data is 86,400 points a line: drawn as is, neighbouring lines merge
into one smear. Each series is therefore cut into buckets of a round length chosen for
how many points the picture can show (a few hundred in a PNG, a few thousand in the
zoomable page), and each bucket is drawn as a band (min to max of the finest data in it)
around a line (the mean or a percentile). Times are shown in hours (minutes for a trace
under two hours) from the start, or as UTC clock time when the trace has calendar time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from themis.planner.model.serving import Schedule
from themis.planner.traffic.trace import Trace

STATIC_POINTS = 300
"""Buckets per line in a PNG (about one per 3 pixels of an 11-inch plot)."""
INTERACTIVE_POINTS = 1_500
"""Buckets per line in the zoomable page: per-minute detail over a day, a few seconds over an
hour (more would draw several points per pixel at the full view, and the lines merge again)."""
_NICE_MULTIPLES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 300, 360, 600, 720, 900, 1_440, 1_800, 3_600)


@dataclass(frozen=True)
class TimeAxis:
    """How seconds from the trace start are shown: UTC clock time, or hours/minutes."""

    start: datetime | None
    """In UTC."""
    unit_s: float
    label: str

    def positions(self, t_s: np.ndarray) -> np.ndarray:
        """Plot coordinates: datetimes (numpy datetime64, UTC) or numbers in the axis unit."""
        t_s = np.asarray(t_s, dtype=float)
        if self.start is None:
            return t_s / self.unit_s
        base = np.datetime64(self.start.replace(tzinfo=None), "ms")
        return base + (t_s * 1000.0).astype("timedelta64[ms]")


def time_axis(trace_start: str | None, duration_s: float) -> TimeAxis:
    """Clock time for a dated trace; otherwise hours, or minutes for under two hours."""
    if trace_start:
        start = datetime.fromisoformat(trace_start)
        start = (start if start.tzinfo else start.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        end = start + timedelta(seconds=duration_s)
        days = "" if start.date() == end.date() else f" to {end:%Y-%m-%d}"
        return TimeAxis(start, 1.0, f"time (UTC, {start:%Y-%m-%d}{days})")
    if duration_s < 2 * 3600.0:
        return TimeAxis(None, 60.0, "minutes from trace start")
    return TimeAxis(None, 3600.0, "hours from trace start")


def bucket_s(duration_s: float, finest_s: float, points: int) -> float:
    """The shortest round multiple of `finest_s` that cuts `duration_s` into at most `points`."""
    wanted = duration_s / max(points, 1) / finest_s
    multiple = next((m for m in _NICE_MULTIPLES if m >= wanted), math.ceil(wanted))
    return finest_s * multiple


@dataclass(frozen=True)
class Band:
    """One aggregated series: bucket start times and the band (low, high) around `mid`."""

    t_s: np.ndarray
    low: np.ndarray
    mid: np.ndarray
    high: np.ndarray
    bucket_s: float
    finest_s: float


def rate_band(trace: Trace, points: int) -> Band:
    """Mean rate per bucket, within min to max of the finest rates the trace has (per
    second for per-request traces, per native interval otherwise)."""
    finest_s = 1.0 if trace.arrivals_s is not None else trace.interval_s
    fine = trace.rate_series(finest_s)
    size = bucket_s(trace.duration_s, finest_s, points)
    per = int(round(size / finest_s))
    n = int(math.ceil(len(fine) / per))
    padded = np.full(n * per, np.nan)
    padded[: len(fine)] = fine
    grid = padded.reshape(n, per)
    return Band(np.arange(n) * size, np.nanmin(grid, axis=1), np.nanmean(grid, axis=1), np.nanmax(grid, axis=1), size, finest_s)


def planned_load(schedule: Schedule, size_s: float) -> Band:
    """The plan's forecast per bucket of `size_s`: the band spans its lowest to highest
    step in the bucket (capacity is sized for the highest)."""
    n = int(math.ceil(schedule.steps[-1].t_end_s / size_s)) if schedule.steps else 0
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    for step in schedule.steps:
        first = int(step.t_start_s // size_s)
        last = max(first, int(math.ceil(step.t_end_s / size_s)) - 1)
        low[first:last + 1] = np.minimum(low[first:last + 1], step.forecast_rps)
        high[first:last + 1] = np.maximum(high[first:last + 1], step.forecast_rps)
    return Band(np.arange(n) * size_s, low, (low + high) / 2.0, high, size_s, schedule.interval_s)


@dataclass(frozen=True)
class LatencyBuckets:
    t_s: np.ndarray
    p50_ms: np.ndarray
    p99_ms: np.ndarray
    max_ms: np.ndarray
    bucket_s: float


def latency_buckets(requests: pd.DataFrame, points: int) -> LatencyBuckets:
    """p50, p99 and the worst latency of the requests arriving in each bucket (empty
    buckets are left out). Quantiles interpolate linearly, as pandas and numpy do."""
    arrival_s = requests["arrival_s"].to_numpy(dtype=float)
    latency_ms = requests["latency_ms"].to_numpy(dtype=float)
    duration_s = float(arrival_s.max()) if arrival_s.size else 1.0
    size = bucket_s(max(duration_s, 1.0), 1.0, points)
    finite = np.isfinite(latency_ms)
    keys, values = (arrival_s[finite] // size).astype(np.int64), latency_ms[finite]
    if keys.size and np.any(np.diff(keys) < 0):  # a simulation writes requests in arrival order; others may not
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, np.diff(keys) != 0]) if keys.size else np.array([], dtype=np.int64)
    bounds = np.r_[starts, keys.size]
    stats = np.array([np.quantile(values[a:b], (0.5, 0.99)).tolist() + [values[a:b].max()] for a, b in zip(bounds[:-1], bounds[1:])])
    stats = stats.reshape(-1, 3)
    return LatencyBuckets(keys[starts] * size, stats[:, 0], stats[:, 1], stats[:, 2], size)


def schedule_steps(schedule: Schedule) -> dict[str, pd.DataFrame]:
    """Stage name -> its steps (`t_start_s`, `replicas`, `total_cores`), in pipeline order,
    with a closing row at the end of the plan so step lines reach it."""
    frame = schedule.to_frame()
    out = {}
    for stage in schedule.stages:
        rows = frame.loc[frame["stage"] == stage.name, ["t_start_s", "t_end_s", "replicas", "total_cores"]]
        closing = rows.tail(1).assign(t_start_s=rows["t_end_s"].tail(1).to_numpy())
        out[stage.name] = pd.concat([rows, closing], ignore_index=True)
    return out


def duration_text(seconds: float) -> str:
    """`30 s`, `5 min`, `1 h`: how a bucket length reads in a legend."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
