"""`plan()`: trace + latency models + SLO + prices -> a schedule, by one policy.

Steps: peak rate per interval (what capacity must carry) -> rolling forecast (online
policies) -> per-interval DP over stages (`dp`, cached per load level) -> the policy's
moves over time (`themis.planner.policies`, stepped by `loop.run_policy`) -> the
`Schedule`, with an estimate of its violations against the real peaks once delays apply.

"SLO out of reach" is a result (exit code 1) naming the best reachable latency and the
configuration that reaches it, not an exception.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.common.jsonvalues import finite_or_none
from themis.planner.errors import PlanInputError
from themis.planner.model.config import PlanConfig
from themis.planner.model.latency import LatencyModel
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step
from themis.planner.optimise.loop import PolicySetup, RuntimeRules, run_policy
from themis.planner.optimise.solver import IntervalSolver
from themis.planner.optimise.space import StageSpace
from themis.planner.policies import POLICIES
from themis.planner.traffic.trace import Trace


@dataclass
class PlanResult:
    """A schedule and its verdict: feasible, or why not and the best that is reachable."""

    schedule: Schedule
    feasible: bool
    reason: str
    best_latency_ms: float | None = None
    best_config: str | None = None
    explain: dict[str, Any] | None = None
    estimated_violation_steps: tuple[int, ...] = ()
    """The steps counted in `schedule.estimated_violation_intervals` (fleet tables mark them)."""

    @property
    def exit_code(self) -> int:
        return 0 if self.feasible else 1

    def to_dict(self) -> dict[str, Any]:
        data = self.schedule.to_dict()
        data.update(
            {
                "feasible": self.feasible,
                "reason": self.reason,
                "best_latency_ms": finite_or_none(self.best_latency_ms),
                "best_config": self.best_config,
            }
        )
        if self.explain is not None:
            data["explain"] = self.explain
        return data

    def to_frame(self) -> pd.DataFrame:
        return self.schedule.to_frame()


StageInput = tuple[Stage, LatencyModel | Sequence[LatencyModel]]


def plan(
    trace: Trace,
    stages: Sequence[StageInput],
    config: PlanConfig,
    policy: str = "themis",
    *,
    forecast_rps: np.ndarray | None = None,
    explain: bool = False,
    solver: IntervalSolver | None = None,
) -> PlanResult:
    """Plan `trace` with `policy`. `forecast_rps` overrides the rolling forecast (its
    element t must be made from data before t; element 0 may be NaN). `solver`, made by
    `interval_solver(stages, config)` for these very stages and config, may be shared by
    many plans (fleet planning): its caches are pure functions of the load level, so
    sharing changes no result, only the time."""
    config.validate()
    if policy not in POLICIES:
        raise PlanInputError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}", option="--policy")
    rule = POLICIES[policy]
    if not stages:
        raise PlanInputError("no stage to plan", option="--profile")
    peaks = _peaks(trace, config)
    forecast = _forecast(peaks, config) if forecast_rps is None else np.asarray(forecast_rps, dtype=float)
    if forecast.shape != peaks.shape:
        raise PlanInputError(f"forecast has {forecast.size} intervals, the trace {peaks.size}", option="--forecast")
    forecast = _opening(forecast, peaks, opening_intervals(config))
    solver = interval_solver(stages, config) if solver is None else solver
    spaces = solver.spaces
    offline = rule.offline
    planning = peaks if offline else forecast * config.headroom  # offline policies know the real peaks
    solver.prepare(np.r_[planning, peaks * config.headroom])
    setup = PolicySetup(solver, config, planning, peaks if offline else None, peaks, trace.request_arrivals(0) if offline else None)
    run = run_policy(rule, setup)
    steps = [
        Step(i * config.interval_s, (i + 1) * config.interval_s, float(peaks[i] if offline else forecast[i]), allocs)
        for i, allocs in enumerate(run.allocations)
    ]
    violations = estimated_violations(run.allocations, run.serving, solver, peaks)
    runtime = rule.runtime_rules(run, solver) if rule.runtime_rules is not None else RuntimeRules()
    schedule = Schedule(
        policy=policy,
        slo_ms=config.slo_ms,
        percentile=config.percentile,
        interval_s=config.interval_s,
        trace_start=trace.trace_start,
        cold_start_s=config.cold_start_s,
        resize_s=config.resize_s,
        stages=tuple(stage for stage, _ in stages),
        steps=steps,
        price_per_core_hour=config.price_per_core_hour,
        price_per_gpu_hour=dict(config.price_per_gpu_hour),
        forecast="actual" if offline else config.forecast,
        headroom=config.headroom,
        infeasible_steps=tuple(run.infeasible_steps),
        estimated_violation_intervals=int(violations.sum()),
        surge_rules=runtime.surge_rules,
        surge_steps=runtime.surge_steps,
    )
    result = _verdict(schedule, solver, peaks, config, run.infeasible_steps)
    result.estimated_violation_steps = tuple(int(i) for i in np.flatnonzero(violations))
    if explain:
        result.explain = _explain(stages, spaces, config)
    return result


def interval_solver(stages: Sequence[StageInput], config: PlanConfig) -> IntervalSolver:
    """The per-interval solver over every stage's candidate space."""
    spaces = [StageSpace(stage, [models] if isinstance(models, LatencyModel) else list(models), config) for stage, models in stages]
    for space in spaces:
        if not space.options:
            raise PlanInputError(f"stage {space.stage.name!r} has no priced device", option="--price")
    return IntervalSolver(spaces, config)


