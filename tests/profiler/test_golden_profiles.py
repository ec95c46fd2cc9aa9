"""The golden profiles other packages test against are complete, consistent real measurements."""

from __future__ import annotations

from pathlib import Path

import pytest

from themis.profiler.table import read_profile

GOLDEN = Path(__file__).parents[1] / "data" / "profiles"


@pytest.mark.parametrize("name", ["small_cnn_cpu", "mlp_cpu", "resnet18_cpu"])
def test_golden_profile_covers_the_grid_and_is_consistent(name: str, check_profile) -> None:
    frame = read_profile(GOLDEN / f"{name}.parquet")
    assert sorted(zip(frame.cores, frame.batch_size)) == [(c, b) for c in (1, 2) for b in (1, 2, 4, 8, 16, 32)]
    assert (frame.status == "ok").all()
    assert frame.attrs["environment"]["cpu_model"]
    check_profile(frame)

