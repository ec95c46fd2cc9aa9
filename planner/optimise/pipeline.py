"""Pipeline descriptions (`--pipeline pipeline.yaml`): the stages of a service, in order.

    stages:
      - name: detect              # unique stage name
        model: small_cnn          # model name inside the profile tables
        profiles: [profiles/small_cnn_cpu.parquet]   # relative to this file
        visit_ratio: 1.0          # requests reaching this stage per incoming request

Several profiles for one stage (one per machine or GPU type) merge into one candidate set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from themis.common.errors import first_line
from themis.common.files import read_text
from themis.planner.errors import PlanInputError
from themis.planner.model.latency import LatencyModel, load_latency_candidates
from themis.planner.model.serving import Stage

STAGE_KEYS = {"name", "model", "profiles", "visit_ratio"}


def load_pipeline(path: str | Path) -> list[tuple[Stage, list[LatencyModel]]]:
    """Stages with their fitted latency models (one per device), in pipeline order."""
    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise PlanInputError(f"not valid YAML ({first_line(exc)})", file=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list) or not data["stages"]:
        raise PlanInputError("expected a mapping with a non-empty `stages` list", file=path)
    stages, seen = [], set()
    for i, entry in enumerate(data["stages"], start=1):
        stages.append(_stage(entry, i, path, seen))
    return stages


def _stage(entry: object, index: int, path: Path, seen: set[str]) -> tuple[Stage, list[LatencyModel]]:
    where = f"stage {index}"
    if not isinstance(entry, dict):
        raise PlanInputError(f"{where}: expected a mapping", file=path)
    unknown = set(entry) - STAGE_KEYS
    if unknown:
        raise PlanInputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", file=path)
    model = entry.get("model")
    profiles = entry.get("profiles")
    if not isinstance(model, str) or not model:
        raise PlanInputError(f"{where}: `model` must be a model name", file=path)
    if isinstance(profiles, str):
        profiles = [profiles]
    if not isinstance(profiles, list) or not profiles or not all(isinstance(p, str) for p in profiles):
        raise PlanInputError(f"{where}: `profiles` must list profile files", file=path)
    name = str(entry.get("name", model))
    if name in seen:
        raise PlanInputError(f"{where}: duplicate stage name {name!r}", file=path)
    seen.add(name)
    try:
        ratio = float(entry.get("visit_ratio", 1.0))
    except (TypeError, ValueError):
        raise PlanInputError(f"{where}: `visit_ratio` must be a number", file=path) from None
    if not ratio > 0:
        raise PlanInputError(f"{where}: `visit_ratio` must be positive", file=path)
    candidates = load_latency_candidates([path.parent / p for p in profiles])
    if model not in candidates:
        raise PlanInputError(f"{where}: model {model!r} is not in its profiles (found {', '.join(sorted(candidates))})", file=path)
    return Stage(name, model, ratio), candidates[model]


def stages_from_profiles(
    paths: Sequence[str | Path], model: str | None = None, *, pipeline: Sequence[str] | None = None
) -> list[tuple[Stage, list[LatencyModel]]]:
    """Stages from profile files: the one model they hold (or `model`), or with `pipeline`
    the named models in that order (one stage each, every request visiting all)."""
    candidates = load_latency_candidates(paths)
    names = list(pipeline) if pipeline else [model] if model else []
    if not names:
        if len(candidates) > 1:
            raise PlanInputError(f"the profiles hold several models ({', '.join(sorted(candidates))}); pick one", option="--model")
        names = [next(iter(candidates))]
    missing = [n for n in names if n not in candidates]
    if missing:
        option = "--stages" if pipeline else "--model"
        raise PlanInputError(f"no profile for model {missing[0]!r} (found {', '.join(sorted(candidates))})", option=option)
    return [(Stage(name, name), candidates[name]) for name in names]
