"""A real run on the reference server set beside the simulator's run of the same arrivals.

The simulator (`themis.planner.simulation`) replays the same plan over the same arrival
times three times:

- with the profile's service times and the plan's cold start and resize delay: what
  `themis simulate` predicts;
- the same with the cold start and resize delay the server measured: what is left is
  the profile's error and the serving model's, not the delays';
- with the measured delays and the batch service times the replicas measured (their
  median per batch size and cores, the profile's where a cell was never served): what is
  left is the serving model's error (HTTP, pipes, the front end's own work, service-time
  spread), not the profile's.

Each simulation runs the plan's runtime controller (`controller_for`: its steps, plus the
surge controller of a plan with surge rules), a fresh one each time, as the server did.
Besides the SPEC metrics, it lines up the batch service times the replicas measured
against the profile's cells, the measured delays against the plan's settings, the
actions (decisions that changed a stage) the server took against the simulator's, and
both runs' latency per second of the trace.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from themis.planner.model.config import SimConfig
from themis.planner.model.latency import LatencyModel
from themis.planner.model.serving import Schedule
from themis.planner.replay.request_log import RequestLog
from themis.planner.replay.server import ServerReport
from themis.planner.replay.summary import latencies_ms
from themis.planner.simulation.controllers.schedule import controller_for
from themis.planner.simulation.driver import simulate, simulate_tables
from themis.planner.simulation.tables import ServiceTables


@dataclass(frozen=True)
class RunFigures:
    """The SPEC metrics of one run (real or simulated) over the same requests."""

    run: str
    requests: int
    violations: int
    violation_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    core_seconds: float
    cold_start_s: float | None = None
    resize_s: float | None = None
    """The delays a simulated run used (None for the real run)."""


@dataclass(frozen=True)
class ServiceCell:
    """Batch service times the replicas measured for one (stage, batch, cores), against the profile."""

    stage: int
    model: str
    batch: int
    cores: int
    batches: int
    observed_p50_ms: float
    observed_p99_ms: float
    round_trip_p50_ms: float
    profile_p50_ms: float
    profile_p99_ms: float
    profile_measured: bool
    """False when the profile has no such cell and the latency model predicted it."""

    @property
    def ratio_p50(self) -> float:
        return self.observed_p50_ms / self.profile_p50_ms if self.profile_p50_ms > 0 else float("nan")


@dataclass(frozen=True)
class StepFigures:
    """Requests arriving during one planned step: violations, real against simulated."""

    t_start_s: float
    t_end_s: float
    requests: int
    real_violations: int
    simulated_violations: int
    simulated_measured_violations: int
    simulated_observed_violations: int


@dataclass(frozen=True)
class ActionFigures:
    """A decision that changed a stage, in the real run or the simulation (the opening ones included)."""

    run: str
    t_s: float
    stage: int
    replicas: int
    total_cores: int
    batch: int


@dataclass(frozen=True)
class SecondFigures:
    """Requests arriving in one second of the trace: latency and violations, real against simulated."""

    t_s: float
    requests: int
    real_p99_ms: float | None
    simulated_p99_ms: float | None
    real_violations: int
    simulated_violations: int


@dataclass(frozen=True)
class ReplayComparison:
    real: RunFigures
    simulated: RunFigures
    simulated_measured: RunFigures
    simulated_observed: RunFigures
    cells: list[ServiceCell]
    steps: list[StepFigures]
    plan_cold_start_s: float
    plan_resize_s: float
    measured_cold_start_s: float | None
    """Median over the replicas started during the run (the opening ones if none were)."""
    measured_resize_s: float | None
    measured_resize_apply_ms: float | None
    actions: list[ActionFigures]
    """The real run's and the simulation's (with the plan's delays), each in time order."""
    seconds: list[SecondFigures]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [asdict(r) for r in (self.real, self.simulated, self.simulated_measured, self.simulated_observed)],
            "service_cells": [{**asdict(c), "ratio_p50": _finite(c.ratio_p50)} for c in self.cells],
            "steps": [asdict(s) for s in self.steps],
            "delays": {
                "plan_cold_start_s": self.plan_cold_start_s,
                "measured_cold_start_s": self.measured_cold_start_s,
                "plan_resize_s": self.plan_resize_s,
                "measured_resize_s": self.measured_resize_s,
                "measured_resize_apply_ms": self.measured_resize_apply_ms,
            },
            "actions": [asdict(a) for a in self.actions],
            "seconds": [asdict(s) for s in self.seconds],
        }


