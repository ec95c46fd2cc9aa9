"""Kubernetes manifests from a plan (`themis plan --k8s DIR`), one set per stage:

- `deployment-<stage>.yaml`: the Deployment with the steady-state allocation (the one the
  plan runs longest): replicas, CPU requests = limits = cores, the batch size as
  `BATCH_SIZE`, and `resizePolicy: NotRequired` so CPU can be resized in place.
- `scaledobject-<stage>.yaml`: a KEDA ScaledObject whose cron triggers hold the plan's
  replica count in each time window (KEDA takes the highest active trigger; cron has
  minute resolution, so each minute gets the most replicas any step in it asks for).
- `resize-<stage>.yaml` and `resize-<stage>.sh`: the in-place vertical steps, as patches
  for the pod `resize` subresource (`kubectl patch pod P --subresource resize`) with the
  time each applies, and a script that applies them on schedule.

Times come from the plan's `trace_start`, and the cron triggers fire on those dates. A
plan without calendar time is anchored at midnight UTC (of 2000-01-01, stated in every
file); when it spans at most a day its cron triggers recur daily, since such a plan
describes a typical day. Pure function of the plan JSON.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from themis.common.atomic import write_text_atomic
from themis.common.errors import InputError

CONTAINER = "model-server"
IMAGE = "REPLACE-ME/model-server:latest"
DEFAULT_ANCHOR = datetime(2000, 1, 1, tzinfo=timezone.utc)
DAY_S = 86_400.0


def k8s_name(text: str) -> str:
    """A DNS-1123 label from any stage name."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name or "stage")[:63].rstrip("-")


def manifests(plan: dict[str, Any], *, app: str = "themis", image: str = IMAGE) -> dict[str, Any]:
    """File name -> content (a dict for YAML manifests, a str for scripts), per stage."""
    anchor = _anchor(plan)
    daily = not plan.get("trace_start") and bool(plan["steps"]) and plan["steps"][-1]["t_end_s"] <= DAY_S
    files: dict[str, Any] = {}
    for j, stage in enumerate(plan["stages"]):
        name = k8s_name(f"{app}-{stage['name']}")
        allocations = [step["stages"][j] for step in plan["steps"]]
        steady = _steady(plan["steps"], j)
        files[f"deployment-{k8s_name(stage['name'])}.yaml"] = deployment(name, stage, steady, image)
        files[f"scaledobject-{k8s_name(stage['name'])}.yaml"] = scaled_object(name, plan["steps"], j, anchor, allocations, daily=daily)
        patches = resize_steps(plan["steps"], j, anchor)
        files[f"resize-{k8s_name(stage['name'])}.yaml"] = {"deployment": name, "container": CONTAINER, "steps": patches}
        files[f"resize-{k8s_name(stage['name'])}.sh"] = resize_script(name, patches)
    return files


