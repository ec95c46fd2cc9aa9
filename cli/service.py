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
    from themis.planner.model.serving import Stage
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
) -> Trace:
    """The trace(s) given (selected, then scaled by `scale`), or a steady `peak_rps` load."""
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
        raise InputError("give a traffic trace (--trace FILE) or a load (--peak-rps N)", option="--trace")
    paths = list(traces) if len(traces) > 1 else traces[0]
    trace = load_trace(paths, function=function, top=top)
    return trace.scaled(scale, seed=seed) if scale != 1.0 else trace


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
    from themis.cli import output
    from themis.planner.model.trust import require_trusted
    from themis.planner.optimise.pipeline import load_pipeline, stages_from_profiles
    from themis.profiler.store import newest_profiles

    if pipeline is not None:
        if profiles:
            raise InputError("give --profile or --pipeline, not both", option="--pipeline")
        service = load_pipeline(pipeline)
    else:
        model = model or settings.get("model")
        if not profiles:
            profiles = newest_profiles(model)
            output.err_console.print(
                f"themis: using {', '.join(map(str, profiles))}; settings: {settings.describe()}", highlight=False, soft_wrap=True
            )
        service = stages_from_profiles(profiles, model, pipeline=stages)
    require_trusted(service, allow_unstable)
    return service
