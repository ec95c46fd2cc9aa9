"""LLM planning: per interval, how many replicas of which replica type, so that the TTFT and
TPOT SLO holds at the SLO percentile at the lowest cost (README, "LLM serving model").

1. **Load.** Per interval, the peak request rate over a window as long as the TTFT SLO (at
   least 1 s): a burst shorter than the time a request may wait for its first token can
   queue, a longer one must be carried. Online policies plan for the rolling forecast of
   it (the batch planner's forecasters), x headroom, held over the scale-down window.
2. **Token mix.** Every `mix_window_s` (default 10 min) the mix of (prompt, output) tokens
   is re-estimated: online policies use the previous window's requests (the first window
   its own, the opening condition), offline policies the window's own; a mix holds at
   least the latest `MIN_LLM_MIX_REQUESTS` requests.
3. **Capacity.** Each replica type's capacity per replica at the SLO for a mix is the
   phase-1 simulation search (`search_capacity`: the largest Poisson rate whose simulated
   p-th percentile TTFT and TPOT meet the SLO), cached per (type, mix) in a
   `CapacityCache`. Replicas behind the join-shortest-queue router are taken to carry the
   sum of their capacities, which pooling makes conservative.
4. **Policy.** `themis.planner.llm.policies` decides the replicas of each type per interval.
5. **Delays.** A replica asked for at t serves from t + cold start (the opening replicas from
   0); one removed at t takes no new requests (in simulation it drains first). Removals take
   the newest replicas of a type. The plan estimates, per interval, whether the replicas
   serving at its start carry its real peak at its real mix.

Cost is units x time (cores, or GPUs) from the moment a replica is asked for until it is
removed, priced by the one rule (`themis.planner.model.cost`); per million tokens it is
divided by the prompt + output tokens of the trace's requests.

The result is an `LlmPlan`, JSON `kind: "llm_plan"` (its own contract, not the batch
`Schedule`: an interval holds replicas of several types at once, the SLO is two numbers
and capacity depends on the token mix).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from themis.common.files import read_json_object
from themis.common.schema import check_schema_version
from themis.planner.errors import PlanInputError
from themis.planner.llm.capacity import CapacityCache, CapacityResult, TokenMix
from themis.planner.llm.policies import LLM_POLICIES
from themis.planner.llm.policy import LlmPolicySetup, Replicas, TypeOption, replicas_needed, run_llm_policy
from themis.planner.llm.service import LlmRequests, LlmSlo
from themis.planner.llm.simulate import ReplicaType, Slot
from themis.planner.model.config import (
    DEFAULT_COLD_START_S,
    DEFAULT_FORECAST,
    DEFAULT_HEADROOM,
    DEFAULT_INTERVAL_S,
    DEFAULT_LLM_CAPACITY_REQUESTS,
    DEFAULT_LLM_MIX_WINDOW_S,
    DEFAULT_LLM_TYPE_SWITCH_SAVING,
    DEFAULT_MAX_REPLICAS,
    DEFAULT_SCALE_DOWN_DELAY_S,
    MIN_LLM_MIX_REQUESTS,
)
from themis.planner.model.cost import Prices, cost
from themis.planner.traffic.trace import Trace

LLM_PLAN_SCHEMA_VERSION = 1
TOKENS_PER_MILLION = 1e6


@dataclass(frozen=True)
class LlmPlanConfig:
    """Everything an LLM plan depends on besides the trace and the replica types."""

    slo: LlmSlo
    interval_s: float = DEFAULT_INTERVAL_S
    cold_start_s: float = DEFAULT_COLD_START_S
    max_replicas: int = DEFAULT_MAX_REPLICAS
    headroom: float = DEFAULT_HEADROOM
    forecast: str = DEFAULT_FORECAST
    prices: Prices = field(default_factory=Prices)
    scale_down_delay_s: float = DEFAULT_SCALE_DOWN_DELAY_S
    mix_window_s: float = DEFAULT_LLM_MIX_WINDOW_S
    capacity_requests: int = DEFAULT_LLM_CAPACITY_REQUESTS
    switch_saving: float = DEFAULT_LLM_TYPE_SWITCH_SAVING
    seed: int = 0
    """Seed of the capacity search's Poisson probes."""

    def validate(self) -> None:
        checks = [
            (self.interval_s > 0, "--interval", "must be positive"),
            (self.cold_start_s >= 0, "--cold-start", "must not be negative"),
            (self.max_replicas >= 1, "--max-replicas", "must be at least 1"),
            (self.headroom >= 1.0, "--headroom", "must be at least 1.0"),
            (self.mix_window_s > 0, "--mix-window", "must be positive"),
            (self.capacity_requests >= 100, "--capacity-requests", "must be at least 100"),
        ]
        for ok, option, message in checks:
            if not ok:
                raise PlanInputError(message, option=option)

    @property
    def load_window_s(self) -> float:
        """The burst length capacity must carry: the TTFT SLO rounded up to whole seconds (>= 1 s)."""
        return float(max(1, math.ceil(self.slo.ttft_ms / 1000.0 - 1e-9)))

    @property
    def cold_steps(self) -> int:
        return int(math.ceil(self.cold_start_s / self.interval_s - 1e-9))


