"""`make gpu-check`: profile resnet50 and bert_base on the NVIDIA GPU(s) of this machine.

For a machine with a GPU and no network, where python3 already has torch, pynvml, pandas,
pyarrow, typer, rich, numpy and scipy but themis is not installed. It runs from this
source tree through a shim (a temporary `themis` namespace of symlinks to the repository's
package folders, put on PYTHONPATH for itself and the measuring workers), so nothing is
downloaded or installed. (`python3 -m pip install --no-index --no-deps --no-build-isolation .`
also works offline, where pip may install into that Python.)

What it does, in well under 8 minutes on one H100:
1. Enumerates the GPUs with pynvml: name, UUID, driver, memory, MIG mode. No GPU: it
   prints `no NVIDIA GPU found` and exits 2.
2. Runs the real `themis profile` command for resnet50 and bert_base (sequence length 128)
   on `--device cuda` (every GPU), batches 1-64, float16 and float32: CUDA-event timing,
   every batch warmed before any is timed, interleaved windows, `PROCESSES` worker
   processes per model and dtype (2, not the default 3: a GPU process spends most of its
   start-up in CUDA initialisation), `BUDGET_S` per cell (0.5 s, at least 100 calls).
3. Writes `$OUT/gpu-profile.parquet` (one profile, all four model x dtype blocks) and
   `$OUT/summary.txt` (GPU, driver, MIG mode, settings, and per cell p50, p99,
   throughput and status). `$OUT` defaults to `out/gpu-check`.

    make gpu-check                      # or: python3 benchmarks/gpu_check.py
    OUT=/tmp/gpu python3 benchmarks/gpu_check.py --models resnet50 --dtypes float16
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from themis.profiler.devices import Device

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "data", "cli", "profiler", "planner", "reports", "sample_models")
MODELS = ("resnet50", "bert_base")
DTYPES = ("float16", "float32")
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
PROCESSES = 2
BUDGET_S = 0.5
PROFILE_TIMEOUT_S = 150.0
TOTAL_S = 420.0
"""The whole check stops profiling after 7 minutes (finished cells are kept), under the 8 it must take."""
EXIT_NO_GPU = 2


def ensure_themis(shim_root: Path) -> dict[str, str]:
    """Make `import themis` work: as installed, or through a shim of symlinks to this tree.

    Returns the environment the profiling subprocesses need.
    """
    env = dict(os.environ)
    try:
        import themis.profiler.devices  # noqa: F401 - installed (or already shimmed)

        return env
    except ImportError:
        pass
    namespace = shim_root / "themis"
    namespace.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        link = namespace / package
        if not link.exists():
            link.symlink_to(ROOT / package, target_is_directory=True)
    sys.path.insert(0, str(shim_root))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim_root), env.get("PYTHONPATH", "")]))
    return env


def profile_command(model: str, dtype: str, out: Path, resume: bool) -> list[str]:
    """The `themis profile` invocation for one model and dtype on every GPU."""
    return [
        sys.executable, "-c", "from themis.cli.app import main; main()", "profile", model, "--device", "cuda",
        "--batch-sizes", ",".join(map(str, BATCH_SIZES)), "--dtype", dtype, "--processes", str(PROCESSES),
        "--budget-s", str(BUDGET_S), "--out", str(out), "--resume" if resume else "--overwrite",
    ]


def summary_text(gpus: list[Device], frame: pd.DataFrame, wall_s: float, failures: list[str]) -> str:
    """The short text summary: the GPUs, how they were measured, then one line per cell."""
    lines = ["themis gpu-check", ""]
    for gpu in gpus:
        lines.append(f"GPU {gpu.label}: {gpu.name}, UUID {gpu.device_id}, driver {gpu.driver or '?'}, "
                     f"{gpu.memory_mb / 1024:.1f} GiB, MIG {'enabled' if gpu.mig_mode else 'disabled'}")
    lines += [
        f"measured: {', '.join(MODELS)} x {', '.join(DTYPES)} x batches {', '.join(map(str, BATCH_SIZES))}; "
        f"{PROCESSES} worker processes per model and dtype, {BUDGET_S} s and at least 100 timed calls per cell, CUDA events",
        f"wall time: {wall_s:.0f} s",
        "",
        f"{'model':<10} {'dtype':<8} {'gpu':<7} {'batch':>5} {'p50 ms':>9} {'p99 ms':>9} {'items/s':>10} {'calls':>6}  status",
    ]
    for row in frame.sort_values(["model", "dtype", "device_id", "batch_size"]).itertuples():
        label = next((g.label for g in gpus if g.device_id == row.device_id), row.device_kind)
        lines.append(f"{row.model:<10} {row.dtype:<8} {label:<7} {row.batch_size:>5} {row.p50_ms:>9.3f} {row.p99_ms:>9.3f} "
                     f"{row.throughput_ips:>10.1f} {row.samples:>6}  {row.status}{(' ' + row.error[:60]) if row.status != 'ok' else ''}")
    lines += ["", *(f"failed: {f}" for f in failures)] if failures else []
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    args = parser.parse_args(argv)
    out_dir = Path(os.environ.get("OUT") or "out/gpu-check")
    with tempfile.TemporaryDirectory(prefix="themis-shim-") as shim:
        env = ensure_themis(Path(shim))
        from themis.profiler.devices import discover_gpus

        gpus = discover_gpus()
        if not gpus:
            print("no NVIDIA GPU found", file=sys.stderr)
            return EXIT_NO_GPU
        out_dir.mkdir(parents=True, exist_ok=True)
        for gpu in gpus:
            print(f"{gpu.label}: {gpu.name} ({gpu.device_id}), driver {gpu.driver}, MIG {'on' if gpu.mig_mode else 'off'}", flush=True)
        profile, failures, started = out_dir / "gpu-profile.parquet", [], time.perf_counter()
        for model in args.models.split(","):
            for dtype in args.dtypes.split(","):
                command = profile_command(model, dtype, profile, resume=profile.exists())
                step = time.perf_counter()
                timeout_s = min(PROFILE_TIMEOUT_S, TOTAL_S - (step - started))
                if timeout_s < 10:
                    failures.append(f"{model} {dtype}: not measured, the check's {TOTAL_S:.0f} s were spent")
                    continue
                try:
                    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
                    ok, why = result.returncode == 0, (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
                except subprocess.TimeoutExpired:
                    ok, why = False, f"over {timeout_s:.0f} s (finished cells are kept)"
                print(f"{model} {dtype}: {'done' if ok else 'FAILED: ' + why} ({time.perf_counter() - step:.0f} s)", flush=True)
                if not ok:
                    failures.append(f"{model} {dtype}: {why}")
        from themis.common.atomic import write_text_atomic
        from themis.profiler.table import read_profile

        frame = read_profile(profile) if profile.exists() else None
        text = summary_text(gpus, frame, time.perf_counter() - started, failures) if frame is not None else "no cell measured\n"
        write_text_atomic(out_dir / "summary.txt", text)
        print(text, end="")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
