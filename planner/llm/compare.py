"""Every policy on one LLM service and one trace: planned, then replayed request by request
through the continuous-batching simulator with replicas coming and going on the plan's
schedule (cold starts included), and lined up on TTFT, TPOT, goodput and cost.

The planned policies (`LLM_POLICIES`) share one capacity cache, so a (type, token mix)
capacity is searched once. `hpa` has no plan: it is the Kubernetes HPA algorithm
(`themis.planner.simulation.controllers.hpa.hpa_decide`, reused as is) run every 15 s on a
queue metric, requests waiting per ready replica (vLLM's `num_requests_waiting`, read at the
sync instant), against a target (default 5), from the opening allocation of `horizontal`.
The simulation is stepped between syncs (`LlmFleet.run(until)`), so it sees exactly the
simulated queues.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from themis.common.jsonvalues import finite_or_none
from themis.planner.errors import PlanInputError
from themis.planner.llm.capacity import CapacityCache
from themis.planner.llm.plan import LlmPlan, LlmPlanConfig, llm_demand, per_million_tokens, plan_llm, slot_unit_seconds, usable_types
from themis.planner.llm.service import LlmRequests, LlmSlo
from themis.planner.llm.simulate import LlmFleet, LlmSimResult, ReplicaType, Slot, simulate_fleet
from themis.planner.model.config import DEFAULT_LLM_HPA_WAITING_PER_REPLICA
from themis.planner.model.cost import Prices, cost
from themis.planner.simulation.controllers.hpa import SYNC_PERIOD_S, HpaConfig, HpaContext, HpaState, hpa_decide
from themis.planner.traffic.trace import Trace

LLM_COMPARISON_SCHEMA_VERSION = 1
LLM_COMPARE_POLICIES = ("themis", "horizontal", "hpa", "static", "oracle")
"""Every policy `compare` runs on an LLM service, in display order (no `vertical`: see
`themis.planner.llm.policies`)."""
RATIO_KEYS = ("violations", "cost", "unit_seconds", "cost_per_mtok")

_BOOTING, _READY = 0, 1


@dataclass
class LlmOutcome:
    """One policy's replay: the simulated requests, the replicas' lives and what they cost."""

    policy: str
    result: LlmSimResult
    slots: list[Slot]
    scale_actions: int
    plan: LlmPlan | None = None

    def unit_seconds_by_device(self, types: Sequence[ReplicaType], horizon_s: float) -> dict[str, float]:
        return slot_unit_seconds(types, self.slots, horizon_s, self.result.gone_s)

    def summary(self, types: Sequence[ReplicaType], slo: LlmSlo, prices: Prices, horizon_s: float) -> dict[str, Any]:
        """The comparison metrics of this policy (JSON values; an infinite percentile is null)."""
        result, q = self.result, slo.percentile
        met = result.meets(slo)
        units = self.unit_seconds_by_device(types, horizon_s)
        tokens = result.tokens_served()
        out = {
            "policy": self.policy,
            "requests": len(result.requests),
            "served": int(result.served.sum()),
            "unserved": result.rejected,
            "violations": int((~met).sum()),
            "violation_rate": float((~met).mean()) if met.size else 0.0,
            "slo_attainment": float(met.mean()) if met.size else float("nan"),
            "goodput_rps": finite_or_none(result.goodput_rps(slo, horizon_s)),
            "ttft_p50_ms": finite_or_none(result.percentile_ms("ttft", 50)),
            "ttft_p99_ms": finite_or_none(result.percentile_ms("ttft", q)),
            "tpot_p50_ms": finite_or_none(result.percentile_ms("tpot", 50)),
            "tpot_p99_ms": finite_or_none(result.percentile_ms("tpot", q)),
            "preemptions": int(result.preemptions.sum()),
            "unit_seconds_by_device": units,
            "unit_seconds": float(sum(units.values())),
            "core_seconds": float(units.get("cpu", 0.0)),
            "gpu_seconds": float(sum(v for k, v in units.items() if k != "cpu")),
            "cost": cost(units, prices),
            "tokens_served": tokens,
            **per_million_tokens(units, prices, tokens),
            "scale_actions": self.scale_actions,
            "replicas_max": int(max(replicas_over_time(self.slots, [0.0, *sorted({s.requested_s for s in self.slots})]), default=0)),
        }
        if self.plan is not None:
            out.update(plan_feasible=self.plan.feasible, plan_reason=self.plan.reason)
        return out

    def timeline(self, slo: LlmSlo, interval_s: float, horizon_s: float) -> list[dict[str, Any]]:
        """Per interval (requests by arrival time): TTFT and TPOT percentiles, goodput, replicas."""
        result = self.result
        n = max(1, int(math.ceil(horizon_s / interval_s - 1e-9)))
        bins = np.minimum((result.requests.arrival_s // interval_s).astype(np.int64), n - 1)
        met = result.meets(slo)
        ttft_ms, tpot_ms = result.ttft_s * 1000.0, result.tpot_s * 1000.0
        starts = np.arange(n) * interval_s
        asked = replicas_over_time(self.slots, starts)
        ready = [sum(1 for s in self.slots if s.ready_s <= t < s.remove_s) for t in starts]
        rows = []
        for i in range(n):
            inside = bins == i
            tpot = tpot_ms[inside & ~np.isnan(tpot_ms)]
            rows.append({
                "t_start_s": float(starts[i]), "requests": int(inside.sum()),
                "ttft_p50_ms": _percentile(ttft_ms[inside], 50), "ttft_p99_ms": _percentile(ttft_ms[inside], slo.percentile),
                "tpot_p99_ms": _percentile(tpot, slo.percentile),
                "goodput_rps": float(met[inside].sum()) / interval_s, "replicas": int(asked[i]), "ready_replicas": int(ready[i]),
            })
        return rows


def _percentile(values: np.ndarray, q: float) -> float | None:
    return finite_or_none(float(np.percentile(values, q, method="inverted_cdf"))) if values.size else None


def replicas_over_time(slots: Sequence[Slot], times: Sequence[float]) -> list[int]:
    """Replicas asked for and not yet removed at each time (booting ones included)."""
    return [sum(1 for s in slots if s.requested_s <= t < s.remove_s) for t in times]


@dataclass
class LlmComparison:
    """The same requests through every policy; ratios are policy / themis."""

    trace_name: str
    trace_start: str | None
    slo: LlmSlo
    interval_s: float
    cold_start_s: float
    horizon_s: float
    types: tuple[ReplicaType, ...]
    prices: Prices
    outcomes: list[LlmOutcome]
    settings: dict[str, Any] = field(default_factory=dict)

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {o.policy: o.summary(self.types, self.slo, self.prices, self.horizon_s) for o in self.outcomes}

    def ratios(self, summaries: dict[str, dict[str, Any]], policy: str) -> dict[str, float | None]:
        """policy / themis for each of `RATIO_KEYS` (None when undefined, e.g. x / 0)."""
        base, this = summaries.get("themis"), summaries.get(policy)
        if base is None or this is None:
            return {}
        return {key: (None if base[key] in (None, 0) or this[key] is None else float(this[key]) / float(base[key])) for key in RATIO_KEYS}

    def to_dict(self) -> dict[str, Any]:
        summaries = self.summaries()
        return {
            "schema_version": LLM_COMPARISON_SCHEMA_VERSION,
            "kind": "llm_comparison",
            "trace": self.trace_name,
            "trace_start": self.trace_start,
            "slo": self.slo.to_dict(),
            "interval_s": self.interval_s,
            "cold_start_s": self.cold_start_s,
            "horizon_s": self.horizon_s,
            "price_per_core_hour": self.prices.per_core_hour,
            "price_per_gpu_hour": dict(self.prices.per_gpu_hour),
            "replica_types": [t.label for t in self.types],
            "settings": self.settings,
            "policies": {
                o.policy: {
                    **summaries[o.policy], "ratio_to_themis": self.ratios(summaries, o.policy),
                    "timeline": o.timeline(self.slo, self.interval_s, self.horizon_s),
                }
                for o in self.outcomes
            },
        }

    def to_frame(self) -> pd.DataFrame:
        summaries = self.summaries()
        rows = []
        for name, row in summaries.items():
            flat = {k: v for k, v in row.items() if not isinstance(v, dict)}
            flat.update({f"{k}_ratio_to_themis": v for k, v in self.ratios(summaries, name).items()})
            rows.append(flat)
        return pd.DataFrame(rows)


def compare_llm(
    trace: Trace,
    types: Sequence[ReplicaType],
    config: LlmPlanConfig,
    policies: Sequence[str] = LLM_COMPARE_POLICIES,
    *,
    hpa_target_waiting: float = DEFAULT_LLM_HPA_WAITING_PER_REPLICA,
) -> LlmComparison:
    """Plan every planned policy and replay it, and run `hpa` in closed loop, on the trace's requests."""
    unknown = [p for p in policies if p not in LLM_COMPARE_POLICIES]
    if unknown:
        raise PlanInputError(f"unknown policy {unknown[0]!r} for an LLM service; use any of {', '.join(LLM_COMPARE_POLICIES)}",
                             option="--policies")
    if not hpa_target_waiting > 0:
        raise PlanInputError("must be a positive number of waiting requests per replica", option="--hpa-target")
    config.validate()
    types = tuple(usable_types(types, trace))
    demand = llm_demand(trace, config)
    cache = CapacityCache()
    plans: dict[str, LlmPlan] = {}

    def planned(name: str) -> LlmPlan:
        if name not in plans:
            plans[name] = plan_llm(trace, types, config, name, cache=cache, demand=demand)
        return plans[name]

    horizon_s = math.ceil(trace.duration_s / config.interval_s - 1e-9) * config.interval_s
    hpa = HpaConfig(target_utilisation=hpa_target_waiting, metric="value", max_replicas=config.max_replicas)
    outcomes = []
    for name in policies:
        if name == "hpa":
            outcomes.append(run_hpa(demand.requests, types, planned("horizontal"), hpa, config.cold_start_s, horizon_s))
            continue
        plan = planned(name)
        slots = plan.slots()
        outcomes.append(LlmOutcome(name, simulate_fleet(demand.requests, types, slots), slots, plan.scale_actions(), plan))
    return LlmComparison(
        trace_name=trace.name, trace_start=trace.trace_start, slo=config.slo, interval_s=config.interval_s,
        cold_start_s=config.cold_start_s, horizon_s=horizon_s, types=types, prices=config.prices, outcomes=outcomes,
        settings={
            "requests": len(demand.requests), "tokens": demand.tokens, "headroom": config.headroom, "forecast": config.forecast,
            "load_window_s": config.load_window_s, "mix_window_s": config.mix_window_s, "max_replicas": config.max_replicas,
            "capacity_requests": config.capacity_requests, "seed": config.seed, "hpa_target_waiting_per_replica": hpa_target_waiting,
            "hpa_sync_s": SYNC_PERIOD_S,
        },
    )


