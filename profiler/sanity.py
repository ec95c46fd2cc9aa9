"""Cross-cell sanity checks: a measured table that breaks what the hardware allows.

Two patterns cannot come from the model itself, only from the machine it was measured on
(contention, a cold process, a noisy neighbour), so the profiler measures the cells
involved once more before it accepts them, and records a flag if the pattern stays:

- **more cores markedly slower** than fewer at the same batch size
  (`more_cores_slower`): torch's threads may gain nothing on a small model, but they do
  not make a call 20% slower on an idle machine;
- **a smaller batch markedly slower than a larger one** (`smaller_batch_slower`): slower
  per item by more than the ratio of the batch sizes, i.e. the smaller batch took longer
  in total. (Slower per item by less than that is what batching is for, above all on a
  GPU, and is not flagged.)

"Markedly" is `MARGIN` (20%) beyond equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MARGIN = 0.20
MORE_CORES_SLOWER = "more_cores_slower"
SMALLER_BATCH_SLOWER = "smaller_batch_slower"


def find_anomalies(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[int, int], set[str]]:
    """(cores, batch size) -> the patterns the cell takes part in, for the rows of one
    model, device, dtype and input shape (their `p50_ms`); cells in no pattern are absent."""
    p50 = {(int(r["cores"]), int(r["batch_size"])): float(r["p50_ms"]) for r in rows if float(r["p50_ms"]) > 0}
    flags: dict[tuple[int, int], set[str]] = {}
    for (cores, batch), ms in p50.items():
        for (other_cores, other_batch), other_ms in p50.items():
            slower = ms > other_ms * (1.0 + MARGIN)
            if slower and batch == other_batch and cores > other_cores:
                pattern = MORE_CORES_SLOWER
            elif slower and cores == other_cores and batch < other_batch:
                pattern = SMALLER_BATCH_SLOWER
            else:
                continue
            flags.setdefault((cores, batch), set()).add(pattern)
            flags.setdefault((other_cores, other_batch), set()).add(pattern)
    return flags
