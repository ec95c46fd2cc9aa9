"""The reference server: SPEC's serving model run for real, behind the v2 inference protocol.

- Each stage (one model of the plan's pipeline) has one FIFO queue. A free, ready replica
  takes min(queue length, batch) requests at once (no batching timeout); when several
  are free, the one idle the longest takes the work. Each request visits every stage in
  order; its HTTP answer is sent when the last stage has served it.
- Replicas are processes (`themis.profiler.replica`) pinned to CPUs of the pool
  (`CpuPool`), with as many torch threads as their cores.
- `apply(stage, allocation)` moves a stage to a plan step's allocation with the serving
  rule (`plan_transition`): resizes are sent to the running replica (it applies them
  between batches, so a running batch finishes at its old speed), new replicas start as
  real processes (load plus warm-up is their cold start, measured), removed replicas take
  no new work and stop once their current batch is done.
- Cost is charged as the simulator does: cores x time from the moment a replica is
  asked for (booting included), a resize changing the charge when it lands, until the
  replica is gone.

The server's clock is the replay's `TraceClock`, so its records line up with the requests'.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from themis.planner.model.serving import StageAllocation
from themis.planner.model.transitions import ReplicaState, plan_transition
from themis.planner.replay import v2
from themis.planner.replay.cpus import CpuPool
from themis.planner.replay.replayer import TraceClock
from themis.planner.replay.replicas import BOOTING, BUSY, GONE, IDLE, ReplicaDied, ReplicaJob, ReplicaProcess
from themis.profiler.models import ModelSpec

BOOT_WAIT_S = 120.0
"""At the end of a run, how long replicas still booting are given to become ready (to measure their cold start)."""


@dataclass(frozen=True)
class StageModel:
    """What one stage serves: the model, its dtype, and the batch sizes to warm up."""

    spec: ModelSpec
    dtype: str
    max_batch: int


@dataclass(frozen=True)
class BatchRecord:
    """One batch served: by which replica, how big, and how long it took."""

    stage: int
    replica: int
    cores: int
    k: int
    dispatched_s: float
    completed_s: float
    service_ms: float
    """Compute time measured inside the replica (what the profile measures)."""

    @property
    def round_trip_ms(self) -> float:
        """Dispatch to answer as the server saw it: compute plus the pipe and the loop."""
        return (self.completed_s - self.dispatched_s) * 1000.0


@dataclass(frozen=True)
class ResizeRecord:
    replica: int
    stage: int
    from_cores: int
    to_cores: int
    requested_s: float
    applied_s: float
    apply_ms: float
    """Time the replica spent moving its threads (affinity and torch threads)."""

    @property
    def delay_s(self) -> float:
        """Asked for -> in effect: waiting for the running batch, plus applying it."""
        return self.applied_s - self.requested_s


@dataclass(frozen=True)
class ServerReport:
    """The reference server's own record of a run."""

    cpus: tuple[int, ...]
    oversubscribed: bool
    """Some replicas shared CPUs (the plan asked for more cores than the pool has)."""
    replicas: list[ReplicaProcess]
    resizes: list[ResizeRecord]
    batches: list[BatchRecord]
    core_seconds: float
    failures: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpus": list(self.cpus),
            "oversubscribed": self.oversubscribed,
            "core_seconds": self.core_seconds,
            "batches": len(self.batches),
            "served_requests": sum(b.k for b in self.batches),
            "replicas": [
                {
                    "id": r.id, "stage": r.stage, "cores": r.charges[0][1], "opening": r.opening, "requested_s": r.requested_s,
                    "ready_s": r.ready_s, "cold_start_s": r.cold_start_s, "load_s": r.load_s, "warmup_s": r.warmup_s,
                    "gone_s": r.gone_s,
                }
                for r in self.replicas
            ],
            "resizes": [{**asdict(r), "delay_s": r.delay_s} for r in self.resizes],
            "failures": self.failures,
        }


@dataclass
class _Pending:
    """A request waiting in a stage's queue, answered through its future."""

    future: asyncio.Future[list[int]]


@dataclass
class _Stage:
    model: StageModel
    batch: int = 1
    queue: deque[_Pending] = field(default_factory=deque)
    replicas: list[ReplicaProcess] = field(default_factory=list)


