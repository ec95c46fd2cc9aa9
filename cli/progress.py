"""Progress of long work on stderr: a rich bar on a terminal, a plain line every few seconds otherwise (CI logs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from themis.cli import output

PLAIN_EVERY_S = 5.0


@contextmanager
def replay_progress(*, on_terminal: bool) -> Iterator[Callable[[Any], None]]:
    """A callback taking a `ReplayProgress`: requests sent of the total, in flight, failed."""
    if on_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=output.err_console, transient=True) as bar:
            task = bar.add_task("replay", total=None)

            def update(p: Any) -> None:
                bar.update(task, total=p.total, completed=p.sent, description=f"replay {p.elapsed_s:,.0f}/{p.duration_s:,.0f} s, "
                           f"{p.in_flight:,} in flight, {p.failed:,} failed")

            yield update
        return
    last, finished = [0.0], [False]

    def line(p: Any) -> None:
        now, done = time.monotonic(), p.sent == p.total == p.finished
        if (now - last[0] >= PLAIN_EVERY_S and not finished[0]) or (done and not finished[0]):
            last[0], finished[0] = now, done
            output.err_console.print(
                f"replay: {p.elapsed_s:,.1f}/{p.duration_s:,.1f} s, sent {p.sent:,}/{p.total:,}, "
                f"in flight {p.in_flight:,}, failed {p.failed:,}", highlight=False, soft_wrap=True,
            )

    yield line


@contextmanager
def fleet_progress(*, on_terminal: bool) -> Iterator[Callable[[int, int], None]]:
    """A callback taking (services done, services in the fleet), called as shards finish."""
    if on_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=output.err_console, transient=True) as bar:
            task = bar.add_task("services planned", total=None)
            yield lambda done, total: bar.update(task, total=total, completed=done)
        return
    last = [0.0]

    def line(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PLAIN_EVERY_S or done == total:
            last[0] = now
            output.err_console.print(f"fleet: {done:,}/{total:,} services", highlight=False, soft_wrap=True)

    yield line


class Heartbeat:
    """What a long command is doing now, for `heartbeat` to repeat."""

    def __init__(self) -> None:
        self.doing = "starting"

    def step(self, doing: str) -> None:
        self.doing = doing


@contextmanager
def heartbeat(command: str, *, on_terminal: bool, every_s: float | None = None) -> Iterator[Heartbeat]:
    """Off a terminal (a CI log), one plain line every `every_s` while the work runs:
    `compare: simulating 6 policies (35 s)`. On a terminal it stays quiet (the command's own
    output says enough). The line comes from a daemon thread, so the work itself is untouched."""
    import threading

    beat = Heartbeat()
    every_s = every_s or PLAIN_EVERY_S
    if on_terminal:
        yield beat
        return
    started, stop = time.monotonic(), threading.Event()

    def tick() -> None:
        while not stop.wait(every_s):
            output.err_console.print(f"{command}: {beat.doing} ({time.monotonic() - started:,.0f} s)", highlight=False, soft_wrap=True)

    thread = threading.Thread(target=tick, name=f"{command}-progress", daemon=True)
    thread.start()
    try:
        yield beat
    finally:
        stop.set()
        thread.join()
