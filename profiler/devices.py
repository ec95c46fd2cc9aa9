"""What the profiler can run on: CPU cores (via affinity) and NVIDIA GPUs (via pynvml).

Environment-specific code lives here only. pynvml is imported lazily, inside
`discover_gpus`, and can be handed in (`nvml=`) so tests can use a named fake of that
boundary on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from types import ModuleType
from typing import Any

from themis.common import __version__
from themis.profiler.errors import BadOptionError, NoGpuError


@dataclass(frozen=True)
class Device:
    """One place to run a model: the CPU, or one GPU identified by its UUID."""

    kind: str  # "cpu" | "cuda"
    name: str  # CPU model string or GPU name
    device_id: str = ""  # GPU UUID; "" for the CPU
    index: int = 0  # NVML index of a GPU
    memory_mb: float = 0.0
    mig_mode: bool = False
    driver: str = ""

    @property
    def label(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"


def available_cpus() -> list[int]:
    """CPU ids this process may run on (its affinity mask), as a container would see them."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def default_core_counts(cpu_count: int | None = None) -> list[int]:
    """1, 2, 4, ... up to the CPUs available, plus that count itself (6 CPUs -> 1, 2, 4, 6)."""
    limit = cpu_count or len(available_cpus())
    counts = [1]
    while counts[-1] * 2 <= limit:
        counts.append(counts[-1] * 2)
    if counts[-1] != limit:
        counts.append(limit)
    return counts


def cpu_model() -> str:
    """The CPU's model string from /proc/cpuinfo (platform's answer elsewhere)."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_device() -> Device:
    return Device(kind="cpu", name=cpu_model())


def _load_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def discover_gpus(nvml: Any = None) -> list[Device]:
    """Every NVIDIA GPU pynvml reports (name, UUID, memory, MIG mode); [] when there is none."""
    nvml = nvml if nvml is not None else _load_nvml()
    if nvml is None:
        return []
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no usable GPU
        return []
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        devices = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            try:
                mig_mode = bool(nvml.nvmlDeviceGetMigMode(handle)[0])
            except nvml.NVMLError:  # MIG not supported on this GPU
                mig_mode = False
            devices.append(Device(
                kind="cuda",
                name=_text(nvml.nvmlDeviceGetName(handle)),
                device_id=_text(nvml.nvmlDeviceGetUUID(handle)),
                index=index,
                memory_mb=nvml.nvmlDeviceGetMemoryInfo(handle).total / 2**20,
                mig_mode=mig_mode,
                driver=driver,
            ))
        return devices
    finally:
        nvml.nvmlShutdown()


def resolve_devices(spec: str, nvml: Any = None) -> list[Device]:
    """`cpu`, `cuda` (every GPU), `cuda:N` or `all` (CPU plus every GPU) -> devices."""
    spec = spec.strip().lower()
    if spec == "cpu":
        return [cpu_device()]
    if spec not in ("cuda", "all") and not spec.startswith("cuda:"):
        raise BadOptionError(f"unknown device {spec!r}; use cpu, cuda, cuda:N or all", option="--device")
    gpus = discover_gpus(nvml)
    if spec == "all":
        return [cpu_device(), *gpus]
    if not gpus:
        raise NoGpuError("no NVIDIA GPU found", option="--device")
    if spec == "cuda":
        return gpus
    index_text = spec.removeprefix("cuda:")
    if not index_text.isdigit() or int(index_text) >= len(gpus):
        raise BadOptionError(f"no GPU {spec!r}; this machine has cuda:0 to cuda:{len(gpus) - 1}", option="--device")
    return [gpus[int(index_text)]]


def environment(devices: list[Device]) -> dict[str, Any]:
    """The profile footer's environment: host, CPU, GPUs, driver, versions, time."""
    gpus = [d for d in devices if d.kind == "cuda"]
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = ""
    return {
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "gpu_name": ", ".join(d.name for d in gpus),
        "gpu_uuid": ", ".join(d.device_id for d in gpus),
        "driver": gpus[0].driver if gpus else "",
        "torch_version": torch_version,
        "themis_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
