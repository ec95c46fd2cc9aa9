"""The LLM service model: what the iteration-level simulator, its SimPy reference and the
capacity search agree on. The README section "LLM serving model" says the same in prose.

**Requests.** A request arrives at `arrival_s` with `prompt_tokens` (P >= 1) and asks for
`output_tokens` (O >= 1). Its first token appears when its prompt has been run; each later
token takes one more iteration.

**Router.** One router sends each request, in arrival order, to the replica with the
fewest unfinished requests (waiting or running) at that moment, the lowest index on a tie
(join the shortest queue). A request the replica could never hold (P + O > max_model_len)
is rejected at arrival: it gets no token and misses every SLO, as vLLM refuses it.

**Replica.** A replica runs one iteration at a time, back to back while it has work; an
idle replica starts one the moment a request arrives. At an iteration's start it builds the
batch the way vLLM's V1 scheduler does (`vllm/v1/core/sched/scheduler.py`, `schedule()`),
with one waiting queue (FCFS) and one running list (in admission order):

1. Running requests, in order, while tokens remain in the `max_num_batched_tokens` budget:
   each asks for its missing tokens (1 when decoding; the rest of its prompt when its
   prefill was chunked), capped by the budget. If the KV cache cannot hold them, the
   most recently admitted running request is preempted (its KV cache freed, its progress
   dropped, put back at the head of the waiting queue; vLLM's recompute preemption),
   repeatedly, until they fit or the request preempted itself.
2. Only if nobody was preempted: waiting requests, from the head, while the budget has
   tokens and fewer than `max_num_seqs` run. Each asks for all its tokens not in the cache
   (its prompt, or prompt plus tokens generated before a preemption), capped by the budget
   when prefill is chunked; without chunking a request that does not fit the budget
   whole stops admission. Admission stops at the first request whose tokens do not fit
   in the free KV cache (FCFS: nobody overtakes it).

The KV cache holds `kv_capacity_tokens` in blocks of `block_tokens` (vLLM's 16 by
default): a request holds ceil(tokens computed / block_tokens) blocks, and scheduling n
more tokens needs the blocks for computed + n. Finished requests free their blocks at the
end of the iteration, before the next one is built.

**Iteration time.** T = alpha + beta * prefill_tokens + gamma * decode_seqs
+ delta * decode_context_tokens + epsilon * prefill_attention_pairs (ms; see
`themis.planner.llm.iteration`). A scheduled request is a *decode* when it already has
its first token and only its newest token is missing from the cache; it adds 1 to
decode_seqs and its context (tokens in the cache after the step) to decode_context_tokens.
Anything else is a prefill chunk of n tokens after s cached ones: n prefill tokens and
n*s + n*(n+1)/2 attention pairs (causal).

**Tokens.** When an iteration ends at t, a request whose computed tokens caught up with
prompt + generated tokens emits one token at t (the first one sets its first-token time);
it finishes after its O-th token. TTFT = first token - arrival; TPOT = (last token - first
token) / (O - 1), undefined for O = 1 (which then meets any TPOT SLO).

**Ties.** Events at equal times: iteration ends first (lowest replica index first), then
arrivals in trace order; a replica whose iteration ends at t starts its next one at t,
before requests arriving at t are queued.

Left out: vLLM's CPU-side overheads beyond what the fitted alpha holds, prefix caching,
speculative decoding, swapping to CPU memory, `long_prefill_token_threshold`, priority
scheduling, tensor/pipeline parallelism and prefill/decode disaggregation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from themis.planner.errors import PlanInputError


@dataclass(frozen=True)
class ServerConfig:
    """The vLLM-style scheduler limits of one replica.

    Defaults are vLLM V1's for `max_num_seqs`, `block_tokens` and chunked prefill, and
    its 2,048-token default budget for online serving; `kv_capacity_tokens` depends on
    the device and model (`kv_capacity_tokens()` derives it from memory).
    """

    kv_capacity_tokens: int
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    chunked_prefill: bool = True
    block_tokens: int = 16
    max_model_len: int | None = None
    """Longest prompt + output accepted; default: what the KV cache holds."""

    def __post_init__(self) -> None:
        for name in ("kv_capacity_tokens", "max_num_seqs", "max_num_batched_tokens", "block_tokens"):
            if int(getattr(self, name)) < 1:
                option = f"--{name.replace('_', '-')}"
                raise PlanInputError(f"{name} must be a positive integer, not {getattr(self, name)!r}", option=option)
        if self.kv_blocks < 1 or self.model_len < 1:
            raise PlanInputError(
                f"the KV cache must hold at least one block of {self.block_tokens} tokens and max_model_len must be >= 1",
                option="--kv-capacity-tokens",
            )
        if self.kv_blocks * self.block_tokens < self.model_len:
            raise PlanInputError(
                f"the KV cache ({self.kv_blocks} blocks of {self.block_tokens} tokens) cannot hold one request of max_model_len "
                f"{self.model_len} tokens", option="--max-model-len",
            )
        if not self.chunked_prefill and self.max_num_batched_tokens < self.model_len:
            raise PlanInputError(
                f"without chunked prefill max_num_batched_tokens ({self.max_num_batched_tokens}) must be >= max_model_len "
                f"({self.model_len}), as vLLM requires", option="--max-num-batched-tokens",
            )

    @property
    def kv_blocks(self) -> int:
        return int(self.kv_capacity_tokens) // int(self.block_tokens)

    @property
    def model_len(self) -> int:
        return int(self.max_model_len if self.max_model_len is not None else self.kv_blocks * self.block_tokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kv_capacity_tokens(memory_bytes: float, weight_bytes: float, kv_bytes_per_token: float, utilisation: float = 0.9) -> int:
    """Tokens of KV cache that fit once the weights are loaded: vLLM's sizing,
    (utilisation x memory - weights) / bytes per token, without its activation reserve."""
    free = utilisation * memory_bytes - weight_bytes
    if free <= 0 or kv_bytes_per_token <= 0:
        raise PlanInputError(
            f"no memory left for a KV cache ({memory_bytes / 2**30:.1f} GiB x {utilisation} < weights {weight_bytes / 2**30:.1f} GiB)"
        )
    return int(free // kv_bytes_per_token)


@dataclass(frozen=True)
class LlmSlo:
    """Per-request SLOs on time to first token and time per output token, at a percentile."""

    ttft_ms: float
    tpot_ms: float
    percentile: float = 99.0

    def __post_init__(self) -> None:
        if not (self.ttft_ms > 0 and self.tpot_ms > 0 and 0 < self.percentile <= 100):
            raise PlanInputError("ttft and tpot SLOs must be > 0 ms and the percentile in (0, 100]", option="--slo")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class LlmRequests:
    """Requests in arrival order: arrival time (s), prompt tokens, output tokens."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray

    def __post_init__(self) -> None:
        arrival = np.ascontiguousarray(self.arrival_s, dtype=np.float64)
        prompt = np.ascontiguousarray(self.prompt_tokens, dtype=np.int64)
        output = np.ascontiguousarray(self.output_tokens, dtype=np.int64)
        if not (arrival.ndim == prompt.ndim == output.ndim == 1 and arrival.size == prompt.size == output.size):
            raise PlanInputError("arrival_s, prompt_tokens and output_tokens must be 1-D and of one length")
        if arrival.size and (not np.all(np.isfinite(arrival)) or np.any(np.diff(arrival) < 0)):
            raise PlanInputError("arrival times must be finite and sorted")
        for name, values in (("prompt_tokens", prompt), ("output_tokens", output)):
            if values.size and values.min() < 1:
                raise PlanInputError(f"{name} must be >= 1 for every request (row {int(np.argmin(values))})")
        object.__setattr__(self, "arrival_s", arrival)
        object.__setattr__(self, "prompt_tokens", prompt)
        object.__setattr__(self, "output_tokens", output)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def duration_s(self) -> float:
        """The last arrival: the window goodput is measured over (times start at 0)."""
        return float(self.arrival_s[-1]) if self.arrival_s.size else 0.0
