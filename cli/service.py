"""What every planning command reads: the traffic (trace files, or a steady rate) and the
service (profiles or a pipeline, from the options or the profile store).

Kept in one place so that plan, compare, simulate, check and demo select and scale traces
and find profiles the same way. The planner is imported inside the functions, so `--help`
stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from themis.common.errors import InputError
from themis.planner.model.config import DEFAULT_INTERVAL_S

if TYPE_CHECKING:
    from themis.cli.settings import Settings
    from themis.planner.model.latency import LatencyModel
    from themis.planner.model.serving import Schedule, Stage, TraceFingerprint
    from themis.planner.traffic.trace import Trace

CONSTANT_LOAD_S = 600.0
"""Length of the synthetic steady load checked with `--peak-rps`."""


def load_traffic(
    traces: Sequence[Path] | None,
    *,
    peak_rps: float | None = None,
    scale: float = 1.0,
    interval_s: float = DEFAULT_INTERVAL_S,
    seed: int = 0,
    function: str | None = None,
    top: int | None = None,
    app: str | None = None,
    format: str | None = None,
    time_column: str | None = None,
) -> Trace:
    """The trace(s) given (read with the shared traffic options, selected, then scaled by
    `scale`), or a steady `peak_rps` load."""
    from themis.planner.traffic.loading import load_trace
    from themis.planner.traffic.trace import Trace

    if not (0 < scale < float("inf")):  # also refuses NaN
        raise InputError(f"must be a positive number, got {scale:g}", option="--scale")
    if peak_rps is not None:
        if traces:
            raise InputError("give --trace or --peak-rps, not both", option="--peak-rps")
        if not (0 < peak_rps < float("inf")):
            raise InputError(f"must be positive, got {peak_rps:g}", option="--peak-rps")
        intervals = max(1, int(CONSTANT_LOAD_S // interval_s))
        counts = [round(peak_rps * scale * interval_s)] * intervals
        return Trace(f"steady {peak_rps * scale:g} rps", "constant", None, interval_s, _int_array(counts))
    if not traces:
        raise InputError("give a traffic trace (--trace FILE, or a bundled trace's name such as azure_llm_2023_code)", option="--trace")
    found = [trace_file(path) for path in traces]
    paths = found if len(found) > 1 else found[0]
    trace = load_trace(paths, format=format, function=function, app=app, top=top, time_column=time_column)
    return trace.scaled(scale, seed=seed) if scale != 1.0 else trace


def trace_file(path: Path) -> Path:
    """A trace file, or a bundled trace named by its short name (`azure_llm_2023_code`)."""
    from themis.data import BUNDLED_TRACES, bundled_trace

    if not Path(path).exists() and str(path) in BUNDLED_TRACES:
        return bundled_trace(str(path))
    return Path(path)


def _int_array(values: list[int]):  # noqa: ANN202 - numpy imported lazily
    import numpy as np

    return np.asarray(values, dtype=np.int64)


def load_service(
    profiles: Sequence[Path] | None,
    *,
    pipeline: Path | None = None,
    model: str | None = None,
    stages: Sequence[str] | None = None,
    settings: Settings,
    allow_unstable: bool = False,
) -> list[tuple[Stage, list[LatencyModel]]]:
    """The service's stages with their latency models: from `--pipeline`, from `--profile`
    files, or (neither given) from the newest profiles in the profile store, saying which.
    Refuses models that stand on unstable or contended cells unless `allow_unstable`."""
    from themis.planner.model.trust import require_trusted
    from themis.planner.optimise.pipeline import load_pipeline, stages_from_profiles

    if pipeline is not None:
        if profiles:
            raise InputError("give --profile or --pipeline, not both", option="--pipeline")
        service = load_pipeline(pipeline)
    else:
        model = model or settings.get("model")
        profiles = resolve_profiles(profiles, model=model, settings=settings)
        require_usable_profiles(profiles)
        service = stages_from_profiles(profiles, model, pipeline=stages)
    require_trusted(service, allow_unstable)
    return service


def resolve_profiles(profiles: Sequence[Path] | None, *, model: str | None, settings: Settings) -> list[Path]:
    """The `--profile` files given, or (none given) the newest stored ones of `model`, saying which on stderr."""
    from themis.cli import output
    from themis.profiler.store import newest_profiles

    if profiles:
        return list(profiles)
    found = newest_profiles(model or settings.get("model"))
    output.err_console.print(f"themis: using {', '.join(map(str, found))}; settings: {settings.describe()}", highlight=False, soft_wrap=True)
    return found


def require_usable_profiles(paths: Sequence[Path]) -> None:
    """Refuse, naming the file, a profile the latency model cannot stand on: no cells, no
    measured cell (every one `error` or `oom`), or a row with fewer than one core or a
    batch below one, or a latency that is not a positive number."""
    from themis.profiler.errors import ProfileFileError
    from themis.profiler.table import read_profile

    for path in paths:
        frame = read_profile(path)
        if frame.empty:
            raise ProfileFileError("holds no cells: measure it with `themis profile`", file=path)
        measured = frame[frame["status"].isin(("ok", "unstable", "contended"))]
        if measured.empty:
            counts = ", ".join(f"{n} {status}" for status, n in frame["status"].value_counts().items())
            raise ProfileFileError(f"has no measured cell ({counts}): nothing to plan with; measure it again", file=path)
        for column in ("cores", "batch_size"):
            bad = measured[~(measured[column] >= 1)]
            if not bad.empty:
                raise ProfileFileError(f"row {int(bad.index[0])}: {column} must be at least 1, got {bad[column].iloc[0]}", file=path)
        bad = measured[~(measured["p50_ms"] > 0) | ~(measured["p50_ms"] < float("inf"))]
        if not bad.empty:
            raise ProfileFileError(f"row {int(bad.index[0])}: p50_ms must be a positive number, got {float(bad['p50_ms'].iloc[0])}",
                                   file=path)


def fingerprint(trace: Trace) -> TraceFingerprint:
    """The traffic a plan is made on, as the plan records it (`Schedule.trace_fingerprint`)."""
    from themis.planner.model.serving import TraceFingerprint

    return TraceFingerprint.of_counts(trace.name, trace.counts)


def require_same_trace(schedule: Schedule, trace: Trace, plan_file: Path) -> None:
    """Refuse to replay a plan on traffic other than the traffic it was made on (a plan that
    records none, written before plans did, is taken on trust)."""
    planned = schedule.trace_fingerprint
    if planned is None:
        return
    given = fingerprint(trace)
    if given != planned:
        raise InputError(f"was planned on {planned.describe()}, not on the trace given, {given.describe()}: "
                         "simulate it on the trace (and --scale, --function, --top) it was planned on, or plan again", file=plan_file)
