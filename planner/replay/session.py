"""The two ways `themis replay` runs: against a URL, or against its own reference server.

Both run one event loop (uvloop when installed) that ends cleanly on Ctrl-C or SIGTERM:
the requests in flight are recorded as `cancelled` and the caller still gets the log.
With `--serve`, the server, its replica processes and the replayer share that loop and
the trace clock: the opening replicas are started and warmed up first, then t = 0 starts,
the plan's runtime controller (`control`: its later steps, and the surge controller of a
`themis` plan) runs against the server, and every replica is stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from themis.planner.model.serving import Schedule
from themis.planner.replay.cpus import CpuPool
from themis.planner.replay.errors import ReplayInputError
from themis.planner.replay.control import follow_controller, opening_allocations
from themis.planner.replay.replayer import ReplayConfig, Replayer, ReplayProgress, TraceClock, run_event_loop
from themis.planner.replay.request_log import RequestLog
from themis.planner.replay.server import QUOTA, ReferenceServer, ServerReport, StageModel
from themis.planner.replay.templates import RequestTemplate, protocol_template
from themis.planner.simulation.controllers.schedule import controller_for
from themis.profiler.cgroups import find_cpu_controller

ProgressHook = Callable[[ReplayProgress], None]
CheckpointHook = Callable[[RequestLog], None]


@dataclass(frozen=True)
class ReplayRun:
    """What one run left: every request's row, whether it was cut short, the server's record."""

    log: RequestLog
    interrupted: bool
    template: RequestTemplate
    server: ServerReport | None = None


def replay_url(
    template: RequestTemplate,
    log: RequestLog,
    config: ReplayConfig = ReplayConfig(),
    *,
    on_progress: ProgressHook | None = None,
    on_checkpoint: CheckpointHook | None = None,
) -> ReplayRun:
    """Send `log`'s requests to `template.url`, open loop."""
    replayer = Replayer(template, log, config, on_progress=on_progress, on_checkpoint=on_checkpoint)
    run_event_loop(replayer.run)
    return ReplayRun(log, replayer.interrupted, template)


@dataclass(frozen=True)
class ServeSettings:
    """How the reference server runs a plan."""

    stages: tuple[StageModel, ...]
    cpus: tuple[int, ...]
    """CPUs the replicas are pinned to; the front end and the replayer run on the others, if any."""
    warmup_calls: int = 3
    """Untimed calls of every batch size before a replica is ready."""
    cpu_limit: str = "pin"
    """How replicas are held to their cores, as the profile measured them: pin or quota."""


def serve_and_replay(
    schedule: Schedule,
    settings: ServeSettings,
    log: RequestLog,
    config: ReplayConfig = ReplayConfig(),
    *,
    on_progress: ProgressHook | None = None,
    on_checkpoint: CheckpointHook | None = None,
    on_status: Callable[[str], None] | None = None,
) -> ReplayRun:
    """Run `schedule` on a local reference server and replay `log`'s requests against it."""
    with _pinned_away_from(settings.cpus):
        return run_event_loop(lambda: _serve_and_replay(schedule, settings, log, config, on_progress, on_checkpoint, on_status))


async def _serve_and_replay(
    schedule: Schedule,
    settings: ServeSettings,
    log: RequestLog,
    config: ReplayConfig,
    on_progress: ProgressHook | None,
    on_checkpoint: CheckpointHook | None,
    on_status: Callable[[str], None] | None,
) -> ReplayRun:
    from aiohttp import web

    say = on_status or (lambda message: None)
    quota = find_cpu_controller() if settings.cpu_limit == QUOTA else None
    server = ReferenceServer(
        settings.stages, CpuPool(settings.cpus), TraceClock.starting_in(0.0), warmup_calls=settings.warmup_calls, quota=quota
    )
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp has no public accessor for a port 0 site
    first = settings.stages[0]
    url = f"http://127.0.0.1:{port}"
    template = protocol_template(url, "v2-binary", first.spec.name, first.spec.input_shape, _wire_dtype(first), "input")
    applier: asyncio.Task[None] | None = None
    try:
        controller = controller_for(schedule)
        opening, next_decision_s = opening_allocations(server, controller, len(settings.stages))
        held = "under CPU quotas" if quota is not None else "pinned"
        cpus = ",".join(map(str, settings.cpus))
        say(f"starting {sum(a.replicas for a in opening)} replica(s) on CPUs {cpus} ({held}) and warming them up")
        await server.open(opening)
        if server.failures:  # an opening replica that cannot start: the model (or its options) is the problem
            raise ReplayInputError(server.failures[0], option="--serve")
        clock = TraceClock.starting_in(config.lead_s)
        server.start_clock(clock)
        applier = asyncio.create_task(follow_controller(server, controller, next_decision_s, clock.now_s))
        replayer = Replayer(template, log, config, on_progress=on_progress, on_checkpoint=on_checkpoint)
        await replayer.run(clock)
        interrupted = replayer.interrupted
    finally:
        if applier is not None:
            applier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await applier
        await server.close()
        await runner.cleanup()
    horizon_s = schedule.steps[-1].t_end_s
    return ReplayRun(log, interrupted, template, server.report(horizon_s))


def _wire_dtype(stage: StageModel) -> str:
    return "int64" if stage.spec.input_kind == "tokens" else stage.dtype


@contextlib.contextmanager
def _pinned_away_from(replica_cpus: Sequence[int]) -> Iterator[None]:
    """Run the front end and replayer on the CPUs the replicas do not use (if there are any)."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    others = before - set(replica_cpus)
    if others:
        os.sched_setaffinity(0, others)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
