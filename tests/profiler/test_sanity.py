"""Cross-cell sanity checks on tables built to show each pattern (and on a real, healthy profile)."""

from __future__ import annotations

from pathlib import Path

from themis.profiler.sanity import MORE_CORES_SLOWER, SMALLER_BATCH_SLOWER, find_anomalies
from themis.profiler.table import read_profile

GOLDEN = Path(__file__).parents[1] / "data" / "profiles"


def _rows(p50: dict[tuple[int, int], float]) -> list[dict]:
    return [{"cores": c, "batch_size": b, "p50_ms": ms} for (c, b), ms in p50.items()]


def test_a_healthy_table_has_no_anomaly() -> None:
    table = {(1, 1): 60.0, (1, 2): 110.0, (1, 4): 230.0, (2, 1): 35.0, (2, 2): 65.0, (2, 4): 130.0}
    assert find_anomalies(_rows(table)) == {}


def test_batching_that_pays_per_item_is_not_an_anomaly() -> None:
    # A GPU: batch 8 costs little more than batch 1 (slower per item at batch 1 by far less than 8x).
    assert find_anomalies(_rows({(1, 1): 5.0, (1, 8): 5.5, (1, 64): 20.0})) == {}


def test_more_cores_markedly_slower_flags_both_cells() -> None:
    flags = find_anomalies(_rows({(1, 1): 60.0, (2, 1): 80.0, (1, 2): 110.0, (2, 2): 120.0}))
    assert flags == {(1, 1): {MORE_CORES_SLOWER}, (2, 1): {MORE_CORES_SLOWER}}  # 120 vs 110 is within 20%


def test_a_smaller_batch_slower_in_total_flags_both_cells() -> None:
    flags = find_anomalies(_rows({(1, 1): 300.0, (1, 2): 110.0, (1, 4): 230.0}))
    assert flags == {(1, 1): {SMALLER_BATCH_SLOWER}, (1, 2): {SMALLER_BATCH_SLOWER}, (1, 4): {SMALLER_BATCH_SLOWER}}


def test_the_golden_profiles_measured_on_an_idle_machine_pass() -> None:
    for name in ("resnet18_cpu", "small_cnn_cpu"):
        frame = read_profile(GOLDEN / f"{name}.parquet")
        assert find_anomalies(frame.to_dict(orient="records")) == {}, name
