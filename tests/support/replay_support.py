"""Replay test support: a plain HTTP server in its own process, windows of the real LLM trace,
and one-stage small_cnn plans for the reference server.

Shared by tests/planner/replay and tests/cli (their conftest files import the fixtures).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from themis.data import bundled_trace
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step
from themis.planner.traffic.loading import load_trace

PLAIN_SERVER = Path(__file__).parents[1] / "planner" / "replay" / "plain_server.py"
SMALL_CNN_PROFILE = Path(__file__).parents[1] / "data" / "profiles" / "small_cnn_cpu.parquet"
"""small_cnn measured on this CPU (pinned cores)."""
SMALL_CNN_QUOTA_PROFILE = SMALL_CNN_PROFILE.with_name("small_cnn_cpu_quota.parquet")
"""small_cnn measured on this CPU under CFS quotas (`--cpu-limit quota`)."""
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


def write_plan(path: Path, steps: list[tuple[float, float, list[tuple[int, int]]]]) -> Path:
    """A one-stage small_cnn plan at batch 4 (SLO 50 ms, cold start 30 s, resize 1 s): per step
    (start s, end s, [(replicas, cores), ...])."""
    schedule = Schedule(
        "horizontal", 50.0, 99.0, 2.0, None, 30.0, 1.0, (Stage("small_cnn", "small_cnn"),),
        [Step(t0, t1, 40.0, (StageAllocation(tuple(Group(r, c) for r, c in groups), 4),)) for t0, t1, groups in steps],
    )
    path.write_text(json.dumps(schedule.to_dict()), encoding="utf-8")
    return path
