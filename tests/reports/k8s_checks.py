"""How the tests check Kubernetes objects: built-in kinds with kubernetes-validate (strict),
the KEDA ScaledObject against KEDA's published CRD schema (vendored in tests/data/k8s),
and Kubernetes's own rule for a pod's QoS class."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

K8S_DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"
VERSION = kubernetes_validate.latest_version()
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml"}
KEDA_CEL_RULES = {
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)",
}
"""The CEL rules of the vendored ScaledObject CRD, each checked below in Python (jsonschema
cannot run CEL); a new rule upstream fails the test until it is checked too."""


def validate(doc: dict[str, Any]) -> None:
    """Raise if `doc` is not a valid object: strict schema, unknown fields refused."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in CUSTOM_KINDS:
        kubernetes_validate.validate(doc, VERSION, strict=True)
        return
    validator = jsonschema.Draft4Validator(crd_schema(CUSTOM_KINDS[key], doc["apiVersion"].split("/")[1]))
    validator.validate(doc)
    # the CRD schema says only `metadata: {type: object}`: the API server checks ObjectMeta itself
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}, VERSION, strict=True)
    _check_keda_cel_rules(doc["spec"])


@cache
def crd_schema(file_name: str, version: str) -> dict[str, Any]:
    """`openAPIV3Schema` of one served version of a vendored CRD, made strict the way the
    API server's strict field validation (kubectl's default) is: unknown fields are errors."""
    crd = yaml.safe_load((K8S_DATA / file_name).read_text())
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    return _refuse_unknown_fields(copy.deepcopy(entry["schema"]["openAPIV3Schema"]))


def _refuse_unknown_fields(schema: Any) -> Any:
    if isinstance(schema, dict):
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for value in schema.values():
            _refuse_unknown_fields(value)
    elif isinstance(schema, list):
        for value in schema:
            _refuse_unknown_fields(value)
    return schema


def _check_keda_cel_rules(spec: dict[str, Any]) -> None:
    schema = yaml.safe_load((K8S_DATA / "keda.sh_scaledobjects.yaml").read_text())["spec"]["versions"][0]
    validations = schema["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
    normalised = {" ".join(v["rule"].split()) for v in validations}
    assert normalised == KEDA_CEL_RULES, f"the CRD has CEL rules this test does not check: {normalised - KEDA_CEL_RULES}"
    if "minReplicaCount" in spec:
        assert spec["minReplicaCount"] <= spec.get("maxReplicaCount", 100), "minReplicaCount must be <= maxReplicaCount"


def qos_class(pod_spec: dict[str, Any]) -> str:
    """Kubernetes's QoS class of a pod (only CPU and memory count; unset requests default
    to the limits): Guaranteed, Burstable or BestEffort."""
    containers = pod_spec.get("containers", []) + pod_spec.get("initContainers", [])
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources", {})
        limits = {k: v for k, v in resources.get("limits", {}).items() if k in ("cpu", "memory")}
        requests = {**limits, **{k: v for k, v in resources.get("requests", {}).items() if k in ("cpu", "memory")}}
        any_set = any_set or bool(limits or requests)
        if set(limits) != {"cpu", "memory"} or any(str(requests[k]) != str(limits[k]) for k in limits):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
