"""Capacity of a replica type at an SLO: the largest request rate it serves within the SLO.

For a token mix (a sample of (prompt, output) token pairs, e.g. one interval of a trace)
the search simulates `requests` Poisson arrivals at a rate, each request's tokens drawn
from the mix, and asks whether the simulated p-th percentile TTFT and TPOT meet the SLO.
Every rate reuses the same random draws (unit-mean gaps scaled by 1/rate, the same token
pairs), so the probes differ only in the rate and the answer is reproducible.

1. Zero load: requests spaced so far apart that none overlaps. If the SLO fails there,
   the capacity is 0 and the result says what is reachable.
2. A bracket of Poisson rates, one meeting the SLO and one missing it: from the
   work-conserving bound (replicas x 1000 / mean ms of work per request, alpha left out),
   doubled while the SLO holds, or halved (from the zero-load spacing) while it fails.
   Rare overlaps alone can break a tight TPOT SLO (a decode stuck behind a long prefill
   chunk); if even 2^-40 of the start misses, the capacity is 0.
3. Bisection on the log of the rate until the bracket is within `rel_tol`.

The rate returned met the SLO in simulation; `rel_tol` above it missed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from themis.planner.errors import PlanInputError
from themis.planner.llm.iteration import IterationTimeModel
from themis.planner.llm.service import LlmRequests, LlmSlo, ServerConfig
from themis.planner.llm.simulate import simulate_llm

MAX_STEPS = 40
"""Doublings or halvings of the rate before the search gives up."""


@dataclass(frozen=True)
class TokenMix:
    """A sample of (prompt tokens, output tokens) pairs that requests are drawn from."""

    prompt_tokens: np.ndarray
    output_tokens: np.ndarray

    def __post_init__(self) -> None:
        prompt = np.ascontiguousarray(self.prompt_tokens, dtype=np.int64).reshape(-1)
        output = np.ascontiguousarray(self.output_tokens, dtype=np.int64).reshape(-1)
        if prompt.size == 0 or prompt.size != output.size:
            raise PlanInputError("a token mix needs one or more (prompt, output) pairs of equal count")
        if prompt.min() < 1 or output.min() < 1:
            raise PlanInputError("token counts in a mix must be >= 1")
        object.__setattr__(self, "prompt_tokens", prompt)
        object.__setattr__(self, "output_tokens", output)

    def fingerprint(self) -> str:
        """A stable key of the mix's content (the capacity cache's)."""
        digest = hashlib.sha256(self.prompt_tokens.tobytes() + b"|" + self.output_tokens.tobytes())
        return digest.hexdigest()[:16]

    @property
    def longest(self) -> int:
        return int((self.prompt_tokens + self.output_tokens).max())


@dataclass(frozen=True)
class Probe:
    """One simulated rate and what the SLO percentile came out as."""

    rate_rps: float
    ttft_ms: float
    tpot_ms: float
    met: bool


@dataclass(frozen=True)
class CapacityResult:
    """The largest rate found to meet the SLO (0 when even zero load misses it)."""

    rate_rps: float
    replicas: int
    slo: LlmSlo
    ttft_ms: float
    tpot_ms: float
    """The SLO percentile of TTFT and TPOT at `rate_rps` (at zero load when infeasible)."""
    feasible: bool
    reason: str
    probes: tuple[Probe, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate_rps": self.rate_rps, "replicas": self.replicas, "slo": self.slo.to_dict(), "ttft_ms": self.ttft_ms,
            "tpot_ms": self.tpot_ms, "feasible": self.feasible, "reason": self.reason,
            "probes": [asdict(p) for p in self.probes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapacityResult:
        return cls(
            rate_rps=float(data["rate_rps"]), replicas=int(data["replicas"]), slo=LlmSlo(**data["slo"]),
            ttft_ms=float(data["ttft_ms"]), tpot_ms=float(data["tpot_ms"]), feasible=bool(data["feasible"]),
            reason=str(data["reason"]), probes=tuple(Probe(**p) for p in data.get("probes", [])),
        )


def probe_requests(mix: TokenMix, rate_rps: float, requests: int, seed: int = 0, *, spacing_s: float | None = None) -> LlmRequests:
    """`requests` Poisson arrivals at `rate_rps` with tokens drawn from `mix`; the same
    draws for every rate (`spacing_s` instead gives evenly spaced arrivals)."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, requests)
    picks = rng.integers(0, mix.prompt_tokens.size, requests)
    arrivals = np.arange(requests) * spacing_s if spacing_s is not None else np.cumsum(gaps) / rate_rps
    return LlmRequests(arrivals, mix.prompt_tokens[picks], mix.output_tokens[picks])


