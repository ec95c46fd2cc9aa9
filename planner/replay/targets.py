"""What a replay is aimed at, built from the command's options and checked.

- `url_template`: the requests for `--url` (a body template file, or the v2 protocol).
- `serve_settings`: the reference server for `--serve` (one model per plan stage, its
  CPUs, and the batch sizes each stage must warm up).
- `profile_cpu_limit`: whether the profiles were measured on pinned cores or under a CPU
  quota (`themis profile --cpu-limit`); the server holds its replicas the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from themis.planner.model.serving import Schedule
from themis.planner.replay.errors import ReplayInputError
from themis.planner.replay.server import PIN, QUOTA, StageModel
from themis.planner.replay.session import ServeSettings
from themis.planner.replay.templates import PROTOCOLS, RequestTemplate, file_template, protocol_template
from themis.profiler.models import DTYPES, resolve_model
from themis.sample_models import SAMPLE_MODELS


def url_template(
    url: str,
    *,
    protocol: str | None,
    body_template: Path | None,
    model: str | None,
    input_name: str,
    input_shape: tuple[int, ...] | None,
    dtype: str,
) -> RequestTemplate:
    """The requests for `--url`: exactly one of `protocol` and `body_template`."""
    if (protocol is None) == (body_template is None):
        raise ReplayInputError(f"give --protocol ({' or '.join(PROTOCOLS)}) or --body-template FILE, one of the two", option="--url")
    shape = input_shape or (SAMPLE_MODELS[model].input_shape if model in SAMPLE_MODELS else None)
    if body_template is not None:
        return file_template(url, body_template, shape or (1,), dtype)
    if shape is None:
        raise ReplayInputError("give the shape of one input item (e.g. 3x224x224) for the v2 protocol", option="--input-shape")
    return protocol_template(url, protocol or "", model or "", shape, dtype, input_name)


def serve_settings(
    schedule: Schedule,
    models: Sequence[str],
    *,
    input_shape: tuple[int, ...] | None,
    dtype: str,
    cpus: Sequence[int],
    available: Sequence[int],
    cpu_limit: str = PIN,
) -> ServeSettings:
    """One served model per stage of the plan, in order, each named as the plan names it."""
    if len(models) != len(schedule.stages):
        names = ", ".join(s.model for s in schedule.stages)
        message = f"the plan has {len(schedule.stages)} stage(s) ({names}); give --serve once per stage, in order"
        raise ReplayInputError(message, option="--serve")
    if dtype not in DTYPES:
        raise ReplayInputError(f"unknown dtype {dtype!r} for a served model; use one of {', '.join(DTYPES)}", option="--dtype")
    unknown = sorted(set(cpus) - set(available))
    if unknown:
        raise ReplayInputError(f"CPU {unknown[0]} is not available here (available: {','.join(map(str, available))})", option="--cpus")
    stages = []
    for j, (reference, stage) in enumerate(zip(models, schedule.stages)):
        spec = resolve_model(reference, input_shape if j == 0 else None)
        if spec.name != stage.model:
            raise ReplayInputError(f"the plan's stage {stage.name!r} runs model {stage.model!r}, not {spec.name!r}", option="--serve")
        if any(a.device != "cpu" for step in schedule.steps for a in step.stages[j : j + 1]):
            raise ReplayInputError(f"stage {stage.name!r} is planned on a GPU; the reference server runs CPU replicas", option="--plan")
        max_batch = max(step.stages[j].batch for step in schedule.steps)
        stages.append(StageModel(spec, dtype, max_batch))
    return ServeSettings(tuple(stages), tuple(sorted(set(cpus))), cpu_limit=cpu_limit)


def profile_cpu_limit(profiles: Sequence[pd.DataFrame], paths: Sequence[Path]) -> str:
    """pin or quota: how the profiles' CPU cells were measured (their `cpu_limit` column).
    Profiles measured both ways cannot say how to run the replicas."""
    limits = {str(v) for frame in profiles for v in frame.loc[frame["device_kind"] == "cpu", "cpu_limit"]}
    if len(limits) > 1:
        raise ReplayInputError(
            f"the profiles were measured under different CPU limits ({', '.join(sorted(limits))}); give profiles measured one way",
            option="--profile", file=paths[0] if paths else None,
        )
    return QUOTA if limits == {QUOTA} else PIN


def parse_cpu_ids(text: str) -> tuple[int, ...]:
    """'1', '0,1' or '2-5' (CPU ids as `taskset -c` takes them) -> sorted ids."""
    ids: set[int] = set()
    for part in str(text).split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or (dash and int(high) < int(low)):
            raise ReplayInputError(f"{text!r} is not a list of CPU ids such as 1 or 0,1 or 2-5", option="--cpus")
        ids.update(range(int(low), int(high or low) + 1))
    return tuple(sorted(ids))


def default_replica_cpus(available: Sequence[int]) -> tuple[int, ...]:
    """All CPUs but the lowest (left to the front end and the replayer), or the only one."""
    cpus = sorted(available)
    return tuple(cpus[1:] if len(cpus) > 1 else cpus)
