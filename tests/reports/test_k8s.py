"""`themis plan --k8s` manifests from the golden plans (tests/data/report/README.md): a
dateless day of the Azure Functions 2019 trace and the dated hour of the Azure LLM trace.

Every file must be one Kubernetes object that validates: built-in kinds with
kubernetes-validate (strict), the KEDA ScaledObject against KEDA's published CRD schema
(`k8s_checks`). Then the objects must do what the plan says: KEDA's cron triggers,
evaluated the way KEDA does (the highest active trigger, else minReplicaCount), give the
plan's replica count at every minute of the recurring day, and the resize schedule gives
its cores."""

from __future__ import annotations

import collections
import copy
import itertools
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml
from k8s_checks import qos_class, validate

from themis.reports.k8s import RESIZER_IMAGE, manifests, write_manifests
from themis.reports.resize_job import groups_at, resize_patch

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "report"
BUILT_IN = {"Deployment", "ConfigMap", "CronJob", "ServiceAccount", "Role", "RoleBinding"}


@pytest.fixture(scope="module")
def day_plan() -> dict:
    """Undated: 1,440 one-minute steps of the Functions 2019 day (x3), with in-place resizes."""
    return json.loads((GOLDEN / "plan.json").read_text())


@pytest.fixture(scope="module")
def hour_plan() -> dict:
    """Dated: 58 one-minute steps from 2023-11-16 18:17:03 UTC (the LLM trace x2)."""
    return json.loads((GOLDEN / "plan_llm.json").read_text())


@pytest.fixture(scope="module")
def written(day_plan, tmp_path_factory) -> dict[str, dict]:
    directory = tmp_path_factory.mktemp("k8s")
    write_manifests(day_plan, directory)
    docs = {}
    for path in sorted(directory.iterdir()):
        (doc,) = list(yaml.safe_load_all(path.read_text()))  # one object per file
        docs[path.name] = doc
    return docs


def keda_replicas(scaled_object: dict, period_minutes: int) -> list[int]:
    """Replicas KEDA asks for at every minute of the period: the highest active cron
    trigger, or minReplicaCount when none is active."""
    spec = scaled_object["spec"]
    out = []
    windows = [(cron_minute(t["metadata"]["start"]), cron_minute(t["metadata"]["end"]), int(t["metadata"]["desiredReplicas"]))
               for t in spec["triggers"]]
    for minute in range(period_minutes):
        active = [r for start, end, r in windows if (minute - start) % period_minutes < (end - start) % period_minutes]
        out.append(min(max([spec["minReplicaCount"], *active]), spec["maxReplicaCount"]))
    return out


def cron_minute(cron: str) -> int:
    """Minute of the period of a `m h * * dow` cron line (dow `*`: a daily one)."""
    minute, hour, day_of_month, month, weekday = cron.split()
    assert day_of_month == "*" and month == "*", f"{cron!r} is pinned to a date"
    return (0 if weekday == "*" else int(weekday) * 1440) + int(hour) * 60 + int(minute)


def replicas(allocation: dict) -> int:
    return sum(g["replicas"] for g in allocation["groups"])


def test_every_file_is_one_valid_kubernetes_object(written) -> None:
    assert {doc["kind"] for doc in written.values()} == BUILT_IN | {"ScaledObject"}
    for name, doc in written.items():
        validate(doc)
        if doc["kind"] != "ScaledObject":
            assert doc["kind"] in BUILT_IN, name


def test_the_scaled_object_check_refuses_what_keda_would() -> None:
    """The CRD check can fail: a misspelt field, a missing one, and min > max are refused."""
    plan = json.loads((GOLDEN / "plan_llm.json").read_text())
    good = manifests(plan)["scaledobject-resnet18.yaml"]
    validate(good)
    misspelt = copy.deepcopy(good)
    misspelt["spec"]["minReplicas"] = misspelt["spec"].pop("minReplicaCount")
    no_triggers = copy.deepcopy(good)
    no_triggers["spec"]["triggers"] = []
    for bad in (misspelt, no_triggers):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)
    upside_down = copy.deepcopy(good)
    upside_down["spec"]["minReplicaCount"] = upside_down["spec"]["maxReplicaCount"] + 1
    with pytest.raises(AssertionError, match="minReplicaCount"):
        validate(upside_down)