def estimated_violations(
    allocations: Sequence[tuple[StageAllocation, ...]],
    serving: Sequence[tuple[tuple[Group, ...], ...]],
    solver: IntervalSolver,
    peaks_rps: np.ndarray,
) -> np.ndarray:
    """Per interval: does the allocation actually serving (delays applied) miss the SLO at
    the interval's real peak (rounded up to the solver's load grid), by the estimate?"""
    out = np.zeros(len(allocations), dtype=bool)
    for i, (groups_per_stage, allocs) in enumerate(zip(serving, allocations)):
        total = sum(
            solver.estimate(j, groups, alloc.batch, alloc.device, float(peaks_rps[i]))
            for j, (groups, alloc) in enumerate(zip(groups_per_stage, allocs))
        )
        out[i] = not total <= solver.slo_ms + 1e-9
    return out


def _peaks(trace: Trace, config: PlanConfig) -> np.ndarray:
    try:
        peaks = trace.peak_rates(config.interval_s, window_s=min(config.peak_window_s, config.interval_s))
    except ValueError as exc:
        raise PlanInputError(str(exc), option="--interval") from None
    if peaks.size == 0:
        raise PlanInputError("the trace is empty", option="--trace")
    return np.asarray(peaks, dtype=float)


def _forecast(peaks: np.ndarray, config: PlanConfig) -> np.ndarray:
    from themis.planner.traffic.forecast import METHODS, forecast_peaks

    if config.forecast not in METHODS:
        raise PlanInputError(f"unknown method {config.forecast!r}; use one of {', '.join(METHODS)}", option="--forecast")
    return np.asarray(forecast_peaks(peaks, config.forecast, interval_s=config.interval_s), dtype=float)


def opening_intervals(config: PlanConfig) -> int:
    """The intervals whose peak sizes the opening allocation: those overlapping the warm-up
    [0, warmup_s), and at least the first."""
    return max(1, math.ceil(config.warmup_s / config.interval_s - 1e-9))


def _opening(forecast: np.ndarray, peaks: np.ndarray, intervals: int) -> np.ndarray:
    """Interval 0 is sized for the observed peak of the first `intervals` intervals (the
    service is already running, provisioned for its warm-up); a missing forecast later falls
    back to the last observed peak."""
    out = forecast.copy()
    out[0] = peaks[:intervals].max()
    for i in np.flatnonzero(~np.isfinite(out)):
        out[i] = peaks[i - 1]
    return np.maximum(out, 0.0)


def _verdict(schedule: Schedule, solver: IntervalSolver, peaks: np.ndarray, config: PlanConfig, infeasible: list[int]) -> PlanResult:
    peak = float(np.max(peaks)) * config.headroom
    if solver.solve(peak) is None:
        best = solver.allocations(solver.fastest(peak), peak)
        latency = sum(a.est_latency_ms for a in best)
        config_text = "; ".join(f"{s.stage.name}: {a.describe()}" for s, a in zip(solver.spaces, best))
        if math.isfinite(latency):
            reason = (
                f"SLO {config.slo_ms:g} ms at p{config.percentile:g} is out of reach at the peak of {peak:.4g} rps: "
                f"best reachable {latency:.4g} ms with {config_text}"
            )
        else:
            capacity = min(a.capacity_rps / s.stage.visit_ratio for s, a in zip(solver.spaces, best))
            reason = (
                f"the peak of {peak:.4g} rps exceeds the most that {config.max_replicas} replicas carry "
                f"({capacity:.4g} rps with {config_text})"
            )
        return PlanResult(schedule, False, reason, latency, config_text)
    if infeasible:
        first = schedule.steps[infeasible[0]]
        return PlanResult(
            schedule,
            True,
            f"ok; policy {schedule.policy} runs above the SLO estimate in {len(infeasible)} interval(s) while it "
            f"adapts, first at t={first.t_start_s:g} s (forecast {first.forecast_rps:.4g} rps)",
        )
    return PlanResult(schedule, True, "ok")


def _explain(stages: Sequence[StageInput], spaces: Sequence[StageSpace], config: PlanConfig) -> dict[str, Any]:
    """Latency-model fit quality and the candidate space, for `plan --explain`."""
    from themis.planner.model.fit_report import heldout_cores_errors, loo_errors
    from themis.planner.model.trust import fit_warnings

    models = []
    for stage, given in stages:
        for model in [given] if isinstance(given, LatencyModel) else given:
            errors = loo_errors(model.cells_)
            heldout, heldout_mape = heldout_cores_errors(model.cells_)
            measured_cores = sorted({c for _, c in model.cells_})
            models.append(
                {
                    "stage": stage.name,
                    "model": model.model,
                    "device": model.device,
                    "method": model.method_,
                    "measured_cells": len(model.cells_),
                    "measured_cores": measured_cores,
                    "extrapolated_cores": [c for c in config.allowed_cores() if c not in measured_cores and not model.is_gpu],
                    "loo_mape": {m: float(np.mean(v)) if v else None for m, v in errors.items()},
                    "heldout_cores": heldout,
                    "heldout_cores_mape": heldout_mape,
                    "warnings": fit_warnings(dict(zip("gedh", map(float, model.coef_))), _mean_or_none(errors[model.method_]),
                                             model.method_, len(measured_cores), len({b for b, _ in model.cells_})),
                }
            )
    return {
        "schema_version": SCHEMA_VERSION,
        "latency_models": models,
        "candidates_per_stage": [s.n_candidates * s.max_replicas for s in spaces],
        "queueing": "L = S_max if ErlangC(c, lambda*c/mu_low) <= 1-q else 2*S_max + ln(C/(1-q))/theta (see planner/model/queueing.py)",
    }


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
