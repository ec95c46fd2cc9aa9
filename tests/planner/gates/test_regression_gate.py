"""The regression gate on real profiles: back-to-back profiles of one model pass a 10% gate,
a model with twice the layers fails it.

Affordable on 2 shared cores: the mlp sample model, one core, two batch sizes and a
0.05 s budget per cell (a profile takes a few seconds, almost all of it starting the
workers). Seven profiles with two worker processes each are taken back to back and 20 of
their 21 pairs are gated (the benchmark `benchmarks/bench_measurement.py` gates 20
independent back-to-back pairs). The slower model is compared with three processes a side
(the default), since a 2-process interval is wide. The machine is shared, so cells may come
out `contended`: the back-to-back pairs are judged as CI judges them (contended cells left
out), and the test is skipped, saying so, when too few pairs have a cell left to judge. The
deeper model is judged with `allow_unstable`: a 2x slowdown must show through any noise.
"""

from __future__ import annotations

import itertools
import math
import sys
import textwrap
from pathlib import Path

import pytest

from themis.planner.gates.check import check_regression
from themis.profiler.devices import cpu_device
from themis.profiler.measure import Budget
from themis.profiler.models import resolve_model
from themis.profiler.run import ProfileRequest, run_profile

LIMIT = 0.10
BATCH_SIZES = [1, 8]


def _profile(model: str, out: Path, shape: tuple[int, ...] | None = None, processes: int = 2):
    request = ProfileRequest(resolve_model(model, shape), [cpu_device()], [1], BATCH_SIZES, "float32",
                             Budget(budget_s=0.05, min_samples=100, warmup=2), out, processes=processes)
    return run_profile(request).frame


@pytest.fixture
def deeper_mlp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`deeper_models:mlp`: the sample mlp with twice its layers, under the same model name."""
    (tmp_path / "deeper_models.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def mlp():
            torch.manual_seed(0)
            hidden = [layer for _ in range(4) for layer in (nn.Linear(512, 512), nn.ReLU())]
            return nn.Sequential(nn.Linear(256, 512), nn.ReLU(), *hidden, nn.Linear(512, 10)).eval()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sys.modules.pop("deeper_models", None)
    return "deeper_models:mlp"


@pytest.mark.slow
def test_back_to_back_profiles_pass_and_a_deeper_model_fails(tmp_path: Path, deeper_mlp: str) -> None:
    profiles = [_profile("mlp", tmp_path / f"mlp-{i}.parquet") for i in range(7)]
    verdicts = []
    for before, after in list(itertools.combinations(profiles, 2))[:20]:
        checks, tables = check_regression(before, after, LIMIT)
        assert len(tables["regression_cells"]) == len(BATCH_SIZES)
        if checks[0].name != "matching_cells":  # judged: some cell is ok in both profiles (not contended)
            verdicts.append(all(c.passed for c in checks))
    if len(verdicts) < 10:
        pytest.skip(f"the machine is too busy to test the gate's false alarms: {20 - len(verdicts)} of 20 pairs had no "
                    "uncontended cell in both profiles (the gate refused to judge them, as it should)")
    false_alarms = len(verdicts) - sum(verdicts)
    # At most 15%: on a shared machine some contention escapes the detector (2 of 14 pairs seen at load 1.8);
    # benchmarks/bench_measurement.py measures the rate on 20 independent pairs.
    assert false_alarms <= math.ceil(0.15 * len(verdicts)), f"{false_alarms} of {len(verdicts)} back-to-back pairs failed a {LIMIT:.0%} gate"

    baseline = _profile("mlp", tmp_path / "baseline.parquet", processes=3)
    deeper = _profile(deeper_mlp, tmp_path / "deeper.parquet", shape=(256,), processes=3)
    assert set(deeper.model) == {"mlp"}  # the same name: a model change under review
    checks, tables = check_regression(baseline, deeper, LIMIT, allow_unstable=True)
    (worst,) = checks
    assert not worst.passed and worst.measured > 100 * LIMIT
    assert "slower by" in worst.detail and "95% CI" in worst.detail
    assert (tables["regression_cells"]["ratio_low"] > 1 + LIMIT).any()
