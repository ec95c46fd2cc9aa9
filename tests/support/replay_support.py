"""Replay test support: a plain HTTP server in its own process, and windows of the real LLM trace.

Shared by tests/planner/replay and tests/cli (their conftest files import the fixtures).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from themis.data import bundled_trace
from themis.planner.traffic.loading import load_trace

PLAIN_SERVER = Path(__file__).parents[1] / "planner" / "replay" / "plain_server.py"
BUSY_WINDOW_S = 856.0
"""Start of the busiest 10 s of the bundled Azure LLM 2023 code trace (411 requests)."""


@dataclass
class PlainServer:
    url: str
    process: subprocess.Popen

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def plain_server() -> Iterator[Callable[..., PlainServer]]:
    """Start `plain_server.py` (answer after `delay_ms` with `status`); killed at teardown."""
    started: list[PlainServer] = []

    def start(delay_ms: float = 0.0, status: int = 200) -> PlainServer:
        process = subprocess.Popen(
            [sys.executable, str(PLAIN_SERVER), "--delay-ms", str(delay_ms), "--status", str(status)],
            stdout=subprocess.PIPE, text=True,
        )
        port = int(process.stdout.readline().split()[1])
        server = PlainServer(f"http://127.0.0.1:{port}", process)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.kill()


def llm_arrivals(seconds: float, start_s: float = BUSY_WINDOW_S) -> np.ndarray:
    """Real arrivals of the bundled LLM trace in [start_s, start_s + seconds), shifted to start near 0."""
    arrivals = load_trace(bundled_trace("azure_llm_2023_code")).arrivals_s
    window = arrivals[(arrivals >= start_s) & (arrivals < start_s + seconds)]
    return window - start_s


@pytest.fixture
def llm_window(tmp_path: Path) -> Callable[[float], tuple[Path, np.ndarray]]:
    """A request-log CSV of `seconds` of the real LLM trace's busiest stretch, and its arrivals."""

    def write(seconds: float) -> tuple[Path, np.ndarray]:
        arrivals = llm_arrivals(seconds)
        path = tmp_path / f"llm_{seconds:g}s.csv"
        path.write_text("t\n" + "\n".join(f"{t:.6f}" for t in arrivals) + "\n", encoding="utf-8")
        return path, arrivals

    return write
