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

A `themis` plan also carries its surge rules (`SurgeRule`): per stage and per (replicas,
batch) it runs, the load levels up to which each core count per replica meets the stage's
latency budget, for the controller that resizes replicas in place between planned steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from themis.common.errors import InputError
from themis.common.files import read_json_object
from themis.common.jsonvalues import finite_or_none, float_or_nan
from themis.common.schema import check_schema_version
from themis.planner.errors import PlanInputError
from themis.planner.model.cost import Prices, cost

PLAN_SCHEMA_VERSION = 2
"""Version 2: surge rules and plan diagnostics are typed top-level fields (1: `extra`)."""


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
class SurgeLevel:
    """Up to `max_rps` of stage load, `cores` per replica meet the stage's latency budget."""

    max_rps: float
    cores: int


@dataclass(frozen=True)
class SurgeRule:
    """With `replicas` replicas at `batch`: the core counts for increasing stage loads."""

    replicas: int
    batch: int
    levels: tuple[SurgeLevel, ...]


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
    surge_rules: tuple[tuple[SurgeRule, ...], ...] = ()
    """Per stage: the runtime surge rules of a `themis` plan (empty for other policies)."""
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
            "surge_rules": [
                [
                    {"replicas": r.replicas, "batch": r.batch, "levels": [{"max_rps": lv.max_rps, "cores": lv.cores} for lv in r.levels]}
                    for r in rules
                ]
                for rules in self.surge_rules
            ],
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
        if version == 1:
            data = _from_version_1(data)
        try:
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
                surge_rules=tuple(
                    tuple(
                        SurgeRule(
                            int(r["replicas"]),
                            int(r["batch"]),
                            tuple(SurgeLevel(float(lv["max_rps"]), int(lv["cores"])) for lv in r["levels"]),
                        )
                        for r in rules
                    )
                    for rules in data.get("surge_rules", [])
                ),
                surge_steps=tuple(int(i) for i in data.get("surge_steps", [])),
                trace_fingerprint=TraceFingerprint.from_dict(data["trace_fingerprint"]) if data.get("trace_fingerprint") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanInputError(f"not a themis plan ({type(exc).__name__}: {exc})", file=source) from None
        if any(len(step.stages) != len(stages) for step in steps):
            raise PlanInputError("a step does not list every stage", file=source)
        if schedule.surge_rules and len(schedule.surge_rules) != len(stages):
            raise PlanInputError("surge_rules must list every stage", file=source)
        return schedule


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 plan in the version-2 shape: `extra`'s known keys become top-level fields."""
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise PlanInputError("`extra` must be a JSON object")
    converted = {k: v for k, v in data.items() if k != "extra"}
    for key in ("forecast", "headroom", "infeasible_steps", "estimated_violation_intervals", "surge_rules", "surge_steps"):
        if key in extra:
            converted[key] = extra[key]
    return converted


def load_schedule(path: str | Path) -> Schedule:
    """Read a plan JSON written by `themis plan --out plan.json`."""
    return Schedule.from_dict(read_json_object(path, "a themis plan"), source=str(path))
