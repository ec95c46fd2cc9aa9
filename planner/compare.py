"""Run every policy through the simulator on the same arrivals and line up the outcomes.

The planned policies (`themis`, `horizontal`, `vertical`, `static`, `oracle`) are planned
with `themis.planner.plan.plan` and replayed (themis also reacts to surges between its
intervals, with its surge rule); `hpa` is simulated in closed loop. `hpa` starts from the
same opening allocation as `horizontal` (the same cores and batch per replica, sized for
the first interval's observed peak: the documented initial condition of online policies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.planner.choices import POLICIES
from themis.planner.control import HpaController, SurgeController
from themis.planner.errors import PlanInputError
from themis.planner.latency import LatencyModel
from themis.planner.plan import POLICIES as PLANNED_POLICIES
from themis.planner.plan import PlanConfig, PlanResult, plan
from themis.planner.policies.hpa import HpaConfig
from themis.planner.serving import Schedule
from themis.planner.traces import Trace

if TYPE_CHECKING:
    from themis.planner.simulate import SimulationResult

RATIO_KEYS = ("violations", "p99_ms", "core_seconds", "cost", "scale_actions")


@dataclass
class PolicyOutcome:
    """One policy's simulated outcome (and, for planned policies, the plan's own verdict)."""

    policy: str
    result: SimulationResult
    planned_feasible: bool | None = None
    plan_reason: str = ""
    schedule: Schedule | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"policy": self.policy, **self.result.summary()}
        if self.planned_feasible is not None:
            out["plan_feasible"] = self.planned_feasible
            out["plan_reason"] = self.plan_reason
        return out


@dataclass
class Comparison:
    """The same arrivals through every policy; ratios are policy / themis."""

    trace_name: str
    trace_start: str | None
    slo_ms: float
    cold_start_s: float
    outcomes: list[PolicyOutcome]
    settings: dict[str, Any] = field(default_factory=dict)

    def outcome(self, policy: str) -> PolicyOutcome | None:
        return next((o for o in self.outcomes if o.policy == policy), None)

    def ratios(self, policy: str) -> dict[str, float | None]:
        """policy / themis for each of `RATIO_KEYS` (None when undefined, e.g. 0 / 0)."""
        base = self.outcome("themis")
        this = self.outcome(policy)
        if base is None or this is None:
            return {}
        a, b = this.result.summary(), base.result.summary()
        return {key: _ratio(a[key], b[key]) for key in RATIO_KEYS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "comparison",
            "trace": self.trace_name,
            "trace_start": self.trace_start,
            "slo_ms": self.slo_ms,
            "cold_start_s": self.cold_start_s,
            "settings": self.settings,
            "policies": {o.policy: {**o.to_dict(), "ratio_to_themis": self.ratios(o.policy)} for o in self.outcomes},
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for o in self.outcomes:
            row = o.to_dict()
            row.update({f"{k}_ratio_to_themis": v for k, v in self.ratios(o.policy).items()})
            rows.append(row)
        return pd.DataFrame(rows)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b == 0:
        return 1.0 if a == 0 else None
    return float(a) / float(b)


def compare(
    trace: Trace,
    stages: list[tuple[Any, Any]],
    config: PlanConfig,
    policies: tuple[str, ...] = POLICIES,
    *,
    seed: int = 0,
    service: str = "median",
    hpa: HpaConfig | None = None,
    surge_check_s: float = 1.0,
) -> Comparison:
    """Plan and simulate every policy in `policies` on the arrivals of `trace`."""
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise PlanInputError(f"unknown policy {unknown[0]!r}; use any of {', '.join(POLICIES)}", option="--policies")
    from themis.planner.simulate import (  # numba loads only when simulating
        SimConfig,
        simulate,
    )

    arrivals_s = trace.request_arrivals(seed)
    sim_config = SimConfig(
        cold_start_s=config.cold_start_s, resize_s=config.resize_s, slo_ms=config.slo_ms, seed=seed, service=service,
        horizon_s=math.ceil(trace.duration_s / config.interval_s) * config.interval_s,
    )
    plans: dict[str, PlanResult] = {}

    def planned(policy: str) -> PlanResult:
        if policy not in plans:
            plans[policy] = plan(trace, stages, config, policy)
        return plans[policy]

    outcomes = []
    for policy in policies:
        if policy == "hpa":
            opening = list(planned("horizontal").schedule.steps[0].stages)
            hpa_config = hpa or HpaConfig(max_replicas=config.max_replicas)
            controller = HpaController(
                opening, tuple(s for s, _ in stages), hpa_config, horizon_s=sim_config.horizon_s,
                price_per_core_hour=config.price_per_core_hour,
            )
            models = serving_models(stages, planned("horizontal").schedule)
            result = simulate(arrivals_s, controller, models, sim_config, trace_start=trace.trace_start, cores_options=config.cores)
            outcomes.append(PolicyOutcome("hpa", result))
            continue
        if policy not in PLANNED_POLICIES:
            raise PlanInputError(f"policy {policy!r} cannot be planned", option="--policies")
        plan_result = planned(policy)
        schedule = plan_result.schedule
        controller: Any = schedule
        if policy == "themis" and schedule.extra.get("surge_rules"):
            controller = SurgeController(schedule, check_s=surge_check_s)
        models = serving_models(stages, schedule)
        result = simulate(arrivals_s, controller, models, sim_config, trace_start=trace.trace_start, cores_options=config.cores)
        outcomes.append(PolicyOutcome(policy, result, plan_result.feasible, plan_result.reason, schedule))
    return Comparison(
        trace_name=trace.name,
        trace_start=trace.trace_start,
        slo_ms=config.slo_ms,
        cold_start_s=config.cold_start_s,
        outcomes=outcomes,
        settings={
            "interval_s": config.interval_s,
            "resize_s": config.resize_s,
            "percentile": config.percentile,
            "price_per_core_hour": config.price_per_core_hour,
            "seed": seed,
            "service": service,
            "requests": int(np.asarray(arrivals_s).size),
            "hpa_target_utilisation": (hpa or HpaConfig()).target_utilisation,
            "surge_check_s": surge_check_s,
        },
    )


def serving_models(stages: list[tuple[Any, Any]], schedule: Any) -> list[LatencyModel]:
    """Per stage, the latency model of the device the plan runs it on: a stage may carry one
    candidate `LatencyModel` per device (several profiles merged)."""
    chosen = []
    for j, (_, candidates) in enumerate(stages):
        if isinstance(candidates, LatencyModel):
            chosen.append(candidates)
            continue
        device = schedule.steps[0].stages[j].device if schedule.steps else "cpu"
        chosen.append(next((m for m in candidates if m.device == device), candidates[0]))
    return chosen
