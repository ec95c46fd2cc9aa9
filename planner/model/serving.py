"""Nouns of the serving model that planner, simulator and reports agree on (SPEC, "Serving model").

A service is a pipeline of `Stage`s. At every planning interval a `Schedule` holds one
`Step`; a step gives, per stage, the allocation *requested* at `t_start_s`: a list of
`Group`s (replicas of one size), a batch size and a device. The delays of SPEC apply to
requests, not to the plan: a replica asked for at t serves from t + cold_start_s, a resize
asked for at t takes effect at t + resize_s. `est_latency_ms` and `capacity_rps` describe
the allocation once it is fully in effect.

`Schedule.to_dict()` is the plan JSON contract (`PLAN_SCHEMA_VERSION`);
`Schedule.from_dict()` reads it back and is the one place that converts older versions
(version 1 kept the surge rules and diagnostics in an untyped `extra` object).

A `themis` plan also carries one surge rule per stage (`SurgeRule`): the stage's service
times by batch and cores and its latency budget, from which the runtime controller sizes
the stage between planned steps (`themis.planner.simulation.controllers.surge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from themis.common.errors import InputError
from themis.common.files import read_json_object
from themis.common.jsonvalues import finite_or_none, float_or_nan
from themis.common.schema import check_schema_version
from themis.planner.errors import PlanInputError
from themis.planner.model.cost import Prices, cost

PLAN_SCHEMA_VERSION = 2
"""Version 2: surge rules (service times and budgets) and plan diagnostics are typed
top-level fields (1: `extra`, with surge rules as load levels)."""


@dataclass(frozen=True)
class Group:
    """`replicas` replicas with `cores` cores each (for a GPU device: GPUs each)."""

    replicas: int
    cores: int

    @property
    def total_cores(self) -> int:
        return self.replicas * self.cores


@dataclass(frozen=True)
class StageAllocation:
    """What one stage runs with during one interval."""

    groups: tuple[Group, ...]
    batch: int
    device: str = "cpu"
    est_latency_ms: float = float("nan")
    capacity_rps: float = float("nan")

    @property
    def replicas(self) -> int:
        return sum(g.replicas for g in self.groups)

    @property
    def total_cores(self) -> int:
        return sum(g.total_cores for g in self.groups)

    def same_resources(self, other: StageAllocation) -> bool:
        """True when the two need no scale action between them (estimates may differ)."""
        return (
            sorted(self.groups, key=lambda g: g.cores) == sorted(other.groups, key=lambda g: g.cores)
            and self.batch == other.batch
            and self.device == other.device
        )

    def describe(self) -> str:
        """Compact text such as `3x2c+1x8c b8` used in tables."""
        groups = "+".join(f"{g.replicas}x{g.cores}c" for g in self.groups if g.replicas) or "0"
        return f"{groups} b{self.batch}" + ("" if self.device == "cpu" else f" {self.device}")


@dataclass(frozen=True)
class Stage:
    """One model in the pipeline; `visit_ratio` requests reach it per incoming request."""

    name: str
    model: str
    visit_ratio: float = 1.0


@dataclass(frozen=True)
class Step:
    """One planning interval: the forecast it was planned for and each stage's allocation."""

    t_start_s: float
    t_end_s: float
    forecast_rps: float
    stages: tuple[StageAllocation, ...]

    @property
    def duration_s(self) -> float:
        return self.t_end_s - self.t_start_s


