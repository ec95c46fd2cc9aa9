"""GPU profiles from published measurements: NVIDIA DeepLearningExamples' inference tables.

themis measures GPUs when one is at hand (`themis profile --device cuda`). Where none is,
planning for a GPU fleet still needs a latency curve, and NVIDIA publishes them: per-batch
inference latency of ResNet-50 v1.5 and BERT on V100, A100 and T4 (`data/gpu/`, vendored
with their source and licences). `published_gpu_profile` turns one (GPU, precision,
framework) series of those tables into an ordinary profile table, so the planner, `check`
and the reports read it like a measured one, and labels it **published** everywhere it goes:
the device name ends in "(published)", `device_id` starts with `published:`, and the footer
says `provenance: published` with the source row of every cell.

What the tables lack is filled in the open, in `PUBLISHED_FILL` terms:
- no median: the smaller of the average and the p90 stands in for `p50_ms` (the TensorFlow
  BERT averages exceed their own p99: another aggregation upstream);
- the PyTorch rows have no p90: the p95 stands in for it;
- no min or max: the smallest and the largest published statistic of the row stand in.
Published tables also hold oddities of their own (an average above the p95); a cell's
percentiles are kept in order by taking, for each, the largest of it and the ones below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from themis.profiler.errors import BadOptionError
from themis.profiler.table import write_profile

SOURCE = "NVIDIA/DeepLearningExamples, commit 729963dd47e7c8bd462ad10bfac7a7b0b604e6dd (data/gpu/README.md)"
PUBLISHED_FILL = "p50 = min(average, p90); p90 = p95 where missing; min/max = smallest/largest published statistic"
DATASETS = {"resnet50": ("resnet50_nvidia_dle.csv", None), "bert_base": ("bert_nvidia_dle.csv", "bert-base")}
"""Model name (as the sample models name it) -> vendored table, and its `model` value there."""
INPUT_SHAPES = {"resnet50": "3x224x224"}
DTYPES = {"FP32": "float32", "TF32": "float32", "AMP": "float16", "FP16": "float16"}
"""Published precision (before any `+XLA`) -> the profile's dtype (TF32 runs float32 tensors)."""


def published_table(model: str) -> pd.DataFrame:
    """The vendored table of `model` (`DATASETS`), as published."""
    if model not in DATASETS:
        raise BadOptionError(f"no published GPU table for {model!r} (have {', '.join(DATASETS)})", option="MODEL")
    name, published_name = DATASETS[model]
    table = pd.read_csv(Path(str(files("themis.data").joinpath("gpu", name))))
    return table if published_name is None else table[table["model"] == published_name]


def published_gpu_profile(model: str, gpu: str, precision: str, framework: str | None = None, seq_len: int = 128) -> pd.DataFrame:
    """One published series as a profile table (columns of `themis.profiler.table`).

    `gpu` and `precision` are as the table writes them (`T4-16GB`, `AMP`); `framework`
    picks among the frameworks that published the same GPU and precision (ResNet-50);
    `seq_len` picks BERT's sequence length.
    """
    table = published_table(model)
    rows = table[(table["gpu"] == gpu) & (table["precision"] == precision)]
    if "framework" in rows and framework is not None:
        rows = rows[rows["framework"] == framework]
    if "seq_len" in rows:
        rows = rows[rows["seq_len"] == seq_len]
    if "framework" in rows and rows["framework"].nunique() > 1:
        raise BadOptionError(f"{gpu} {precision} was published by {', '.join(sorted(rows['framework'].unique()))}: pick one",
                             option="--framework")
    if rows.empty:
        raise BadOptionError(f"no published {model} row for {gpu} {precision}" + (f" ({framework})" if framework else "")
                             + f"; published GPUs: {', '.join(sorted(table['gpu'].unique()))}", option="--gpu")
    cells = [_cell(model, gpu, precision, row, seq_len) for row in rows.to_dict(orient="records")]
    frame = pd.DataFrame(cells)
    frame.attrs["environment"] = {"gpu_name": gpu, "provenance": "published", "source": SOURCE}
    frame.attrs["measurement"] = {"provenance": "published", "source": SOURCE, "fill": PUBLISHED_FILL,
                                  "source_rows": [row["source_file"] for row in rows.to_dict(orient="records")]}
    return frame


def write_published_gpu_profile(out: str | Path, model: str, gpu: str, precision: str, framework: str | None = None) -> Path:
    """`published_gpu_profile` written as a profile Parquet file."""
    frame = published_gpu_profile(model, gpu, precision, framework)
    return write_profile(out, frame.to_dict(orient="records"), frame.attrs["environment"], frame.attrs["measurement"])


def _cell(model: str, gpu: str, precision: str, row: Mapping[str, Any], seq_len: int) -> dict[str, Any]:
    average = float(row["latency_avg_ms"])
    p95 = float(row["latency_p95_ms"])
    p90 = _number(row.get("latency_p90_ms"), p95)
    p50 = _number(row.get("latency_p50_ms"), min(average, p90))
    p99 = float(row["latency_p99_ms"])
    ordered = _running_max([p50, p90, p95, p99])
    published = [v for v in (average, p50, p90, p95, p99) if math.isfinite(v)]
    batch = int(row["batch_size"])
    base_precision = precision.split("+")[0]
    return {
        "model": model, "device_kind": "cuda", "device_name": f"{gpu} (published)", "device_id": f"published:{gpu}",
        "cores": 1, "batch_size": batch, "dtype": DTYPES[base_precision],
        "input_shape": INPUT_SHAPES.get(model, str(seq_len)),
        "p50_ms": ordered[0], "p90_ms": ordered[1], "p95_ms": ordered[2], "p99_ms": ordered[3],
        "mean_ms": average, "std_ms": math.nan, "min_ms": min(published), "max_ms": max(max(published), ordered[3]),
        "samples": 0, "throughput_ips": float(row.get("throughput_ips", row.get("throughput_sps"))), "peak_memory_mb": math.nan,
        "status": "ok", "error": "", "cpu_limit": "", "processes": 0,
    }


def _number(value: Any, fallback: float) -> float:
    return float(value) if value is not None and not pd.isna(value) else fallback


def _running_max(values: list[float]) -> list[float]:
    out, high = [], -math.inf
    for value in values:
        high = max(high, value)
        out.append(high)
    return out
