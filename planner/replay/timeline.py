"""`--speedup`: the same trace and plan played faster (or slower) in time.

Arrival times and the plan's step times are divided by the speedup; the number of
requests is unchanged, so rates rise by that factor (`--scale` changes the volume
instead). Cold starts and resizes are real durations and are not compressed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from themis.planner.model.serving import Schedule
from themis.planner.replay.errors import ReplayInputError


def check_speedup(speedup: float) -> float:
    if not speedup > 0 or not np.isfinite(speedup):
        raise ReplayInputError(f"must be a positive number, got {speedup:g}", option="--speedup")
    return float(speedup)


def speed_up_arrivals(arrivals_s: np.ndarray, speedup: float) -> np.ndarray:
    return np.asarray(arrivals_s, dtype=np.float64) / check_speedup(speedup)


def speed_up_schedule(schedule: Schedule, speedup: float) -> Schedule:
    """The plan with every step's start and end divided by `speedup`."""
    factor = check_speedup(speedup)
    if factor == 1.0:
        return schedule
    steps = [replace(s, t_start_s=s.t_start_s / factor, t_end_s=s.t_end_s / factor) for s in schedule.steps]
    return replace(schedule, steps=steps, interval_s=schedule.interval_s / factor)
