"""Settings of a plan and of a simulation, and the one place each default is written.

The command-line options, `themis.toml`, the demo and the Python API all take their
defaults from the constants below, so a default changes in one line. Nothing here reads
the machine the planner runs on: a plan depends on its inputs only (SPEC, "Plans do not
depend on the machine that computes them"), so the node size is a setting with a fixed
default, not this host's CPU count.

This module sits at the bottom of the planner's import graph: it imports no other planner
module except the errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from themis.planner.errors import PlanInputError
from themis.planner.model.cost import Prices

DEFAULT_PERCENTILE = 99.0
DEFAULT_INTERVAL_S = 60.0
DEFAULT_COLD_START_S = 30.0
"""SPEC: a replica asked for at t serves from t + cold_start_s."""
DEFAULT_RESIZE_S = 1.0
"""SPEC: an in-place resize asked for at t takes effect at t + resize_s."""
DEFAULT_MAX_REPLICAS = 64
DEFAULT_NODE_CORES = 16
"""The most cores one replica can be resized to: the target cluster's node size. A fixed,
documented default (a 16-vCPU node), never the planning machine's CPU count."""
DEFAULT_CORES = (1, 2, 4, 8, 16)
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
DEFAULT_HEADROOM = 1.0
DEFAULT_FORECAST = "auto"
DEFAULT_SCALE_DOWN_DELAY_S = 300.0
"""Hysteresis: planned capacity is released only after the load has been lower this long
(the Kubernetes HPA's default scale-down stabilisation window)."""
DEFAULT_WARMUP_S = 0.0
"""Violations and cost are counted from this time on (`--warmup`); every online policy
starts sized for the peak of [0, warm-up), or of the first interval when that is longer."""
DEFAULT_HPA_TARGET = 0.6
"""`hpa`: target average CPU utilisation (`--hpa-target`)."""
DEFAULT_NODE_MEMORY_MB = 65_536.0
"""Fleet planning: memory of the node type pods are packed onto (a 16-vCPU, 64 GiB node)."""
DEFAULT_NODE_PRICE_PER_HOUR = 0.0
"""Fleet planning: price of one node-hour (0: node-hours are reported, no node cost)."""
DEFAULT_SHARD_SERVICES = 100
"""Fleet planning: services per task. Planning one service-day takes 0.1-1 s, so a task runs for
tens of seconds, far above the ~10 ms under which Ray's guidance says tasks gain nothing."""
DEFAULT_SURGE_CHECK_S = 0.5
"""How often the `themis` runtime controller checks each stage between planned steps."""
DEFAULT_SURGE_RATE_WINDOW_S = 1.0
"""The `themis` runtime controller's arrival rate is counted over this window."""
DEFAULT_SURGE_CALM_S = 5.0
"""The `themis` runtime controller shrinks a layout, or returns to the plan, only once the
smaller one holds the highest rate of this many seconds (bursts do not make it flap)."""
DEFAULT_SERVICE = "median"
SERVICE_MODES = ("median", "sampled")
"""How the simulator draws a batch's service time: the profile's median, or a draw from
the measured distribution (min, percentiles, max)."""


