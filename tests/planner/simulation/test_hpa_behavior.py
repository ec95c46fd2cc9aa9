"""The `behavior` stanza: Kubernetes' defaulting, the YAML shapes it is read from, and the
validation the API server applies (one line naming the field)."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from themis.common.errors import InputError
from themis.planner.errors import PlanInputError
from themis.planner.simulation.controllers.hpa_behavior import (
    SCALE_DOWN_DEFAULT,
    SCALE_UP_DEFAULT,
    HpaBehavior,
    ScalingPolicy,
    ScalingRules,
    behavior_from_dict,
    load_hpa_behavior,
)

MANIFEST = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 60
      policies:
      - {type: Pods, value: 2, periodSeconds: 30}
"""


def test_a_whole_manifest_and_kubernetes_defaults(tmp_path):
    """GenerateHPAScaleUpRules / GenerateHPAScaleDownRules: what is not given is defaulted."""
    path = tmp_path / "hpa.yaml"
    path.write_text(MANIFEST)
    behavior = load_hpa_behavior(path)
    assert behavior.scale_up == SCALE_UP_DEFAULT == ScalingRules(
        0.0, "Max", (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
    )
    assert behavior.scale_down == ScalingRules(60.0, "Max", (ScalingPolicy("Pods", 2, 30),))
    assert SCALE_DOWN_DEFAULT.stabilisation_window_s is None  # the controller's window (300 s)


@pytest.mark.parametrize("text", ["behavior:\n  scaleUp: {selectPolicy: Disabled}\n", "scaleUp: {selectPolicy: Disabled}\n"])
def test_the_stanza_alone_or_under_a_behavior_key(tmp_path, text):
    path = tmp_path / "b.yaml"
    path.write_text(text)
    behavior = load_hpa_behavior(path)
    assert behavior.scale_up.select_policy == "Disabled" and behavior.scale_up.policies == SCALE_UP_DEFAULT.policies
    assert behavior.scale_down == SCALE_DOWN_DEFAULT


@pytest.mark.parametrize(
    "stanza, message",
    [
        ({"scaleUp": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 15}]}},
         "scaleUp.policies[0].type: must be Pods or Percent"),
        ({"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}, "scaleUp.policies[0].value"),
        ({"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}}, "periodSeconds: must be"),
        ({"scaleDown": {"policies": []}}, "scaleDown.policies: must specify at least one policy"),
        ({"scaleDown": {"stabilizationWindowSeconds": 3601}}, "stabilizationWindowSeconds"),
        ({"scaleDown": {"selectPolicy": "Average"}}, "selectPolicy: must be one of Max, Min, Disabled"),
        ({"scaleDown": {"tolerance": -0.1}}, "tolerance"),
        ({"scaleSideways": {}}, "expected a mapping with scaleUp and/or scaleDown"),
        ({"scaleUp": {"delay": 3}}, "unknown key(s) delay"),
    ],
)
def test_invalid_fields_name_the_field(tmp_path, stanza, message):
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({"behavior": stanza}))
    with pytest.raises(PlanInputError) as raised:
        load_hpa_behavior(path)
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_not_yaml_is_bad_input(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("scaleUp: [unclosed")
    with pytest.raises(PlanInputError, match="not valid YAML"):
        load_hpa_behavior(path)


policies = st.lists(
    st.builds(ScalingPolicy, st.sampled_from(["Pods", "Percent"]), st.integers(1, 1000), st.integers(1, 1800)), min_size=1, max_size=3
).map(tuple)
scaling_rules = st.builds(
    ScalingRules,
    st.one_of(st.none(), st.integers(0, 3600).map(float)),
    st.sampled_from(["Max", "Min", "Disabled"]),
    policies,
    st.one_of(st.none(), st.floats(0, 1)),
)


@given(up=scaling_rules, down=scaling_rules)
def test_round_trip_through_the_kubernetes_shape(up, down):
    if up.stabilisation_window_s is None:  # scale-up always has a window once defaulted
        up = ScalingRules(0.0, up.select_policy, up.policies, up.tolerance)
    behavior = HpaBehavior(up, down)
    assert behavior_from_dict(yaml.safe_load(yaml.safe_dump(behavior.to_dict()))) == behavior


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(
        ["scaleUp", "scaleDown", "policies", "type", "value", "periodSeconds", "selectPolicy", "stabilizationWindowSeconds",
         "tolerance", "behavior", "spec", "Pods", "Percent"]), children, max_size=4),
    max_leaves=12,
)


@given(data=json_values)
def test_anything_else_is_one_input_error(data):
    """Arbitrary YAML values either read as a behaviour or raise an InputError, nothing else."""
    try:
        behavior_from_dict(data)
    except InputError:
        pass
