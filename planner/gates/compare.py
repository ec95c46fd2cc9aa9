"""Run every policy through the simulator on the same arrivals and line up the outcomes.

The planning policies (`themis.planner.policies.POLICIES`) are planned with `plan` and run
by their plan's runtime controller (a `themis` plan also reacts to surges between its
intervals, with its surge rule). The runtime controllers with no plan (`RUNTIME_POLICIES`:
`hpa`) are simulated in closed loop from the opening allocation of the policy they name
(`hpa` from `horizontal`'s: the same cores and batch per replica, sized for the observed
peak of the warm-up, or of the first interval, the documented initial condition of online
policies). Every policy is measured from `config.warmup_s` on (`SimulationResult`).
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
    warmup_s: float = 0.0

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
            "warmup_s": self.warmup_s,
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
        return None  # x / 0 and 0 / 0 are undefined: shown as n/a, not as 1.00x
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
    check_warmup(config.warmup_s, trace)
    arrivals_s = trace.request_arrivals(seed)
    horizon_s = math.ceil(trace.duration_s / config.interval_s) * config.interval_s
    sim_config = SimConfig(
        slo_ms=config.slo_ms, cold_start_s=config.cold_start_s, resize_s=config.resize_s, seed=seed, service=service,
        horizon_s=horizon_s, warmup_s=config.warmup_s,
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
        warmup_s=config.warmup_s,
        settings={
            "interval_s": config.interval_s,
            "resize_s": config.resize_s,
            "percentile": config.percentile,
            "price_per_core_hour": config.price_per_core_hour,
            "seed": seed,
            "service": service,
            "requests": int(np.count_nonzero(np.asarray(arrivals_s) >= config.warmup_s)),
            "hpa_target_utilisation": settings.hpa.target_utilisation,
            "hpa_behavior": settings.hpa.behavior.to_dict() if settings.hpa.behavior is not None else None,
            "surge_check_s": surge_check_s,
        },
    )


def check_warmup(warmup_s: float, trace: Trace) -> None:
    """A warm-up must leave some of the trace to measure."""
    if warmup_s >= trace.duration_s:
        raise PlanInputError(f"{warmup_s:g} s leaves nothing of the {trace.duration_s:g} s trace to measure", option="--warmup")


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
