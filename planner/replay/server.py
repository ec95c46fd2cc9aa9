"""The reference server: SPEC's serving model run for real, behind the v2 inference protocol.

- Each stage (one model of the plan's pipeline) has one FIFO queue. A free, ready replica
  takes min(queue length, batch) requests at once (no batching timeout); when several
  are free, the one idle the longest takes the work. Each request visits every stage in
  order; its HTTP answer is sent when the last stage has served it.
- Replicas are processes (`themis.profiler.replica`) with as many torch threads as their
  cores, held to those cores as the profile measured them (`cpu_limit`): pinned to CPUs
  of the pool (`CpuPool`), or under a CFS quota of their cores in a cgroup of their own
  (`themis.profiler.cgroups`, the profiler's `--cpu-limit quota` code), free to run on
  any CPU of the pool.
- `apply(stage, allocation)` moves a stage to an allocation its controller asked for
  (`control`: a plan step, or a surge) with the serving rule (`plan_transition`):
  resizes are sent to the running replica (it applies them between batches, so a running
  batch finishes at its old speed; under a quota it writes its group's quota then), new
  replicas start as real processes (load plus warm-up is their cold start, measured),
  removed replicas take no new work and stop once their current batch is done.
- Cost is charged as the simulator does: cores x time from the moment a replica is
  asked for (booting included), a resize changing the charge when it lands, until the
  replica is gone.
- `observe(now_s)` is what the plan's controller sees (the simulator's `Observation`):
  requests the front end received since the previous decision, and per stage the replicas
  asked for and the ready ones (by the cores they have or are being resized to), those
  booting (with when they should serve: asked for plus the median cold start measured so
  far, the opening replicas' at first), the queue and the age of its head, and the
  utilisation (busy core-seconds / ready core-seconds since the previous decision).

The server's clock is the replay's `TraceClock`, so its records line up with the requests'.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from themis.planner.model.serving import Group, StageAllocation
from themis.planner.model.transitions import ReplicaState, plan_transition
from themis.planner.replay import v2
from themis.planner.replay.cpus import CpuPool
from themis.planner.replay.replayer import TraceClock
from themis.planner.replay.replicas import BOOTING, BUSY, GONE, IDLE, ReplicaDied, ReplicaJob, ReplicaProcess
from themis.planner.simulation.observation import Observation, StageView
from themis.profiler.cgroups import CgroupUnavailableError, CpuController, CpuGroup
from themis.profiler.models import ModelSpec

BOOT_WAIT_S = 120.0
"""At the end of a run, how long replicas still booting are given to become ready (to measure their cold start)."""
PIN, QUOTA = "pin", "quota"
"""How a replica is held to its cores: the profiler's `--cpu-limit` modes."""
_servers = itertools.count()


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
class ActionRecord:
    """A decision that changed a stage (the opening one included): what it asked for, and when."""

    t_s: float
    stage: int
    replicas: int
    total_cores: int
    batch: int


@dataclass(frozen=True)
class ServerReport:
    """The reference server's own record of a run."""

    cpus: tuple[int, ...]
    cpu_limit: str
    """pin (replicas on their own CPUs) or quota (a CFS quota each)."""
    oversubscribed: bool
    """Some replicas shared CPUs (the plan asked for more cores than the pool has)."""
    replicas: list[ReplicaProcess]
    resizes: list[ResizeRecord]
    batches: list[BatchRecord]
    actions: list[ActionRecord]
    core_seconds: float
    failures: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpus": list(self.cpus),
            "cpu_limit": self.cpu_limit,
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
            "actions": [asdict(a) for a in self.actions],
            "failures": self.failures,
        }


@dataclass
class _Pending:
    """A request waiting in a stage's queue, answered through its future."""

    future: asyncio.Future[list[int]]
    arrived_s: float
    """When the front end received it (trace time)."""


@dataclass
class _Stage:
    model: StageModel
    batch: int = 1
    queue: deque[_Pending] = field(default_factory=deque)
    replicas: list[ReplicaProcess] = field(default_factory=list)
    busy_cores: int = 0
    """Cores of the batches running now."""
    ready_cores: int = 0
    """Cores of the ready (idle or busy) replicas now."""
    busy_core_s: float = 0.0
    ready_core_s: float = 0.0
    since_s: float = 0.0
    """Up to when the two totals are counted."""
    seen_busy_core_s: float = 0.0
    seen_ready_core_s: float = 0.0
    """The totals at the previous observation."""

    def account(self, now_s: float) -> None:
        """Bring the busy and ready core-second totals up to `now_s`."""
        elapsed_s = max(0.0, now_s - self.since_s)
        self.busy_core_s += self.busy_cores * elapsed_s
        self.ready_core_s += self.ready_cores * elapsed_s
        self.since_s = max(self.since_s, now_s)


