"""The fleet a command line describes: a fleet file, every function of day files, or a generated one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.spec import FleetSpec, StageSource, config_with, load_fleet, per_function_fleet
from themis.planner.fleet.synthetic import synthetic_fleet
from themis.planner.fleet.traffic import read_functions, select_rows


def fleet_from_options(
    *,
    fleet_file: Path | None,
    traces: Sequence[Path],
    per_function: bool,
    synthetic: int | None,
    synthetic_seed: int,
    top: int | None,
    min_requests: int,
    profiles: Sequence[Path],
    pipeline: Path | None,
    model: str | None,
    base: Mapping[str, Any],
    policy: str,
    scale: float = 1.0,
    seed: int = 0,
    bundled_trace: Path | None = None,
) -> FleetSpec:
    """The fleet of exactly one of: `fleet_file`; `per_function` over `traces`; `synthetic`
    services resampled from `traces` (default: `bundled_trace`). `base` holds the command
    line's PlanConfig fields (`slo_ms` None when no --slo was given)."""
    chosen = [fleet_file is not None, per_function, synthetic is not None]
    if sum(chosen) != 1:
        raise FleetError("give a fleet file, or --per-function with --trace, or --synthetic N", option="FLEET")
    if fleet_file is not None:
        if traces or profiles or pipeline is not None:
            raise FleetError("a fleet file names each service's traces and profiles; drop --trace/--profile/--pipeline",
                             option="FLEET")
        return load_fleet(fleet_file, base, policy)
    if bool(profiles) == (pipeline is not None):
        raise FleetError("give either --profile or --pipeline (one model for every service)", option="--profile")
    stages = StageSource(tuple(str(p) for p in profiles), model, str(pipeline) if pipeline is not None else None)
    config = config_with(base, {}, "the command line")
    if synthetic is not None:
        paths = list(traces) or ([bundled_trace] if bundled_trace is not None else [])
        if not paths:
            raise FleetError("--synthetic needs Azure Functions 2019 day files to resample (--trace)", option="--trace")
        table = read_functions(paths)
        return synthetic_fleet(synthetic, synthetic_seed, table.paths, len(table.names), table.counts.shape[1], stages, config, policy)
    if not traces:
        raise FleetError("--per-function needs Azure Functions 2019 day files (--trace)", option="--trace")
    table = read_functions(traces)
    rows = select_rows(table, top, min_requests)
    return per_function_fleet(table.paths, [table.names[r] for r in rows], rows, stages, config, policy, scale=scale, seed=seed)
