"""Shared helpers of the planner tests: the golden profiles, the bundled LLM trace, and a
plain reference simulation of one stage (test-only, deliberately simple).

`simulate_stage` follows SPEC's serving model for a fixed allocation that is ready from
t = 0: one FIFO queue; a free replica (the one idle longest) takes min(queue, batch)
requests at once and serves them in service_ms[k]; completions at equal times go before
arrivals. It is an independent check of `themis.planner.model.queueing`, not a copy of it.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from themis.planner.model.latency import LatencyModel, load_latency_models

PROFILES = Path(__file__).resolve().parents[1] / "data" / "profiles"


def golden_model(name: str) -> LatencyModel:
    """The fitted latency model of a golden profile (`small_cnn`, `mlp`, `resnet18`)."""
    return load_latency_models([PROFILES / f"{name}_cpu.parquet"])[name]


def simulate_stage(arrivals_s: np.ndarray, groups: Sequence[tuple[int, np.ndarray]], batch: int) -> np.ndarray:
    """Latency (ms) of every request; `groups` holds (replicas, service_ms) with
    service_ms[k] the time of a batch of k."""
    services = [s for r, s in groups for _ in range(r)]
    idle = deque(range(len(services)))
    queue: deque[int] = deque()
    done = np.full(len(arrivals_s), np.nan)
    events: list[tuple[float, int, int, int]] = []  # (time, kind 0=completion 1=arrival, seq, replica|request)
    for i, t in enumerate(arrivals_s):
        events.append((float(t), 1, i, i))
    heapq.heapify(events)
    seq = len(arrivals_s)
    running: dict[int, list[int]] = {}
    while events:
        t, kind, _, who = heapq.heappop(events)
        if kind == 1:
            queue.append(who)
        else:
            for req in running.pop(who):
                done[req] = t
            idle.append(who)
        while idle and queue:
            replica = idle.popleft()
            take = [queue.popleft() for _ in range(min(batch, len(queue)))]
            running[replica] = take
            seq += 1
            heapq.heappush(events, (t + services[replica][len(take)] / 1000.0, 0, seq, replica))
    return (done - np.asarray(arrivals_s)) * 1000.0


def poisson_arrivals(rate_rps: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0 / rate_rps, size=n))