def _alone_ms(model: IterationTimeModel, server: ServerConfig, prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
    """An upper bound on a request's time alone on a replica: its prefill chunks, then its decodes."""
    a, b, g, d, e = model.coef_ms
    chunks = np.ceil(prompt / server.max_num_batched_tokens)
    prefill = chunks * a + b * prompt + e * prompt * (prompt + 1.0) / 2.0
    decode = (output - 1) * (a + g + d * (prompt + output))
    return prefill + decode


def _work_ms(model: IterationTimeModel, prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Work a request brings to a busy replica, alpha left out (shared by the batch)."""
    _, b, g, d, e = model.coef_ms
    return b * prompt + e * prompt * (prompt + 1.0) / 2.0 + (output - 1) * (g + d * (prompt + output / 2.0))


def search_capacity(
    model: IterationTimeModel,
    server: ServerConfig,
    mix: TokenMix,
    slo: LlmSlo,
    *,
    replicas: int = 1,
    requests: int = 2000,
    seed: int = 0,
    rel_tol: float = 0.02,
) -> CapacityResult:
    """The largest request rate (per `replicas` replicas) whose simulated SLO percentile of
    TTFT and TPOT both meet `slo`; see the module docstring for the search."""
    if mix.longest > server.model_len:
        too_long = int(((mix.prompt_tokens + mix.output_tokens) > server.model_len).sum())
        raise PlanInputError(
            f"{too_long} request(s) of the token mix exceed max_model_len {server.model_len}; a replica would reject them",
            option="--max-model-len",
        )
    if requests < 1 or not 0 < rel_tol < 1:
        raise PlanInputError("requests must be >= 1 and rel_tol in (0, 1)")
    probes: list[Probe] = []

    def probe(rate: float, spacing_s: float | None = None) -> Probe:
        result = simulate_llm(probe_requests(mix, rate, requests, seed, spacing_s=spacing_s), model, server, replicas)
        ttft, tpot = result.percentile_ms("ttft", slo.percentile), result.percentile_ms("tpot", slo.percentile)
        found = Probe(rate, ttft, tpot, result.slo_met(slo))
        probes.append(found)
        return found

    spacing_s = 2.0 * float(_alone_ms(model, server, mix.prompt_tokens, mix.output_tokens).max()) / 1000.0
    idle = probe(1.0 / spacing_s, spacing_s)
    if not idle.met:
        reason = (
            f"even at zero load p{slo.percentile:g} TTFT is {idle.ttft_ms:.1f} ms and TPOT {idle.tpot_ms:.1f} ms "
            f"(SLO {slo.ttft_ms:g} / {slo.tpot_ms:g} ms)"
        )
        return CapacityResult(0.0, replicas, slo, idle.ttft_ms, idle.tpot_ms, False, reason, tuple(probes))
    work_ms = float(np.mean(_work_ms(model, mix.prompt_tokens, mix.output_tokens)))
    low, high = None, probe(replicas * 1000.0 / work_ms if work_ms > 0 else 2.0 * idle.rate_rps)
    for _ in range(MAX_STEPS):
        if not high.met:
            break
        low, high = high, probe(high.rate_rps * 2.0)
    if high.met:
        raise PlanInputError(f"the SLO still holds at {high.rate_rps:.3g} requests/s; is the iteration-time model plausible?")
    if low is None:  # the bound misses: halve until a Poisson rate meets the SLO
        low = probe(min(idle.rate_rps, high.rate_rps / 2.0))
        for _ in range(MAX_STEPS):
            if low.met:
                break
            high, low = low, probe(low.rate_rps / 2.0)
        if not low.met:
            reason = (
                f"isolated requests meet the SLO but Poisson arrivals miss it even at {low.rate_rps:.3g} requests/s "
                f"(p{slo.percentile:g} TTFT {low.ttft_ms:.1f} ms, TPOT {low.tpot_ms:.1f} ms)"
            )
            return CapacityResult(0.0, replicas, slo, low.ttft_ms, low.tpot_ms, False, reason, tuple(probes))
    while high.rate_rps / low.rate_rps > 1.0 + rel_tol:
        middle = probe(math.sqrt(low.rate_rps * high.rate_rps))
        low, high = (middle, high) if middle.met else (low, middle)
    reason = f"{high.rate_rps:.4g} requests/s misses: p{slo.percentile:g} TTFT {high.ttft_ms:.1f} ms, TPOT {high.tpot_ms:.1f} ms"
    return CapacityResult(low.rate_rps, replicas, slo, low.ttft_ms, low.tpot_ms, True, reason, tuple(probes))


class CapacityCache:
    """Capacity results by (replica type, server limits, SLO, token mix, search settings).

    Planning asks for the same replica type and mix again and again (every interval with
    the same mix, every policy); each answer costs a dozen simulations. `to_dict` and
    `from_dict` let a caller keep the cache between runs.
    """

    def __init__(self, entries: dict[str, CapacityResult] | None = None) -> None:
        self.entries: dict[str, CapacityResult] = dict(entries or {})
        self.hits = 0

    @staticmethod
    def key(model: IterationTimeModel, server: ServerConfig, mix: TokenMix, slo: LlmSlo, **settings: Any) -> str:
        identity = {
            "model": [model.model, model.device_kind, model.device_name, model.cores, [float(c).hex() for c in model.coef_ms]],
            "server": server.to_dict(), "slo": slo.to_dict(), "mix": mix.fingerprint(), "settings": settings,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]

    def capacity(self, model: IterationTimeModel, server: ServerConfig, mix: TokenMix, slo: LlmSlo, **settings: Any) -> CapacityResult:
        """`search_capacity(model, server, mix, slo, **settings)`, computed once per key."""
        key = self.key(model, server, mix, slo, **settings)
        if key in self.entries:
            self.hits += 1
        else:
            self.entries[key] = search_capacity(model, server, mix, slo, **settings)
        return self.entries[key]

    def to_dict(self) -> dict[str, Any]:
        return {key: result.to_dict() for key, result in self.entries.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapacityCache:
        return cls({key: CapacityResult.from_dict(value) for key, value in data.items()})
