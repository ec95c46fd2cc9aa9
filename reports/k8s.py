"""Kubernetes manifests from a plan (`themis plan --k8s DIR`): every file is one object,
so `kubectl apply -f DIR/` applies the folder (with KEDA installed). Per stage:

- `deployment-<stage>.yaml`: the Deployment, sized at the plan's steady allocation (the
  one it runs longest): CPU request = limit = cores, `BATCH_SIZE`, and `resizePolicy`
  CPU `NotRequired` so CPU is resized in place. It sets no `replicas`, which KEDA owns.
- `scaledobject-<stage>.yaml`: a KEDA ScaledObject whose cron triggers hold the plan's
  replica counts over a recurring day (or week), merged into the fewest windows
  (`k8s_recurrence`).
- `resize-schedule-<stage>.yaml` and `resize-cronjob-<stage>.yaml`, for a CPU stage whose
  cores change: a ConfigMap with the per-minute cores schedule and the resizer script
  (`resize_job`), and a CronJob that runs it every minute to patch pods through the
  `resize` subresource.
- `resizer-serviceaccount.yaml`, `resizer-role.yaml`, `resizer-rolebinding.yaml`: what the
  CronJob may do: read pods and patch `pods/resize`, in its own namespace only.

QoS: the pods are Burstable at every size. CPU request = limit (the cores the plan sized,
as the profile measured them), no memory limit, and every resize keeps request = limit,
so the class never changes (Kubernetes refuses a resize that would change it). Burstable
rather than Guaranteed because the kubelet's static CPU manager gives Guaranteed pods
with whole CPUs exclusive cores and refuses in-place CPU resizes of them (KEP-5554 lifts
this only from Kubernetes 1.36, as alpha); Burstable pods resize on any node.

A pure function of the plan JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from themis.common.atomic import write_text_atomic
from themis.common.errors import InputError
from themis.reports.k8s_recurrence import (
    Recurrence,
    minute_allocations,
    recurrence,
    replica_windows,
    replicas,
    steady_allocation,
)

CONTAINER = "model-server"
IMAGE = "REPLACE-ME/model-server:latest"
RESIZER_IMAGE = "python:3.13.5-slim-bookworm"
"""The Docker Official Python image, pinned: the resizer needs only the standard library."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "themis"}

Manifest = dict[str, Any]


CRONJOB_NAME_MAX = 52
"""A CronJob's name leaves 11 characters for the Jobs it names after itself."""


def k8s_name(text: str, limit: int = 63) -> str:
    """A DNS-1123 label (at most `limit` characters) from any stage name."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name or "stage")[:limit].rstrip("-")


def manifests(plan: dict[str, Any], *, app: str = "themis", image: str = IMAGE, resizer_image: str = RESIZER_IMAGE) -> dict[str, Manifest]:
    """File name -> one Kubernetes object, for every stage of the plan."""
    if not plan["steps"]:
        raise InputError("the plan has no steps: nothing to deploy", option="--k8s")
    rec = recurrence(plan)
    resizer = k8s_name(f"{app}-resizer")
    files: dict[str, Manifest] = {}
    for j, stage in enumerate(plan["stages"]):
        name = k8s_name(f"{app}-{stage['name']}")
        suffix = k8s_name(stage["name"])
        steady = steady_allocation(plan["steps"], j)
        per_minute = minute_allocations(plan["steps"], j, rec, steady)
        files[f"deployment-{suffix}.yaml"] = deployment(name, stage, steady, image, rec)
        files[f"scaledobject-{suffix}.yaml"] = scaled_object(name, per_minute, rec)
        schedule = resize_schedule(name, per_minute, rec)
        if schedule is not None:
            files[f"resize-schedule-{suffix}.yaml"] = config_map(name, schedule)
            files[f"resize-cronjob-{suffix}.yaml"] = cron_job(name, resizer, resizer_image)
    if any(doc["kind"] == "CronJob" for doc in files.values()):
        files["resizer-serviceaccount.yaml"] = service_account(resizer)
        files["resizer-role.yaml"] = role(resizer)
        files["resizer-rolebinding.yaml"] = role_binding(resizer)
    return files


def write_manifests(plan: dict[str, Any], directory: str | Path, **options: Any) -> list[Path]:
    """Write every object of `manifests` into `directory` (created if missing), atomically."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory ({exc.strerror})", option="--k8s", file=directory) from None
    return [write_text_atomic(directory / file_name, _yaml(doc)) for file_name, doc in manifests(plan, **options).items()]


