"""`themis check`: the two CI gates, as a `Verdict` (pass/fail is a result, not an exception).

1. Capacity: plan the trace with a policy and replay it in the simulator; pass when the
   SLO is reachable and the simulated run stays within every budget given
   (replicas, total cores, core-hours, cost, violation rate), measured from the warm-up on.
2. Regression: compare a new profile with a baseline profile cell by cell (same model,
   device kind, cores, batch, dtype; the device *name* may differ between CI runners and
   is reported, not matched), and what the change does to the capacity needed at the
   trace's peak (the `static` plan: replicas and cores sized for the peak), before/after.
   A cell fails only when it is *confidently* slower: the lower end of the 95% bootstrap
   interval of current / baseline (`themis.profiler.stats`, from the raw calls) is above
   1 + the limit. Cells that are `unstable` or `contended` in either profile are left out
   unless `allow_unstable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from themis.common.errors import InputError
from themis.planner.gates.compare import RUNTIME_POLICIES, PolicyOutcome, compare
from themis.planner.gates.verdict import GateCheck, Verdict
from themis.planner.model.config import PlanConfig
from themis.planner.model.latency import LatencyModel, latency_models_from_frames
from themis.planner.model.serving import Stage
from themis.planner.optimise.plan import plan
from themis.planner.traffic.trace import Trace
from themis.profiler.stats import RatioEstimate, mean_statistic, quantile_statistic, ratio_ci, split_by_process

LATENCY_METRICS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "max_ms")

CELL_MATCH = ["model", "device_kind", "cores", "batch_size", "dtype"]
"""Columns that identify the same measurement in two profiles."""

METRIC_STATISTICS = {"p50_ms": quantile_statistic(0.5), "p90_ms": quantile_statistic(0.9), "p95_ms": quantile_statistic(0.95),
                     "p99_ms": quantile_statistic(0.99), "mean_ms": mean_statistic}
"""The metrics whose confidence interval is bootstrapped from raw calls (min/max are compared as numbers)."""
MEASURED = ("ok", "unstable", "contended")


@dataclass(frozen=True)
class CapacityBudget:
    """Limits of the capacity gate; None means "not checked"."""

    max_replicas: int | None = None
    max_cores: int | None = None
    max_core_hours: float | None = None
    max_cost: float | None = None
    max_violation_rate: float | None = None
    max_cost_per_mtok: float | None = None
    """Cost per million tokens served: LLM services only (`themis.planner.llm.check`)."""

    def validate(self, *, priced: bool) -> None:
        """Refuse budgets that cannot be judged: negative ones, a violation rate outside 0-100%,
        a cost budget with no price to cost anything at (it would pass at cost 0)."""
        for option, value in (("--budget-replicas", self.max_replicas), ("--budget-cores", self.max_cores),
                              ("--budget-core-hours", self.max_core_hours), ("--budget-cost", self.max_cost),
                              ("--budget-cost-per-mtok", self.max_cost_per_mtok)):
            if value is not None and not (0 <= value < float("inf")):
                raise InputError(f"must be a non-negative number, got {value:g}", option=option)
        rate = self.max_violation_rate
        if rate is not None and not (0 <= rate <= 1):
            raise InputError(f"a share of requests must lie between 0% and 100%, got {100 * rate:g}%", option="--budget-violation-rate")
        if not priced:
            option = "--budget-cost" if self.max_cost is not None else "--budget-cost-per-mtok" if self.max_cost_per_mtok is not None else ""
            if option:
                raise InputError("a cost budget needs prices: add --price (e.g. cpu=0.05) or set price in themis.toml", option=option)


def check_capacity(
    trace: Trace,
    stages: Sequence[tuple[Stage, LatencyModel]],
    config: PlanConfig,
    budget: CapacityBudget,
    *,
    policy: str = "themis",
    seed: int = 0,
) -> list[GateCheck]:
    """Plan and simulate `trace`; one check per budget item plus "SLO reachable"."""
    outcome = compare(trace, list(stages), config, policies=(policy,), seed=seed).outcomes[0]
    feasible, reason = outcome.planned_feasible, outcome.plan_reason
    if feasible is None:  # a runtime controller (hpa) has no plan: the SLO is reachable when the plan it opens with is
        opening = RUNTIME_POLICIES[policy].opening_policy
        opened = plan(trace, list(stages), config, opening)
        feasible, reason = opened.feasible, f"{policy} opens with the {opening} plan: {opened.reason}"
    return capacity_checks(outcome, config, budget, reachable=(bool(feasible), reason))


def capacity_checks(
    outcome: PolicyOutcome, config: PlanConfig, budget: CapacityBudget, *, reachable: tuple[bool, str] | None = None
) -> list[GateCheck]:
    """The capacity gate's checks of one simulated policy (`themis demo` reports the same).
    `reachable` is (SLO reachable, why); by default, the verdict of the outcome's own plan."""
    sim = outcome.result
    feasible, reason = reachable if reachable is not None else (bool(outcome.planned_feasible), outcome.plan_reason)
    reachable_check = GateCheck("capacity", "slo_reachable", None, None, "", detail=reason, passed_override=feasible)
    peak_replicas, peak_cores = _peak_usage(sim.timeline, config.warmup_s)
    violation_limit = budget.max_violation_rate
    if violation_limit is None:
        violation_limit = round(1.0 - config.percentile / 100.0, 12)
    checks = [
        reachable_check,
        GateCheck(
            "capacity", "violation_rate", 100.0 * sim.violation_rate, 100.0 * violation_limit, "%",
            detail=f"{sim.violations} of {sim.requests} requests over {config.slo_ms:g} ms; simulated p{config.percentile:g} "
            f"{sim.percentile_ms(config.percentile):.1f} ms",
        ),
        GateCheck("capacity", "max_replicas", peak_replicas, _opt(budget.max_replicas), "", detail="most replicas at once, all stages"),
        GateCheck("capacity", "max_cores", peak_cores, _opt(budget.max_cores), "", detail="most cores at once, all stages"),
        GateCheck("capacity", "core_hours", sim.core_seconds / 3600.0, budget.max_core_hours, " core-h", detail="booting replicas included"),
    ]
    if budget.max_cost is not None:
        checks.append(GateCheck("capacity", "cost", sim.cost, budget.max_cost, "", detail=f"at {config.price_per_core_hour:g} per core-hour"))
    return checks


