"""Each service's `Trace`, read once per file however many services share it.

A fleet of every function of a day file has thousands of services in one file: the
per-function table is read once (`FunctionTable`) and each service takes its row, the same
counts `themis plan --trace FILE --function ID` sums for a function found once. Other
traces are read as `themis plan --trace` reads them, through `load_trace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.spec import FileTraffic, FunctionTraffic, SyntheticTraffic, Traffic
from themis.planner.fleet.synthetic import resample
from themis.planner.traffic.azure_functions_2019 import MINUTE_S, day_order, read_function_table
from themis.planner.traffic.loading import detect_format, load_trace
from themis.planner.traffic.trace import Trace


@dataclass(frozen=True)
class FunctionTable:
    """Per-minute counts of every function of Azure Functions 2019 day files, joined in day order."""

    paths: tuple[str, ...]
    names: tuple[str, ...]
    """A service name per row: the function's hash (with its app's where one hash repeats)."""
    counts: np.ndarray
    """(functions, minutes): int32 where every count fits (half the memory of 46,000 functions
    x 14 days), int64 otherwise."""

    @property
    def totals(self) -> np.ndarray:
        return self.counts.sum(axis=1, dtype=np.int64)

    def trace(self, row: int) -> Trace:
        return Trace(self.names[row], "azure_functions_2019", None, MINUTE_S, self.counts[row].astype(np.int64))


def read_functions(paths: Sequence[str | Path]) -> FunctionTable:
    """The per-function table of Azure Functions 2019 day files (either layout)."""
    files = day_order(paths)
    for path in files:
        if detect_format(path) != "azure_functions_2019":
            raise FleetError("--per-function needs Azure Functions 2019 day files", file=path)
    table = read_function_table(files)
    functions = table.index.get_level_values("HashFunction").astype(str)
    apps = table.index.get_level_values("HashApp").astype(str)
    repeated = set(functions[functions.duplicated()])
    names = tuple(f"{f}@{a[:12]}" if f in repeated else f for f, a in zip(functions, apps))
    counts = table.to_numpy(dtype=np.int64)
    if counts.size and counts.max() <= np.iinfo(np.int32).max:
        counts = counts.astype(np.int32)
    return FunctionTable(tuple(str(p) for p in files), names, counts)


def select_rows(table: FunctionTable, top: int | None = None, min_requests: int = 0) -> np.ndarray:
    """Rows to plan, in file order: at least `min_requests` requests, and of those the `top`
    busiest (ties: file order), skipping the near-idle tail."""
    if top is not None and top < 1:
        raise FleetError(f"must be at least 1, got {top}", option="--top")
    if min_requests < 0:
        raise FleetError(f"must not be negative, got {min_requests}", option="--min-requests")
    totals = table.totals
    rows = np.flatnonzero(totals >= min_requests)
    if top is not None:
        rows = np.sort(rows[np.argsort(-totals[rows], kind="stable")[:top]])
    return rows


class TrafficLoader:
    """Builds each service's `Trace`, keeping every per-function table it has read."""

    def __init__(self) -> None:
        self._tables: dict[tuple[str, ...], FunctionTable] = {}
        self._files: dict[FileTraffic, Trace] = {}

    def table(self, paths: Sequence[str]) -> FunctionTable:
        key = tuple(paths)
        if key not in self._tables:
            self._tables[key] = read_functions(key)
        return self._tables[key]

    def trace(self, traffic: Traffic) -> Trace:
        if isinstance(traffic, FunctionTraffic):
            trace = self.table(traffic.paths).trace(traffic.row)
            return trace.scaled(traffic.scale, seed=traffic.seed) if traffic.scale != 1.0 else trace
        if isinstance(traffic, SyntheticTraffic):
            source = self.table(traffic.paths)
            counts = resample(source.counts[traffic.row], traffic.shift_intervals, traffic.scale, traffic.seed)
            return Trace(f"synthetic from {source.names[traffic.row][:12]}", "synthetic", None, MINUTE_S, counts)
        if traffic not in self._files:
            if len(self._files) > 64:  # services rarely share a whole file: keep a few
                self._files.clear()
            paths = [Path(p) for p in traffic.paths]
            trace = load_trace(paths if len(paths) > 1 else paths[0], function=traffic.function, top=traffic.top)
            self._files[traffic] = trace.scaled(traffic.scale, seed=traffic.seed) if traffic.scale != 1.0 else trace
        return self._files[traffic]
