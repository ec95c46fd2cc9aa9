"""Profiler fixtures: a factory model that really runs out of memory, the profile consistency check."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def factory_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path (and the workers' PYTHONPATH) holding `hungry_models.py`.

    `hungry_models:hungry` builds a model whose forward pass asks torch's CPU allocator
    for 2**50 bytes (1 PiB) once the batch reaches 4: a real allocator failure, so the
    out-of-memory path runs for real instead of being simulated.
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
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sys.modules.pop("hungry_models", None)
    return tmp_path


def assert_consistent(frame) -> None:
    """Percentiles ordered, min <= p50, throughput = batch * 1000 / mean, memory measured."""
    ok = frame[frame.status == "ok"]
    chain = ok[["min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"]].to_numpy()
    assert (np.diff(chain, axis=1) >= 0).all()
    assert (ok.min_ms <= ok.mean_ms).all() and (ok.mean_ms <= ok.max_ms).all() and (ok.std_ms >= 0).all()
    np.testing.assert_allclose(ok.throughput_ips, ok.batch_size * 1000.0 / ok.mean_ms, rtol=1e-9)
    assert (ok.peak_memory_mb > 0).all()


@pytest.fixture
def check_profile():
    """The consistency check every measured profile must pass."""
    return assert_consistent
