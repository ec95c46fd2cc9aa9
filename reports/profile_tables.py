"""Rich rendering of a stored profile: one table per model, device, dtype and input shape."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

LATENCY_COLUMNS = {"p50_ms": "p50", "p90_ms": "p90", "p99_ms": "p99", "mean_ms": "mean"}
ERROR_WIDTH = 48


def _number(value: Any) -> str:
    """Four significant figures at most, no exponent: 0.123, 12.35, 1,234."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    digits = 3 if abs(value) < 10 else 2 if abs(value) < 100 else 1 if abs(value) < 1000 else 0
    return f"{value:,.{digits}f}"


def profile_table(frame: pd.DataFrame, title: str = "") -> Table:
    """Rows: cores x batch size; columns: latency (ms), samples, throughput, memory, status."""
    table = Table(title=title or None, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for name in ("cores", "batch", *LATENCY_COLUMNS.values(), "n", "items/s", "MB", "status"):
        table.add_column(name, justify="left" if name == "status" else "right", no_wrap=name != "status", min_width=6 if name == "status" else None)
    for row in frame.sort_values(["cores", "batch_size"]).itertuples(index=False):
        status = row.status if row.status == "ok" else f"[red]{row.status}[/red] {row.error[:ERROR_WIDTH]}"
        sanity = getattr(row, "sanity", "")
        if sanity:
            status += f" [yellow]({sanity})[/yellow]" if sanity != "remeasured" else " (measured again)"
        table.add_row(
            str(row.cores), str(row.batch_size), *(_number(getattr(row, c)) for c in LATENCY_COLUMNS),
            str(row.samples), _number(row.throughput_ips), _number(row.peak_memory_mb), status,
        )
    return table


def show_profile(console: Console, frame: pd.DataFrame, environment: dict[str, Any], path: Any = None) -> None:
    """Print the environment line, then one table per (model, device, dtype, input) block."""
    where = f"{path}: " if path else ""
    if environment.get("provenance") == "published":
        origin = f"PUBLISHED measurements, not measured by themis: {environment.get('source', '?')}"
    else:
        origin = (f"measured on {environment.get('host', '?')} ({environment.get('cpu_model', '?')}), "
                  f"torch {environment.get('torch_version', '?')}, {environment.get('created_at', '?')}")
    console.print(f"{where}{len(frame)} cells, {origin}", highlight=False)
    if frame.empty:
        return
    keys = ["model", "device_kind", "device_name", "dtype", "input_shape"]
    for (model, kind, name, dtype, shape), block in frame.groupby(keys, sort=False):
        console.print(profile_table(block, title=f"{model} on {kind} ({name}), {dtype}, input {shape}; latency in ms"))
