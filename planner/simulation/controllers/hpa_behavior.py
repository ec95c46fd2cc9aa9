"""The `behavior` stanza of a Kubernetes HorizontalPodAutoscaler (autoscaling/v2), optional.

Without it the HPA follows its default rules (`hpa`); with it, scale-up and scale-down
each follow their own `ScalingRules`: a stabilisation window, rate policies (`Pods` or
`Percent` per `periodSeconds`) and which policy wins (`selectPolicy`). Unset fields take
Kubernetes' defaults (`SetDefaults_HorizontalPodAutoscalerBehavior` in
pkg/apis/autoscaling/v2/defaults.go), so `HpaBehavior()` is the v2 default behaviour:

    scaleUp:   stabilizationWindowSeconds 0, selectPolicy Max,
               policies [Pods 4 per 15 s, Percent 100 per 15 s]
    scaleDown: stabilizationWindowSeconds: the controller's window (300 s), selectPolicy Max,
               policies [Percent 100 per 15 s]

`load_hpa_behavior` reads it from YAML in the Kubernetes shape (`--hpa-behavior FILE`): a
whole HorizontalPodAutoscaler manifest, a mapping with a `behavior` key, or the stanza
itself, validated as the Kubernetes API server does (`validateScalingRules`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from themis.common.errors import first_line
from themis.common.files import read_text
from themis.planner.errors import PlanInputError

POLICY_TYPES = ("Pods", "Percent")
SELECT_POLICIES = ("Max", "Min", "Disabled")
MAX_PERIOD_S = 1800
"""Kubernetes' `MaxPeriodSeconds`: a policy's period is 1..1800 s."""
MAX_STABILISATION_WINDOW_S = 3600
"""Kubernetes' `MaxStabilizationWindowSeconds`."""
RULE_KEYS = {"stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance"}
POLICY_KEYS = {"type", "value", "periodSeconds"}


@dataclass(frozen=True)
class ScalingPolicy:
    """One `HPAScalingPolicy`: change by at most `value` pods (or percent) per `period_s`."""

    type: str
    value: int
    period_s: int


@dataclass(frozen=True)
class ScalingRules:
    """One direction's `HPAScalingRules`.

    `stabilisation_window_s` None means the controller's window (scale-down only; Kubernetes
    leaves it unset and the controller fills in `--horizontal-pod-autoscaler-downscale-
    stabilization`). `tolerance` None means the controller's (0.1).
    """

    stabilisation_window_s: float | None
    select_policy: str
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None

    def longest_period_s(self) -> int:
        return max((p.period_s for p in self.policies), default=0)


SCALE_UP_DEFAULT = ScalingRules(0.0, "Max", (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)))
SCALE_DOWN_DEFAULT = ScalingRules(None, "Max", (ScalingPolicy("Percent", 100, 15),))


@dataclass(frozen=True)
class HpaBehavior:
    """`spec.behavior`: the rules for scaling up and for scaling down."""

    scale_up: ScalingRules = field(default_factory=lambda: SCALE_UP_DEFAULT)
    scale_down: ScalingRules = field(default_factory=lambda: SCALE_DOWN_DEFAULT)

    def to_dict(self) -> dict[str, Any]:
        """The stanza in the Kubernetes shape (what `load_hpa_behavior` reads back)."""
        return {"scaleUp": _rules_dict(self.scale_up), "scaleDown": _rules_dict(self.scale_down)}


def load_hpa_behavior(path: str | Path) -> HpaBehavior:
    """Read a `behavior` stanza from a YAML file (see the module docstring for the shapes)."""
    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise PlanInputError(f"not valid YAML ({first_line(exc)})", file=path) from None
    return behavior_from_dict(data, source=path)


