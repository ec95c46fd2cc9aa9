"""Request-level discrete-event simulation of SPEC's serving model, compiled with numba.

What is simulated (SPEC, "Serving model"; `tests/support/simpy_reference.py` is the plain
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
  the live replicas are matched to it by the serving model's one transition rule
  (`themis.planner.model.transitions`): when growing, running replicas take the largest
  sizes (resized in place) and new ones boot at the rest; otherwise replicas already at a
  wanted size stay, others are resized, surplus ones are removed.
  `scale_actions` counts the (decision, stage) pairs that changed any replica or batch.
- Latency = completion of the last stage - arrival. A request never served (no replica
  left) is dropped and counts as a violation with infinite latency.
- core_seconds integrates each replica's cores over [warmup_s, horizon_s] (booting
  included; a resize changes the charge when it takes effect); requests arriving before
  warmup_s are served but not counted, nor are decisions before it (`SimulationResult`).
- Utilisation (what `hpa` reads) is CPU-like: busy core-seconds / ready core-seconds of
  the stage over the window since the controller's previous decision.

How it runs. `simulate_tables` alternates two things: the compiled engine (`engine`)
runs every event up to the next decision time (`advance`), then the controller gets an
`Observation` and its targets become replica actions (`SimulationState.apply`). So
closed-loop controllers see exactly the simulated state, and Python runs once per
decision, never per request.

The engine's state (`engine.EngineState`, numpy structured arrays; `engine.EngineInputs`
holds what a run is given: cores per cores option, service tables, random draws, cold
start, resize delay, horizon):

- `replicas`, one record per replica ever started (its "slot"; slots are never reused):
  its stage and `phase` (BOOTING -> IDLE <-> BUSY -> GONE), its cores now and the cores
  it will have once its latest resize lands (`resize_token` tells the latest), the batch
  it is serving (a run of its stage's queue), when it last became idle (`idle_order`:
  the smallest is idle the longest), `removed`, and how far it has been charged.
- `stages`, one record per stage: its queue (`queues[s, queue_head:queue_tail]` wait),
  its batch, how many replicas are live (`live[s, :live]` are their slots), the cores of
  its ready replicas, and running totals: busy core-seconds, ready core-seconds, the cost.
- `queues[s]` lists the requests in the order they reached stage s (requests are never
  removed: the head moves on); `done_s[request]` is when it left the last stage.
- `events`, a binary heap of pending replica events ordered by (time, `seq`), `seq` being
  the order they were scheduled in. Three kinds: BATCH_DONE (the batch's requests go to
  the next stage or are done; the replica takes more work, or leaves if removed), READY
  (a cold start is over), RESIZE (a resize lands, unless superseded or removed).
  Arrivals are not on the heap: `counters.next_arrival` points into the sorted arrivals.
- `counters`: the next arrival, the heap size, the event and idle sequence numbers, and
  the slots used.

Tie-break order at equal times: the controller's decision first (the driver advances to
t exclusive, then applies), then replica events in the order they were scheduled, then
arrivals. Within a stage, work goes to the replica idle the longest.
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
from themis.planner.simulation import engine
from themis.planner.simulation.controllers.schedule import controller_for
from themis.planner.simulation.engine import ACTION, COUNTERS, EVENT, REPLICA, STAGE, ActionKind, EngineInputs, EngineState, Phase
from themis.planner.simulation.observation import Controller, Observation, StageView
from themis.planner.simulation.result import SimulationResult
from themis.planner.simulation.tables import QUANTILE_KNOTS, ServiceTables


class SimulationState:
    """One simulation in progress: the engine's state, and what the controllers asked for.

    The driver moves it with four calls: `advance` the clock to a decision time, `observe`
    it for the controller, `apply` the controller's targets, and `finish` the run; the
    results are `done_s` and `core_s_by_stage`.
    """

    def __init__(self, arrivals_s: np.ndarray, tables: ServiceTables, config: SimConfig, horizon_s: float) -> None:
        n, n_stages = arrivals_s.size, tables.stages
        sampled = config.service == "sampled"
        if sampled and tables.quantile_ms is None:
            raise PlanInputError("service='sampled' needs percentile tables (quantile_ms)", option="--service")
        self.tables = tables
        stages = np.zeros(n_stages, dtype=STAGE)
        stages["batch"] = 1
        self._state = EngineState(
            arrivals_s=np.ascontiguousarray(arrivals_s, dtype=np.float64),
            done_s=np.full(n, np.inf),
            queues=np.zeros((n_stages, max(n, 1)), dtype=np.int64),
            live=np.zeros((n_stages, 0), dtype=np.int64),
            replicas=np.zeros(0, dtype=REPLICA),
            stages=stages,
            events=np.zeros(0, dtype=EVENT),
            counters=np.zeros(1, dtype=COUNTERS),
        )
        self._grow_replicas(16)
        uniforms = np.random.default_rng(config.seed).random(n_stages * n).reshape(n_stages, n) if sampled else np.zeros((1, 1))
        self._inputs = EngineInputs(
            cores=np.asarray(tables.cores_options, dtype=np.int64),
            service_ms=np.ascontiguousarray(tables.service_ms, dtype=np.float64),
            quantile_ms=np.ascontiguousarray(tables.quantile_ms if sampled else np.zeros((1, 1, 1, 1)), dtype=np.float64),
            knots=QUANTILE_KNOTS.copy(),
            uniforms=uniforms,
            sampled=sampled,
            cold_start_s=float(config.cold_start_s),
            resize_s=float(config.resize_s),
            horizon_s=float(horizon_s),
        )
        self._batch = [1] * n_stages
        self._last_decision_s = 0.0
        self._last_arrivals = 0
        self._last_busy_core_s = np.zeros(n_stages)
        self._last_ready_core_s = np.zeros(n_stages)

    def core_seconds_until(self, t_s: float) -> np.ndarray:
        """Per stage, core-seconds charged over [0, t_s]: every replica still held is charged
        up to t_s (its later charges start from there)."""
        engine.charge_held(self._state, self._inputs, t_s)
        return self.core_s_by_stage.copy()

    @property
    def done_s(self) -> np.ndarray:
        """When each request left the last stage (inf: never served)."""
        return self._state.done_s

    @property
    def core_s_by_stage(self) -> np.ndarray:
        """Core-seconds charged per stage so far (all of them once `finish` has run)."""
        return self._state.stages["core_s"]

    def advance(self, t_until_s: float) -> None:
        """Run every event before t_until_s."""
        engine.advance(self._state, self._inputs, t_until_s)

    def finish(self) -> None:
        """Run every remaining event and charge the replicas still held up to the horizon."""
        engine.advance(self._state, self._inputs, np.inf)
        engine.charge_held(self._state, self._inputs, self._inputs.horizon_s)

    def observe(self, now_s: float) -> Observation:
        """What a controller deciding at now_s sees; its window starts at the previous decision."""
        totals = engine.observe(self._state, self._inputs, now_s)
        views = []
        for s in range(self.tables.stages):
            busy_core_s, ready_core_s = totals.busy_core_s[s], totals.ready_core_s[s]
            d_ready = ready_core_s - self._last_ready_core_s[s]
            util = (busy_core_s - self._last_busy_core_s[s]) / d_ready if d_ready > 0 else float("nan")
            self._last_busy_core_s[s], self._last_ready_core_s[s] = busy_core_s, ready_core_s
            counts = sorted((self.tables.cores_options[j], int(n)) for j, n in enumerate(totals.replicas_by_cores[s]) if n > 0)
            ready, booting = self._ready_and_booting(s)
            stage = self._state.stages[s]
            head, tail = int(stage["queue_head"]), int(stage["queue_tail"])
            views.append(
                StageView(
                    groups=tuple(Group(n, cores) for cores, n in counts),
                    batch=self._batch[s],
                    ready_replicas=int(totals.ready_replicas[s]),
                    queue_len=int(totals.queue_len[s]),
                    utilisation=float(util),
                    ready_groups=tuple(Group(n, c) for c, n in sorted(ready.items())),
                    booting=tuple(sorted(booting)),
                    oldest_wait_s=now_s - float(self._state.arrivals_s[self._state.queues[s, head]]) if tail > head else 0.0,
                )
            )
        arrived = int(self._state.counters[0]["next_arrival"])
        obs = Observation(now_s, now_s - self._last_decision_s, arrived - self._last_arrivals, tuple(views))
        self._last_decision_s, self._last_arrivals = now_s, arrived
        return obs

    def _ready_and_booting(self, s: int) -> tuple[dict[int, int], list[tuple[float, int]]]:
        """Stage s's live replicas that serve, by their (target) cores, and those booting as
        (ready at, cores)."""
        records = self._state.replicas[self._state.live[s, : self._state.stages[s]["live"]]]
        ready: dict[int, int] = {}
        booting: list[tuple[float, int]] = []
        for cores_idx, phase, ready_at_s in zip(records["target_cores_idx"].tolist(), records["phase"].tolist(), records["ready_at_s"].tolist()):
            cores = self.tables.cores_options[cores_idx]
            if phase == Phase.BOOTING:
                booting.append((ready_at_s, cores))
            else:
                ready[cores] = ready.get(cores, 0) + 1
        return ready, booting

    def apply(self, now_s: float, targets: Sequence[StageAllocation | None], *, opening: bool) -> list[bool]:
        """Turn target allocations into replica actions at now_s (the opening decision's
        replicas are ready at once); per stage, whether anything changed."""
        actions: list[tuple[int, int, int]] = []
        changed = []
        for s, target in enumerate(targets):
            if target is None:
                changed.append(False)
                continue
            batch_changed = target.batch != self._batch[s]
            if not 1 <= target.batch <= self.tables.max_batch:
                raise PlanInputError(f"batch {target.batch} outside the service table (1..{self.tables.max_batch})")
            self._batch[s] = int(target.batch)
            self._state.stages[s]["batch"] = int(target.batch)
            before = len(actions)
            actions += self._match(s, target, opening=opening)
            changed.append(batch_changed or len(actions) > before)
        if not actions:  # between events no stage has an idle replica and a queue at once
            return changed
        adds = (ActionKind.ADD, ActionKind.ADD_READY)
        counters = self._state.counters[0]
        needed = int(counters["slots"]) + sum(kind in adds for kind, _, _ in actions)
        if needed > self._state.replicas.size:
            self._grow_replicas(max(2 * self._state.replicas.size, needed))
        self._reserve_events(int(counters["events"]) + len(actions) + 2 * needed + 16)
        engine.apply(self._state, self._inputs, now_s, np.array(actions, dtype=ACTION))
        return changed

    def _match(self, s: int, target: StageAllocation, *, opening: bool) -> list[tuple[int, int, int]]:
        """Actions (kind, stage or slot, cores index) turning stage s's live replicas into
        `target`, by the serving model's one rule (`themis.planner.model.transitions`)."""
        slots = self._state.live[s, : self._state.stages[s]["live"]]
        records = self._state.replicas[slots]
        phases = records["phase"]
        replicas = [
            ReplicaState(id=slot, cores=self.tables.cores_options[cores_idx], serving=serving, ready_at=ready_at_s, busy=busy)
            for slot, cores_idx, serving, ready_at_s, busy in zip(
                slots.tolist(),
                records["target_cores_idx"].tolist(),
                (phases != Phase.BOOTING).tolist(),
                records["ready_at_s"].tolist(),
                (phases == Phase.BUSY).tolist(),
            )
        ]
        transition = plan_transition(replicas, target.groups)
        add = ActionKind.ADD_READY if opening else ActionKind.ADD
        return (
            [(ActionKind.RESIZE, slot, self.tables.cores_index(c)) for slot, c in transition.resizes]
            + [(add, s, self.tables.cores_index(c)) for c in transition.adds]
            + [(ActionKind.REMOVE, slot, 0) for slot in transition.removals]
        )

    def _grow_replicas(self, capacity: int) -> None:
        """Room for `capacity` replica slots, keeping those used (the engine does not bounds-check)."""
        used = int(self._state.counters[0]["slots"])
        replicas = np.zeros(capacity, dtype=REPLICA)
        replicas[:used] = self._state.replicas[:used]
        live = np.zeros((self.tables.stages, capacity), dtype=np.int64)
        live[:, : self._state.live.shape[1]] = self._state.live
        self._state = self._state._replace(replicas=replicas, live=live)

    def _reserve_events(self, size: int) -> None:
        """Room on the heap for every event that can be pending: one completion and one
        readiness per replica, plus resizes (the engine does not bounds-check)."""
        if size <= self._state.events.size:
            return
        n_events = int(self._state.counters[0]["events"])
        events = np.zeros(max(size, 2 * self._state.events.size), dtype=EVENT)
        events[:n_events] = self._state.events[:n_events]
        self._state = self._state._replace(events=events)


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
    state = SimulationState(arrivals_s, tables, config, horizon)
    timeline: list[dict[str, Any]] = []
    devices = ["cpu"] * tables.stages
    scale_actions = 0
    before_warmup: np.ndarray | None = None
    t = float(controller.first_time_s())
    opening = True
    while t <= horizon or opening:
        if before_warmup is None and t >= config.warmup_s:  # the engine is at the previous decision, before it
            state.advance(config.warmup_s)
            before_warmup = state.core_seconds_until(config.warmup_s)
        state.advance(t)
        targets, t_next = controller.decide(state.observe(t))
        if len(targets) != tables.stages:
            raise PlanInputError(f"controller gave {len(targets)} stage targets for {tables.stages} stages")
        changed = state.apply(t, targets, opening=opening)
        scale_actions += 0 if opening or t < config.warmup_s else sum(changed)
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
    if before_warmup is None:
        state.advance(config.warmup_s)
        before_warmup = state.core_seconds_until(config.warmup_s)
    state.finish()
    unit_seconds: dict[str, float] = {}
    for device, seconds in zip(devices, state.core_s_by_stage - before_warmup):
        unit_seconds[device] = unit_seconds.get(device, 0.0) + float(seconds)
    return SimulationResult(
        policy=controller.policy,
        slo_ms=config.slo_ms,
        trace_start=controller.trace_start,
        arrivals_s=arrivals_s,
        latencies_ms=(state.done_s - arrivals_s) * 1000.0,
        unit_seconds_by_device=unit_seconds,
        scale_actions=scale_actions,
        prices=controller.prices,
        timeline=timeline,
        warmup_s=config.warmup_s,
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
