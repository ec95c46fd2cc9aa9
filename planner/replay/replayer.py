"""The open-loop sender: every request leaves at its scheduled time, whatever the server does.

A closed-loop load generator waits for an answer before the next request, so a slow
server slows the load down and its queueing never shows (coordinated omission). Here a
dispatcher starts one asyncio task per request at its scheduled time, however many are
still in flight; latency is measured from the scheduled time, and the sender's own lag
(sent - scheduled) is recorded per request so a late sender shows as lag rather than as
server latency.

Timing: the dispatcher sleeps until 1 ms before the next request is due (the event
loop's timers are millisecond-grained), then yields to the loop until it is due, so
requests leave within a fraction of a millisecond of their time while the loop keeps
serving the requests in flight. Timestamps come from `time.perf_counter`.

HTTP: aiohttp's client, one session with an unbounded connection pool (a bounded pool
would queue requests inside the sender, a hidden closed loop) and keep-alive. aiohttp is
the mature asyncio HTTP client and server (the reference server uses its server too), and
uvloop, when installed, makes the loop itself faster: together they sent 4,000 requests/s
from one core with a lag p99 under 1 ms on a quiet machine (benchmarks/bench_replay.py).

While it runs, `on_progress` is called a few times a second and `on_checkpoint` (in a
worker thread, with a snapshot) every `checkpoint_s` or so, so the caller can keep the
results on disk; Ctrl-C or SIGTERM ends the replay early with the requests in flight
recorded as `cancelled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from themis.planner.replay.request_log import CANCELLED, ERROR, HTTP_ERROR, OK, TIMEOUT, RequestLog
from themis.planner.replay.templates import RequestTemplate

SPIN_S = 0.001
"""The dispatcher sleeps until this long before a request is due, then yields until it is."""
ERROR_TEXT_CHARS = 200

T = TypeVar("T")


@dataclass(frozen=True)
class ReplayConfig:
    """How the sender behaves (not what it sends)."""

    timeout_s: float = 30.0
    """A request with no answer after this long is recorded as `timeout`."""
    checkpoint_s: float = 2.0
    """Least time between two checkpoints (it grows when writing them takes long)."""
    progress_s: float = 0.25
    lead_s: float = 0.3
    """The trace's t = 0 is this long after the sender is ready, so the first requests are not late."""


@dataclass(frozen=True)
class ReplayProgress:
    """Where a replay stands, for a progress bar or line."""

    elapsed_s: float
    duration_s: float
    total: int
    sent: int
    finished: int
    failed: int

    @property
    def in_flight(self) -> int:
        return self.sent - self.finished


class TraceClock:
    """Seconds of trace time: 0 at `origin` (a `time.perf_counter` reading)."""

    def __init__(self, origin: float) -> None:
        self.origin = origin

    @classmethod
    def starting_in(cls, seconds: float) -> TraceClock:
        return cls(time.perf_counter() + seconds)

    def now_s(self) -> float:
        return time.perf_counter() - self.origin


class Replayer:
    """Sends the requests of `log` (its `scheduled_s`) as `template` says, recording each."""

    def __init__(
        self,
        template: RequestTemplate,
        log: RequestLog,
        config: ReplayConfig = ReplayConfig(),
        *,
        on_progress: Callable[[ReplayProgress], None] | None = None,
        on_checkpoint: Callable[[RequestLog], None] | None = None,
    ) -> None:
        self.template, self.log, self.config = template, log, config
        self.on_progress, self.on_checkpoint = on_progress, on_checkpoint
        self.interrupted = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._clock = TraceClock.starting_in(config.lead_s)

    async def run(self, clock: TraceClock | None = None) -> RequestLog:
        """Replay every request (or until cancelled); `clock` lets a caller share t = 0."""
        import aiohttp

        _raise_open_files_limit()
        self._clock = clock or TraceClock.starting_in(self.config.lead_s)
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            helpers = [asyncio.create_task(self._report_progress())]
            if self.on_checkpoint is not None:
                helpers.append(asyncio.create_task(self._checkpoints()))
            try:
                await self._dispatch(session)
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            except asyncio.CancelledError:
                self.interrupted = True
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                for pending in list(self._tasks):
                    pending.cancel()
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            finally:
                for helper in helpers:
                    helper.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
        self._report_now()
        return self.log

    async def _dispatch(self, session: Any) -> None:
        due_s, n, i = self.log.scheduled_s, self.log.total, 0
        now_s = self._clock.now_s
        while i < n:
            wait_s = due_s[i] - now_s()
            if wait_s > SPIN_S:
                await asyncio.sleep(wait_s - SPIN_S)
                continue
            if wait_s > 0:
                await asyncio.sleep(0)
                continue
            now = now_s()
            while i < n and due_s[i] <= now:
                task = asyncio.create_task(self._send(session, i))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                i += 1
            await asyncio.sleep(0)

    async def _send(self, session: Any, request: int) -> None:
        import aiohttp

        log, now_s = self.log, self._clock.now_s
        log.mark_sent(request, now_s())
        try:
            async with session.post(self.template.url, data=self.template.body_for(request), headers=self.template.headers) as response:
                body = await response.read()
                if 200 <= response.status < 300:
                    log.mark_done(request, now_s(), OK, response.status)
                else:
                    text = body[:ERROR_TEXT_CHARS].decode(errors="replace").strip().splitlines()
                    reason = f"HTTP {response.status}" + (f": {text[0]}" if text else "")
                    log.mark_done(request, now_s(), HTTP_ERROR, response.status, reason)
        except TimeoutError:
            log.mark_done(request, now_s(), TIMEOUT, 0, f"no answer within {self.config.timeout_s:g} s")
        except asyncio.CancelledError:
            log.mark_done(request, now_s(), CANCELLED, 0, "the replay was interrupted")
            raise
        except (aiohttp.ClientError, OSError) as exc:
            log.mark_done(request, now_s(), ERROR, 0, _one_line(exc))

    async def _report_progress(self) -> None:
        while True:
            self._report_now()
            await asyncio.sleep(self.config.progress_s)

    def _report_now(self) -> None:
        if self.on_progress is None:
            return
        log = self.log
        duration_s = float(log.scheduled_s[-1]) if log.total else 0.0
        self.on_progress(ReplayProgress(max(0.0, self._clock.now_s()), duration_s, log.total, log.sent, log.finished, log.failed))

    async def _checkpoints(self) -> None:
        assert self.on_checkpoint is not None
        interval_s = self.config.checkpoint_s
        while True:
            await asyncio.sleep(interval_s)
            started = time.perf_counter()
            await asyncio.to_thread(self.on_checkpoint, self.log.snapshot())
            interval_s = max(self.config.checkpoint_s, 5.0 * (time.perf_counter() - started))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}"[:ERROR_TEXT_CHARS] if text else type(exc).__name__


def _raise_open_files_limit() -> None:
    """Every request in flight holds a socket: allow as many as the hard limit permits."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else max(soft, 65536), hard))


def run_event_loop(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` on uvloop when installed (asyncio's loop otherwise), with SIGTERM
    cancelling it like Ctrl-C does, so either ends a replay cleanly."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_cancel_on_sigterm(main()))


async def _cancel_on_sigterm(main: Awaitable[T]) -> T:
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)  # type: ignore[union-attr]
        installed = True
    try:
        return await main
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
