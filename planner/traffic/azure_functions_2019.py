"""Azure Functions 2019: per-minute invocation counts per function ("Serverless in the Wild").

Two layouts: the original (`HashOwner,HashApp,HashFunction,Trigger,1..1440`) and the invitro
excerpt (`HashFunction,HashOwner,HashApp,minute_1..minute_1440`). Several day files form one
timeline. Native interval 60 s, no calendar time (the files do not record the day).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from themis.common.errors import shown
from themis.planner.errors import TraceError
from themis.planner.traffic.reading import MAX_COUNT, PathLike, column_numbers, read_frame, require_filled
from themis.planner.traffic.trace import Trace

ID_COLUMNS_2019 = ("HashOwner", "HashApp", "HashFunction")

MINUTE_S = 60.0
MINUTES_PER_DAY = 1440

_MINUTE = re.compile(r"^(?:minute_)?(\d+)$")

_DAY = re.compile(r"d(\d+)", re.IGNORECASE)


def read_azure_functions_2019(
    paths: Sequence[PathLike], *, function: str | None = None, app: str | None = None, top: int | None = None
) -> Trace:
    """Per-minute counts of the 2019 layouts; several day files join into one timeline.

    Day files are put in day order by the `dNN` in their names (given order otherwise). A
    function absent from a day counts 0 there.
    """
    paths = day_order(paths)
    table = select_functions(read_function_table(paths), paths[0], function=function, app=app, top=top)
    counts = table.to_numpy(dtype=np.int64).sum(axis=0)
    return Trace(trace_name(paths, function, app, top), "azure_functions_2019", None, MINUTE_S, counts)


def day_order(paths: Sequence[PathLike]) -> list[Path]:
    """Day files in day order by the `dNN` in their names (given order otherwise)."""
    paths = [Path(p) for p in paths]
    if len(paths) > 1 and all(_DAY.search(p.name) for p in paths):
        paths = sorted(paths, key=lambda p: int(_DAY.findall(p.name)[-1]))
    return paths


def read_function_table(paths: Sequence[Path]) -> pd.DataFrame:
    """Per-function counts over the days joined in the given order: one row per
    (HashOwner, HashApp, HashFunction), one column per minute (fleet planning plans each row)."""
    days = [_read_functions_day(p) for p in paths]
    offset = 0
    for day in days:
        day.columns = range(offset, offset + day.shape[1])
        offset += day.shape[1]
    return days[0] if len(days) == 1 else pd.concat(days, axis=1).fillna(0).astype(np.int64)


def _read_functions_day(path: Path) -> pd.DataFrame:
    """One 2019 day file -> counts indexed by (HashOwner, HashApp, HashFunction), one column per minute."""
    frame = read_frame(path, ID_COLUMNS_2019, dtype={c: str for c in ID_COLUMNS_2019 + ("Trigger",)})
    minutes = [c for c in frame.columns if _MINUTE.match(str(c))]
    numbers = [int(_MINUTE.match(str(c))[1]) for c in minutes]
    if not minutes or numbers != list(range(1, len(minutes) + 1)):
        raise TraceError("per-minute columns must be 1..N (or minute_1..minute_N) in order", file=path, row=1)
    require_filled(frame, path, ID_COLUMNS_2019)
    cells = frame[minutes]
    for column in cells.columns:
        if not pd.api.types.is_numeric_dtype(cells[column]):
            column_numbers(cells, column, path)  # raises at the first non-number
    values = cells.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values != np.floor(values)) | (values > MAX_COUNT)
    if bad.any():
        row, col = divmod(int(np.argmax(bad)), values.shape[1])
        raise TraceError(f"minute {col + 1}: count must be a whole number >= 0, got {shown(cells.iat[row, col])}", file=path, row=row + 2)
    if len(minutes) != MINUTES_PER_DAY:
        raise TraceError(f"a day file has {MINUTES_PER_DAY:,} per-minute columns, this one {len(minutes):,} (cut short?)", file=path, row=1)
    counts = pd.DataFrame(values.astype(np.int64), index=pd.MultiIndex.from_frame(frame[list(ID_COLUMNS_2019)]))
    return counts.groupby(level=[0, 1, 2], sort=False).sum()


def select_functions(
    table: pd.DataFrame, path: Path, *, function: str | None, app: str | None, top: int | None
) -> pd.DataFrame:
    """Rows of one function, one app and/or the `top` busiest (by total requests)."""
    if function is not None:
        table = table[table.index.get_level_values("HashFunction") == function]
        if table.empty:
            raise TraceError(f"no function {function!r} in the trace", option="--function", file=path)
    if app is not None:
        table = table[table.index.get_level_values("HashApp") == app]
        if table.empty:
            raise TraceError(f"no app {app!r} in the trace", option="--app", file=path)
    if top is not None:
        totals = table.sum(axis=1).to_numpy()
        order = np.argsort(-totals, kind="stable")[:top]
        table = table.iloc[np.sort(order)]
    return table


def trace_name(paths: Sequence[Path], function: str | None, app: str | None, top: int | None) -> str:
    name = paths[0].name if len(paths) == 1 else f"{paths[0].name} (+{len(paths) - 1} days)"
    if function is not None:
        name += f" function {function[:12]}"
    if app is not None:
        name += f" app {app[:12]}"
    if top is not None:
        name += f" top {top}"
    return name