def trace_requests(trace: Trace) -> LlmRequests:
    """The trace's requests with their tokens (a token count of 0 is served as 1)."""
    if not trace.has_tokens:
        raise PlanInputError(
            f"{trace.name} has no token counts; an LLM service is planned from a trace with each request's tokens "
            "(Azure LLM ContextTokens/GeneratedTokens, or input_tokens/output_tokens columns)", option="--trace",
        )
    return LlmRequests(trace.arrivals_s, np.maximum(trace.prompt_tokens, 1), np.maximum(trace.output_tokens, 1))


@dataclass(frozen=True)
class MixBlock:
    """The token mix of one mix window: the requests it was drawn from and their tokens."""

    index: int
    t_start_s: float
    t_end_s: float
    mix: TokenMix

    def describe(self) -> dict[str, Any]:
        return {
            "block": self.index, "t_start_s": self.t_start_s, "t_end_s": self.t_end_s, "requests": int(self.mix.prompt_tokens.size),
            "mean_prompt_tokens": float(self.mix.prompt_tokens.mean()), "mean_output_tokens": float(self.mix.output_tokens.mean()),
        }


@dataclass(frozen=True)
class LlmDemand:
    """What the trace asks of the service, per interval: peaks, forecast, token mixes."""

    requests: LlmRequests
    interval_s: float
    peaks_rps: np.ndarray
    """Real peak rate over the load window in each interval."""
    forecast_rps: np.ndarray
    """Rolling forecast of the peaks (element t from intervals before t; t = 0 its own peak)."""
    blocks: tuple[MixBlock, ...]
    block_of_step: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.peaks_rps.size)

    def known_block(self, step: int, offline: bool) -> int:
        """The mix a policy may know of at `step`: its own window's (offline) or the previous (online)."""
        block = int(self.block_of_step[step])
        return block if offline or block == 0 else block - 1

    @property
    def tokens(self) -> int:
        return int(self.requests.prompt_tokens.sum() + self.requests.output_tokens.sum())


