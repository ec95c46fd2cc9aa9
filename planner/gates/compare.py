"""Run every policy through the simulator on the same arrivals and line up the outcomes.

The planning policies (`themis.planner.policies.POLICIES`) are planned with `plan` and run
by their plan's runtime controller (a `themis` plan also reacts to surges between its
intervals, with its surge rule). The runtime controllers with no plan (`RUNTIME_POLICIES`:
`hpa`) are simulated in closed loop from the opening allocation of the policy they name
(`hpa` from `horizontal`'s: the same cores and batch per replica, sized for the first
interval's observed peak, the documented initial condition of online policies).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.planner import choices
from themis.planner.errors import PlanInputError
from themis.planner.model.config import DEFAULT_SERVICE, DEFAULT_SURGE_CHECK_S, PlanConfig, SimConfig
from themis.planner.model.latency import LatencyModel
from themis.planner.model.serving import Schedule
from themis.planner.optimise.plan import PlanResult, StageInput, plan
from themis.planner.simulation.controllers.hpa import HpaConfig, HpaController
from themis.planner.simulation.controllers.schedule import controller_for
from themis.planner.simulation.driver import simulate
from themis.planner.simulation.observation import Controller
from themis.planner.simulation.result import SimulationResult
from themis.planner.traffic.trace import Trace


@dataclass(frozen=True)
class RuntimePolicy:
    """A controller with no plan: it starts from `opening_policy`'s first step."""

    opening_policy: str
    controller: Callable[[Schedule, "CompareSettings"], Controller]


@dataclass(frozen=True)
class CompareSettings:
    """What `compare` runs every policy under, besides the plan settings."""

    seed: int = 0
    service: str = DEFAULT_SERVICE
    hpa: HpaConfig = field(default_factory=HpaConfig)
    surge_check_s: float = DEFAULT_SURGE_CHECK_S
    horizon_s: float = 0.0


RUNTIME_POLICIES: dict[str, RuntimePolicy] = {
    "hpa": RuntimePolicy(
        "horizontal",
        lambda opening, settings: HpaController(
            list(opening.steps[0].stages),
            opening.stages,
            settings.hpa,
            prices=opening.prices,
            horizon_s=settings.horizon_s,
            trace_start=opening.trace_start,
        ),
    ),
}
POLICIES = choices.POLICIES
"""Every policy `compare` runs, in display order: the planned ones plus the runtime controllers."""

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
    stages: Sequence[StageInput],
    config: PlanConfig,
    policies: Sequence[str] = POLICIES,
    *,
    seed: int = 0,
    service: str = DEFAULT_SERVICE,
    hpa: HpaConfig | None = None,
    surge_check_s: float = DEFAULT_SURGE_CHECK_S,
) -> Comparison:
    """Plan and simulate every policy in `policies` on the arrivals of `trace`."""
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise PlanInputError(f"unknown policy {unknown[0]!r}; use any of {', '.join(POLICIES)}", option="--policies")
    arrivals_s = trace.request_arrivals(seed)
    horizon_s = math.ceil(trace.duration_s / config.interval_s) * config.interval_s
    sim_config = SimConfig(
        slo_ms=config.slo_ms, cold_start_s=config.cold_start_s, resize_s=config.resize_s, seed=seed, service=service,
        horizon_s=horizon_s,
    )
    settings = CompareSettings(seed, service, hpa or HpaConfig(max_replicas=config.max_replicas), surge_check_s, horizon_s)
    plans: dict[str, PlanResult] = {}

    def planned(policy: str) -> PlanResult:
        if policy not in plans:
            plans[policy] = plan(trace, stages, config, policy)
        return plans[policy]

    outcomes = []
    for policy in policies:
        if policy in RUNTIME_POLICIES:
            runtime = RUNTIME_POLICIES[policy]
            opening = planned(runtime.opening_policy).schedule
            controller = runtime.controller(opening, settings)
            models = serving_models(stages, opening)
            result = simulate(arrivals_s, controller, models, sim_config, cores_options=config.cores)
            outcomes.append(PolicyOutcome(policy, result))
            continue
        plan_result = planned(policy)
        schedule = plan_result.schedule
        controller = controller_for(schedule, surge_check_s=surge_check_s)
        result = simulate(arrivals_s, controller, serving_models(stages, schedule), sim_config, cores_options=config.cores)
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
            "hpa_target_utilisation": settings.hpa.target_utilisation,
            "surge_check_s": surge_check_s,
        },
    )


def serving_models(stages: Sequence[StageInput], schedule: Schedule) -> list[LatencyModel]:
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
