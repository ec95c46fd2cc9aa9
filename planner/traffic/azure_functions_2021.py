"""Azure Functions 2021: one row per invocation (`app,func,end_timestamp,duration`, seconds).

Arrival = end_timestamp - duration, sorted. The schema has no owner, so the app stands in
for it and the 2019 selection rules (`--function`, `--app`, `--top`) apply unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from themis.planner.traffic.azure_functions_2019 import ID_COLUMNS_2019, select_functions, trace_name
from themis.planner.traffic.reading import PathLike, column_numbers, per_request_trace, read_frame, require_filled
from themis.planner.traffic.trace import Trace

COLUMNS_2021 = ("app", "func", "end_timestamp", "duration")


def read_azure_functions_2021(
    path: PathLike, *, function: str | None = None, app: str | None = None, top: int | None = None
) -> Trace:
    """One row per invocation; arrival = end_timestamp - duration (seconds), sorted.

    Times are already seconds from the trace's start; an arrival before 0 (a duration
    longer than its end time) moves t = 0 back to it.
    """
    path = Path(path)
    frame = read_frame(path, COLUMNS_2021, dtype={"app": str, "func": str})
    require_filled(frame, path, ["app", "func"])
    end_s = column_numbers(frame, "end_timestamp", path)
    duration_s = column_numbers(frame, "duration", path, minimum=0.0)
    # the 2021 schema has no owner: the app stands in for it, so 2019's selection code applies
    table = frame.assign(arrival_s=end_s - duration_s, owner=frame["app"]).set_index(["owner", "app", "func"])
    table.index.names = ID_COLUMNS_2019
    if function is not None or app is not None or top is not None:
        per_function = table.groupby(level=[0, 1, 2]).size().to_frame(0)
        chosen = select_functions(per_function, path, function=function, app=app, top=top).index
        table = table[table.index.isin(chosen)]
    arrivals = np.sort(table["arrival_s"].to_numpy(dtype=np.float64))
    arrivals -= min(0.0, float(arrivals[0]))
    return per_request_trace(trace_name([path], function, app, top), "azure_functions_2021", None, arrivals)
