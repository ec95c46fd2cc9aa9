"""What plan, compare and check read for an LLM service: the TTFT/TPOT SLO, the replica types
(LLM profiles, measured or published) and the LLM planning settings.

A command plans an LLM service when its SLO names `ttft`/`tpot` (`--slo ttft=500ms,tpot=50ms`)
or a `--profile` is an LLM profile (Parquet `themis.kind = llm_profile`, or
`published:MODEL@GPU` for a profile built from the bundled published GPU measurements).
The planner is imported inside the functions, so `--help` stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from themis.cli.options import parse_duration_ms, parse_duration_s, parse_int_list, parse_number, parse_prices, parse_whole_number
from themis.cli.settings import DEFAULT_TEXT, Settings
from themis.common.errors import InputError

if TYPE_CHECKING:
    from themis.planner.gates.check import CapacityBudget
    from themis.planner.gates.verdict import Verdict
    from themis.planner.llm.plan import LlmPlanConfig
    from themis.planner.llm.service import LlmSlo
    from themis.planner.llm.simulate import ReplicaType
    from themis.planner.traffic.trace import Trace

PUBLISHED_PREFIX = "published:"
"""`--profile published:Llama-2-7b-hf@a100`: the profile `themis.planner.llm.published` builds."""
SLO_PART = re.compile(r"\s*(ttft|tpot)\s*=\s*(\S+?)\s*")

KV_CAPACITY_OPTION = typer.Option(
    None, "--kv-capacity-tokens", help="LLM: KV-cache tokens per replica.", show_default="the profile's (GPU), else 131072 (CPU)"
)
BATCHED_TOKENS_OPTION = typer.Option(2048, "--max-num-batched-tokens", help="LLM: tokens per iteration (vLLM's chunked-prefill budget).")
MIX_WINDOW_OPTION = typer.Option(
    None, "--mix-window", help="LLM: how often the token mix (and capacity) is re-estimated, e.g. 10m.", show_default="10m"
)


def names_llm_slo(text: str | None) -> bool:
    """Whether an SLO text is an LLM one (`ttft=...`, `tpot=...`)."""
    return bool(text) and bool(re.search(r"\b(ttft|tpot)\b", str(text).lower()))


def is_llm_service(slo_text: str | None, profiles: Sequence[Path] | None) -> bool:
    """An LLM service: the SLO names ttft/tpot, or a profile is an LLM profile."""
    return names_llm_slo(slo_text) or any(_is_llm_profile(p) for p in profiles or ())


def _is_llm_profile(path: Path) -> bool:
    if str(path).startswith(PUBLISHED_PREFIX):
        return True
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, ValueError, TypeError):  # not a readable Parquet file: the batch reader names the problem
        return False
    return meta.get(b"themis.kind") == b"llm_profile"


def parse_llm_slo(text: str, percentile: float) -> LlmSlo:
    """`ttft=500ms,tpot=50ms` (durations as everywhere; a bare number is ms) -> `LlmSlo`."""
    from themis.planner.llm.service import LlmSlo

    values: dict[str, float] = {}
    for part in str(text).split(","):
        match = SLO_PART.fullmatch(part.lower())
        if match is None or match.group(1) in values:
            raise InputError(f"cannot read {text!r} as an LLM SLO: give ttft=DURATION,tpot=DURATION once each (e.g. ttft=500ms,tpot=50ms)",
                             option="--slo")
        values[match.group(1)] = parse_duration_ms(match.group(2), "--slo")
    missing = [name for name in ("ttft", "tpot") if name not in values]
    if missing:
        raise InputError(f"an LLM SLO needs both ttft and tpot; {' and '.join(missing)} missing in {text!r}", option="--slo")
    if not all(v > 0 for v in values.values()):
        raise InputError(f"ttft and tpot must be positive durations, got {text!r}", option="--slo")
    if not 0 < percentile < 100:
        raise InputError("must be between 0 and 100 (exclusive)", option="--percentile")
    return LlmSlo(ttft_ms=values["ttft"], tpot_ms=values["tpot"], percentile=percentile)


def load_replica_types(
    profiles: Sequence[Path],
    *,
    model: str | None,
    kv_capacity_tokens: int | None,
    max_num_batched_tokens: int,
    cores: str | None,
    node_cores: int | None,
) -> list[ReplicaType]:
    """Every (model, device, cores) of the LLM profiles as a replica type, for one model.

    CPU types are the core counts measured (optionally limited by `--cores` and the node
    size); every GPU profile is one type. No `--profile`: the newest stored profiles. The KV cache is `--kv-capacity-tokens`, else the
    profile's own (published GPU profiles size it from the GPU's memory), else the CPU default.
    """
    from themis.planner.llm.iteration import fit_iteration_models
    from themis.planner.llm.published import published_profile
    from themis.planner.llm.service import ServerConfig
    from themis.planner.llm.simulate import ReplicaType
    from themis.planner.model.config import DEFAULT_CPU_KV_CAPACITY_TOKENS
    from themis.profiler.llm_table import read_llm_profile

    if not profiles:  # the newest stored profiles of the model, as for batch services
        from themis.cli import output
        from themis.profiler.store import newest_profiles

        profiles = newest_profiles(model)
        output.err_console.print(f"themis: using {', '.join(map(str, profiles))}", highlight=False, soft_wrap=True)
    allowed = set(parse_int_list(cores, "--cores")) if cores else None
    types: list[ReplicaType] = []
    for path in profiles:
        text = str(path)
        if text.startswith(PUBLISHED_PREFIX):
            name, _, gpu = text[len(PUBLISHED_PREFIX):].partition("@")
            frame = published_profile(name, gpu)
        else:
            frame = read_llm_profile(path)
        footer_kv = frame.attrs.get("llm", {}).get("kv_capacity_tokens")
        for fitted in fit_iteration_models(frame):
            too_big = node_cores and fitted.cores > node_cores
            if fitted.device_kind == "cpu" and ((allowed is not None and fitted.cores not in allowed) or too_big):
                continue
            if model is not None and fitted.model != model:
                continue
            kv = kv_capacity_tokens or footer_kv or (DEFAULT_CPU_KV_CAPACITY_TOKENS if fitted.device_kind == "cpu" else None)
            if kv is None:
                raise InputError(f"the profile does not size the KV cache of {fitted.label}; give --kv-capacity-tokens", file=path)
            types.append(ReplicaType(fitted, ServerConfig(kv_capacity_tokens=int(kv), max_num_batched_tokens=max_num_batched_tokens)))
    models = sorted({t.model.model for t in types})
    if len(models) > 1:
        raise InputError(f"the profiles hold several models ({', '.join(models)}); pick one with --model", option="--model")
    if not types:
        raise InputError("no replica type left to plan with (check --model, --cores and --node-cores)", option="--profile")
    return types


def llm_plan_config(
    *,
    slo: str | None,
    percentile: str | float | None,
    interval: str | None,
    cold_start: str | None,
    max_replicas: str | int | None,
    headroom: str | float | None,
    forecast: str | None,
    price: str | None,
    mix_window: str | None,
    seed: int,
    settings: Settings,
) -> LlmPlanConfig:
    """The LLM planner's settings: each option given, else its themis.toml value, else the default."""
    from themis.planner.llm.plan import LlmPlanConfig
    from themis.planner.model.config import DEFAULT_LLM_MIX_WINDOW_S
    from themis.planner.model.cost import Prices

    def pick(value: object, key: str) -> str | None:
        if value is not None:
            return str(value)
        return settings.get(key) if settings.get(key) is not None else DEFAULT_TEXT.get(key)

    core_price, gpu_prices = parse_prices(pick(price, "price"))
    config = LlmPlanConfig(
        slo=parse_llm_slo(pick(slo, "slo") or "", parse_number(pick(percentile, "percentile"), "--percentile")),
        interval_s=parse_duration_s(pick(interval, "interval"), "--interval"),
        cold_start_s=parse_duration_s(pick(cold_start, "cold_start"), "--cold-start"),
        max_replicas=parse_whole_number(pick(max_replicas, "max_replicas"), "--max-replicas"),
        headroom=parse_number(pick(headroom, "headroom"), "--headroom"),
        forecast=str(pick(forecast, "forecast")),
        prices=Prices(core_price, gpu_prices),
        mix_window_s=parse_duration_s(mix_window, "--mix-window") if mix_window else DEFAULT_LLM_MIX_WINDOW_S,
        seed=seed,
    )
    config.validate()
    return config