@dataclass
class PlanConfig:
    """Everything a plan depends on besides the trace and the latency models."""

    slo_ms: float
    percentile: float = DEFAULT_PERCENTILE
    interval_s: float = DEFAULT_INTERVAL_S
    cold_start_s: float = DEFAULT_COLD_START_S
    resize_s: float = DEFAULT_RESIZE_S
    max_replicas: int = DEFAULT_MAX_REPLICAS
    node_cores: int = DEFAULT_NODE_CORES
    """The node size: the most cores one replica can be resized to."""
    cores: tuple[int, ...] = DEFAULT_CORES
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    headroom: float = DEFAULT_HEADROOM
    forecast: str = DEFAULT_FORECAST
    price_per_core_hour: float = 0.0
    price_per_gpu_hour: dict[str, float] = field(default_factory=dict)
    scale_down_delay_s: float = DEFAULT_SCALE_DOWN_DELAY_S
    warmup_s: float = DEFAULT_WARMUP_S
    """The opening allocation of every online policy is sized for the peak of [0, warmup_s)
    (at least the first interval); simulations count from warmup_s on (`SimConfig`)."""
    peak_window_s: float = 1.0
    """Capacity must carry the busiest window of this length inside each interval."""
    load_step: float = 0.01
    """Loads are rounded up to a geometric grid of this relative step (solve cache)."""
    latency_units: int = 200
    """Pipelines: the latency budget is discretised into SLO / latency_units steps."""
    horizontal_cores: int | None = None
    """`horizontal`: cores per replica (default: the cheapest over the trace)."""
    vertical_replicas: int | None = None
    """`vertical`: replicas (default: the fewest that carry the peak at the node's cores)."""

    @property
    def prices(self) -> Prices:
        return Prices(self.price_per_core_hour, self.price_per_gpu_hour)

    def allowed_cores(self) -> tuple[int, ...]:
        """The replica sizes the planner may use: `cores` that fit on a node."""
        return tuple(sorted(c for c in set(self.cores) if c <= self.node_cores))

    def validate(self) -> None:
        checks = [
            (self.slo_ms > 0, "--slo", "must be positive"),
            (0 < self.percentile < 100, "--percentile", "must be between 0 and 100 (exclusive)"),
            (self.interval_s > 0, "--interval", "must be positive"),
            (self.cold_start_s >= 0, "--cold-start", "must not be negative"),
            (self.resize_s >= 0, "--resize-delay", "must not be negative"),
            (self.warmup_s >= 0, "--warmup", "must not be negative"),
            (self.max_replicas >= 1, "--max-replicas", "must be at least 1"),
            (self.node_cores >= 1, "--node-cores", "must be at least 1"),
            (bool(self.cores) and min(self.cores) >= 1, "--cores", "must list positive core counts"),
            (bool(self.allowed_cores()), "--cores", f"no core count fits the node ({self.node_cores} cores)"),
            (bool(self.batch_sizes) and min(self.batch_sizes) >= 1, "--batch-sizes", "must list positive batch sizes"),
            (self.headroom >= 1.0, "--headroom", "must be at least 1.0"),
            (self.price_per_core_hour >= 0, "--price", "prices must not be negative"),
            (all(v >= 0 for v in self.price_per_gpu_hour.values()), "--price", "prices must not be negative"),
        ]
        for ok, option, message in checks:
            if not ok:
                raise PlanInputError(message, option=option)


@dataclass(frozen=True)
class SimConfig:
    """Delays, SLO and randomness of one simulation run."""

    slo_ms: float
    cold_start_s: float = DEFAULT_COLD_START_S
    resize_s: float = DEFAULT_RESIZE_S
    seed: int = 0
    service: str = DEFAULT_SERVICE
    horizon_s: float | None = None
    """End of the cost window; default: the last arrival (or the controller's horizon)."""
    warmup_s: float = DEFAULT_WARMUP_S
    """Start of the measured window: requests arriving before it are served but not counted,
    core-seconds and scale actions are counted from it."""

    def __post_init__(self) -> None:
        if self.service not in SERVICE_MODES:
            raise PlanInputError(f"service must be one of {', '.join(SERVICE_MODES)}, not {self.service!r}", option="--service")
        if self.warmup_s < 0:
            raise PlanInputError(f"must not be negative, got {self.warmup_s:g} s", option="--warmup")
        if self.cold_start_s < 0 or self.resize_s < 0 or self.slo_ms <= 0:
            raise PlanInputError("cold_start_s and resize_s must be >= 0 and slo_ms > 0")


# --- LLM services (themis.planner.llm): the defaults of LLM planning and comparison -------------
DEFAULT_LLM_MIX_WINDOW_S = 600.0
"""The token mix a replica's capacity is searched for is re-estimated every this long: online
policies use the previous window's requests, offline ones the window's own."""
MIN_LLM_MIX_REQUESTS = 100
"""A token mix holds at least this many requests (the latest ones before its window ends)."""
DEFAULT_LLM_CAPACITY_REQUESTS = 2000
"""Poisson arrivals simulated per probe of the capacity search (its p99 is the 20th worst)."""
DEFAULT_CPU_KV_CAPACITY_TOKENS = 131_072
"""KV cache of a CPU replica when the profile does not size it: its RAM holds plenty (1 GiB for
tiny_llm's 8 KiB a token); GPU profiles carry their own from the GPU's memory."""
DEFAULT_LLM_TYPE_SWITCH_SAVING = 0.1
"""`themis` moves an LLM service to another replica type only when that saves at least this
share of the cost (a type change is new replicas and a cold start, so small savings flap)."""
DEFAULT_LLM_HPA_WAITING_PER_REPLICA = 5.0
"""`hpa` on an LLM service: target requests waiting per replica (vLLM's `num_requests_waiting`),
the threshold common in vLLM KEDA/HPA set-ups."""
