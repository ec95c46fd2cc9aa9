"""Request-level discrete-event simulation of SPEC's serving model, compiled with numba.

What is simulated (SPEC, "Serving model"; `tests/planner/simpy_reference.py` is the plain
SimPy model of the same rules and the correctness reference):

- Every request visits every stage in order; each stage has one FIFO queue.
- A free, ready replica takes min(queue length, batch) requests at once and serves them in
  `service_ms[k, cores]` (the median of the profile, or a draw between its measured
  percentiles with `service="sampled"`). No batching timeout: an idle replica starts at
  once with what is queued.
- When several replicas are idle, the one idle the longest takes the work (a shared queue
  that workers pull from).
- A replica added at t serves from t + cold_start_s (it is charged from t). Replicas of
  the very first decision are the opening provisioning and are ready at once.
- A resize asked for at t takes effect at t + resize_s; a batch already running finishes
  at the speed it started with.
- A removed replica takes no new work; a running batch finishes first (and is charged).
- Equal times: a controller decision at t comes before the events at t; replica events
  (completions, readiness, resizes) come before arrivals at the same time, in the order
  they were scheduled.
- A controller asks for allocations (groups of replicas x cores, and a batch per stage);
  the live replicas are matched to it (`_State._match`): when growing, running replicas
  take the largest sizes (resized in place) and new ones boot at the rest; otherwise
  replicas already at a wanted size stay, others are resized, surplus ones are removed.
  `scale_actions` counts the (decision, stage) pairs that changed any replica or batch.
- Latency = completion of the last stage - arrival. A request never served (no replica
  left) is dropped and counts as a violation with infinite latency.
- core_seconds integrates each replica's cores over [0, horizon_s] (booting included;
  a resize changes the charge when it takes effect).
- Utilisation (what `hpa` reads) is CPU-like: busy core-seconds / ready core-seconds of
  the stage over the window since the controller's previous decision.

The event loop (`_advance`) runs in numba on plain arrays; the Python side only calls it
between controller decisions, so closed-loop controllers see exactly the simulated state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from themis.planner.errors import PlanInputError
from themis.planner.model.config import DEFAULT_CORES, SimConfig
from themis.planner.model.latency import LatencyModel
from themis.planner.model.serving import Group, Schedule, StageAllocation
from themis.planner.model.transitions import ReplicaState, plan_transition
from themis.planner.simulation.controllers.schedule import controller_for
from themis.planner.simulation.engine import (
    _BOOTING,
    _BUSY,
    _F_READY_AT,
    _G_HEAP_N,
    _G_NSLOTS,
    _G_PTR,
    _GONE,
    _I_CIDX,
    _I_PENDING,
    _I_STATE,
    _I_TOKEN,
    _S_CORE_S,
    _S_READY_CORE_S,
    _S_READY_LAST,
    _SI_BATCH,
    _SI_HEAD,
    _SI_LIVE_N,
    _SI_READY_CORES,
    _SI_TAIL,
    ACT_ADD,
    ACT_ADD_READY,
    ACT_REMOVE,
    ACT_RESIZE,
    _advance,
    _apply,
    _busy_core_s,
    _charge,
    _dispatch,
)
from themis.planner.simulation.observation import Controller, Observation, StageView
from themis.planner.simulation.result import SimulationResult
from themis.planner.simulation.tables import QUANTILE_KNOTS, ServiceTables


class _State:
    """The arrays the compiled loop works on, and the per-stage targets controllers asked for."""

    def __init__(self, arrivals_s: np.ndarray, tables: ServiceTables, config: SimConfig, horizon_s: float) -> None:
        n, n_stages = arrivals_s.size, tables.stages
        self.arrivals = np.ascontiguousarray(arrivals_s, dtype=np.float64)
        self.tables = tables
        self.config = config
        self.horizon_s = horizon_s
        self.queues = np.zeros((n_stages, max(n, 1)), dtype=np.int64)
        self.done = np.full(n, np.inf)
        self.si = np.zeros((n_stages, 5), dtype=np.int64)
        self.si[:, _SI_BATCH] = 1
        self.sf = np.zeros((n_stages, 4))
        self.g = np.zeros(5, dtype=np.int64)
        self.cores_values = np.asarray(tables.cores_options, dtype=np.int64)
        self.service = np.ascontiguousarray(tables.service_ms, dtype=np.float64)
        sampled = config.service == "sampled"
        if sampled and tables.quantile_ms is None:
            raise PlanInputError("service='sampled' needs percentile tables (quantile_ms)", option="--service")
        self.sampled = sampled
        self.quant = tables.quantile_ms if sampled else np.zeros((1, 1, 1, 1))
        self.knots = QUANTILE_KNOTS.copy()
        rng = np.random.default_rng(config.seed)
        self.uniforms = rng.random(n_stages * n) if sampled else np.zeros(1)
        self._alloc(16)
        self.batch = [1] * n_stages
        self.last_decision_s = 0.0
        self.last_ptr = 0
        self.last_busy = np.zeros(n_stages)
        self.last_ready = np.zeros(n_stages)

    def _alloc(self, capacity: int) -> None:
        """(Re)size the replica tables to `capacity` slots, keeping what is there."""
        n_stages = self.tables.stages
        rf, ri = np.zeros((capacity, 3)), np.zeros((capacity, 10), dtype=np.int64)
        live = np.zeros((n_stages, capacity), dtype=np.int64)
        if hasattr(self, "ri"):
            used = self.g[_G_NSLOTS]
            rf[:used], ri[:used] = self.rf[:used], self.ri[:used]
            live[:, : self.live.shape[1]] = self.live
        else:
            self.ht, self.hi = np.zeros(0), np.zeros((0, 4), dtype=np.int64)
        self.rf, self.ri, self.live = rf, ri, live

    def _reserve_heap(self, size: int) -> None:
        """Keep room for every event that can be pending: one completion and one readiness
        per replica, plus resizes (the compiled loop does not bounds-check)."""
        if size <= self.ht.size:
            return
        size = max(size, 2 * self.ht.size)
        n_heap = self.g[_G_HEAP_N]
        ht, hi = np.zeros(size), np.zeros((size, 4), dtype=np.int64)
        ht[:n_heap], hi[:n_heap] = self.ht[:n_heap], self.hi[:n_heap]
        self.ht, self.hi = ht, hi

    def advance(self, t_until: float) -> None:
        _advance(
            t_until, self.horizon_s, self.arrivals, self.queues, self.done, self.si, self.sf, self.rf, self.ri,
            self.live, self.ht, self.hi, self.g, self.cores_values, self.service, self.quant, self.knots,
            self.uniforms, self.sampled,
        )

    def live_slots(self, s: int) -> list[int]:
        return [int(x) for x in self.live[s, : self.si[s, _SI_LIVE_N]]]

    def target_cidx(self, slot: int) -> int:
        """Cores index the replica has or will have once its pending resize lands."""
        pending = self.ri[slot, _I_TOKEN] > 0 and self.ri[slot, _I_PENDING] != self.ri[slot, _I_CIDX]
        return int(self.ri[slot, _I_PENDING] if pending else self.ri[slot, _I_CIDX])

    def observe(self, now_s: float) -> Observation:
        views = []
        ptr = int(self.g[_G_PTR])
        for s in range(self.tables.stages):
            slots = self.live_slots(s)
            counts: dict[int, int] = {}
            for slot in slots:
                cores = self.tables.cores_options[self.target_cidx(slot)]
                counts[cores] = counts.get(cores, 0) + 1
            busy = _busy_core_s(now_s, s, self.sf, self.rf, self.ri, self.g, self.cores_values)
            ready = self.sf[s, _S_READY_CORE_S] + self.si[s, _SI_READY_CORES] * (now_s - self.sf[s, _S_READY_LAST])
            d_ready = ready - self.last_ready[s]
            util = (busy - self.last_busy[s]) / d_ready if d_ready > 0 else float("nan")
            self.last_busy[s], self.last_ready[s] = busy, ready
            ready: dict[int, int] = {}
            booting = []
            for slot in slots:
                cores = self.tables.cores_options[self.target_cidx(slot)]
                if self.ri[slot, _I_STATE] == _BOOTING:
                    booting.append((float(self.rf[slot, _F_READY_AT]), cores))
                else:
                    ready[cores] = ready.get(cores, 0) + 1
            head, tail = int(self.si[s, _SI_HEAD]), int(self.si[s, _SI_TAIL])
            views.append(
                StageView(
                    groups=tuple(Group(n, c) for c, n in sorted(counts.items())),
                    batch=self.batch[s],
                    ready_replicas=sum(ready.values()),
                    queue_len=tail - head,
                    utilisation=float(util),
                    ready_groups=tuple(Group(n, c) for c, n in sorted(ready.items())),
                    booting=tuple(sorted(booting)),
                    oldest_wait_s=now_s - float(self.arrivals[self.queues[s, head]]) if tail > head else 0.0,
                )
            )
        obs = Observation(now_s, now_s - self.last_decision_s, ptr - self.last_ptr, tuple(views))
        self.last_decision_s, self.last_ptr = now_s, ptr
        return obs

    def apply(self, now_s: float, targets: list[StageAllocation | None], *, opening: bool) -> list[bool]:
        """Turn target allocations into replica actions; per stage, whether anything changed."""
        rows: list[tuple[int, int, int]] = []
        changed = []
        for s, target in enumerate(targets):
            if target is None:
                changed.append(False)
                continue
            batch_changed = target.batch != self.batch[s]
            if not 1 <= target.batch <= self.tables.max_batch:
                raise PlanInputError(f"batch {target.batch} outside the service table (1..{self.tables.max_batch})")
            self.batch[s] = int(target.batch)
            self.si[s, _SI_BATCH] = int(target.batch)
            before = len(rows)
            rows += self._match(s, target, opening=opening)
            changed.append(batch_changed or len(rows) > before)
        needed = int(self.g[_G_NSLOTS]) + sum(r[0] in (ACT_ADD, ACT_ADD_READY) for r in rows)
        if needed > self.ri.shape[0]:
            self._alloc(max(2 * self.ri.shape[0], needed))
        self._reserve_heap(int(self.g[_G_HEAP_N]) + len(rows) + 2 * needed + 16)
        acts = np.array(rows, dtype=np.int64).reshape(-1, 3)
        _apply(
            now_s, acts, self.config.cold_start_s, self.config.resize_s, self.horizon_s,
            self.si, self.sf, self.rf, self.ri, self.live, self.ht, self.hi, self.g, self.cores_values,
        )
        for s in range(self.tables.stages):  # new capacity takes queued work at once
            self._dispatch(s, now_s)
        return changed

    def _dispatch(self, s: int, now_s: float) -> None:
        _dispatch(
            s, now_s, self.queues, self.si, self.rf, self.ri, self.live, self.ht, self.hi, self.g,
            self.cores_values, self.service, self.quant, self.knots, self.uniforms, self.sampled, self.arrivals.size,
        )

    def _match(self, s: int, target: StageAllocation, *, opening: bool) -> list[tuple[int, int, int]]:
        """Actions turning stage s's live replicas into `target`, by the serving model's one
        rule (`themis.planner.model.transitions`)."""
        cores = self.tables.cores_options
        replicas = [
            ReplicaState(
                id=slot,
                cores=cores[self.target_cidx(slot)],
                serving=bool(self.ri[slot, _I_STATE] != _BOOTING),
                ready_at=float(self.rf[slot, _F_READY_AT]),
                busy=bool(self.ri[slot, _I_STATE] == _BUSY),
            )
            for slot in self.live_slots(s)
        ]
        transition = plan_transition(replicas, target.groups)
        add = ACT_ADD_READY if opening else ACT_ADD
        return (
            [(ACT_RESIZE, slot, self.tables.cores_index(c)) for slot, c in transition.resizes]
            + [(add, s, self.tables.cores_index(c)) for c in transition.adds]
            + [(ACT_REMOVE, slot, 0) for slot in transition.removals]
        )


def simulate_tables(
    arrivals_s: np.ndarray,
    controller: Controller,
    tables: ServiceTables,
    config: SimConfig,
) -> SimulationResult:
    """Simulate `arrivals_s` under `controller` with service times from `tables`.

    Decisions run from the controller's first time until the cost horizon (the config's, or
    the later of the last arrival and the controller's own horizon).
    """
    arrivals_s = np.asarray(arrivals_s, dtype=np.float64)
    if arrivals_s.size and np.any(np.diff(arrivals_s) < 0):
        raise PlanInputError("arrival times must be sorted")
    horizon = config.horizon_s
    if horizon is None:
        horizon = max(float(arrivals_s[-1]) if arrivals_s.size else 0.0, controller.horizon_s)
    state = _State(arrivals_s, tables, config, horizon)
    timeline: list[dict[str, Any]] = []
    devices = ["cpu"] * tables.stages
    scale_actions = 0
    t = float(controller.first_time_s())
    opening = True
    while t <= horizon or opening:
        state.advance(t)
        targets, t_next = controller.decide(state.observe(t))
        if len(targets) != tables.stages:
            raise PlanInputError(f"controller gave {len(targets)} stage targets for {tables.stages} stages")
        changed = state.apply(t, targets, opening=opening)
        scale_actions += 0 if opening else sum(changed)
        for s, target in enumerate(targets):
            if target is not None:
                devices[s] = target.device
            if target is not None and (opening or changed[s]):
                timeline.append(
                    {"t_s": t, "stage": s, "replicas": target.replicas, "total_cores": target.total_cores, "batch": target.batch}
                )
        opening = False
        if t_next <= t:
            raise PlanInputError(f"controller asked for a decision at {t_next} s, not after {t} s")
        t = float(t_next)
    state.advance(np.inf)
    for slot in range(int(state.g[_G_NSLOTS])):
        if state.ri[slot, _I_STATE] != _GONE:
            _charge(state.rf, state.ri, state.sf, state.cores_values, slot, horizon, horizon)
    unit_seconds: dict[str, float] = {}
    for device, seconds in zip(devices, state.sf[:, _S_CORE_S]):
        unit_seconds[device] = unit_seconds.get(device, 0.0) + float(seconds)
    return SimulationResult(
        policy=controller.policy,
        slo_ms=config.slo_ms,
        trace_start=controller.trace_start,
        arrivals_s=arrivals_s,
        latencies_ms=(state.done - arrivals_s) * 1000.0,
        unit_seconds_by_device=unit_seconds,
        scale_actions=scale_actions,
        prices=controller.prices,
        timeline=timeline,
    )


def simulate(
    arrivals_s: np.ndarray,
    plan: Schedule | Controller,
    models: Mapping[str, LatencyModel] | Sequence[LatencyModel],
    config: SimConfig,
    *,
    cores_options: Sequence[int] = DEFAULT_CORES,
) -> SimulationResult:
    """Simulate a plan (a `Schedule`, replayed; plans with surge rules also react to surges)
    or any `Controller` over `arrivals_s`, with service times from the fitted latency models.

    `models` maps model name -> `LatencyModel` (stages are looked up by `Stage.model`) or
    holds one model per stage.
    """
    controller = controller_for(plan)
    stages = controller.stages
    if isinstance(models, Mapping):
        missing = [s.model for s in stages if s.model not in models]
        if missing:
            raise PlanInputError(f"no profile for model {missing[0]!r} (have: {', '.join(sorted(models))})", option="--profile")
        stage_models = [models[s.model] for s in stages]
    else:
        stage_models = list(models)
    wanted_cores, max_batch = controller.resources()
    tables = ServiceTables.from_models(
        stage_models, max_batch, tuple(sorted(set(cores_options) | wanted_cores)), sampled=config.service == "sampled"
    )
    return simulate_tables(arrivals_s, controller, tables, config)
