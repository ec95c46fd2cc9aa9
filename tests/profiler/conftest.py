"""Profiler fixtures: a factory model that really runs out of memory, the profile consistency check."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from themis.profiler.table import MEASURED_STATUSES


@pytest.fixture
def factory_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path (and the workers' PYTHONPATH) holding `hungry_models.py`.

    `hungry_models:hungry` builds a model whose forward pass asks torch's CPU allocator
    for 2**50 bytes (1 PiB) once the batch reaches 4: a real allocator failure, so the
    out-of-memory path runs for real instead of being simulated.

    `odd_models:odd` is a model whose batch of 2 really takes 10 ms and every other batch
    0.5 ms: a smaller batch slower than a larger one, which the sanity checks must flag.
    """
    (tmp_path / "hungry_models.py").write_text(textwrap.dedent('''
        import torch

        class Hungry(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(8, 4)

            def forward(self, x):
                if x.shape[0] >= 4:
                    torch.empty(2**50, dtype=torch.uint8)
                return self.linear(x)

        def hungry():
            return Hungry()

        def not_a_module():
            return 42
    '''))
    (tmp_path / "odd_models.py").write_text(textwrap.dedent('''
        import time

        import torch

        class Odd(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(8, 4)

            def forward(self, x):
                time.sleep(0.01 if x.shape[0] == 2 else 0.0005)
                return self.linear(x)

        def odd():
            return Odd()
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sys.modules.pop("hungry_models", None)
    sys.modules.pop("odd_models", None)
    return tmp_path


def assert_consistent(frame) -> None:
    """Percentiles ordered, min <= p50, throughput = batch * 1000 / mean, memory measured; in a
    version-2 profile the percentiles are those of the pooled raw samples."""
    ok = frame[frame.status.isin(MEASURED_STATUSES)]
    chain = ok[["min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"]].to_numpy()
    assert (np.diff(chain, axis=1) >= 0).all()
    assert (ok.min_ms <= ok.mean_ms).all() and (ok.mean_ms <= ok.max_ms).all() and (ok.std_ms >= 0).all()
    np.testing.assert_allclose(ok.throughput_ips, ok.batch_size * 1000.0 / ok.mean_ms, rtol=1e-9)
    assert (ok.peak_memory_mb > 0).all()
    for row in ok.itertuples():
        if len(row.samples_ms):
            assert len(row.samples_ms) == row.samples == sum(row.process_samples) and len(row.process_samples) == row.processes
            np.testing.assert_allclose([row.p50_ms, row.p99_ms], np.percentile(row.samples_ms, [50, 99]))


@pytest.fixture
def check_profile():
    """The consistency check every measured profile must pass."""
    return assert_consistent