def llm_verdict(
    profiles: Sequence[Path],
    load: Trace | None,
    budget: CapacityBudget,
    *,
    settings: Settings,
    slo: str | None,
    percentile: float | None,
    model: str | None,
    policy: str,
    interval: str | None,
    cold_start: str | None,
    cores: str | None,
    node_cores: int | None,
    forecast: str | None,
    price: str | None,
    kv_capacity_tokens: int | None,
    max_num_batched_tokens: int,
    mix_window: str | None,
    regression: bool,
    peak_rps: float | None,
) -> Verdict:
    """`themis check`'s capacity gate for an LLM service (`themis.planner.llm.check`) on `load`, the
    trace read with the shared traffic options."""
    from themis.planner.gates.verdict import Verdict
    from themis.planner.llm.check import check_llm_capacity

    if regression:
        raise InputError("the regression gate compares batch profiles; an LLM service has the capacity gate only", option="--baseline")
    if peak_rps is not None:
        raise InputError("an LLM service is checked on a trace with tokens, not on a steady rate", option="--peak-rps")
    if load is None:
        raise InputError("give a traffic trace with tokens (--trace FILE)", option="--trace")
    config = llm_plan_config(slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, max_replicas=None, headroom=None,
                             forecast=forecast, price=price, mix_window=mix_window, seed=0, settings=settings)
    types = load_replica_types(profiles, model=model, kv_capacity_tokens=kv_capacity_tokens,
                               max_num_batched_tokens=max_num_batched_tokens, cores=cores, node_cores=node_cores)
    context = {"trace": load.name, "slo": config.slo.to_dict(), "policy": policy, "profile": ", ".join(map(str, profiles))}
    return Verdict(checks=check_llm_capacity(load, types, config, budget, policy=policy), context=context)
