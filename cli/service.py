"""What plan, compare, check and demo all read first: the traffic and the service's stages.

Kept in one place so that every command selects traces, scales them and maps profiles to
pipeline stages the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from themis.common.errors import InputError
from themis.planner.latency import LatencyModel, latency_models_from_frames
from themis.planner.serving import Stage
from themis.planner.traces import Trace, load_trace

CONSTANT_LOAD_S = 600.0
"""Length of the synthetic steady load checked with `--peak-rps`."""


def load_trace_or_rate(
    traces: Sequence[Path] | None,
    peak_rps: float | None,
    *,
    scale: float = 1.0,
    interval_s: float = 60.0,
    seed: int = 0,
    function: str | None = None,
    top: int | None = None,
) -> Trace:
    """The trace(s) given (selected and scaled), or a steady load at `peak_rps`."""
    if scale <= 0:
        raise InputError(f"must be positive, got {scale:g}", option="--scale")
    if peak_rps is not None:
        if peak_rps <= 0:
            raise InputError(f"must be positive, got {peak_rps:g}", option="--peak-rps")
        intervals = int(CONSTANT_LOAD_S // interval_s) or 1
        counts = np.full(intervals, round(peak_rps * scale * interval_s), dtype=np.int64)
        return Trace(f"steady {peak_rps * scale:g} rps", "constant", None, interval_s, counts)
    if not traces:
        raise InputError("give a traffic trace (--trace FILE) or a load (--peak-rps N)", option="--trace")
    trace = load_trace(list(traces) if len(traces) > 1 else traces[0], function=function, top=top)
    return trace.scaled(scale, seed=seed) if scale != 1.0 else trace


def load_service(profiles: Sequence[Path], model: str | None = None) -> tuple[list[tuple[Stage, LatencyModel]], pd.DataFrame]:
    """A one-stage service from profile tables: the stage, its fitted latency model, and the
    merged profile rows. With several models in the tables, `model` picks one."""
    from themis.profiler.table import read_profile

    if not profiles:
        raise InputError("give at least one profile table", option="--profile")
    frame = pd.concat([read_profile(p) for p in profiles], ignore_index=True)
    models = latency_models_from_frames([frame])
    if model is None:
        if len(models) > 1:
            raise InputError(f"the profiles hold several models ({', '.join(sorted(models))}); pick one with --model", option="--model")
        model = next(iter(models))
    if model not in models:
        raise InputError(f"no profile for model {model!r} (have: {', '.join(sorted(models))})", option="--model")
    cpu_first = sorted(models[model], key=lambda m: m.is_gpu)
    return [(Stage(model, model), cpu_first[0])], frame[frame["model"] == model].reset_index(drop=True)
