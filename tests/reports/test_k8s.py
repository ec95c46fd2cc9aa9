"""Kubernetes manifests from a real plan (themis on the Azure LLM trace, golden resnet18
profile), validated with `kubernetes-validate`.

kubernetes-validate ships only the core Kubernetes schemas: for KEDA's ScaledObject (a
CRD) it raises `SchemaNotFoundError`, so that test checks KEDA's required structure
itself (scaleTargetRef.name, triggers with type and string metadata, cron fields). The
resize patches are partial pods: each is applied to the Deployment's pod template and the
resulting Pod is validated."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from themis.planner.model.config import PlanConfig
from themis.planner.model.latency import load_latency_models
from themis.planner.model.serving import Stage
from themis.planner.optimise.plan import plan
from themis.planner.traffic.loading import load_trace
from themis.reports.k8s import k8s_name, manifests, replica_windows, write_manifests

GOLDEN_PROFILES = Path(__file__).resolve().parents[1] / "data" / "profiles"

VERSION = kubernetes_validate.latest_version()


@pytest.fixture(scope="module")
def plan_dict(llm_trace_path) -> dict:
    model = load_latency_models([GOLDEN_PROFILES / "resnet18_cpu.parquet"])["resnet18"]
    trace = load_trace(llm_trace_path).scaled(2.0, seed=1)
    # a plan with in-place resizes between its steps: `vertical` resizes every interval
    # (a themis plan leaves surges to its runtime controller, so its steps rarely resize)
    config = PlanConfig(slo_ms=800.0, node_cores=16, forecast="last")
    return plan(trace, [(Stage("classify", "resnet18"), model)], config, "vertical").to_dict()


@pytest.fixture(scope="module")
def written(plan_dict, tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("k8s")
    return {p.name: p for p in write_manifests(plan_dict, directory)}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_deployment_validates_and_carries_the_steady_state(written, plan_dict) -> None:
    doc = load(written["deployment-classify.yaml"])
    kubernetes_validate.validate(doc, VERSION, strict=True)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    cores = container["resources"]["requests"]["cpu"]
    steady = [s["stages"][0] for s in plan_dict["steps"]
              if str(s["stages"][0]["groups"][0]["cores"]) == cores and sum(g["replicas"] for g in s["stages"][0]["groups"]) == doc["spec"]["replicas"]]
    assert steady  # the deployment's size is one the plan runs
    assert {"resourceName": "cpu", "restartPolicy": "NotRequired"} in container["resizePolicy"]


def test_scaled_object_has_kedas_required_structure(written, plan_dict) -> None:
    doc = load(written["scaledobject-classify.yaml"])
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(doc, VERSION, strict=True)  # a CRD: not in the schema set
    assert doc["apiVersion"] == "keda.sh/v1alpha1" and doc["kind"] == "ScaledObject"
    assert k8s_name(doc["metadata"]["name"]) == doc["metadata"]["name"]
    spec = doc["spec"]
    assert isinstance(spec["scaleTargetRef"]["name"], str)
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["triggers"]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "cron"
        meta = trigger["metadata"]
        assert set(meta) == {"timezone", "start", "end", "desiredReplicas"}
        assert all(isinstance(v, str) for v in meta.values())
        for cron in (meta["start"], meta["end"]):
            minute, hour, day, month, weekday = cron.split()
            assert 0 <= int(minute) < 60 and 0 <= int(hour) < 24 and 1 <= int(day) <= 31 and 1 <= int(month) <= 12 and weekday == "*"
        assert int(meta["desiredReplicas"]) >= 1


def test_replica_windows_cover_every_step(plan_dict) -> None:
    windows = replica_windows(plan_dict["steps"], 0)
    for step in plan_dict["steps"]:
        wanted = sum(g["replicas"] for g in step["stages"][0]["groups"])
        inside = [r for a, b, r in windows if a < step["t_end_s"] and b > step["t_start_s"]]
        assert inside and min(inside) >= wanted


def test_resize_patches_make_valid_pods(written, plan_dict) -> None:
    deployment = load(written["deployment-classify.yaml"])
    resize = load(written["resize-classify.yaml"])
    assert resize["steps"], "this plan has vertical steps"
    for step in resize["steps"]:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": copy.deepcopy(deployment["spec"]["template"]["spec"])}
        (patched,) = step["patch"]["spec"]["containers"]
        container = next(c for c in pod["spec"]["containers"] if c["name"] == patched["name"])
        container["resources"] = patched["resources"]
        kubernetes_validate.validate(pod, VERSION, strict=True)
        assert container["resources"]["limits"]["cpu"] == str(step["cores"])
    script = written["resize-classify.sh"].read_text()
    assert script.count("kubectl patch \"$pod\" --subresource resize") == len(resize["steps"])


def test_manifests_are_a_pure_function_of_the_plan(plan_dict) -> None:
    assert manifests(plan_dict) == manifests(copy.deepcopy(plan_dict))


def test_a_dateless_day_recurs_daily_and_a_dated_plan_keeps_its_dates() -> None:
    """The 2019 Functions day has no calendar date: its replica windows must fire every day."""
    from themis.data import bundled_trace
    from themis.planner.model.config import PlanConfig
    from themis.planner.optimise.pipeline import stages_from_profiles
    from themis.planner.optimise.plan import plan
    from themis.planner.traffic.loading import load_trace
    from themis.reports.k8s import manifests

    profile = Path(__file__).parents[1] / "data" / "profiles" / "resnet18_cpu.parquet"
    stages = stages_from_profiles([profile])
    config = PlanConfig(slo_ms=400.0, node_cores=4, forecast="last")
    dateless = plan(load_trace(bundled_trace("azure_functions_2019")).scaled(8), stages, config, "themis").to_dict()
    dated = plan(load_trace(bundled_trace("azure_llm_2023_code")), stages, config, "themis").to_dict()
    for data, day_fields in ((dateless, "* *"), (dated, "16 11")):
        triggers = manifests(data)["scaledobject-resnet18.yaml"]["spec"]["triggers"]
        assert triggers and all(t["metadata"]["start"].split()[2:4] == day_fields.split() for t in triggers)