def test_keda_holds_the_plans_replicas_at_every_minute_of_the_day(written, day_plan) -> None:
    assert len(day_plan["steps"]) == 1440 and day_plan["trace_start"] is None
    scaled = written["scaledobject-resnet18.yaml"]
    wanted = [replicas(step["stages"][0]) for step in day_plan["steps"]]
    assert keda_replicas(scaled, 1440) == wanted
    assert len(scaled["spec"]["triggers"]) == fewest_windows(wanted) < 100
    assert all(t["metadata"]["start"].split()[2:] == ["*", "*", "*"] for t in scaled["spec"]["triggers"])


def fewest_windows(levels: list[int]) -> int:
    """One window per (level v above the minimum, circular run of minutes >= v holding a v):
    the least any set of max-combined windows can do (brute-forced in test_k8s_recurrence)."""
    count = 0
    for level in set(levels) - {min(levels)}:
        origin = next(i for i, value in enumerate(levels) if value < level)
        rotated = levels[origin:] + levels[:origin]
        count += sum(1 for above, run in itertools.groupby(rotated, key=lambda v: v >= level) if above and level in list(run))
    return count


def test_a_dated_plan_recurs_daily_from_its_own_time_of_day(hour_plan) -> None:
    """No date in any cron line; the plan's t = 0 falls on its UTC start rounded down to the
    minute (18:17), each one-minute step runs its replica count in its own minute from
    there, and the rest of the day runs the plan's steady allocation."""
    scaled = manifests(hour_plan)["scaledobject-resnet18.yaml"]
    per_minute = keda_replicas(scaled, 1440)
    start = datetime.fromisoformat(hour_plan["trace_start"]).replace(tzinfo=timezone.utc)
    first = start.hour * 60 + start.minute
    assert first == 18 * 60 + 17
    covered = set()
    for step in hour_plan["steps"]:
        minute = first + int(step["t_start_s"] // 60)
        covered.add(minute)
        assert per_minute[minute] == replicas(step["stages"][0]), minute
    steady = collections.Counter(replicas(s["stages"][0]) for s in hour_plan["steps"]).most_common(1)[0][0]
    assert {per_minute[m] for m in range(1440) if m not in covered} == {steady}
    assert "2023-11-16T18:17:03" in scaled["metadata"]["annotations"]["themis/recurrence"]


def test_a_week_long_dated_plan_recurs_weekly_and_an_undated_one_daily(hour_plan) -> None:
    """Eight dated days (Monday 2024-01-01 on) with 3 replicas on Saturdays and 2 otherwise:
    one weekly trigger for Saturday. The same steps undated fold onto one day (the most
    capacity per minute wins): 3 replicas all day, and no invented date anywhere."""
    template = hour_plan["steps"][0]["stages"][0]
    steps = []
    for minute in range(8 * 1440):
        day = minute // 1440
        count = 3 if day == 5 else 2
        allocation = dict(template, groups=[{"replicas": count, "cores": 1}], capacity_rps=10.0 * count)
        steps.append({"t_start_s": 60.0 * minute, "t_end_s": 60.0 * (minute + 1), "forecast_rps": 1.0, "stages": [allocation]})
    week = dict(hour_plan, steps=steps, trace_start="2024-01-01T00:00:00+00:00")
    (trigger,) = manifests(week)["scaledobject-resnet18.yaml"]["spec"]["triggers"]
    assert (trigger["metadata"]["start"], trigger["metadata"]["end"], trigger["metadata"]["desiredReplicas"]) == \
        ("0 0 * * 6", "0 0 * * 0", "3")
    undated = manifests(dict(week, trace_start=None))
    scaled = undated["scaledobject-resnet18.yaml"]
    assert keda_replicas(scaled, 1440) == [3] * 1440
    text = json.dumps(undated)
    assert "2024" not in text and "01-01" not in text and "00:00 UTC" in scaled["metadata"]["annotations"]["themis/recurrence"]


def test_the_deployment_resizes_cpu_in_place_and_keeps_its_qos_at_every_size(written) -> None:
    deployment = written["deployment-resnet18.yaml"]
    template = deployment["spec"]["template"]["spec"]
    (container,) = template["containers"]
    assert {"resourceName": "cpu", "restartPolicy": "NotRequired"} in container["resizePolicy"]
    assert "replicas" not in deployment["spec"]  # KEDA owns the count; an apply must not reset it
    assert qos_class(template) == "Burstable"
    schedule = json.loads(written["resize-schedule-resnet18.yaml"]["data"]["schedule.json"])
    sizes = {g["cores"] for change in schedule["changes"] for g in change["groups"]}
    assert len(sizes) > 1, "the golden day resizes"
    for cores in sizes:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": copy.deepcopy(template)}
        (patched,) = resize_patch(container["name"], cores)["spec"]["containers"]
        pod["spec"]["containers"][0]["resources"] = patched["resources"]
        validate(pod)
        assert qos_class(pod["spec"]) == qos_class(template)
        assert pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] == str(cores)