def window_peaks(arrivals_s: np.ndarray, duration_s: float, interval_s: float, window_s: float) -> np.ndarray:
    """Per interval, the most requests in any `window_s` window ending inside it, over `window_s`.

    Counted in 1 s bins: a window is `window_s` whole seconds."""
    n = int(math.ceil(duration_s / interval_s - 1e-9))
    seconds = int(math.ceil(n * interval_s - 1e-9))
    counts = np.bincount(np.minimum(arrivals_s.astype(np.int64), seconds - 1), minlength=seconds).astype(np.float64)
    width = int(window_s)
    sums = np.convolve(counts, np.ones(width))[:seconds]  # sums[s]: arrivals in the window ending with second s
    ends = (np.arange(seconds) // interval_s).astype(np.int64)
    peaks = np.zeros(n)
    np.maximum.at(peaks, np.minimum(ends, n - 1), sums / width)
    return peaks


def llm_demand(trace: Trace, config: LlmPlanConfig) -> LlmDemand:
    """Peaks, forecast and token mixes of `trace` for `config` (see the module docstring)."""
    from themis.planner.traffic.forecast import METHODS, forecast_peaks

    requests = trace_requests(trace)
    if len(requests) == 0:
        raise PlanInputError("the trace has no requests", option="--trace")
    peaks = window_peaks(requests.arrival_s, trace.duration_s, config.interval_s, config.load_window_s)
    if config.forecast not in METHODS:
        raise PlanInputError(f"unknown method {config.forecast!r}; use one of {', '.join(METHODS)}", option="--forecast")
    forecast = np.asarray(forecast_peaks(peaks, config.forecast, interval_s=config.interval_s), dtype=float)
    forecast[0] = peaks[0]  # the service is already running, sized for what it sees
    for i in np.flatnonzero(~np.isfinite(forecast)):
        forecast[i] = peaks[i - 1]
    forecast = np.maximum(forecast, 0.0)
    per_block = max(1, int(round(config.mix_window_s / config.interval_s)))
    block_of_step = np.arange(peaks.size) // per_block
    blocks = []
    for b in range(int(block_of_step[-1]) + 1):
        t0, t1 = b * per_block * config.interval_s, min((b + 1) * per_block, peaks.size) * config.interval_s
        first, last = np.searchsorted(requests.arrival_s, [t0, t1])
        first = min(first, max(0, last - MIN_LLM_MIX_REQUESTS))  # too few in the window: the latest before its end
        if last - first < MIN_LLM_MIX_REQUESTS:
            last = min(len(requests), first + MIN_LLM_MIX_REQUESTS)  # the trace's first window: its first requests
        blocks.append(MixBlock(b, t0, t1, TokenMix(requests.prompt_tokens[first:last], requests.output_tokens[first:last])))
    return LlmDemand(requests, config.interval_s, peaks, forecast, tuple(blocks), block_of_step)


@dataclass
class CapacityTable:
    """Capacity per replica of each type at each mix block, searched on first use and cached."""

    types: Sequence[ReplicaType]
    blocks: Sequence[MixBlock]
    config: LlmPlanConfig
    cache: CapacityCache = field(default_factory=CapacityCache)

    def at(self, type_index: int, block: int) -> CapacityResult:
        kind = self.types[type_index]
        return self.cache.capacity(
            kind.model, kind.server, self.blocks[block].mix, self.config.slo, requests=self.config.capacity_requests, seed=self.config.seed
        )

    def options(self, block: int) -> tuple[TypeOption, ...]:
        prices = self.config.prices
        return tuple(
            TypeOption(self.at(k, block).rate_rps, prices.objective_per_replica_hour(t.device, t.units)) for k, t in enumerate(self.types)
        )

    def rows(self) -> list[dict[str, Any]]:
        """Every capacity searched so far: type, mix block, rate and the percentiles at it."""
        out = []
        for k, kind in enumerate(self.types):
            for block in self.blocks:
                key = self.cache.key(kind.model, kind.server, block.mix, self.config.slo, requests=self.config.capacity_requests,
                                     seed=self.config.seed)
                found = self.cache.entries.get(key)
                if found is not None:
                    out.append({"type": k, "block": block.index, "capacity_rps": found.rate_rps, "ttft_ms": found.ttft_ms,
                                "tpot_ms": found.tpot_ms, "feasible": found.feasible, "reason": found.reason})
        return out


@dataclass(frozen=True)
class LlmStep:
    """One planning interval: the load planned for, the real peak, and the replicas asked for."""

    t_start_s: float
    t_end_s: float
    load_rps: float
    peak_rps: float
    replicas: Replicas
    capacity_rps: float
    """What the replicas carry at the SLO for the mix the policy planned with."""
    block: int

    @property
    def duration_s(self) -> float:
        return self.t_end_s - self.t_start_s


def plan_slots(steps: Sequence[LlmStep], cold_start_s: float) -> list[Slot]:
    """The replicas' lives under the plan: an increase asks for new replicas (serving a cold
    start later; the opening ones at once); a decrease removes the newest of that type."""
    slots: list[Slot] = []
    alive: dict[int, list[int]] = {}
    for i, step in enumerate(steps):
        for k, wanted in enumerate(step.replicas):
            mine = alive.setdefault(k, [])
            while len(mine) < wanted:
                ready = step.t_start_s + (cold_start_s if i else 0.0)
                slots.append(Slot(k, step.t_start_s, ready))
                mine.append(len(slots) - 1)
            while len(mine) > wanted:
                index = mine.pop()
                slots[index] = Slot(k, slots[index].requested_s, slots[index].ready_s, step.t_start_s)
    return slots


@dataclass
class LlmPlan:
    """An LLM service's plan: replicas per type per interval, with the settings and evidence."""

    policy: str
    slo: LlmSlo
    interval_s: float
    trace_name: str
    trace_start: str | None
    cold_start_s: float
    headroom: float
    forecast: str
    load_window_s: float
    mix_window_s: float
    prices: Prices
    types: tuple[ReplicaType, ...]
    steps: list[LlmStep]
    blocks: list[dict[str, Any]]
    capacities: list[dict[str, Any]]
    tokens: int
    """Prompt + output tokens of the trace's requests (what cost per million tokens divides by)."""
    feasible: bool = True
    reason: str = "ok"
    short_steps: tuple[int, ...] = ()
    """Intervals whose replicas carry less than the load the policy planned for."""
    estimated_violation_intervals: int = 0
    """Intervals whose serving replicas (delays applied) carry less than the real peak at the real mix."""

    @property
    def exit_code(self) -> int:
        return 0 if self.feasible else 1

    @property
    def horizon_s(self) -> float:
        return self.steps[-1].t_end_s if self.steps else 0.0

    def slots(self) -> list[Slot]:
        return plan_slots(self.steps, self.cold_start_s)

    def unit_seconds_by_device(self) -> dict[str, float]:
        """Cores (GPUs) held x time per device, from each replica's request to its removal."""
        return slot_unit_seconds(self.types, self.slots(), self.horizon_s)

    def cost(self) -> float:
        return cost(self.unit_seconds_by_device(), self.prices)

    def scale_actions(self) -> int:
        return sum(a.replicas != b.replicas for a, b in zip(self.steps, self.steps[1:]))

    def totals(self) -> dict[str, Any]:
        units = self.unit_seconds_by_device()
        return {
            "unit_seconds_by_device": units, "core_seconds": float(units.get("cpu", 0.0)),
            "gpu_seconds": float(sum(v for k, v in units.items() if k != "cpu")), "cost": self.cost(),
            "scale_actions": self.scale_actions(), "tokens": self.tokens, **per_million_tokens(units, self.prices, self.tokens),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": LLM_PLAN_SCHEMA_VERSION,
            "kind": "llm_plan",
            "policy": self.policy,
            "slo": self.slo.to_dict(),
            "interval_s": self.interval_s,
            "trace": self.trace_name,
            "trace_start": self.trace_start,
            "cold_start_s": self.cold_start_s,
            "headroom": self.headroom,
            "forecast": self.forecast,
            "load_window_s": self.load_window_s,
            "mix_window_s": self.mix_window_s,
            "price_per_core_hour": self.prices.per_core_hour,
            "price_per_gpu_hour": dict(self.prices.per_gpu_hour),
            "replica_types": [replica_type_dict(t) for t in self.types],
            "steps": [
                {
                    "t_start_s": s.t_start_s, "t_end_s": s.t_end_s, "load_rps": s.load_rps, "peak_rps": s.peak_rps,
                    "replicas": [{"type": k, "replicas": r} for k, r in enumerate(s.replicas) if r],
                    "capacity_rps": s.capacity_rps, "mix_block": s.block,
                }
                for s in self.steps
            ],
            "mix_blocks": self.blocks,
            "capacities": self.capacities,
            "totals": self.totals(),
            "feasible": self.feasible,
            "reason": self.reason,
            "short_steps": list(self.short_steps),
            "estimated_violation_intervals": self.estimated_violation_intervals,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per (interval, replica type in use)."""
        rows = [
            {"t_start_s": s.t_start_s, "t_end_s": s.t_end_s, "load_rps": s.load_rps, "peak_rps": s.peak_rps, "type": self.types[k].label,
             "device": self.types[k].device, "cores": self.types[k].model.cores, "replicas": r, "capacity_rps": s.capacity_rps}
            for s in self.steps for k, r in enumerate(s.replicas) if r
        ]
        return pd.DataFrame(rows)


def replica_type_dict(kind: ReplicaType) -> dict[str, Any]:
    m = kind.model
    return {
        "label": kind.label, "model": m.model, "device_kind": m.device_kind, "device": kind.device, "cores": m.cores,
        "units": kind.units, "provenance": m.provenance, "coef_ms": m.to_dict()["coef_ms"], "server": kind.server.to_dict(),
    }


def slot_unit_seconds(
    types: Sequence[ReplicaType], slots: Sequence[Slot], horizon_s: float, gone_s: Sequence[float] | None = None
) -> dict[str, float]:
    """Units x time per device: each replica from its request until it is gone (`gone_s`, as
    simulated: a removed replica drains first), else until its removal, else the horizon."""
    out: dict[str, float] = {}
    for i, slot in enumerate(slots):
        end = gone_s[i] if gone_s is not None and math.isfinite(gone_s[i]) else slot.remove_s
        end = end if math.isfinite(end) else horizon_s
        kind = types[slot.type]
        out[kind.device] = out.get(kind.device, 0.0) + kind.units * max(0.0, end - slot.requested_s)
    return out


def per_million_tokens(unit_seconds_by_device: dict[str, float], prices: Prices, tokens: int) -> dict[str, Any]:
    """Cost per million tokens (None without prices) and unit-hours per million tokens per device."""
    millions = tokens / TOKENS_PER_MILLION
    return {
        "cost_per_mtok": cost(unit_seconds_by_device, prices) / millions if prices.priced and millions > 0 else None,
        "unit_hours_per_mtok": {d: s / 3600.0 / millions for d, s in unit_seconds_by_device.items()} if millions > 0 else {},
    }


def plan_llm(
    trace: Trace,
    types: Sequence[ReplicaType],
    config: LlmPlanConfig,
    policy: str = "themis",
    *,
    cache: CapacityCache | None = None,
    demand: LlmDemand | None = None,
) -> LlmPlan:
    """Plan `trace` on `types` with `policy` (`LLM_POLICIES`). `cache` carries capacities
    between plans (compare plans every policy on one cache); `demand` the trace's demand."""
    config.validate()
    if policy not in LLM_POLICIES:
        raise PlanInputError(f"unknown policy {policy!r} for an LLM service; use one of {', '.join(LLM_POLICIES)}", option="--policy")
    types = usable_types(types, trace)
    rule = LLM_POLICIES[policy]
    demand = demand or llm_demand(trace, config)
    table = CapacityTable(types, demand.blocks, config, cache if cache is not None else CapacityCache())
    known = [demand.known_block(i, rule.offline) for i in range(demand.steps)]
    options = tuple(table.options(b) for b in known)
    actual = tuple(table.options(int(b)) for b in demand.block_of_step)
    loads = (demand.peaks_rps if rule.offline else demand.forecast_rps) * config.headroom
    hold = max(1, int(math.ceil(config.scale_down_delay_s / config.interval_s - 1e-9)))
    held = np.array([loads[max(0, i - hold + 1) : i + 1].max() for i in range(loads.size)])
    observed = np.r_[demand.peaks_rps[:1], demand.peaks_rps[:-1]] * config.headroom
    setup = LlmPolicySetup(loads, held, observed, options, config.max_replicas, config.cold_steps, config.switch_saving)
    run = run_llm_policy(rule, setup)
    steps = [
        LlmStep(i * config.interval_s, (i + 1) * config.interval_s, float(loads[i]), float(demand.peaks_rps[i]), replicas,
                float(sum(r * o.capacity_rps for r, o in zip(replicas, options[i]))), known[i])
        for i, replicas in enumerate(run.replicas)
    ]
    result = LlmPlan(
        policy=policy, slo=config.slo, interval_s=config.interval_s, trace_name=trace.name, trace_start=trace.trace_start,
        cold_start_s=config.cold_start_s, headroom=config.headroom, forecast="actual" if rule.offline else config.forecast,
        load_window_s=config.load_window_s, mix_window_s=config.mix_window_s, prices=config.prices, types=tuple(types),
        steps=steps, blocks=[b.describe() for b in demand.blocks], capacities=[], tokens=demand.tokens,
        short_steps=tuple(run.short_steps),
    )
    result.estimated_violation_intervals = int(_short_when_serving(result, actual, demand).sum())
    result.feasible, result.reason = _verdict(result, actual, demand, table)
    result.capacities = table.rows()
    return result


def usable_types(types: Sequence[ReplicaType], trace: Trace) -> list[ReplicaType]:
    """The types whose replicas accept every request of the trace (longest prompt + output
    within their max_model_len); a type that would refuse some is left out, and none left
    is an input error naming the longest request."""
    if not types:
        raise PlanInputError("no replica type to plan with (an LLM profile has none with ok cells?)", option="--profile")
    longest = int((np.maximum(trace.prompt_tokens, 1) + np.maximum(trace.output_tokens, 1)).max()) if trace.has_tokens else 0
    kept = [t for t in types if t.server.model_len >= longest]
    if not kept:
        most = max(t.server.model_len for t in types)
        raise PlanInputError(
            f"the trace's longest request has {longest:,} tokens but no replica type accepts more than {most:,} "
            "(max_model_len); raise --kv-capacity-tokens", option="--kv-capacity-tokens",
        )
    return kept


def _short_when_serving(plan: LlmPlan, actual: Sequence[tuple[TypeOption, ...]], demand: LlmDemand) -> np.ndarray:
    """Per interval: do the replicas serving at its start (cold starts applied) carry its real
    peak (x headroom) at its real mix?"""
    slots = plan.slots()
    out = np.zeros(len(plan.steps), dtype=bool)
    for i, step in enumerate(plan.steps):
        serving = sum(actual[i][s.type].capacity_rps for s in slots if s.ready_s <= step.t_start_s < s.remove_s)
        out[i] = serving + 1e-9 < demand.peaks_rps[i] * plan.headroom
    return out


def _verdict(plan: LlmPlan, actual: Sequence[tuple[TypeOption, ...]], demand: LlmDemand, table: CapacityTable) -> tuple[bool, str]:
    """Feasible when, in every interval, some type carries the real peak at the real mix within
    `max_replicas`; otherwise the reason names what is reachable."""
    config = table.config
    slo = config.slo
    what = f"p{slo.percentile:g} TTFT {slo.ttft_ms:g} ms and TPOT {slo.tpot_ms:g} ms"
    for i in range(demand.steps):
        peak = float(demand.peaks_rps[i]) * config.headroom
        if any(replicas_needed(o, peak, config.max_replicas) is not None for o in actual[i]):
            continue
        block = int(demand.block_of_step[i])
        if all(o.capacity_rps <= 0 for o in actual[i]):
            found = [table.at(k, block) for k in range(len(plan.types))]
            best = min(range(len(found)), key=lambda k: max(found[k].ttft_ms / slo.ttft_ms, found[k].tpot_ms / slo.tpot_ms))
            return False, (
                f"no replica type meets {what} on the token mix of t={i * config.interval_s:g} s; "
                f"best reachable p{slo.percentile:g} TTFT {found[best].ttft_ms:,.1f} ms, TPOT {found[best].tpot_ms:,.1f} ms on "
                f"{plan.types[best].label}: {found[best].reason}"
            )
        best = max(range(len(plan.types)), key=lambda k: actual[i][k].capacity_rps)
        return False, (
            f"the peak of {peak:.4g} requests/s at t={i * config.interval_s:g} s exceeds what {config.max_replicas} replicas carry "
            f"at {what}: at most {config.max_replicas * actual[i][best].capacity_rps:.4g} requests/s with {plan.types[best].label} "
            f"({actual[i][best].capacity_rps:.4g} each)"
        )
    if plan.short_steps:
        first = plan.steps[plan.short_steps[0]]
        return True, (
            f"ok; policy {plan.policy} asks for less than its planned load in {len(plan.short_steps)} interval(s), "
            f"first at t={first.t_start_s:g} s ({first.load_rps:.4g} requests/s)"
        )
    return True, "ok"


def load_llm_plan(path: str | Path) -> dict[str, Any]:
    """An LLM plan JSON (`themis plan --out plan.json` for an LLM service), checked."""
    data = read_json_object(path, "a themis LLM plan")
    if data.get("kind") != "llm_plan":
        raise PlanInputError("not a themis LLM plan (kind llm_plan)", file=str(path))
    check_schema_version(data.get("schema_version"), LLM_PLAN_SCHEMA_VERSION, what="a themis LLM plan", file=path)
    return data

