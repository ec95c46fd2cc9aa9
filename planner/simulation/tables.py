"""Service times as lookup tables, so the compiled simulator never calls back into Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from themis.planner.errors import PlanInputError
from themis.planner.model.latency import LatencyModel

QUANTILE_KNOTS = np.array([0.0, 0.5, 0.9, 0.95, 0.99, 1.0])
"""Probabilities at which `quantile_ms` tables hold latencies (min, p50, p90, p95, p99, max)."""


@dataclass(frozen=True)
class ServiceTables:
    """Service times per stage as lookup tables, so the compiled loop never calls Python.

    `service_ms[stage, k, j]` is the time to serve a batch of k on `cores_options[j]` cores
    (row 0 unused); `quantile_ms[stage, k, j, :]` holds the latency at `QUANTILE_KNOTS`
    for `service="sampled"`.
    """

    cores_options: tuple[int, ...]
    service_ms: np.ndarray
    quantile_ms: np.ndarray | None = None

    @property
    def stages(self) -> int:
        return int(self.service_ms.shape[0])

    @property
    def max_batch(self) -> int:
        return int(self.service_ms.shape[1] - 1)

    def cores_index(self, cores: int) -> int:
        try:
            return self.cores_options.index(int(cores))
        except ValueError:
            raise PlanInputError(f"{cores} cores per replica has no service time (known: {self.cores_options})") from None

    @classmethod
    def from_models(
        cls, models: Sequence[LatencyModel], max_batch: int, cores_options: tuple[int, ...], *, sampled: bool = False
    ) -> ServiceTables:
        """Build the tables from one `LatencyModel` per stage (`service_table_ms`, `percentile_ms`)."""
        cores_options = tuple(sorted({int(c) for c in cores_options}))
        service = np.stack([np.asarray(m.service_table_ms(max_batch, cores_options), dtype=np.float64) for m in models])
        quantiles = None
        if sampled:
            quantiles = np.zeros(service.shape + (len(QUANTILE_KNOTS),))
            for s, model in enumerate(models):
                for k in range(1, max_batch + 1):
                    for j, cores in enumerate(cores_options):
                        q = [float(model.percentile_ms(k, cores, 100.0 * p)) for p in QUANTILE_KNOTS]
                        quantiles[s, k, j] = np.maximum.accumulate(q)
        return cls(cores_options, service, quantiles)
