"""Nouns of the serving model that planner, simulator and reports agree on (SPEC, "Serving model").

A service is a pipeline of `Stage`s. At every planning interval a `Schedule` holds one
`Step`; a step gives, per stage, the allocation *requested* at `t_start_s`: a list of
`Group`s (replicas of one size), a batch size and a device. The delays of SPEC apply to
requests, not to the plan: a replica asked for at t serves from t + cold_start_s, a resize
asked for at t takes effect at t + resize_s. `est_latency_ms` and `capacity_rps` describe
the allocation once it is fully in effect.

`Schedule.to_dict()` is the plan JSON contract; `Schedule.from_dict()` reads it back
(and is the one place that would convert older `schema_version`s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.common.files import read_json_object
from themis.planner.errors import PlanInputError


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
    extra: dict[str, Any] = field(default_factory=dict)
    """Policy-specific additions (e.g. the themis surge rule), kept verbatim in the JSON."""

    def core_seconds(self) -> float:
        """Cores allocated x time, summed over steps and stages (booting replicas included)."""
        return float(sum(a.total_cores * s.duration_s for s in self.steps for a in s.stages))

    def scale_actions(self) -> int:
        """Number of (step, stage) boundaries at which the allocation changes."""
        return sum(
            not prev.same_resources(cur)
            for before, after in zip(self.steps, self.steps[1:])
            for prev, cur in zip(before.stages, after.stages)
        )

    def cost(self) -> float:
        """Money: CPU cores at the core-hour price, GPUs (one per replica) at their device's price."""
        total = 0.0
        for step in self.steps:
            for a in step.stages:
                price = unit_price_per_hour(a.device, self.price_per_core_hour, self.price_per_gpu_hour)
                total += a.total_cores * step.duration_s / 3600.0 * (price or 0.0)
        return total

    def totals(self) -> dict[str, float | int]:
        return {"core_seconds": self.core_seconds(), "cost": self.cost(), "scale_actions": self.scale_actions()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
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
                            "est_latency_ms": _json_float(a.est_latency_ms),
                            "capacity_rps": _json_float(a.capacity_rps),
                        }
                        for a in step.stages
                    ],
                }
                for step in self.steps
            ],
            "totals": self.totals(),
            **({"extra": self.extra} if self.extra else {}),
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
        """Rebuild a schedule from its JSON form; bad content raises `PlanInputError`."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise PlanInputError(f"unsupported schema_version {version!r} (expected {SCHEMA_VERSION})", file=source)
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
                            est_latency_ms=_float_or_nan(a.get("est_latency_ms")),
                            capacity_rps=_float_or_nan(a.get("capacity_rps")),
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
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanInputError(f"not a themis plan ({type(exc).__name__}: {exc})", file=source) from None
        if any(len(step.stages) != len(stages) for step in steps):
            raise PlanInputError("a step does not list every stage", file=source)
        return schedule


def unit_price_per_hour(device: str, price_per_core_hour: float, price_per_gpu_hour: dict[str, float]) -> float | None:
    """Price of one core-hour (`device == "cpu"`) or one GPU-hour of `device`, whose name
    contains a key of `price_per_gpu_hour` (case-insensitive); None for an unpriced GPU."""
    if device == "cpu":
        return price_per_core_hour
    name = device.lower()
    return next((float(p) for key, p in price_per_gpu_hour.items() if key.lower() in name), None)


def load_schedule(path: str | Path) -> Schedule:
    """Read a plan JSON written by `themis plan --out plan.json`."""
    return Schedule.from_dict(read_json_object(path, "a themis plan"), source=str(path))


def _json_float(value: float) -> float | None:
    return None if value != value else float(value)  # NaN -> null: JSON has no NaN


def _float_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)