def deployment(name: str, stage: dict[str, Any], steady: dict[str, Any], image: str, rec: Recurrence) -> Manifest:
    """The Deployment; new pods start at the size the steady allocation adds replicas at."""
    cores = steady["groups"][-1]["cores"]
    if steady.get("device", "cpu") == "cpu":
        resources: dict[str, Any] = {"requests": {"cpu": str(cores)}, "limits": {"cpu": str(cores)}}
    else:
        resources = {"limits": {"nvidia.com/gpu": str(cores)}}
    labels = {"app": name, **MANAGED_BY}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": {"themis/model": stage["model"], "themis/recurrence": rec.describe()}},
        "spec": {
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


def scaled_object(name: str, per_minute: list[dict[str, Any]], rec: Recurrence) -> Manifest:
    """Cron triggers for the replica windows; outside them KEDA holds `minReplicaCount`.

    The HPA's default 300 s scale-down stabilisation is switched off: the plan already
    keeps capacity until the load has stayed lower for its own hold time.
    """
    baseline, windows = replica_windows([replicas(a) for a in per_minute])
    triggers = [
        {
            "type": "cron",
            "name": f"from-{rec.clock(w.start).replace(' ', '-').replace(':', '').lower()}-x{w.replicas}",
            "metadata": {
                "timezone": "Etc/UTC",
                "start": rec.cron(w.start),
                "end": rec.cron(w.start + w.length),
                "desiredReplicas": str(w.replicas),
            },
        }
        for w in windows
    ]
    if not triggers:  # a constant replica count: one trigger (KEDA needs one) at that count
        triggers = [{"type": "cron", "name": "constant", "metadata": {
            "timezone": "Etc/UTC", "start": rec.cron(0), "end": rec.cron(rec.period_minutes - 1), "desiredReplicas": str(baseline)}}]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "labels": dict(MANAGED_BY), "annotations": {"themis/recurrence": rec.describe()}},
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": baseline,
            "maxReplicaCount": max(1, max(replicas(a) for a in per_minute)),
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}},
            "triggers": triggers,
        },
    }


def resize_schedule(name: str, per_minute: list[dict[str, Any]], rec: Recurrence) -> dict[str, Any] | None:
    """The resizer's schedule: each minute where the pods' sizes change, with the groups
    from then on; None for a GPU stage or one whose cores never change."""
    if any(a.get("device", "cpu") != "cpu" for a in per_minute):
        return None
    sizes = [[{"replicas": int(g["replicas"]), "cores": int(g["cores"])} for g in a["groups"] if g["replicas"]] for a in per_minute]
    if len({g["cores"] for groups in sizes for g in groups}) <= 1:
        return None
    changes = [
        {"minute": m, "at": rec.clock(m), "groups": groups}
        for m, groups in enumerate(sizes)
        if m == 0 or groups != sizes[m - 1]
    ]
    return {
        "schema_version": 1,
        "kind": "resize-schedule",
        "deployment": name,
        "container": CONTAINER,
        "selector": f"app={name}",
        "period": rec.period,
        "recurrence": rec.describe(),
        "changes": changes,
    }


def _resize_name(name: str) -> str:
    """Name of the resizer's ConfigMap, CronJob and pod label for Deployment `name`."""
    return k8s_name(f"{name[:CRONJOB_NAME_MAX - len('-resize')]}-resize", CRONJOB_NAME_MAX)


def config_map(name: str, schedule: dict[str, Any]) -> Manifest:
    script = (Path(__file__).with_name("resize_job.py")).read_text(encoding="utf-8")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": _resize_name(name), "labels": {"app": name, **MANAGED_BY}},
        "data": {"schedule.json": _schedule_json(schedule), "resize.py": script},
    }


def cron_job(name: str, service_account_name: str, image: str) -> Manifest:
    """Every minute, one short pod runs the resizer against the ConfigMap's schedule."""
    container = {
        "name": "resize",
        "image": image,
        "command": ["python3", "-B", "/themis/resize.py", "--schedule", "/themis/schedule.json"],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
        "volumeMounts": [{"name": "schedule", "mountPath": "/themis", "readOnly": True}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": _resize_name(name), "labels": {"app": name, **MANAGED_BY}},
        "spec": {
            "schedule": "* * * * *",
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 50,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": 55,
                    "ttlSecondsAfterFinished": 600,
                    "template": {
                        "metadata": {"labels": {"app": _resize_name(name), **MANAGED_BY}},
                        "spec": {
                            "serviceAccountName": service_account_name,
                            "restartPolicy": "Never",
                            "containers": [container],
                            "volumes": [{"name": "schedule", "configMap": {"name": _resize_name(name)}}],
                        },
                    },
                }
            },
        },
    }


def service_account(name: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "labels": dict(MANAGED_BY)}}


def role(name: str) -> Manifest:
    """Read pods (to find them and their sizes) and patch their `resize` subresource only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["get", "patch"]},
        ],
    }


def role_binding(name: str) -> Manifest:
    """Binds the Role to the ServiceAccount of the same namespace (a RoleBinding's
    ServiceAccount subject without a namespace means the binding's own)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name}],
    }


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no anchors for repeated labels, block style for scripts."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _str)


def _yaml(content: Manifest) -> str:
    return yaml.dump(content, Dumper=_Dumper, sort_keys=False, width=120)


def _schedule_json(schedule: dict[str, Any]) -> str:
    """JSON with one change per line, so the ConfigMap reads as a timetable."""
    head = {k: v for k, v in schedule.items() if k != "changes"}
    lines = [json.dumps(change, separators=(", ", ": ")) for change in schedule["changes"]]
    body = json.dumps(head, indent=1)[:-2]
    return body + ',\n "changes": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
