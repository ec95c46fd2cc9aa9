"""A plain SimPy model of the LLM service model: the correctness reference for `simulate_llm`.

Written the straightforward way (a process per replica woken by arrivals, one for the
request source, Python objects and lists, SimPy's own event queue) and sharing no code
with the compiled simulator beyond the input types and `IterationTimeModel.predict_ms`,
so agreement token time by token time means both implement the rules of
`themis.planner.llm.service`. KV blocks are booked per request here (the simulator keeps
one counter per replica).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy

from themis.planner.llm.iteration import IterationTimeModel
from themis.planner.llm.service import LlmRequests, ServerConfig


@dataclass(eq=False)
class Request:
    arrival_s: float
    prompt: int
    output: int
    computed: int = 0
    generated: int = 0
    blocks: int = 0
    preemptions: int = 0
    replica: int = -1
    first_s: float = math.inf
    last_s: float = math.inf

    @property
    def missing(self) -> int:
        """Tokens not yet in the KV cache: the prompt plus every generated token, minus what is cached."""
        return self.prompt + self.generated - self.computed


class Replica:
    def __init__(self, env: simpy.Environment, index: int, model: IterationTimeModel, server: ServerConfig):
        self.env, self.index, self.model, self.server = env, index, model, server
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.outstanding = 0
        self.iterations = 0
        self.busy_s = 0.0
        self.wakeup: simpy.Event | None = None
        env.process(self.serve())

    def blocks_for(self, tokens: int) -> int:
        return math.ceil(tokens / self.server.block_tokens)

    def free_blocks(self) -> int:
        return self.server.kv_blocks - sum(r.blocks for r in self.running)

    def submit(self, request: Request) -> None:
        request.replica = self.index
        self.outstanding += 1
        self.waiting.append(request)
        if self.wakeup is not None and not self.wakeup.triggered:
            self.wakeup.succeed()

    def preempt_newest(self) -> Request:
        victim = self.running.pop()
        victim.blocks, victim.computed = 0, 0
        victim.preemptions += 1
        self.waiting.appendleft(victim)
        return victim

    def next_batch(self) -> list[tuple[Request, int]]:
        budget = self.server.max_num_batched_tokens
        batch: list[tuple[Request, int]] = []
        preempted = False
        i = 0
        while i < len(self.running) and budget > 0:
            request = self.running[i]
            tokens = min(request.missing, budget)
            wanted = self.blocks_for(request.computed + tokens)
            while wanted - request.blocks > self.free_blocks():
                preempted = True
                if self.preempt_newest() is request:
                    break
            if request not in self.running:
                break
            request.blocks = wanted
            batch.append((request, tokens))
            budget -= tokens
            i += 1
        while not preempted and self.waiting and budget > 0 and len(self.running) < self.server.max_num_seqs:
            request = self.waiting[0]
            tokens = request.missing
            if tokens > budget and not self.server.chunked_prefill:
                break
            tokens = min(tokens, budget)
            if self.blocks_for(tokens) > self.free_blocks():
                break
            self.waiting.popleft()
            request.blocks = self.blocks_for(tokens)
            self.running.append(request)
            batch.append((request, tokens))
            budget -= tokens
        return batch

    def duration_s(self, batch: list[tuple[Request, int]]) -> float:
        prefill = decode = context = pairs = 0.0
        for request, tokens in batch:
            if request.generated >= 1 and request.missing == 1:
                decode += 1.0
                context += request.computed + 1.0
            else:
                prefill += tokens
                pairs += tokens * request.computed + tokens * (tokens + 1.0) / 2.0
        return self.model.predict_ms(prefill, decode, context, pairs) / 1000.0

    def serve(self):
        while True:
            batch = self.next_batch()
            if not batch:
                self.wakeup = self.env.event()
                yield self.wakeup
                continue
            duration = self.duration_s(batch)
            self.iterations += 1
            self.busy_s += duration
            yield self.env.timeout(duration)
            for request, tokens in batch:
                request.computed += tokens
                if request.missing == 0:
                    request.generated += 1
                    if request.generated == 1:
                        request.first_s = self.env.now
                    request.last_s = self.env.now
                    if request.generated == request.output:
                        request.blocks = 0
                        self.running.remove(request)
                        self.outstanding -= 1


def simulate_llm_reference(
    requests: LlmRequests, model: IterationTimeModel, server: ServerConfig, replicas: int = 1
) -> dict[str, np.ndarray]:
    """Token times and per-replica work from the SimPy model (same keys as `LlmSimResult`'s fields)."""
    env = simpy.Environment()
    pool = [Replica(env, i, model, server) for i in range(replicas)]
    items = [Request(float(a), int(p), int(o)) for a, p, o in zip(requests.arrival_s, requests.prompt_tokens, requests.output_tokens)]

    # every arrival is scheduled from time 0, so it lands at exactly its arrival time
    arrivals = [env.timeout(request.arrival_s) for request in items]

    def source():
        for request, arrived in zip(items, arrivals):
            yield arrived
            yield env.timeout(0)  # let every iteration ending at this instant go first
            if request.prompt + request.output > server.model_len:
                continue  # rejected: vLLM refuses a request longer than max_model_len
            min(pool, key=lambda r: (r.outstanding, r.index)).submit(request)

    env.process(source())
    env.run()
    return {
        "replica": np.array([r.replica for r in items], dtype=np.int64),
        "first_token_s": np.array([r.first_s for r in items]),
        "last_token_s": np.array([r.last_s for r in items]),
        "preemptions": np.array([r.preemptions for r in items], dtype=np.int64),
        "iterations": np.array([r.iterations for r in pool], dtype=np.int64),
        "busy_s": np.array([r.busy_s for r in pool]),
    }
