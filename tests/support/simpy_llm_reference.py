"""A plain SimPy model of the LLM service model: the correctness reference for `simulate_llm`.

Written the straightforward way (a process per replica woken by arrivals, one for the
request source, Python objects and lists, SimPy's own event queue) and sharing no code
with the compiled simulator beyond the input types and `IterationTimeModel.predict_ms`,
so agreement token time by token time means both implement the rules of
`themis.planner.llm.service`. KV blocks are booked per request here (the simulator keeps
one counter per replica).

Replicas that come and go (`simulate_fleet_reference`): each slot has two processes, one
waiting for its ready time and one for its removal, created before the arrivals so that at
equal times they act after iteration ends and before arrivals. A replica's serving process
starts when it is ready; a request arriving while no replica is ready waits at the router,
and the first replica to be ready takes the whole backlog before it builds its first batch.
A removed replica takes no new requests and its process ends once its work is done.
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
    def __init__(self, env: simpy.Environment, index: int, model: IterationTimeModel, server: ServerConfig, *, start: bool = True):
        self.env, self.index, self.model, self.server = env, index, model, server
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.outstanding = 0
        self.iterations = 0
        self.busy_s = 0.0
        self.wakeup: simpy.Event | None = None
        self.ready = False
        self.removed = False
        self.gone_s = math.inf
        if start:
            self.start()

    def start(self) -> None:
        self.ready = True
        self.env.process(self.serve())

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
            if not batch and self.removed:
                self.gone_s = self.env.now
                return
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


def simulate_fleet_reference(
    requests: LlmRequests, types: list[tuple[IterationTimeModel, ServerConfig]], slots: list[tuple[int, float, float]]
) -> dict[str, np.ndarray]:
    """Token times and per-slot work with replicas given as (type, ready_s, remove_s)."""
    env = simpy.Environment()
    pool = [Replica(env, i, *types[k], start=False) for i, (k, _, _) in enumerate(slots)]
    items = [Request(float(a), int(p), int(o)) for a, p, o in zip(requests.arrival_s, requests.prompt_tokens, requests.output_tokens)]
    max_model_len = min(server.model_len for _, server in types)
    backlog: deque[Request] = deque()

    def route(request: Request) -> None:
        candidates = [r for r in pool if r.ready and not r.removed]
        if not candidates:
            backlog.append(request)
            return
        min(candidates, key=lambda r: (r.outstanding, r.index)).submit(request)

    def becomes_ready(replica: Replica, at: simpy.Timeout, ready_s: float, remove_s: float):
        yield at
        yield env.timeout(0)  # after the iteration ends at this instant
        if remove_s <= ready_s:
            return  # removed while booting: never serves
        while backlog:  # the backlog first, then its first batch is built from all of it
            request = backlog.popleft()
            replica.outstanding += 1
            request.replica = replica.index
            replica.waiting.append(request)
        replica.start()

    def removed(replica: Replica, at: simpy.Timeout, ready_s: float, remove_s: float):
        yield at
        yield env.timeout(0)
        if remove_s <= ready_s:
            replica.gone_s = env.now
            return
        replica.removed = True
        if not replica.running and not replica.waiting and replica.wakeup is not None and not replica.wakeup.triggered:
            replica.wakeup.succeed()  # idle with nothing routed to it: let its process end now

    # every timed event is scheduled from time 0, replica events before arrivals, slot by slot, so that at a
    # tie they act in that order (after the iteration ends at the same instant, which wait no extra step)
    for replica, (_, ready_s, remove_s) in zip(pool, slots):
        env.process(becomes_ready(replica, env.timeout(ready_s), ready_s, remove_s))
        if remove_s < math.inf:
            env.process(removed(replica, env.timeout(remove_s), ready_s, remove_s))
    arrivals = [env.timeout(request.arrival_s) for request in items]

    def source():
        for request, arrived in zip(items, arrivals):
            yield arrived
            yield env.timeout(0)
            if request.prompt + request.output > max_model_len:
                continue
            route(request)

    env.process(source())
    env.run()
    return {
        "replica": np.array([r.replica for r in items], dtype=np.int64),
        "first_token_s": np.array([r.first_s for r in items]),
        "last_token_s": np.array([r.last_s for r in items]),
        "preemptions": np.array([r.preemptions for r in items], dtype=np.int64),
        "iterations": np.array([r.iterations for r in pool], dtype=np.int64),
        "busy_s": np.array([r.busy_s for r in pool]),
        "gone_s": np.array([r.gone_s for r in pool]),
    }
