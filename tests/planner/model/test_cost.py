"""The one pricing rule (`themis.planner.model.cost`)."""

from __future__ import annotations

import pytest

from themis.planner.model.cost import Prices, cost


def test_cpu_cores_at_the_core_price_and_gpus_at_their_device_price() -> None:
    prices = Prices(per_core_hour=0.05, per_gpu_hour={"a100": 2.5, "h100": 4.0})
    usage = {"cpu": 7200.0, "NVIDIA A100-SXM4-80GB": 3600.0, "NVIDIA H100 80GB HBM3": 1800.0}
    assert cost(usage, prices) == pytest.approx(2 * 0.05 + 2.5 + 0.5 * 4.0)


def test_an_unpriced_gpu_costs_nothing_and_is_left_out_of_a_priced_objective() -> None:
    prices = Prices(per_core_hour=0.05)
    assert cost({"NVIDIA T4": 3600.0}, prices) == 0.0
    assert prices.objective_per_replica_hour("NVIDIA T4", 1) is None
    assert prices.objective_per_replica_hour("cpu", 4) == pytest.approx(0.2)


def test_without_prices_the_objective_counts_cores_and_a_gpu_counts_one() -> None:
    assert Prices().objective_per_replica_hour("cpu", 8) == 8.0
    assert Prices().objective_per_replica_hour("NVIDIA A100", 1) == 1.0
