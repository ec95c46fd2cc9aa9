"""Rate series: `time,rate` (requests/s) or `time,count` rows at one fixed spacing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from themis.planner.errors import TraceError
from themis.planner.traffic.reading import MAX_COUNT, PathLike, column_numbers, first_true
from themis.planner.traffic.request_log import seconds_since_start, time_frame
from themis.planner.traffic.trace import Trace


def read_rate_series(path: PathLike, *, time_column: str | None = None) -> Trace:
    """`time,rate` (requests/s) or `time,count` rows at a fixed spacing; count = rate x spacing,
    rounded to whole requests."""
    path = Path(path)
    frame, column = time_frame(path, time_column)
    lower = {c.lower(): c for c in frame.columns}
    value = lower.get("count") or lower.get("rate")
    if value is None:
        raise TraceError("a rate series needs a 'rate' or 'count' column", file=path, row=1)
    times, start = seconds_since_start(frame, column, path)
    values = column_numbers(frame, value, path, minimum=0.0)
    if len(times) < 2:
        raise TraceError("a rate series needs at least two rows to know its interval", file=path, row=2)
    steps = np.diff(times)
    interval_s = float(steps[0])
    off = np.abs(steps - interval_s) > 1e-6 * max(interval_s, 1.0)
    if interval_s <= 0 or off.any():
        row = 3 + (first_true(off) if off.any() else 0)
        raise TraceError(f"times must rise by one fixed interval (first step {interval_s:g} s)", file=path, row=row)
    counts = values if value == lower.get("count") else values * interval_s
    if np.any(counts > MAX_COUNT):
        raise TraceError(f"{value} is too large", file=path, row=2 + first_true(counts > MAX_COUNT))
    rounded = np.round(counts)
    if value == lower.get("count") and np.any(np.abs(rounded - counts) > 1e-9):
        raise TraceError("count must be a whole number", file=path, row=2 + first_true(np.abs(rounded - counts) > 1e-9))
    return Trace(path.name, "rate_series", start, interval_s, rounded.astype(np.int64))