def behavior_from_dict(data: object, *, source: str | Path = "behavior") -> HpaBehavior:
    """`HpaBehavior` from the parsed YAML; an invalid field names its path and what is wrong."""
    where = "behavior"
    if isinstance(data, dict) and isinstance(data.get("spec"), dict):
        data, where = data["spec"].get("behavior"), "spec.behavior"
    elif isinstance(data, dict) and "behavior" in data:
        data = data["behavior"]
    if not isinstance(data, dict) or not data or set(data) - {"scaleUp", "scaleDown"}:
        raise PlanInputError(f"{where}: expected a mapping with scaleUp and/or scaleDown", file=source)
    return HpaBehavior(
        _rules(data.get("scaleUp"), SCALE_UP_DEFAULT, f"{where}.scaleUp", source),
        _rules(data.get("scaleDown"), SCALE_DOWN_DEFAULT, f"{where}.scaleDown", source),
    )


def _rules(data: object, default: ScalingRules, where: str, source: str | Path) -> ScalingRules:
    """Kubernetes' `copyHPAScalingRules`: the fields given replace the default's."""
    if data is None:
        return default
    if not isinstance(data, dict):
        raise PlanInputError(f"{where}: expected a mapping", file=source)
    data = {key: value for key, value in data.items() if value is not None}  # null: unset, as in Kubernetes
    unknown = set(data) - RULE_KEYS
    if unknown:
        raise PlanInputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", file=source)
    window = default.stabilisation_window_s
    if "stabilizationWindowSeconds" in data:
        window = data["stabilizationWindowSeconds"]
        if not (_is_int(window) and 0 <= window <= MAX_STABILISATION_WINDOW_S):
            raise PlanInputError(f"{where}.stabilizationWindowSeconds: must be a whole number of seconds in 0..3600", file=source)
    select = data.get("selectPolicy", default.select_policy)
    if select not in SELECT_POLICIES:
        raise PlanInputError(f"{where}.selectPolicy: must be one of {', '.join(SELECT_POLICIES)}, not {select!r}", file=source)
    policies = default.policies
    if "policies" in data:
        if not isinstance(data["policies"], list) or not data["policies"]:
            raise PlanInputError(f"{where}.policies: must specify at least one policy", file=source)
        policies = tuple(_policy(p, f"{where}.policies[{i}]", source) for i, p in enumerate(data["policies"]))
    tolerance = default.tolerance
    if "tolerance" in data:
        tolerance = data["tolerance"]
        if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) and 0 <= tolerance < float("inf")):
            raise PlanInputError(f"{where}.tolerance: must be a number >= 0", file=source)
    return ScalingRules(
        None if window is None else float(window), select, policies, None if tolerance is None else float(tolerance)
    )


def _policy(data: object, where: str, source: str | Path) -> ScalingPolicy:
    if not isinstance(data, dict) or set(data) != POLICY_KEYS:
        raise PlanInputError(f"{where}: expected type, value and periodSeconds", file=source)
    if data["type"] not in POLICY_TYPES:
        raise PlanInputError(f"{where}.type: must be Pods or Percent, not {data['type']!r}", file=source)
    if not (_is_int(data["value"]) and data["value"] > 0):
        raise PlanInputError(f"{where}.value: must be a whole number greater than zero", file=source)
    if not (_is_int(data["periodSeconds"]) and 0 < data["periodSeconds"] <= MAX_PERIOD_S):
        raise PlanInputError(f"{where}.periodSeconds: must be a whole number of seconds in 1..1800", file=source)
    return ScalingPolicy(data["type"], int(data["value"]), int(data["periodSeconds"]))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rules_dict(rules: ScalingRules) -> dict[str, Any]:
    out: dict[str, Any] = {
        "selectPolicy": rules.select_policy,
        "policies": [{"type": p.type, "value": p.value, "periodSeconds": p.period_s} for p in rules.policies],
    }
    if rules.stabilisation_window_s is not None:
        out["stabilizationWindowSeconds"] = int(rules.stabilisation_window_s)
    if rules.tolerance is not None:
        out["tolerance"] = rules.tolerance
    return out