def test_the_resize_schedule_gives_each_minute_the_plans_groups(written, day_plan) -> None:
    schedule = json.loads(written["resize-schedule-resnet18.yaml"]["data"]["schedule.json"])
    assert schedule["period"] == "daily" and schedule["container"] == "model-server"
    for minute, step in enumerate(day_plan["steps"]):
        wanted = [{"replicas": g["replicas"], "cores": g["cores"]} for g in step["stages"][0]["groups"] if g["replicas"]]
        assert groups_at(schedule, minute) == wanted, minute


def test_the_cronjob_runs_the_resizer_with_rights_only_to_resize_pods(written) -> None:
    cron = written["resize-cronjob-resnet18.yaml"]
    config = written["resize-schedule-resnet18.yaml"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert cron["spec"]["schedule"] == "* * * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert container["image"] == RESIZER_IMAGE and ":" in RESIZER_IMAGE and not RESIZER_IMAGE.endswith(":latest")
    assert pod["volumes"][0]["configMap"]["name"] == config["metadata"]["name"]
    assert set(config["data"]) == {"schedule.json", "resize.py"}
    compile(config["data"]["resize.py"], "resize.py", "exec")
    account = written["resizer-serviceaccount.yaml"]["metadata"]["name"]
    assert pod["serviceAccountName"] == account
    rules = {(tuple(r["resources"]), tuple(r["verbs"])) for r in written["resizer-role.yaml"]["rules"]}
    assert rules == {(("pods",), ("get", "list")), (("pods/resize",), ("get", "patch"))}
    binding = written["resizer-rolebinding.yaml"]
    assert binding["roleRef"]["name"] == written["resizer-role.yaml"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]


def test_a_plan_whose_cores_never_change_needs_no_resizer(hour_plan) -> None:
    flat = copy.deepcopy(hour_plan)
    for step in flat["steps"]:
        step["stages"][0]["groups"] = [{"replicas": replicas(step["stages"][0]), "cores": 2}]
    files = manifests(flat)
    assert sorted(files) == ["deployment-resnet18.yaml", "scaledobject-resnet18.yaml"]
    for doc in files.values():
        validate(doc)


def test_long_stage_names_make_valid_names(hour_plan) -> None:
    """Names are DNS labels; a CronJob's at most 52 characters (its Jobs append 11)."""
    plan = copy.deepcopy(hour_plan)
    plan["stages"][0]["name"] = "Image Classification / ResNet-18 (int8, AVX-512) for the EU-West shop front"
    files = manifests(plan)
    for doc in files.values():
        validate(doc)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", doc["metadata"]["name"]), doc["metadata"]["name"]
    (cron,) = [d for d in files.values() if d["kind"] == "CronJob"]
    assert len(cron["metadata"]["name"]) <= 52
    label = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["app"]
    assert len(label) <= 63


def test_manifests_are_a_pure_function_of_the_plan(day_plan) -> None:
    assert manifests(day_plan) == manifests(copy.deepcopy(day_plan))