def check_regression(
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    max_regression: float,
    *,
    metric: str = "p50_ms",
    trace: Trace | None = None,
    config: PlanConfig | None = None,
    allow_unstable: bool = False,
) -> tuple[list[GateCheck], dict[str, pd.DataFrame]]:
    """Per-cell latency change (current / baseline - 1, with its confidence interval) and, given
    a trace, the capacity needed at its peak before and after. Fails when a cell is confidently
    slower by more than `max_regression` (a fraction: 0.1 = 10%), or the cores at the peak grow
    by more; the checks report percentages."""
    cells = regression_cells(baseline, current, metric=metric)
    judged = cells if allow_unstable else cells[cells["trusted"]]
    if judged.empty:
        why = "no cell of the new profile matches the baseline" if cells.empty else (
            f"none of the {len(cells)} matching cells is ok in both profiles (unstable or contended); "
            "re-measure on an idle runner or pass --allow-unstable")
        no_match = GateCheck("regression", "matching_cells", 0, None, "", detail=why, passed_override=False)
        return [no_match], {"regression_cells": cells}
    worst = judged.loc[judged["ratio_low"].idxmax()]
    estimate = RatioEstimate(float(worst["ratio"]), float(worst["ratio_low"]), float(worst["ratio_high"]), bootstrapped=bool(worst["bootstrapped"]))
    left_out = len(cells) - len(judged)
    checks = [
        GateCheck(
            "regression", f"worst_cell_{metric}", 100.0 * (estimate.low - 1.0), 100.0 * max_regression, "%",
            detail=f"{worst['model']} {worst['device_kind']} {int(worst['cores'])}c batch {int(worst['batch_size'])}: "
            f"{worst[metric + '_baseline']:.3g} -> {worst[metric + '_current']:.3g} ms, {estimate.describe()}; "
            f"the gate judges the lower end, over {len(judged)} matching cells"
            + (f" ({left_out} unstable or contended cells left out; --allow-unstable judges them)" if left_out else ""),
        )
    ]
    tables = {"regression_cells": cells}
    if trace is not None and config is not None:
        capacity = capacity_at_peak(baseline, current, trace, config)
        tables["capacity_at_peak"] = capacity
        for _, row in capacity.iterrows():
            change = row["cores_current"] / row["cores_baseline"] - 1.0 if row["cores_baseline"] else np.inf
            checks.append(
                GateCheck(
                    "regression", f"cores_at_peak_{row['model']}", 100.0 * float(change), 100.0 * max_regression, "%",
                    detail=f"{row['config_baseline']} -> {row['config_current']} at {row['peak_rps']:.1f} rps"
                    + ("" if row["feasible_current"] else "; the SLO is out of reach with the new profile"),
                    passed_override=None if row["feasible_current"] else False,
                )
            )
    return checks, tables