@dataclass(frozen=True)
class SurgeRule:
    """What the runtime surge controller needs to size one stage between planned steps:
    the stage's service times by batch and cores, and its share of the SLO."""

    budget_ms: float
    """The stage's latency budget: the SLO minus the other stages' estimates (the tightest
    over the plan's steps); the whole SLO for a one-stage service."""
    cores: tuple[int, ...]
    """Replica sizes it may use (at most the node's cores), ascending."""
    batches: tuple[int, ...]
    """Batch sizes it may use, ascending."""
    service_ms: tuple[tuple[float, ...], ...]
    """service_ms[j][k - 1]: ms to serve a batch of k (1 .. the largest batch) on cores[j]."""
    max_replicas: int
    device: str = "cpu"

    def service_table_ms(self) -> np.ndarray:
        """table[k, j]: ms for a batch of k on cores[j] (row 0 unused: NaN), the shape of
        `LatencyModel.service_table_ms`."""
        table = np.asarray(self.service_ms, dtype=float).T
        return np.vstack([np.full((1, table.shape[1]), np.nan), table])

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_ms": self.budget_ms,
            "cores": list(self.cores),
            "batches": list(self.batches),
            "service_ms": [list(row) for row in self.service_ms],
            "max_replicas": self.max_replicas,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SurgeRule:
        rule = cls(
            budget_ms=float(data["budget_ms"]),
            cores=tuple(int(c) for c in data["cores"]),
            batches=tuple(int(b) for b in data["batches"]),
            service_ms=tuple(tuple(float(x) for x in row) for row in data["service_ms"]),
            max_replicas=int(data["max_replicas"]),
            device=str(data.get("device", "cpu")),
        )
        if len(rule.service_ms) != len(rule.cores) or not rule.batches or any(len(row) < max(rule.batches) for row in rule.service_ms):
            raise ValueError("surge rule: service_ms needs a row per core count and a time for every batch up to the largest")
        return rule


@dataclass(frozen=True)
class TraceFingerprint:
    """Which traffic a plan was made on, so `simulate` can refuse another trace: its name, its
    intervals and requests, and a hash of its per-interval counts (after `--scale`)."""

    name: str
    intervals: int
    requests: int
    counts_sha256: str

    @classmethod
    def of_counts(cls, name: str, counts: Any) -> TraceFingerprint:
        """The fingerprint of per-interval request counts (any integer sequence)."""
        import hashlib

        import numpy as np

        values = np.asarray(counts, dtype=np.int64)
        return cls(str(name), len(values), int(values.sum()), hashlib.sha256(values.tobytes()).hexdigest()[:16])

    def describe(self) -> str:
        return f"{self.name} ({self.intervals:,} intervals, {self.requests:,} requests, counts {self.counts_sha256})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "intervals": self.intervals, "requests": self.requests, "counts_sha256": self.counts_sha256}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceFingerprint:
        return cls(str(data["name"]), int(data["intervals"]), int(data["requests"]), str(data["counts_sha256"]))