class ReferenceServer:
    """The serving model's stages, their replica processes, and the HTTP front."""

    def __init__(
        self, stages: Sequence[StageModel], pool: CpuPool, clock: TraceClock, *, warmup_calls: int = 3, quota: CpuController | None = None
    ) -> None:
        """`quota`: where to make each replica's cgroup (None: replicas are pinned instead)."""
        self.stages = [_Stage(model) for model in stages]
        self.pool, self.warmup_calls, self.quota = pool, warmup_calls, quota
        self._name = f"replay{next(_servers)}"
        self.clock = clock
        """Trace time; the caller may replace it once the opening replicas are warm."""
        self.replicas: list[ReplicaProcess] = []
        self.batches: list[BatchRecord] = []
        self.resizes: list[ResizeRecord] = []
        self.actions: list[ActionRecord] = []
        self.failures: list[str] = []
        self.arrived = 0
        """Requests the front end has received."""
        self._observed_s, self._observed_arrivals = 0.0, 0
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
        pending = _Pending(asyncio.get_running_loop().create_future(), self.clock.now_s())
        self.arrived += 1
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
            self.actions.append(ActionRecord(0.0, s, allocation.replicas, allocation.total_cores, allocation.batch))
        await asyncio.gather(*boots)

    def start_clock(self, clock: TraceClock) -> None:
        """Trace time starts (the opening replicas are warm): utilisation and arrivals count from here."""
        self.clock = clock
        for stage in self.stages:
            stage.busy_core_s = stage.ready_core_s = stage.seen_busy_core_s = stage.seen_ready_core_s = 0.0
            stage.since_s = 0.0
        self._observed_s, self._observed_arrivals = 0.0, self.arrived

    def observe(self, now_s: float) -> Observation:
        """What the plan's controller sees at `now_s`; its window starts at the previous observation."""
        views = []
        clock_s = self.clock.now_s()
        cold_starts_s = [r.cold_start_s for r in self.replicas if r.cold_start_s is not None]
        cold_start_s = statistics.median(cold_starts_s) if cold_starts_s else 0.0
        for stage in self.stages:
            stage.account(clock_s)
            busy_core_s, ready_core_s = stage.busy_core_s - stage.seen_busy_core_s, stage.ready_core_s - stage.seen_ready_core_s
            stage.seen_busy_core_s, stage.seen_ready_core_s = stage.busy_core_s, stage.ready_core_s
            live = [r for r in stage.replicas if r.live]
            counts = Counter(r.target_cores for r in live)
            ready = Counter(r.target_cores for r in live if r.state in (IDLE, BUSY))
            booting = sorted((r.requested_s + cold_start_s, r.target_cores) for r in live if r.state == BOOTING)
            views.append(
                StageView(
                    groups=tuple(Group(n, cores) for cores, n in sorted(counts.items())),
                    batch=stage.batch,
                    ready_replicas=sum(r.state in (IDLE, BUSY) for r in live),
                    queue_len=len(stage.queue),
                    utilisation=busy_core_s / ready_core_s if ready_core_s > 0 else float("nan"),
                    ready_groups=tuple(Group(n, cores) for cores, n in sorted(ready.items())),
                    booting=tuple(booting),
                    oldest_wait_s=max(0.0, clock_s - stage.queue[0].arrived_s) if stage.queue else 0.0,
                )
            )
        observation = Observation(now_s, now_s - self._observed_s, self.arrived - self._observed_arrivals, tuple(views))
        self._observed_s, self._observed_arrivals = now_s, self.arrived
        return observation

    def apply(self, stage: int, allocation: StageAllocation) -> bool:
        """Move `stage` to `allocation` now: batch, then resizes, adds and removals (the simulator's
        order); whether anything changed."""
        the_stage = self.stages[stage]
        batch_changed = allocation.batch != the_stage.batch
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
        changed = batch_changed or transition.changes
        if changed:
            self.actions.append(ActionRecord(self.clock.now_s(), stage, allocation.replicas, allocation.total_cores, allocation.batch))
        return changed

    def _add(self, stage: int, cores: int, *, opening: bool) -> tuple[ReplicaProcess, ReplicaJob]:
        """A new replica (booting, charged from now) and the job its process is to be started with."""
        now = 0.0 if opening else self.clock.now_s()
        replica_id = next(self._ids)
        group = self._quota_group(replica_id, cores) if self.quota is not None else None
        cpus = list(self.pool.cpus) if group is not None else self.pool.take(cores)
        replica = ReplicaProcess(replica_id, stage, cores, cpus, now, opening=opening, group=group)
        self.stages[stage].replicas.append(replica)
        self.replicas.append(replica)
        self._check_quota_fits()
        model = self.stages[stage].model
        job = ReplicaJob(
            model.spec, model.dtype, cores, tuple(replica.cpus), tuple(range(1, model.max_batch + 1)), self.warmup_calls, group
        )
        return replica, job

    def _quota_group(self, replica_id: int, cores: int) -> CpuGroup:
        """A cgroup of its own for a replica, with a quota of `cores` (the profiler's cgroup code)."""
        assert self.quota is not None
        try:
            group = CpuGroup.create(self.quota, f"{self._name}-replica{replica_id}")
            group.set_cpu_quota(cores)
        except OSError as error:
            message = f"cannot create a cgroup with a CPU quota in {self.quota.parent}: {error.strerror}"
            raise CgroupUnavailableError(message, option="--profile") from None
        return group

    def _check_quota_fits(self) -> None:
        """Under quotas, replicas share the pool's CPUs: oversubscribed when their quotas add up to more."""
        if self.quota is not None and sum(r.target_cores for r in self.replicas if r.live) > len(self.pool.cpus):
            self.pool.oversubscribed = True

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
        self._set_ready_cores(replica, replica.cores)
        replica.state = IDLE
        replica.idle_seq = next(self._idle_seq)
        self._dispatch(replica.stage)

    def _resize(self, replica: ReplicaProcess, cores: int) -> None:
        requested_s, from_cores = self.clock.now_s(), replica.target_cores
        replica.target_cores = cores
        if self.quota is None:
            replica.cpus = self.pool.take(cores, keep=replica.cpus)
        self._check_quota_fits()
        answer = replica.command("resize", cores=cores, cpus=replica.cpus)

        async def land() -> None:
            try:
                message = await answer
            except ReplicaDied:
                return
            applied_s = self.clock.now_s()
            if replica.state in (IDLE, BUSY):
                self._set_ready_cores(replica, int(message["cores"]) - replica.cores)
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
        if replica.state in (IDLE, BUSY):
            self._set_ready_cores(replica, -replica.cores)
        replica.state = GONE
        replica.gone_s = self.clock.now_s()
        replica.charges.append((replica.gone_s, 0))
        if self.quota is None:
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
            the_stage.account(self.clock.now_s())
            the_stage.busy_cores += replica.cores
            self._spawn(self._serve(replica, batch))

    async def _serve(self, replica: ReplicaProcess, batch: list[_Pending]) -> None:
        stage, k = replica.stage, len(batch)
        dispatched_s, cores = self.clock.now_s(), replica.cores
        try:
            answer = await replica.command("batch", k=k)
        except ReplicaDied as exc:
            self._batch_over(stage, cores)
            self.failures.append(f"replica {replica.id} (stage {stage}) died serving a batch of {k}: {exc}")
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            self._gone(replica)
            self._dispatch(stage)
            return
        completed_s = self.clock.now_s()
        self._batch_over(stage, cores)
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
    def _set_ready_cores(self, replica: ReplicaProcess, change: int) -> None:
        stage = self.stages[replica.stage]
        stage.account(self.clock.now_s())
        stage.ready_cores += change

    def _batch_over(self, stage: int, cores: int) -> None:
        the_stage = self.stages[stage]
        the_stage.account(self.clock.now_s())
        the_stage.busy_cores -= cores

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
            cpus=self.pool.cpus, cpu_limit=PIN if self.quota is None else QUOTA,
            oversubscribed=self.pool.oversubscribed, replicas=list(self.replicas),
            resizes=list(self.resizes), batches=list(self.batches), actions=list(self.actions), core_seconds=self.core_seconds(horizon_s),
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
