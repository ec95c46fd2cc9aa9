"""Where fleet tasks run: a local process pool, or a Ray cluster.

Both run one function over a stream of tasks and yield each result as it finishes, with a
bounded number of tasks in flight (the driver builds a task's inputs only when it is
submitted, so its memory does not grow with the fleet). A task whose worker dies is run
again, up to `MAX_RETRIES` times: Ray does that itself (`max_retries`); the local pool is
rebuilt and the unfinished tasks resubmitted. Tasks are pure functions of their inputs,
so a retried task gives the same bytes.

Ray is optional (`pip install 'themis-capacity[ray]'`) and imported only here, inside
`RayEngine`. `ray.init` starts a local instance when no address is given (or none is in
`RAY_ADDRESS`), and joins a running cluster otherwise. The worker count of the local
engine is the caller's choice (the command line sizes it to the CPUs available): nothing
in the planner reads the host.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from themis.common.errors import InputError
from themis.planner.fleet.errors import FleetError

T = TypeVar("T")
R = TypeVar("R")

MAX_RETRIES = 3
IN_FLIGHT_PER_WORKER = 2
ENGINES = ("local", "ray")


class Engine(Protocol):
    """Runs `function` over `tasks`, yielding results as they finish (any order)."""

    name: str

    def run(self, function: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


class LocalEngine:
    """A pool of `workers` processes on this machine (in-process when `workers` is 1)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise FleetError(f"must be at least 1, got {workers}", option="--workers")
        self.workers = workers
        self.restarts = 0
        """Times the pool was rebuilt because a worker died."""

    def run(self, function: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        if self.workers == 1:
            yield from map(function, tasks)
            return
        pending = iter(tasks)
        retries: dict[int, int] = {}
        waiting: list[T] = []  # tasks to resubmit after a worker died
        while True:
            with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                running: dict[Future, T] = {}
                try:
                    while True:
                        while len(running) < self.workers * IN_FLIGHT_PER_WORKER:
                            task = waiting.pop() if waiting else next(pending, None)
                            if task is None:
                                break
                            running[pool.submit(function, task)] = task
                        if not running:
                            return
                        done, _ = wait(running, return_when=FIRST_COMPLETED)
                        for future in done:
                            result = future.result()  # raises BrokenProcessPool if its worker died
                            running.pop(future)
                            yield result
                except BrokenProcessPool:
                    self.restarts += 1
                    for task in running.values():
                        retries[id(task)] = retries.get(id(task), 0) + 1
                        if retries[id(task)] > MAX_RETRIES:
                            raise FleetError(f"a worker died {MAX_RETRIES + 1} times on the same task", option="--engine") from None
                    waiting.extend(running.values())

    def close(self) -> None:
        pass


class RayEngine:
    """Tasks on a Ray cluster: the one at `address` (or `RAY_ADDRESS`), else a local instance."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.ray = import_ray()
        self.started = False
        if not self.ray.is_initialized():
            options: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.ERROR}  # Ray's start-up lines would mix into the CLI's stderr
            if address is None and num_cpus is not None:
                options["num_cpus"] = num_cpus
            self.ray.init(**options)
            self.started = True

    def run(self, function: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        ray = self.ray
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(function)
        limit = max(1, int(ray.cluster_resources().get("CPU", 1))) * IN_FLIGHT_PER_WORKER
        pending = iter(tasks)
        running: list[Any] = []
        while True:
            while len(running) < limit:
                task = next(pending, None)
                if task is None:
                    break
                running.append(remote.remote(task))
            if not running:
                return
            done, running = ray.wait(running, num_returns=1)
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayTaskError as error:
                cause = getattr(error, "cause", None)
                if isinstance(cause, InputError):  # bad input found in a task: the same one line as locally
                    raise cause from None
                raise
            yield result

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


def import_ray() -> Any:
    """Ray, or a clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise FleetError("the ray engine needs Ray: pip install 'themis-capacity[ray]'", option="--engine") from None
    return ray


def check_engine(name: str, *, workers: int, address: str | None = None) -> None:
    """Refuse engine options that do not go together, before any work starts."""
    if name not in ENGINES:
        raise FleetError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}", option="--engine")
    if name == "local" and address is not None:
        raise FleetError("--address is for --engine ray", option="--address")
    if workers < 1:
        raise FleetError(f"must be at least 1, got {workers}", option="--workers")


def make_engine(name: str, *, workers: int, address: str | None = None) -> Engine:
    """The engine a command line asked for (a local Ray of `workers` CPUs when no address)."""
    check_engine(name, workers=workers, address=address)
    return LocalEngine(workers) if name == "local" else RayEngine(address, num_cpus=workers)