class ReferenceServer:
    """The serving model's stages, their replica processes, and the HTTP front."""

    def __init__(self, stages: Sequence[StageModel], pool: CpuPool, clock: TraceClock, *, warmup_calls: int = 3) -> None:
        self.stages = [_Stage(model) for model in stages]
        self.pool, self.warmup_calls = pool, warmup_calls
        self.clock = clock
        """Trace time; the caller may replace it once the opening replicas are warm."""
        self.replicas: list[ReplicaProcess] = []
        self.batches: list[BatchRecord] = []
        self.resizes: list[ResizeRecord] = []
        self.failures: list[str] = []
        self._ids = itertools.count()
        self._idle_seq = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- HTTP ------------------------------------------------------------------------------
    def app(self) -> Any:
        """The aiohttp application: `POST /v2/models/{model}/infer` and `GET /v2/health/ready`."""
        from aiohttp import web

        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/v2/models/{model}/infer", self._infer)
        app.router.add_get("/v2/health/ready", self._ready)
        return app

    async def _ready(self, request: Any) -> Any:
        from aiohttp import web

        ready = all(any(r.state in (IDLE, BUSY) for r in s.replicas) for s in self.stages)
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def _infer(self, request: Any) -> Any:
        from aiohttp import web

        first = self.stages[0].model.spec
        model = request.match_info["model"]
        if model != first.name:
            return web.json_response({"error": f"unknown model {model!r}; this server serves {first.name!r}"}, status=404)
        body = await request.read()
        try:
            shape = v2.request_shape(body, request.headers)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if shape != [1, *first.input_shape]:
            expected = [1, *first.input_shape]
            return web.json_response({"error": f"input shape {shape}; this server takes one item, {expected}"}, status=400)
        pending = _Pending(asyncio.get_running_loop().create_future())
        self.stages[0].queue.append(pending)
        self._dispatch(0)
        try:
            classes = await pending.future
        except ReplicaDied as exc:
            return web.json_response({"error": f"replica failed: {exc}"}, status=500)
        return web.json_response(v2.response_body(model, classes))

    # --- scaling ---------------------------------------------------------------------------
    async def open(self, allocations: Sequence[StageAllocation]) -> None:
        """Start the opening replicas (charged from t = 0) and wait until all are warm."""
        boots = []
        for s, allocation in enumerate(allocations):
            self.stages[s].batch = allocation.batch
            for group in allocation.groups:
                for _ in range(group.replicas):
                    boots.append(self._boot(*self._add(s, group.cores, opening=True)))
        await asyncio.gather(*boots)

    def apply(self, stage: int, allocation: StageAllocation) -> None:
        """Move `stage` to `allocation` now: batch, then resizes, adds and removals (the simulator's order)."""
        the_stage = self.stages[stage]
        the_stage.batch = allocation.batch
        live = [r for r in the_stage.replicas if r.live]
        # a booting replica will be ready a cold start after it was asked for: order them by that
        states = [
            ReplicaState(r.id, r.target_cores, serving=r.state != BOOTING, ready_at=r.requested_s, busy=r.state == BUSY) for r in live
        ]
        transition = plan_transition(states, allocation.groups)
        by_id = {r.id: r for r in live}
        for replica_id, cores in transition.resizes:
            self._resize(by_id[replica_id], cores)
        for cores in transition.adds:
            self._spawn(self._boot(*self._add(stage, cores, opening=False)))
        for replica_id in transition.removals:
            self._remove(by_id[replica_id])
        self._dispatch(stage)

    def _add(self, stage: int, cores: int, *, opening: bool) -> tuple[ReplicaProcess, ReplicaJob]:
        """A new replica (booting, charged from now) and the job its process is to be started with."""
        now = 0.0 if opening else self.clock.now_s()
        replica = ReplicaProcess(next(self._ids), stage, cores, self.pool.take(cores), now, opening=opening)
        self.stages[stage].replicas.append(replica)
        self.replicas.append(replica)
        model = self.stages[stage].model
        job = ReplicaJob(model.spec, model.dtype, cores, tuple(replica.cpus), tuple(range(1, model.max_batch + 1)), self.warmup_calls)
        return replica, job

    async def _boot(self, replica: ReplicaProcess, job: ReplicaJob) -> None:
        started = time.perf_counter()
        if replica.removing:  # removed before its process was even started
            return
        try:
            await replica.start(job)
            if replica.removing:
                replica.kill()
            await replica.wait_ready()
        except ReplicaDied as exc:
            if not replica.removing:
                self.failures.append(f"replica {replica.id} (stage {replica.stage}) did not start: {exc}")
            self._gone(replica)
            return
        replica.cold_start_s = time.perf_counter() - started
        replica.ready_s = self.clock.now_s()
        if replica.removing:
            return
        replica.state = IDLE
        replica.idle_seq = next(self._idle_seq)
        self._dispatch(replica.stage)

    def _resize(self, replica: ReplicaProcess, cores: int) -> None:
        requested_s, from_cores = self.clock.now_s(), replica.target_cores
        replica.target_cores = cores
        replica.cpus = self.pool.take(cores, keep=replica.cpus)
        answer = replica.command("resize", cores=cores, cpus=replica.cpus)

        async def land() -> None:
            try:
                message = await answer
            except ReplicaDied:
                return
            applied_s = self.clock.now_s()
            replica.cores = int(message["cores"])
            if replica.state != GONE:
                replica.charges.append((applied_s, replica.cores))
            self.resizes.append(
                ResizeRecord(replica.id, replica.stage, from_cores, cores, requested_s, applied_s, float(message["apply_ms"]))
            )

        self._spawn(land())

    def _remove(self, replica: ReplicaProcess) -> None:
        replica.removing = True
        if replica.state == BOOTING:
            replica.kill()
            self._gone(replica)
        elif replica.state == IDLE:
            self._gone(replica)
            self._spawn(replica.stop())
        # a busy replica goes once its batch is done (_serve)

    def _gone(self, replica: ReplicaProcess) -> None:
        if replica.state == GONE:
            return
        replica.state = GONE
        replica.gone_s = self.clock.now_s()
        replica.charges.append((replica.gone_s, 0))
        self.pool.release(replica.cpus)

    # --- serving ---------------------------------------------------------------------------
    def _dispatch(self, stage: int) -> None:
        """Give queued requests to idle ready replicas, the longest idle first."""
        the_stage = self.stages[stage]
        while the_stage.queue:
            idle = [r for r in the_stage.replicas if r.state == IDLE and not r.removing]
            if not idle:
                return
            replica = min(idle, key=lambda r: r.idle_seq)
            k = min(len(the_stage.queue), the_stage.batch)
            batch = [the_stage.queue.popleft() for _ in range(k)]
            replica.state = BUSY
            self._spawn(self._serve(replica, batch))

    async def _serve(self, replica: ReplicaProcess, batch: list[_Pending]) -> None:
        stage, k = replica.stage, len(batch)
        dispatched_s, cores = self.clock.now_s(), replica.cores
        try:
            answer = await replica.command("batch", k=k)
        except ReplicaDied as exc:
            self.failures.append(f"replica {replica.id} (stage {stage}) died serving a batch of {k}: {exc}")
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            self._gone(replica)
            self._dispatch(stage)
            return
        completed_s = self.clock.now_s()
        self.batches.append(BatchRecord(stage, replica.id, cores, k, dispatched_s, completed_s, float(answer["service_ms"])))
        classes = list(answer.get("classes") or [])
        last = stage + 1 == len(self.stages)
        for i, pending in enumerate(batch):
            if last:
                if not pending.future.done():
                    pending.future.set_result(classes[i : i + 1])
            else:
                self.stages[stage + 1].queue.append(pending)
        if replica.removing:
            self._gone(replica)
            self._spawn(replica.stop())
        else:
            replica.state = IDLE
            replica.idle_seq = next(self._idle_seq)
        self._dispatch(stage)
        if not last:
            self._dispatch(stage + 1)

    # --- bookkeeping -----------------------------------------------------------------------
    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, boot_wait_s: float = BOOT_WAIT_S) -> None:
        """Fail what is still queued, let replicas still booting finish (so their cold start
        is measured, for up to `boot_wait_s`), then stop every replica process."""
        for stage in self.stages:
            while stage.queue:
                pending = stage.queue.popleft()
                if not pending.future.done():
                    pending.future.set_exception(ReplicaDied("the server is shutting down"))
        booting = [asyncio.ensure_future(r.wait_ready()) for r in self.replicas if r.state == BOOTING and r.started]
        if booting:
            await asyncio.wait(booting, timeout=boot_wait_s)
            for waiting in booting:
                waiting.cancel()
        for replica in self.replicas:
            if replica.state == BOOTING:
                replica.kill()
        await asyncio.gather(*(r.stop() for r in self.replicas), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def report(self, horizon_s: float) -> ServerReport:
        """What the server did, for the comparison: replicas, resizes, batches, cost."""
        return ServerReport(
            cpus=self.pool.cpus, oversubscribed=self.pool.oversubscribed, replicas=list(self.replicas),
            resizes=list(self.resizes), batches=list(self.batches), core_seconds=self.core_seconds(horizon_s),
            failures=list(self.failures),
        )

    def core_seconds(self, horizon_s: float) -> float:
        """Cores x time of every replica over [0, horizon_s] (booting included)."""
        total = 0.0
        for replica in self.replicas:
            charges = replica.charges + [(horizon_s, 0)]
            for (t0, cores), (t1, _) in zip(charges, charges[1:]):
                t0, t1 = min(max(t0, 0.0), horizon_s), min(max(t1, 0.0), horizon_s)
                total += cores * max(0.0, t1 - t0)
        return total
