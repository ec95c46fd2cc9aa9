"""Devices: core-count defaults, CPU affinity in the worker, GPU discovery through pynvml.

There is no GPU here, so GPU enumeration runs against `FakeNvml`, a named fake of the
pynvml boundary that reuses pynvml's real exception classes; the real pynvml is also
exercised to show that this machine reports no GPU.
"""

from __future__ import annotations

from types import SimpleNamespace

import pynvml
import pytest

from themis.profiler.devices import (
    available_cpus,
    cpu_device,
    default_core_counts,
    discover_gpus,
    resolve_devices,
)
from themis.profiler.errors import BadOptionError, NoGpuError
from themis.profiler.measure import Budget
from themis.profiler.models import resolve_model
from themis.profiler.run import ProfileRequest, run_worker, worker_job


class FakeNvml:
    """Stands in for the `pynvml` module on a machine with the given GPUs."""

    NVMLError = pynvml.NVMLError

    def __init__(self, gpus: list[dict], init_error: int | None = None) -> None:
        self.gpus, self.init_error, self.shutdowns = gpus, init_error, 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict:
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: dict) -> bytes:
        return handle["name"].encode()  # older pynvml returns bytes

    def nvmlDeviceGetUUID(self, handle: dict) -> str:
        return handle["uuid"]

    def nvmlDeviceGetMemoryInfo(self, handle: dict) -> SimpleNamespace:
        return SimpleNamespace(total=handle["memory_mb"] * 2**20)

    def nvmlDeviceGetMigMode(self, handle: dict) -> list[int]:
        if handle.get("mig") is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [handle["mig"], handle["mig"]]


TWO_GPUS = [
    {"name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-aaaa", "memory_mb": 40960, "mig": 1},
    {"name": "Tesla T4", "uuid": "GPU-bbbb", "memory_mb": 15360, "mig": None},
]


@pytest.mark.parametrize(("cpus", "expected"), [(1, [1]), (2, [1, 2]), (6, [1, 2, 4, 6]), (8, [1, 2, 4, 8]), (12, [1, 2, 4, 8, 12])])
def test_default_core_counts_double_up_to_the_cpus(cpus: int, expected: list[int]) -> None:
    assert default_core_counts(cpus) == expected


def test_discover_gpus_reads_name_uuid_memory_and_mig() -> None:
    nvml = FakeNvml(TWO_GPUS)
    a100, t4 = discover_gpus(nvml)
    assert (a100.name, a100.device_id, a100.memory_mb, a100.mig_mode, a100.label) == ("NVIDIA A100-SXM4-40GB", "GPU-aaaa", 40960, True, "cuda:0")
    assert (t4.name, t4.mig_mode, t4.label, t4.driver) == ("Tesla T4", False, "cuda:1", "550.54.15")
    assert nvml.shutdowns == 1


def test_resolve_devices_with_gpus() -> None:
    nvml = FakeNvml(TWO_GPUS)
    assert [d.label for d in resolve_devices("cuda", nvml)] == ["cuda:0", "cuda:1"]
    assert [d.device_id for d in resolve_devices("cuda:1", nvml)] == ["GPU-bbbb"]
    assert [d.label for d in resolve_devices("all", nvml)] == ["cpu", "cuda:0", "cuda:1"]
    with pytest.raises(BadOptionError, match="cuda:0 to cuda:1"):
        resolve_devices("cuda:2", nvml)
    with pytest.raises(BadOptionError, match="unknown device"):
        resolve_devices("tpu", nvml)


HAS_GPU = bool(discover_gpus())
"""Whether the real pynvml finds a GPU here: tests of a GPU-less machine run only on one."""
NO_GPU = pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA GPU")


@pytest.mark.parametrize(
    "nvml", [FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND), FakeNvml([]), pytest.param(None, marks=NO_GPU)]
)
def test_no_gpu_means_cuda_is_bad_input_and_all_is_the_cpu(nvml) -> None:
    # nvml=None is the real pynvml on a GPU-less machine (nvmlInit raises LibraryNotFound).
    with pytest.raises(NoGpuError, match="no NVIDIA GPU found"):
        resolve_devices("cuda", nvml)
    assert [d.kind for d in resolve_devices("all", nvml)] == ["cpu"]


@NO_GPU
def test_real_pynvml_finds_no_gpu_here() -> None:
    assert discover_gpus() == []


@pytest.mark.skipif(not HAS_GPU, reason="no NVIDIA GPU here")
def test_real_pynvml_describes_every_gpu_here() -> None:
    gpus = discover_gpus()
    assert [g.index for g in gpus] == list(range(len(gpus)))
    assert all(g.kind == "cuda" and g.name and g.device_id.startswith(("GPU-", "MIG-")) and g.memory_mb > 0 for g in gpus)
    assert [d.label for d in resolve_devices("cuda")] == [f"cuda:{i}" for i in range(len(gpus))]


@pytest.mark.slow
def test_worker_is_pinned_to_the_requested_cores() -> None:
    request = ProfileRequest(resolve_model("mlp"), [cpu_device()], [1], [1], "float32", Budget(), out=None)
    for cores in range(1, len(available_cpus()) + 1):
        events = []
        code, _ = run_worker(worker_job(request, cpu_device(), cores, []), events.append)
        assert code == 0
        assert events[0]["event"] == "ready"
        assert events[0]["cpus"] == available_cpus()[:cores] and events[0]["threads"] == cores