@dataclass
class Schedule:
    """A plan: per-interval allocations of every stage, with the settings it was made under."""

    policy: str
    slo_ms: float
    percentile: float
    interval_s: float
    trace_start: str | None
    cold_start_s: float
    resize_s: float
    stages: tuple[Stage, ...]
    steps: list[Step]
    price_per_core_hour: float = 0.0
    price_per_gpu_hour: dict[str, float] = field(default_factory=dict)
    """GPU price per device-hour, keyed by (a part of) the device name."""
    forecast: str = ""
    """The forecast method the plan was made with (`actual` for offline policies)."""
    headroom: float = 1.0
    infeasible_steps: tuple[int, ...] = ()
    """Steps whose own estimate is above the SLO (the policy adapting, or out of reach)."""
    estimated_violation_intervals: int = 0
    """Intervals whose serving replicas (delays applied) miss the SLO at the real peak, by the estimate."""
    surge_rules: tuple[SurgeRule, ...] = ()
    """One per stage: what the runtime surge controller of a `themis` plan needs (empty for
    other policies)."""
    surge_steps: tuple[int, ...] = ()
    """Steps at which a `themis` plan resized running replicas to absorb a surge."""
    trace_fingerprint: TraceFingerprint | None = None
    """The traffic the plan was made on (optional: plans written before it have none)."""

    @property
    def prices(self) -> Prices:
        return Prices(self.price_per_core_hour, self.price_per_gpu_hour)

    def unit_seconds_by_device(self) -> dict[str, float]:
        """Cores (GPUs) allocated x time per device, booting replicas included."""
        out: dict[str, float] = {}
        for step in self.steps:
            for a in step.stages:
                out[a.device] = out.get(a.device, 0.0) + a.total_cores * step.duration_s
        return out

    def core_seconds(self) -> float:
        """Cores allocated x time, summed over steps and stages (booting replicas included;
        a GPU counts as one unit)."""
        return float(sum(self.unit_seconds_by_device().values()))

    def scale_actions(self) -> int:
        """Number of (step, stage) boundaries at which the allocation changes."""
        return sum(
            not prev.same_resources(cur)
            for before, after in zip(self.steps, self.steps[1:])
            for prev, cur in zip(before.stages, after.stages)
        )

    def cost(self) -> float:
        """Money, by the one pricing rule (`themis.planner.model.cost`)."""
        return cost(self.unit_seconds_by_device(), self.prices)

    def totals(self) -> dict[str, float | int]:
        return {"core_seconds": self.core_seconds(), "cost": self.cost(), "scale_actions": self.scale_actions()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "kind": "plan",
            "policy": self.policy,
            "slo_ms": self.slo_ms,
            "percentile": self.percentile,
            "interval_s": self.interval_s,
            "trace_start": self.trace_start,
            "cold_start_s": self.cold_start_s,
            "resize_s": self.resize_s,
            "price_per_core_hour": self.price_per_core_hour,
            "price_per_gpu_hour": self.price_per_gpu_hour,
            "forecast": self.forecast,
            "headroom": self.headroom,
            "stages": [
                {"name": s.name, "model": s.model, "visit_ratio": s.visit_ratio} for s in self.stages
            ],
            "steps": [
                {
                    "t_start_s": step.t_start_s,
                    "t_end_s": step.t_end_s,
                    "forecast_rps": step.forecast_rps,
                    "stages": [
                        {
                            "groups": [{"replicas": g.replicas, "cores": g.cores} for g in a.groups],
                            "batch": a.batch,
                            "device": a.device,
                            "est_latency_ms": finite_or_none(a.est_latency_ms),
                            "capacity_rps": finite_or_none(a.capacity_rps),
                        }
                        for a in step.stages
                    ],
                }
                for step in self.steps
            ],
            "totals": self.totals(),
            "infeasible_steps": list(self.infeasible_steps),
            "estimated_violation_intervals": self.estimated_violation_intervals,
            "surge_rules": [rule.to_dict() for rule in self.surge_rules],
            "surge_steps": list(self.surge_steps),
            "trace_fingerprint": self.trace_fingerprint.to_dict() if self.trace_fingerprint is not None else None,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per (interval, stage): the pandas-friendly view used for CSV and Parquet."""
        rows = []
        for step in self.steps:
            for stage, a in zip(self.stages, step.stages):
                rows.append(
                    {
                        "t_start_s": step.t_start_s,
                        "t_end_s": step.t_end_s,
                        "forecast_rps": step.forecast_rps,
                        "stage": stage.name,
                        "groups": "+".join(f"{g.replicas}x{g.cores}" for g in a.groups),
                        "replicas": a.replicas,
                        "total_cores": a.total_cores,
                        "batch": a.batch,
                        "device": a.device,
                        "est_latency_ms": a.est_latency_ms,
                        "capacity_rps": a.capacity_rps,
                    }
                )
        return pd.DataFrame(rows)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "plan") -> Schedule:
        """Rebuild a schedule from its JSON form (any version up to `PLAN_SCHEMA_VERSION`);
        bad content raises `PlanInputError`."""
        try:
            version = check_schema_version(data.get("schema_version"), PLAN_SCHEMA_VERSION, what="a themis plan", file=source)
        except InputError as error:
            raise PlanInputError(error.message, file=source) from None
        try:
            if version == 1:
                data = _from_version_1(data)
            stages = tuple(Stage(s["name"], s["model"], float(s.get("visit_ratio", 1.0))) for s in data["stages"])
            steps = [
                Step(
                    float(st["t_start_s"]),
                    float(st["t_end_s"]),
                    float(st["forecast_rps"]),
                    tuple(
                        StageAllocation(
                            groups=tuple(Group(int(g["replicas"]), int(g["cores"])) for g in a["groups"]),
                            batch=int(a["batch"]),
                            device=str(a.get("device", "cpu")),
                            est_latency_ms=float_or_nan(a.get("est_latency_ms")),
                            capacity_rps=float_or_nan(a.get("capacity_rps")),
                        )
                        for a in st["stages"]
                    ),
                )
                for st in data["steps"]
            ]
            schedule = cls(
                policy=str(data["policy"]),
                slo_ms=float(data["slo_ms"]),
                percentile=float(data["percentile"]),
                interval_s=float(data["interval_s"]),
                trace_start=data.get("trace_start"),
                cold_start_s=float(data["cold_start_s"]),
                resize_s=float(data["resize_s"]),
                stages=stages,
                steps=steps,
                price_per_core_hour=float(data.get("price_per_core_hour", 0.0)),
                price_per_gpu_hour={str(k): float(v) for k, v in data.get("price_per_gpu_hour", {}).items()},
                forecast=str(data.get("forecast", "")),
                headroom=float(data.get("headroom", 1.0)),
                infeasible_steps=tuple(int(i) for i in data.get("infeasible_steps", [])),
                estimated_violation_intervals=int(data.get("estimated_violation_intervals", 0)),
                surge_rules=tuple(SurgeRule.from_dict(rule) for rule in data.get("surge_rules", [])),
                surge_steps=tuple(int(i) for i in data.get("surge_steps", [])),
                trace_fingerprint=TraceFingerprint.from_dict(data["trace_fingerprint"]) if data.get("trace_fingerprint") else None,
            )
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise PlanInputError(f"not a themis plan ({type(exc).__name__}: {exc})", file=source) from None
        if any(len(step.stages) != len(stages) for step in steps):
            raise PlanInputError("a step does not list every stage", file=source)
        if schedule.surge_rules and len(schedule.surge_rules) != len(stages):
            raise PlanInputError("surge_rules must list every stage", file=source)
        return schedule


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 plan in the version-2 shape: `extra`'s known keys become top-level fields,
    and each stage's surge levels become a surge rule (`_surge_rule_from_levels`)."""
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise PlanInputError("`extra` must be a JSON object")
    converted = {k: v for k, v in data.items() if k != "extra"}
    for key in ("forecast", "headroom", "infeasible_steps", "estimated_violation_intervals", "surge_steps"):
        if key in extra:
            converted[key] = extra[key]
    if extra.get("surge_rules"):
        steps = data.get("steps") or [{}]
        devices = [str(a.get("device", "cpu")) for a in steps[0].get("stages", [])]
        converted["surge_rules"] = [
            _surge_rule_from_levels(entries, float(data["slo_ms"]), devices[j] if j < len(devices) else "cpu")
            for j, entries in enumerate(extra["surge_rules"])
        ]
    return converted


def _surge_rule_from_levels(entries: list[dict[str, Any]], slo_ms: float, device: str) -> dict[str, Any]:
    """A version-1 stage rule (per (replicas, batch): load levels -> cores) as a version-2
    surge rule. Version 1 kept no service times, so they are inferred, conservatively: a
    level's `max_rps` is taken as the full capacity of `replicas` replicas at that size,
    which makes a request cost replicas / max_rps seconds of a replica, and a batch of k
    take k times that (the largest over the entries). The budget is the plan's SLO."""
    per_request_s: dict[int, float] = {}
    for entry in entries:
        for level in entry["levels"]:
            cores, seconds = int(level["cores"]), int(entry["replicas"]) / float(level["max_rps"])
            per_request_s[cores] = max(per_request_s.get(cores, 0.0), seconds)
    cores = sorted(per_request_s)
    batches = sorted({int(entry["batch"]) for entry in entries})
    return {
        "budget_ms": slo_ms,
        "cores": cores,
        "batches": batches,
        "service_ms": [[1000.0 * k * per_request_s[c] for k in range(1, max(batches) + 1)] for c in cores],
        "max_replicas": max(int(entry["replicas"]) for entry in entries),
        "device": device,
    }


def load_schedule(path: str | Path) -> Schedule:
    """Read a plan JSON written by `themis plan --out plan.json`."""
    return Schedule.from_dict(read_json_object(path, "a themis plan"), source=str(path))