def regression_cells(baseline: pd.DataFrame, current: pd.DataFrame, *, metric: str = "p50_ms") -> pd.DataFrame:
    """Matching measured cells of both profiles with the relative change of `metric`, its
    bootstrap interval (`ratio`, `ratio_low`, `ratio_high`) and whether both are `ok` (`trusted`)."""
    if metric not in LATENCY_METRICS:
        raise InputError(f"unknown metric {metric!r}; use one of {', '.join(LATENCY_METRICS)}", option="--metric")
    keep = [*CELL_MATCH, "device_name", "status", metric, "samples_ms", "process_samples"]
    old = baseline.loc[baseline["status"].isin(MEASURED), keep]
    new = current.loc[current["status"].isin(MEASURED), keep]
    cells = old.merge(new, on=CELL_MATCH, suffixes=("_baseline", "_current"))
    estimates = [_estimate(row, metric) for row in cells.itertuples(index=False)]
    cells["ratio"] = [e.ratio for e in estimates]
    cells["ratio_low"] = [e.low for e in estimates]
    cells["ratio_high"] = [e.high for e in estimates]
    cells["bootstrapped"] = [e.bootstrapped for e in estimates]
    cells["change"] = cells["ratio"] - 1.0
    cells["trusted"] = (cells["status_baseline"] == "ok") & (cells["status_current"] == "ok")
    cells = cells.drop(columns=["samples_ms_baseline", "samples_ms_current", "process_samples_baseline", "process_samples_current"])
    return cells.sort_values("ratio_low", ascending=False, ignore_index=True)


def _estimate(row: tuple, metric: str) -> RatioEstimate:
    """The ratio of one matching cell: bootstrapped from raw calls where both profiles have them."""
    values = row._asdict()
    point = values[f"{metric}_current"] / values[f"{metric}_baseline"]
    base, cur = values["samples_ms_baseline"], values["samples_ms_current"]
    if metric not in METRIC_STATISTICS or len(base) == 0 or len(cur) == 0:
        return RatioEstimate(point, point, point, bootstrapped=False)
    return ratio_ci(split_by_process(base, values["process_samples_baseline"]), split_by_process(cur, values["process_samples_current"]),
                    statistic=METRIC_STATISTICS[metric])


def capacity_at_peak(baseline: pd.DataFrame, current: pd.DataFrame, trace: Trace, config: PlanConfig) -> pd.DataFrame:
    """For each model in both profiles: the static allocation sized for the trace's peak."""
    before = latency_models_from_frames([baseline])
    after = latency_models_from_frames([current])
    rows = []
    for model in sorted(set(before) & set(after)):
        sized = {}
        for label, models in (("baseline", before), ("current", after)):
            result = plan(trace, [(Stage(model, model), models[model])], config, "static")
            allocation = result.schedule.steps[0].stages[0]
            sized[label] = (allocation, result.feasible)
        rows.append(
            {
                "model": model,
                "peak_rps": float(trace.peak_rates(config.interval_s, config.peak_window_s).max()),
                "replicas_baseline": sized["baseline"][0].replicas,
                "cores_baseline": sized["baseline"][0].total_cores,
                "config_baseline": sized["baseline"][0].describe(),
                "replicas_current": sized["current"][0].replicas,
                "cores_current": sized["current"][0].total_cores,
                "config_current": sized["current"][0].describe(),
                "feasible_current": sized["current"][1],
            }
        )
    return pd.DataFrame(rows)


def run_check(
    *,
    capacity: tuple[Trace, Sequence[tuple[Stage, LatencyModel]], CapacityBudget] | None,
    regression: tuple[pd.DataFrame, pd.DataFrame, float, str] | None,
    config: PlanConfig,
    trace: Trace | None,
    policy: str = "themis",
    context: dict | None = None,
    allow_unstable: bool = False,
) -> Verdict:
    """Run the gates asked for and gather them into one verdict."""
    checks: list[GateCheck] = []
    tables: dict[str, pd.DataFrame] = {}
    if capacity is not None:
        capacity_trace, stages, budget = capacity
        checks += check_capacity(capacity_trace, stages, config, budget, policy=policy)
    if regression is not None:
        baseline, current, max_regression, metric = regression
        regression_checks, tables = check_regression(baseline, current, max_regression, metric=metric, trace=trace, config=config,
                                                     allow_unstable=allow_unstable)
        checks += regression_checks
    return Verdict(checks=checks, context=dict(context or {}), tables=tables)


def _peak_usage(timeline: list[dict], from_s: float = 0.0) -> tuple[int, int]:
    """Most replicas and most cores requested at once from `from_s` on (what is held then
    included), all stages together (the timeline lists only changes, so each stage's last
    request is carried forward)."""
    if not timeline:
        return 0, 0
    frame = pd.DataFrame(timeline)
    peaks = []
    for column in ("replicas", "total_cores"):
        held = frame.pivot_table(index="t_s", columns="stage", values=column, aggfunc="last").ffill().fillna(0)
        measured = held[held.index >= from_s]
        before = held[held.index < from_s]
        if not before.empty:
            measured = pd.concat([before.tail(1), measured])
        peaks.append(int(measured.sum(axis=1).max()))
    return peaks[0], peaks[1]


def _opt(value: int | None) -> float | None:
    return None if value is None else float(value)
