"""The reference server's handle on one replica process (`themis.profiler.replica`).

The handle starts the process, sends it commands as JSON lines and resolves one future
per command as the answers come back, in order. It also keeps what the comparison needs:
when the replica was asked for and when it was ready (its cold start), and the cores it
was charged for over time. Torch lives only in the child; this side imports none of it.

Under a CPU quota the replica lives in its own cgroup (`group`): its process is moved
into the group before it reads its job (so nothing it runs escapes the quota), and the
group is removed once the process has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from themis.profiler.cgroups import CpuGroup
from themis.profiler.models import ModelSpec

BOOTING, IDLE, BUSY, GONE = "booting", "idle", "busy", "gone"
STOP_WAIT_S = 5.0
"""How long a stopped replica may take to exit before it is killed."""


class ReplicaDied(RuntimeError):
    """The replica process ended (crashed, was killed, or could not load the model)."""


@dataclass(frozen=True)
class ReplicaJob:
    """What a replica process is started with (its first stdin line)."""

    model: ModelSpec
    dtype: str
    cores: int
    cpus: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    warmup_calls: int
    group: CpuGroup | None = None
    """Under a CPU quota: the cgroup the process runs in (its quota is its cores)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(), "dtype": self.dtype, "cores": self.cores, "cpus": list(self.cpus),
            "batch_sizes": list(self.batch_sizes), "warmup_calls": self.warmup_calls,
            "cgroup": str(self.group.path) if self.group else None, "cgroup_version": self.group.version if self.group else None,
        }


@dataclass
class ReplicaProcess:
    """One replica: its process, its state in the serving model, and its timings."""

    id: int
    stage: int
    cores: int
    """Cores in effect (threads and CPUs the process runs with now)."""
    cpus: list[int]
    requested_s: float
    opening: bool = False
    target_cores: int = 0
    """Cores it has, or will have once a resize it was sent lands."""
    state: str = BOOTING
    removing: bool = False
    idle_seq: int = 0
    ready_s: float | None = None
    cold_start_s: float | None = None
    """Measured: process start to warm (model load plus warm-up of every batch size)."""
    load_s: float | None = None
    warmup_s: float | None = None
    gone_s: float | None = None
    charges: list[tuple[float, int]] = field(default_factory=list)
    """(time, cores charged from then on); 0 once gone."""
    error: str = ""
    group: CpuGroup | None = None
    """Under a CPU quota: its cgroup, removed once the process has ended."""
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _pending: deque[asyncio.Future[dict[str, Any]]] = field(default_factory=deque, repr=False)
    _ready: asyncio.Future[dict[str, Any]] | None = field(default=None, repr=False)
    _reader: asyncio.Task[None] | None = field(default=None, repr=False)
    _stderr: Any = field(default=None, repr=False)
    _backlog: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.target_cores = self.target_cores or self.cores
        self.charges.append((self.requested_s, self.cores))

    @property
    def live(self) -> bool:
        """Counted by the plan: neither removed nor gone."""
        return not self.removing and self.state != GONE

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self, job: ReplicaJob) -> None:
        """Start the process (in its cgroup, if it has one) and send it its job; `wait_ready` waits for the warm-up."""
        self._stderr = tempfile.TemporaryFile()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "themis.profiler.replica",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self._stderr,
            limit=1 << 20,
        )
        self._ready = asyncio.get_running_loop().create_future()
        if self.group is not None:
            try:
                self.group.add_process(self._process.pid)  # before it reads its job: nothing it runs escapes the quota
            except OSError as error:
                self._process.kill()
                await self._process.wait()
                self._remove_group()
                raise ReplicaDied(f"cannot put the replica in its cgroup {self.group.path}: {error.strerror}") from None
        self._write(job.to_dict())
        for message in self._backlog:  # commands given before the process existed
            self._write(message)
        self._backlog.clear()
        self._reader = asyncio.create_task(self._read())

    async def wait_ready(self) -> dict[str, Any]:
        assert self._ready is not None, "start() first"
        return await asyncio.shield(self._ready)

    def command(self, op: str, **payload: Any) -> asyncio.Future[dict[str, Any]]:
        """Send one command; the future resolves with its answer (or `ReplicaDied`)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if self._process is None and self.state != GONE:
            self._pending.append(future)
            self._backlog.append({"op": op, **payload})
            return future
        if self._process is None or self._process.returncode is not None or self._reader is None or self._reader.done():
            future.set_exception(ReplicaDied(self.error or "the replica process is not running"))
            return future
        self._pending.append(future)
        self._write({"op": op, **payload})
        return future

    async def stop(self) -> None:
        """Ask the process to exit; kill it if it does not within `STOP_WAIT_S`."""
        process = self._process
        if process is None:
            self._remove_group()
            return
        if process.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
                self._write({"op": "stop"})
            try:
                await asyncio.wait_for(process.wait(), STOP_WAIT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, ReplicaDied):
                await self._reader
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._remove_group()

    def kill(self) -> None:
        """End the process at once (a booting replica that is removed)."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

    def _remove_group(self) -> None:
        if self.group is not None:
            self.group.remove()

    def _write(self, message: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write((json.dumps(message) + "\n").encode())

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while line := await self._process.stdout.readline():
            message = json.loads(line)
            event = message.get("event")
            if event == "loaded":
                self.load_s = float(message["load_s"])
            elif event == "ready":
                self.warmup_s = float(message["warmup_s"])
                self._ready.set_result(message)  # type: ignore[union-attr]
            elif event == "load_error":
                self.error = f"cannot load the model: {message['message']}"
            elif self._pending:
                self._pending.popleft().set_result(message)
        code = await self._process.wait()
        self._remove_group()
        if not self.error and code != 0:
            self.error = f"replica process exited with code {code}: {self._stderr_tail()}"
        failure = ReplicaDied(self.error or "the replica process ended")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(failure)
            self._ready.exception()  # retrieved: a replica removed while booting is not an error
        while self._pending:
            self._pending.popleft().set_exception(failure)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""
