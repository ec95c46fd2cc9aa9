"""Queueing estimate: the SLO-percentile latency of one stage allocation under a load.

SPEC's serving model: one FIFO queue per stage; a free replica takes min(queue, batch)
requests at once and serves them in s(k) ms for a batch of k. There is no batch-fill
timeout in that model (a free replica starts at once), so a request's latency is
its waiting time for a replica plus the service of the batch it joins.

The estimate at percentile q (e.g. 0.99), for groups (r_i replicas x c_i cores), batch B,
Poisson load lambda (rps); c = sum r_i replicas:

    S_max      = max_i max_{k<=B} s_i(k)            slowest batch any replica can run
    mu_full    = sum_i r_i * B / s_i(B)             capacity (rps) with full batches
    mu_low     = sum_i r_i / max_{k<=B} s_i(k)/k    worst-case throughput (small batches)
    p_busy     = ErlangC(c, lambda * c / mu_low)    P(all replicas busy), M/M/c at worst throughput
    if p_busy <= 1 - q:   L_q = S_max              (the request starts at once)
    else:                 L_q = S_max + R_q + W_q
    R_q        = S_max * (1 - ((1 - q) / p_busy)^(1/c))   wait for the first of c busy replicas
                 to finish (residual batch times taken as independent uniform on [0, S_max])
    W_q        = ln(C / (1 - q)) / theta  (0 if C <= 1 - q)   queue of full batches ahead:
    C          = ErlangC(c, lambda * D / B), D = c * B / mu_full (mean full-batch time)
    theta      = c / D - lambda / B                 M/M/c tail decay of a batch queue

and L_q = inf when lambda >= mu_full. Assumptions, each on the safe side: Poisson
arrivals at the forecast *peak* rate; every batch takes the slowest time S_max; the
M/M/c exponential tail (variability factor (ca^2 + cs^2)/2 = 1 in Allen-Cunneen terms)
although service is near-deterministic; the residual and the queue wait are each taken at
the q-quantile and added; stages of a pipeline add their q-percentiles.
Validated against request-level simulation in `tests/planner/test_queueing.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def erlang_c_table(offered: np.ndarray, max_servers: int) -> np.ndarray:
    """ErlangC(n, a) for n = 1..max_servers: shape offered.shape + (max_servers,).

    Erlang B by its stable recursion B(n) = a B(n-1) / (n + a B(n-1)), then
    C = B / (1 - (a/n)(1 - B)); C = 1 where a >= n (the queue is unstable).
    """
    a = np.asarray(offered, dtype=float)
    out = np.empty(a.shape + (max_servers,))
    b = np.ones_like(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        for n in range(1, max_servers + 1):
            b = a * b / (n + a * b)
            c = b / (1.0 - (a / n) * (1.0 - b))
            out[..., n - 1] = np.where(a < n, c, 1.0)
    out[a <= 0] = 0.0
    return out


def batch_stats_ms(service_ms: np.ndarray, batch: int) -> tuple[float, float, float]:
    """(s(B), S_max, worst ms per item) from service_ms[k] for k = 1..B (index 0 unused)."""
    s = np.asarray(service_ms[1 : batch + 1], dtype=float)
    return float(s[-1]), float(s.max()), float(np.max(s / np.arange(1, batch + 1)))


def latency_grid_ms(
    load_rps: np.ndarray,
    full_ms: np.ndarray,
    max_ms: np.ndarray,
    item_ms: np.ndarray,
    batch: np.ndarray,
    max_replicas: int,
    quantile: float,
) -> np.ndarray:
    """Estimated q-latency (ms) of homogeneous allocations, vectorised.

    `load_rps` has shape (L,); the per-configuration arrays (s(B), S_max, worst ms per
    item, B) have shape (K,). Returns shape (L, K, max_replicas): entry [l, k, r-1] is
    r replicas of configuration k under load l (inf when the load exceeds capacity).
    """
    lam = np.asarray(load_rps, dtype=float)[:, None]
    n = np.arange(1, max_replicas + 1, dtype=float)
    tail = 1.0 - quantile
    p_busy = erlang_c_table(lam * item_ms / 1000.0, max_replicas)
    d_s = full_ms / 1000.0
    c_queue = erlang_c_table(lam * d_s / batch, max_replicas)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = n / d_s[:, None] - lam[..., None] / batch[:, None]
        wait_s = np.maximum(0.0, np.log(np.maximum(c_queue, 1e-300) / tail)) / theta
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        residual = max_ms[:, None] * (1.0 - np.power(np.minimum(tail / p_busy, 1.0), 1.0 / n))
    busy_latency = max_ms[:, None] + residual + 1000.0 * wait_s
    latency = np.where(p_busy <= tail, max_ms[:, None], busy_latency)
    capacity = n * (batch * 1000.0 / full_ms)[:, None]  # the scalar path's expression, so both agree at capacity
    return np.where(lam[..., None] < capacity, latency, np.inf)


def erlang_c(servers: int, offered: float) -> float:
    """ErlangC(n, a) for one (n, a), in plain floats (the scalar path of `erlang_c_table`)."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    b = 1.0
    for n in range(1, servers + 1):
        b = offered * b / (n + offered * b)
    return b / (1.0 - (offered / servers) * (1.0 - b))


def estimate_latency_ms(
    groups: Sequence[tuple[int, np.ndarray]],
    batch: int,
    load_rps: float,
    quantile: float,
) -> float:
    """Estimated q-latency (ms) of a possibly heterogeneous allocation.

    `groups` holds (replicas, service_ms) with service_ms[k] the batch-k time of that
    group's replica size (index 0 unused). Same formula as `latency_grid_ms`.
    """
    stats = [(r, *batch_stats_ms(s, batch)) for r, s in groups if r > 0]
    return latency_from_stats_ms(stats, batch, load_rps, quantile)


def latency_from_stats_ms(
    stats: Sequence[tuple[int, float, float, float]], batch: int, load_rps: float, quantile: float
) -> float:
    """`estimate_latency_ms` from per-group (replicas, s(B), S_max, worst ms per item)."""
    if not stats:
        return float("inf")
    c = sum(r for r, *_ in stats)
    mu_full = sum(r * (batch * 1000.0 / full) for r, full, _, _ in stats)
    mu_low = sum(r * 1000.0 / item for r, _, _, item in stats)
    s_max = max(mx for _, _, mx, _ in stats)
    if load_rps >= mu_full:
        return float("inf")
    if load_rps <= 0:
        return s_max
    tail = 1.0 - quantile
    p_busy = erlang_c(c, load_rps * c / mu_low)
    if p_busy <= tail:
        return s_max
    residual = s_max * (1.0 - (tail / p_busy) ** (1.0 / c))
    d_s = c * batch / mu_full
    c_queue = erlang_c(c, load_rps * d_s / batch)
    theta = c / d_s - load_rps / batch
    wait_s = max(0.0, np.log(max(c_queue, 1e-300) / tail)) / theta
    return s_max + residual + 1000.0 * wait_s
