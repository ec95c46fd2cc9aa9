"""`themis check` for an LLM service: plan the trace with a policy, replay it through the
continuous-batching simulator and hold the run to the budget (`CapacityBudget`): the SLO
reachable, the share of requests missing TTFT or TPOT, the most replicas and cores at once,
unit-hours, cost and cost per million tokens served."""

from __future__ import annotations

from collections.abc import Sequence

from themis.common.errors import InputError
from themis.planner.gates.check import CapacityBudget
from themis.planner.gates.verdict import GateCheck
from themis.planner.llm.compare import LlmComparison, compare_llm
from themis.planner.llm.plan import LlmPlanConfig
from themis.planner.llm.simulate import ReplicaType, Slot
from themis.planner.traffic.trace import Trace


def check_llm_capacity(
    trace: Trace, types: Sequence[ReplicaType], config: LlmPlanConfig, budget: CapacityBudget, *, policy: str = "themis"
) -> list[GateCheck]:
    """One check per budget item, plus "SLO reachable", on the simulated run of `policy`."""
    if budget.max_cost_per_mtok is not None and not config.prices.priced:
        raise InputError("a cost budget needs prices (e.g. --price cpu=0.05,a100=2.5)", option="--budget-cost-per-mtok")
    comparison = compare_llm(trace, types, config, policies=(policy,))
    return llm_capacity_checks(comparison, config, budget)


def llm_capacity_checks(comparison: LlmComparison, config: LlmPlanConfig, budget: CapacityBudget) -> list[GateCheck]:
    outcome = comparison.outcomes[0]
    row = outcome.summary(comparison.types, config.slo, config.prices, comparison.horizon_s)
    slo = config.slo
    reachable = GateCheck(
        "capacity", "slo_reachable", None, None, "", detail=row.get("plan_reason", "hpa: no plan"),
        passed_override=bool(row.get("plan_feasible", True)),
    )
    limit = budget.max_violation_rate if budget.max_violation_rate is not None else round(1.0 - slo.percentile / 100.0, 12)
    ttft, tpot = row["ttft_p99_ms"], row["tpot_p99_ms"]
    checks = [
        reachable,
        GateCheck(
            "capacity", "violation_rate", 100.0 * row["violation_rate"], 100.0 * limit, "%",
            detail=f"{row['violations']} of {row['requests']} requests miss TTFT {slo.ttft_ms:g} ms or TPOT {slo.tpot_ms:g} ms; "
            f"simulated p{slo.percentile:g} TTFT {_ms(ttft)}, TPOT {_ms(tpot)}",
        ),
        GateCheck("capacity", "max_replicas", row["replicas_max"], _opt(budget.max_replicas), "", detail="most replicas at once"),
        GateCheck("capacity", "max_cores", most_cores(outcome.slots, comparison.types), _opt(budget.max_cores), "",
                  detail="most CPU cores at once"),
        GateCheck("capacity", "core_hours", row["unit_seconds"] / 3600.0, budget.max_core_hours, " unit-h",
                  detail="core-hours, and GPU-hours for GPU replicas; booting and draining replicas included"),
    ]
    if budget.max_cost is not None:
        checks.append(GateCheck("capacity", "cost", row["cost"], budget.max_cost, "", detail="by the price table"))
    if budget.max_cost_per_mtok is not None:
        checks.append(GateCheck(
            "capacity", "cost_per_mtok", row["cost_per_mtok"], budget.max_cost_per_mtok, "",
            detail=f"cost {row['cost']:.4g} over {row['tokens_served']:,} prompt + output tokens served",
        ))
    return checks


def most_cores(slots: Sequence[Slot], types: Sequence[ReplicaType]) -> int:
    """The most CPU cores held at once (asked for and not yet removed)."""
    times = sorted({s.requested_s for s in slots})
    return max((sum(types[s.type].units for s in slots if types[s.type].device == "cpu" and s.requested_s <= t < s.remove_s)
                for t in times), default=0)


def _ms(value: float | None) -> str:
    return "inf" if value is None else f"{value:,.1f} ms"


def _opt(value: int | None) -> float | None:
    return None if value is None else float(value)