def write_manifests(plan: dict[str, Any], directory: str | Path, **options: Any) -> list[Path]:
    """Write every file of `manifests` into `directory` (created if missing), atomically."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory ({exc.strerror})", option="--k8s", file=directory) from None
    written = []
    for file_name, content in manifests(plan, **options).items():
        text = content if isinstance(content, str) else _yaml(content)
        written.append(write_text_atomic(directory / file_name, text))
    return written


def deployment(name: str, stage: dict[str, Any], steady: dict[str, Any], image: str) -> dict[str, Any]:
    cores = steady["groups"][0]["cores"]
    replicas = sum(g["replicas"] for g in steady["groups"])
    resources: dict[str, Any] = {"requests": {"cpu": str(cores)}, "limits": {"cpu": str(cores)}}
    if steady.get("device", "cpu") != "cpu":
        resources = {"limits": {"nvidia.com/gpu": str(cores)}}
    labels = {"app": name, "app.kubernetes.io/managed-by": "themis"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": {"themis/model": stage["model"]}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": image,
                            "env": [
                                {"name": "MODEL", "value": stage["model"]},
                                {"name": "BATCH_SIZE", "value": str(steady["batch"])},
                            ],
                            "resources": resources,
                            "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                        }
                    ]
                },
            },
        },
    }


def scaled_object(
    name: str, steps: list[dict[str, Any]], j: int, anchor: datetime, allocations: list[dict[str, Any]], *, daily: bool = False
) -> dict[str, Any]:
    windows = replica_windows(steps, j)
    triggers = []
    for start_s, end_s, replicas in windows:
        start, end = anchor + timedelta(seconds=start_s), anchor + timedelta(seconds=end_s)
        triggers.append(
            {
                "type": "cron",
                "name": f"t{int(start_s)}",
                "metadata": {
                    "timezone": "Etc/UTC",
                    "start": _cron(start, daily=daily),
                    "end": _cron(end, daily=daily),
                    "desiredReplicas": str(replicas),
                },
            }
        )
    counts = [sum(g["replicas"] for g in a["groups"]) for a in allocations]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "annotations": {"themis/anchor": anchor.isoformat()}},
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": min(counts),
            "maxReplicaCount": max(counts),
            "triggers": triggers,
        },
    }


def replica_windows(steps: list[dict[str, Any]], j: int) -> list[tuple[float, float, int]]:
    """(start_s, end_s, replicas) at minute resolution: each minute takes the most replicas
    asked for inside it; equal neighbours merge."""
    per_minute: dict[int, int] = {}
    for step in steps:
        replicas = sum(g["replicas"] for g in step["stages"][j]["groups"])
        first, last = int(step["t_start_s"] // 60), int((step["t_end_s"] - 1e-9) // 60)
        for minute in range(first, last + 1):
            per_minute[minute] = max(per_minute.get(minute, 0), replicas)
    windows: list[list[Any]] = []
    for minute in sorted(per_minute):
        replicas = per_minute[minute]
        if windows and windows[-1][2] == replicas and windows[-1][1] == minute * 60:
            windows[-1][1] = (minute + 1) * 60
        else:
            windows.append([minute * 60, (minute + 1) * 60, replicas])
    return [(float(a), float(b), int(r)) for a, b, r in windows]


def resize_steps(steps: list[dict[str, Any]], j: int, anchor: datetime) -> list[dict[str, Any]]:
    """The steps where running replicas change cores in place (the first group's cores
    differ from the previous step's), with the patch for the pod `resize` subresource."""
    out = []
    previous = None
    for step in steps:
        cores = step["stages"][j]["groups"][0]["cores"]
        if previous is not None and cores != previous:
            out.append(
                {
                    "t_start_s": step["t_start_s"],
                    "at": (anchor + timedelta(seconds=step["t_start_s"])).isoformat(),
                    "cores": cores,
                    "patch": resize_patch(cores),
                }
            )
        previous = cores
    return out


def resize_patch(cores: int) -> dict[str, Any]:
    cpu = str(cores)
    return {"spec": {"containers": [{"name": CONTAINER, "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]}}


def resize_script(name: str, patches: list[dict[str, Any]]) -> str:
    """A bash script applying each resize at its offset from when the script starts."""
    lines = [
        "#!/usr/bin/env bash",
        f"# In-place CPU resizes for deployment {name}, written by `themis plan --k8s`.",
        "# Start it at the plan's t = 0; it sleeps until each step. Needs Kubernetes >= 1.33",
        "# (InPlacePodVerticalScaling) and kubectl with `--subresource resize`.",
        "set -euo pipefail",
        "start=$(date +%s)",
    ]
    for p in patches:
        lines += [
            f"# t = {p['t_start_s']:g} s ({p['at']}): {p['cores']} cores per replica",
            f"sleep $(( {int(p['t_start_s'])} - ($(date +%s) - start) > 0 ? {int(p['t_start_s'])} - ($(date +%s) - start) : 0 ))",
            f"for pod in $(kubectl get pods -l app={name} -o name); do",
            f"  kubectl patch \"$pod\" --subresource resize --patch '{json.dumps(p['patch'], separators=(',', ':'))}'",
            "done",
        ]
    return "\n".join(lines) + "\n"


def _steady(steps: list[dict[str, Any]], j: int) -> dict[str, Any]:
    """The allocation the plan runs for the most time."""
    durations: dict[str, float] = {}
    first: dict[str, dict[str, Any]] = {}
    for step in steps:
        a = step["stages"][j]
        key = json.dumps([a["groups"], a["batch"], a.get("device", "cpu")])
        durations[key] = durations.get(key, 0.0) + step["t_end_s"] - step["t_start_s"]
        first.setdefault(key, a)
    return first[max(durations, key=lambda k: durations[k])]


def _anchor(plan: dict[str, Any]) -> datetime:
    start = plan.get("trace_start")
    if not start:
        return DEFAULT_ANCHOR
    moment = datetime.fromisoformat(start)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _cron(moment: datetime, *, daily: bool = False) -> str:
    """`minute hour day-of-month month *`: on the plan's dates, or every day when `daily`."""
    moment = moment.astimezone(timezone.utc)
    if daily:
        return f"{moment.minute} {moment.hour} * * *"
    return f"{moment.minute} {moment.hour} {moment.day} {moment.month} *"


def _yaml(content: dict[str, Any]) -> str:
    return yaml.safe_dump(content, sort_keys=False)
