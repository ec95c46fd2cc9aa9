"""Rich rendering of a stored profile: one table per model, device and dtype."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

LATENCY_COLUMNS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms")


def _number(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def profile_table(frame: pd.DataFrame, title: str = "") -> Table:
    """Rows: cores x batch size; columns: latency percentiles, throughput, memory, status."""
    table = Table(title=title or None, title_justify="left", header_style="bold")
    for name in ("cores", "batch", *LATENCY_COLUMNS, "samples", "items/s", "peak MB", "status"):
        table.add_column(name, justify="left" if name == "status" else "right")
    for row in frame.sort_values(["cores", "batch_size"]).itertuples(index=False):
        status = row.status if row.status == "ok" else f"[red]{row.status}[/red] {row.error}"
        table.add_row(
            str(row.cores), str(row.batch_size), *(_number(getattr(row, c), 3) for c in LATENCY_COLUMNS),
            str(row.samples), _number(row.throughput_ips, 1), _number(row.peak_memory_mb, 0), status,
        )
    return table


def show_profile(console: Console, frame: pd.DataFrame, environment: dict[str, Any], path: Any = None) -> None:
    """Print every (model, device, dtype, input) block of a profile with its environment line."""
    where = f"{path}: " if path else ""
    console.print(
        f"{where}{len(frame)} cells, measured on {environment.get('host', '?')} "
        f"({environment.get('cpu_model', '?')}), torch {environment.get('torch_version', '?')}, {environment.get('created_at', '?')}"
    )
    if frame.empty:
        return
    keys = ["model", "device_kind", "device_name", "dtype", "input_shape"]
    for (model, kind, name, dtype, shape), block in frame.groupby(keys, sort=False):
        console.print(profile_table(block, title=f"{model} on {kind} ({name}), {dtype}, input {shape}"))
