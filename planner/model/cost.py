"""What capacity costs: the one pricing rule for plans, simulations, comparisons and checks.

A replica holds units of its device: cores on a CPU, one GPU on a GPU (SPEC: "GPUs count as
devices x time"). Cost is unit-seconds, and, where prices are given, money: CPU cores at the
core-hour price, GPUs at the GPU-hour price of their device (matched by a part of the
device's name, case-insensitive: `a100` prices `NVIDIA A100-SXM4-80GB`). An unpriced GPU
costs nothing and cannot be compared with priced options, so the planner leaves it out
when any price is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CPU = "cpu"


@dataclass(frozen=True)
class Prices:
    """Price per core-hour and per GPU-hour by device name (all 0: cost is unit-seconds only)."""

    per_core_hour: float = 0.0
    per_gpu_hour: Mapping[str, float] = field(default_factory=dict)

    @property
    def priced(self) -> bool:
        return self.per_core_hour > 0 or bool(self.per_gpu_hour)

    def unit_price_per_hour(self, device: str) -> float | None:
        """Price of one core-hour (`device == "cpu"`) or one GPU-hour of `device`; None for an
        unpriced GPU."""
        if device == CPU:
            return self.per_core_hour
        name = device.lower()
        return next((float(p) for key, p in self.per_gpu_hour.items() if key.lower() in name), None)

    def objective_per_replica_hour(self, device: str, cores: int) -> float | None:
        """What the planner minimises for one replica-hour: money when any price is given,
        else units (cores; a GPU counts 1). None: an unpriced GPU while prices are in use."""
        units = 1 if device != CPU else cores
        if not self.priced:
            return float(units)
        price = self.unit_price_per_hour(device)
        return None if price is None else price * units


def cost(unit_seconds_by_device: Mapping[str, float], prices: Prices) -> float:
    """Money for the unit-seconds held on each device (an unpriced GPU counts 0)."""
    return sum(seconds / 3600.0 * (prices.unit_price_per_hour(device) or 0.0) for device, seconds in unit_seconds_by_device.items())