def run_hpa(requests: LlmRequests, types: Sequence[ReplicaType], opening: LlmPlan, config: HpaConfig, cold_start_s: float,
            horizon_s: float) -> LlmOutcome:
    """The Kubernetes HPA on the waiting-requests metric, from `opening`'s first interval (its
    type and replicas), stepped every sync period until the horizon."""
    first = opening.steps[0].replicas
    kind = max(range(len(first)), key=lambda k: first[k])
    fleet = LlmFleet(requests, types)
    alive = [fleet.add(kind, 0.0, 0.0) for _ in range(first[kind])]
    slots = [Slot(kind, 0.0, 0.0) for _ in alive]
    state, actions, now = HpaState(), 0, SYNC_PERIOD_S
    while now < horizon_s:
        fleet.run(now)
        states, waiting = fleet.states(), fleet.waiting()
        ready = [i for i in alive if states[i] == _READY]
        metric = (float(waiting[ready].sum()) + fleet.router_waiting) / len(ready) if ready else float("nan")
        desired, state = hpa_decide(HpaContext(now, len(alive), len(ready), metric, config, state))
        if desired != len(alive):
            actions += 1
        while len(alive) < desired:
            alive.append(fleet.add(kind, now, now + cold_start_s))
            slots.append(Slot(kind, now, now + cold_start_s))
        while len(alive) > desired:  # the newest first: booting replicas before serving ones
            index = alive.pop()
            fleet.remove(index, now)
            slots[index] = Slot(kind, slots[index].requested_s, slots[index].ready_s, now)
        now += SYNC_PERIOD_S
    fleet.run()
    return LlmOutcome("hpa", fleet.result(), slots, actions)
