"""Which CPUs each replica of the reference server is pinned to.

A replica of c cores gets the c least-used CPUs of the pool (the highest-numbered first
on ties, so CPU 0, where the system and usually the front end run, is used last). A
resize keeps the CPUs the replica already has where it can. When the replicas ask for
more cores than the pool has, CPUs are shared; `oversubscribed` says so, and a replica
asking for more cores than the whole pool gets the whole pool (with as many threads as
its cores).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


class CpuPool:
    """The CPUs replicas may use and how many replicas hold each."""

    def __init__(self, cpus: Sequence[int]) -> None:
        if not cpus:
            raise ValueError("a CPU pool needs at least one CPU")
        self.cpus = tuple(sorted(set(int(c) for c in cpus)))
        self.holders: Counter[int] = Counter({c: 0 for c in self.cpus})
        self.oversubscribed = False

    def take(self, cores: int, keep: Sequence[int] = ()) -> list[int]:
        """CPUs for a replica of `cores` cores; `keep` (its current CPUs) are preferred."""
        self.release(keep)
        want = min(cores, len(self.cpus))
        kept = [c for c in keep if c in self.holders][:want]
        others = sorted((c for c in self.cpus if c not in kept), key=lambda c: (self.holders[c], -c))
        chosen = sorted(kept + others[: want - len(kept)])
        for c in chosen:
            self.holders[c] += 1
        if cores > len(self.cpus) or any(self.holders[c] > 1 for c in chosen):
            self.oversubscribed = True
        return chosen

    def release(self, cpus: Sequence[int]) -> None:
        for c in cpus:
            if self.holders.get(c, 0) > 0:
                self.holders[c] -= 1
