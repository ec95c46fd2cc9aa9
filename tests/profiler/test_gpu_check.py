"""`make gpu-check` (benchmarks/gpu_check.py) without a GPU: the summary writer on devices
from `FakeNvml` (a named fake of pynvml), the no-GPU exit, the shim, the real CLI command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from test_devices import TWO_GPUS, FakeNvml

from themis.profiler.devices import discover_gpus
from themis.profiler.table import read_profile

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
BARE_PYTHON = Path("/usr/bin/python3")  # no themis, no pandas, no pynvml: what the shim is for


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_names_the_gpus_and_every_cell(gpu_check) -> None:
    gpus = discover_gpus(FakeNvml(TWO_GPUS))
    frame = read_profile(ROOT / "tests" / "data" / "profiles" / "mlp_cpu_contended.parquet")  # real measured rows
    text = gpu_check.summary_text(gpus, frame, 123.4, ["bert_base float32: over 170 s"])
    lines = text.splitlines()
    assert lines[2] == "GPU cuda:0: NVIDIA A100-SXM4-40GB, UUID GPU-aaaa, driver 550.54.15, 40.0 GiB, MIG enabled"
    assert lines[3].startswith("GPU cuda:1: Tesla T4, UUID GPU-bbbb") and lines[3].endswith("MIG disabled")
    assert "wall time: 123 s" in text and "CUDA events" in text and "failed: bert_base float32: over 170 s" in text
    cells = [line for line in lines if line.startswith("mlp ")]
    assert len(cells) == len(frame) and all("contended" in line for line in cells)
    first = frame.sort_values(["cores", "batch_size"]).iloc[0]
    assert f"{first.p50_ms:.3f}" in text and f"{first.p99_ms:.3f}" in text


def test_the_profile_command_is_the_real_cli_and_needs_a_gpu(gpu_check, tmp_path: Path) -> None:
    command = gpu_check.profile_command("resnet50", "float16", tmp_path / "p.parquet", resume=False)
    assert command[command.index("--batch-sizes") + 1] == "1,2,4,8,16,32,64" and "--overwrite" in command
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().endswith("no NVIDIA GPU found")


def test_without_a_gpu_it_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, env={"OUT": str(out), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and result.stderr.strip() == "no NVIDIA GPU found"
    assert not out.exists()


@pytest.mark.skipif(not BARE_PYTHON.exists(), reason="needs a python3 without themis")
def test_the_shim_runs_it_from_source_on_a_bare_python(tmp_path: Path) -> None:
    probe = subprocess.run([str(BARE_PYTHON), "-c", "import themis.profiler"], capture_output=True, text=True)
    if probe.returncode == 0:
        pytest.skip("this python3 has themis installed")
    result = subprocess.run([str(BARE_PYTHON), str(SCRIPT)], capture_output=True, text=True, timeout=120,
                            env={"OUT": str(tmp_path / "out"), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == "no NVIDIA GPU found"