def compare_with_simulation(
    log: RequestLog, schedule: Schedule, models: list[LatencyModel], report: ServerReport, slo_ms: float, *, seed: int = 0
) -> ReplayComparison:
    """Simulate the replayed arrivals under `schedule` and set the results beside the real run's."""
    horizon_s = schedule.steps[-1].t_end_s
    cold_starts = [r.cold_start_s for r in report.replicas if r.cold_start_s is not None and not r.opening]
    cold_starts = cold_starts or [r.cold_start_s for r in report.replicas if r.cold_start_s is not None]
    measured_cold_s = float(np.median(cold_starts)) if cold_starts else None
    measured_resize_s = float(np.median([r.delay_s for r in report.resizes])) if report.resizes else None
    done = log.done_mask()

    timelines: list[list[dict[str, Any]]] = []

    def simulated(run: str, cold_start_s: float, resize_s: float, tables: ServiceTables | None = None) -> tuple[RunFigures, np.ndarray]:
        config = SimConfig(cold_start_s=cold_start_s, resize_s=resize_s, slo_ms=slo_ms, seed=seed, horizon_s=horizon_s)
        if tables is None:
            result = simulate(log.scheduled_s, controller_for(schedule), models, config)
        else:
            result = simulate_tables(log.scheduled_s, controller_for(schedule), tables, config)
        timelines.append(result.timeline)
        latency = result.latencies_ms[done]
        return _figures(run, latency, slo_ms, result.core_seconds, cold_start_s, resize_s), latency

    real_latency = latencies_ms(log)
    real = _figures("real", real_latency, slo_ms, report.core_seconds)
    plan_figures, plan_latency = simulated("simulated", schedule.cold_start_s, schedule.resize_s)
    cold_s = measured_cold_s if measured_cold_s is not None else schedule.cold_start_s
    resize_s = measured_resize_s if measured_resize_s is not None else schedule.resize_s
    measured_figures, measured_latency = simulated("simulated, measured delays", cold_s, resize_s)
    observed_figures, observed_latency = simulated(
        "simulated, measured delays and service", cold_s, resize_s, observed_service_tables(report, models, schedule)
    )
    arrivals = log.scheduled_s[done]
    steps = []
    for step in schedule.steps:
        inside = (arrivals >= step.t_start_s) & (arrivals < step.t_end_s)
        steps.append(
            StepFigures(
                step.t_start_s, step.t_end_s, int(inside.sum()),
                *(int((latency[inside] > slo_ms).sum()) for latency in (real_latency, plan_latency, measured_latency, observed_latency)),
            )
        )
    return ReplayComparison(
        real=real,
        simulated=plan_figures,
        simulated_measured=measured_figures,
        simulated_observed=observed_figures,
        cells=service_cells(report, models, [s.model for s in schedule.stages]),
        steps=steps,
        plan_cold_start_s=schedule.cold_start_s,
        plan_resize_s=schedule.resize_s,
        measured_cold_start_s=measured_cold_s,
        measured_resize_s=measured_resize_s,
        measured_resize_apply_ms=float(np.median([r.apply_ms for r in report.resizes])) if report.resizes else None,
        actions=[ActionFigures("real", a.t_s, a.stage, a.replicas, a.total_cores, a.batch) for a in report.actions]
        + [ActionFigures("simulated", float(e["t_s"]), int(e["stage"]), int(e["replicas"]), int(e["total_cores"]), int(e["batch"]))
           for e in timelines[0]],
        seconds=per_second(arrivals, real_latency, plan_latency, slo_ms),
    )


def per_second(arrivals_s: np.ndarray, real_ms: np.ndarray, simulated_ms: np.ndarray, slo_ms: float) -> list[SecondFigures]:
    """Latency p99 and violations of the requests arriving in each second, real and simulated."""
    if not arrivals_s.size:
        return []
    second = np.floor(arrivals_s).astype(np.int64)
    out = []
    for t in range(int(second.min()), int(second.max()) + 1):
        inside = second == t
        if not inside.any():
            continue
        real, sim = real_ms[inside], simulated_ms[inside]
        out.append(
            SecondFigures(
                float(t), int(inside.sum()), _finite(float(np.percentile(real, 99, method="inverted_cdf"))),
                _finite(float(np.percentile(sim, 99, method="inverted_cdf"))), int((real > slo_ms).sum()), int((sim > slo_ms).sum()),
            )
        )
    return out


def observed_service_tables(report: ServerReport, models: list[LatencyModel], schedule: Schedule) -> ServiceTables:
    """Service tables holding the replicas' measured median per (stage, batch, cores), the
    latency model's prediction where no such batch was served."""
    wanted_cores, max_batch = controller_for(schedule).resources()
    cores_options = tuple(sorted(wanted_cores | {b.cores for b in report.batches}))
    service = np.stack([np.asarray(m.service_table_ms(max_batch, cores_options), dtype=np.float64) for m in models])
    groups: dict[tuple[int, int, int], list[float]] = defaultdict(list)
    for b in report.batches:
        groups[(b.stage, b.k, b.cores)].append(b.service_ms)
    for (stage, k, cores), values in groups.items():
        if k <= max_batch:
            service[stage, k, cores_options.index(cores)] = float(np.median(values))
    return ServiceTables(cores_options, service)


def service_cells(report: ServerReport, models: list[LatencyModel], names: list[str]) -> list[ServiceCell]:
    """Per (stage, batch, cores): what the replicas measured against the profile's cell."""
    groups: dict[tuple[int, int, int], list[tuple[float, float]]] = defaultdict(list)
    for b in report.batches:
        groups[(b.stage, b.k, b.cores)].append((b.service_ms, b.round_trip_ms))
    cells = []
    for (stage, k, cores), values in sorted(groups.items()):
        service = np.array([v[0] for v in values])
        model = models[stage]
        cells.append(
            ServiceCell(
                stage=stage, model=names[stage], batch=k, cores=cores, batches=len(values),
                observed_p50_ms=float(np.median(service)),
                observed_p99_ms=float(np.percentile(service, 99, method="inverted_cdf")),
                round_trip_p50_ms=float(np.median([v[1] for v in values])),
                profile_p50_ms=float(model.predict_ms(k, cores)),
                profile_p99_ms=float(model.percentile_ms(k, cores, 99.0)),
                profile_measured=model.is_measured(k, cores),
            )
        )
    return cells


def _figures(
    run: str, latency_ms: np.ndarray, slo_ms: float, core_seconds: float, cold_start_s: float | None = None, resize_s: float | None = None
) -> RunFigures:
    n = int(latency_ms.size)
    violations = int((latency_ms > slo_ms).sum())

    def pct(q: float) -> float | None:
        return _finite(float(np.percentile(latency_ms, q, method="inverted_cdf"))) if n else None

    return RunFigures(run, n, violations, violations / n if n else 0.0, pct(50), pct(95), pct(99), core_seconds, cold_start_s, resize_s)


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None
