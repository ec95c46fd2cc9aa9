"""A fleet generator for benchmarks: real functions resampled into fleets of any size.

The bundled trace holds 200 functions; a benchmark of 10,000 services needs more. Each
synthetic service takes one real function (drawn at random), shifts it in time by a whole
number of intervals (circularly, so its daily shape stays real but its bursts land at
another hour), scales its volume by a log-uniform factor in [1/`SCALE_SPREAD`,
`SCALE_SPREAD`], and draws its counts again from a Poisson law around that (no two
services are the same trace, so nothing is planned twice). One seed gives one fleet.
Everything a synthetic fleet feeds says `synthetic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.spec import FleetSpec, ServiceSpec, StageSource, SyntheticTraffic
from themis.planner.model.config import PlanConfig

SCALE_SPREAD = 2.0


def synthetic_fleet(
    size: int,
    seed: int,
    paths: Sequence[str | Path],
    functions: int,
    minutes: int,
    stages: StageSource,
    config: PlanConfig,
    policy: str = "themis",
) -> FleetSpec:
    """`size` services resampled from the `functions` rows (of `minutes` each) of `paths`."""
    if size < 1:
        raise FleetError(f"must be at least 1, got {size}", option="--synthetic")
    if functions < 1 or minutes < 1:
        raise FleetError("the source trace has no function to resample", option="--trace")
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, functions, size)
    shifts = rng.integers(0, minutes, size)
    scales = np.exp(rng.uniform(-np.log(SCALE_SPREAD), np.log(SCALE_SPREAD), size))
    seeds = rng.integers(0, 2**32, size)
    files = tuple(str(p) for p in paths)
    width = len(str(size - 1))
    services = [
        ServiceSpec(f"syn-{i:0{width}d}", SyntheticTraffic(files, int(r), int(s), float(x), int(z)), stages, config, policy)
        for i, (r, s, x, z) in enumerate(zip(rows, shifts, scales, seeds))
    ]
    return FleetSpec(services, source=f"synthetic: {size} services resampled from {Path(files[0]).name} (seed {seed})", synthetic=True)


def resample(counts: np.ndarray, shift_intervals: int, scale: float, seed: int) -> np.ndarray:
    """Counts shifted circularly by `shift_intervals`, scaled, drawn again as Poisson."""
    rng = np.random.default_rng(seed)
    return rng.poisson(np.roll(np.asarray(counts, dtype=float), shift_intervals) * scale).astype(np.int64)
