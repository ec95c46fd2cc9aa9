"""The in-place CPU resizer that `themis plan --k8s` ships in a ConfigMap (as `resize.py`).

A CronJob runs it once a minute in the stock `python` image, so it uses the standard
library only and talks to the Kubernetes API directly (with the pod's service account,
or through `kubectl proxy` with `--api`). Each run is stateless: it finds the minute of
the recurring period in the schedule, works out the cores every running pod of the
Deployment should have, and patches the `resize` subresource of each pod that differs.
Pods started since (KEDA scale-ups start at the Deployment template's size) are
therefore corrected within a minute, and a missed run is repaired by the next one.

Which pod gets which size: the minute's groups are taken in the plan's order (the
planner lists running replicas before the ones it adds), and the oldest pods take them
first. Pods beyond the plan's count (a scale-down KEDA has not finished) take the last
group's size. CPU requests always equal limits, so a resize never changes the pod's QoS.

    python3 resize.py --schedule schedule.json [--api http://127.0.0.1:8001] [--at 2024-01-01T12:00:00Z] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DAY_MINUTES = 1_440


def minute_of_period(moment: datetime, period: str) -> int:
    """Minute of the day, or of the week from Sunday 00:00 UTC (as cron counts weekdays)."""
    moment = moment.astimezone(timezone.utc)
    minute = moment.hour * 60 + moment.minute
    if period == "weekly":
        minute += ((moment.weekday() + 1) % 7) * DAY_MINUTES
    return minute


def groups_at(schedule: dict[str, Any], minute: int) -> list[dict[str, int]]:
    """The groups in force at `minute`: the last change at or before it (the period wraps)."""
    changes = schedule["changes"]
    current = changes[-1]
    for change in changes:
        if change["minute"] <= minute:
            current = change
    return current["groups"]


def cpu_cores(quantity: str | int | float | None) -> float | None:
    """A Kubernetes CPU quantity (`2`, `1.5`, `500m`) in cores."""
    if quantity is None:
        return None
    text = str(quantity)
    return float(text[:-1]) / 1000.0 if text.endswith("m") else float(text)


def desired_cores(pods: list[dict[str, Any]], groups: list[dict[str, int]]) -> list[tuple[str, int]]:
    """(pod name, cores) for every running pod, oldest first, sizes in the groups' order."""
    sizes = [int(g["cores"]) for g in groups for _ in range(int(g["replicas"]))]
    if not sizes:
        return []
    live = [p for p in pods if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
    live.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
    return [(pod["metadata"]["name"], sizes[min(i, len(sizes) - 1)]) for i, pod in enumerate(live)]


def resize_patch(container: str, cores: int) -> dict[str, Any]:
    cpu = str(cores)
    return {"spec": {"containers": [{"name": container, "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]}}


def current_cores(pod: dict[str, Any], container: str) -> float | None:
    for spec in pod["spec"]["containers"]:
        if spec["name"] == container:
            return cpu_cores(spec.get("resources", {}).get("requests", {}).get("cpu"))
    return None


class Api:
    """The few API calls the resizer makes, in-cluster (service account) or via `kubectl proxy`."""

    def __init__(self, base_url: str | None) -> None:
        self.headers: dict[str, str] = {}
        self.context: ssl.SSLContext | None = None
        if base_url is None:
            host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
            base_url = f"https://{host}:{port}"
            self.headers["Authorization"] = "Bearer " + (SERVICE_ACCOUNT / "token").read_text().strip()
            self.context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
        self.base_url = base_url.rstrip("/")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers, Accept="application/json")
        if body is not None:
            headers["Content-Type"] = "application/strategic-merge-patch+json"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=20, context=self.context) as response:
            return json.loads(response.read() or b"{}")

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"labelSelector": selector})
        return self._call("GET", f"/api/v1/namespaces/{namespace}/pods?{query}")["items"]

    def resize(self, namespace: str, pod: str, patch: dict[str, Any]) -> None:
        self._call("PATCH", f"/api/v1/namespaces/{namespace}/pods/{urllib.parse.quote(pod)}/resize", patch)


def run(schedule: dict[str, Any], api: Api, namespace: str, now: datetime, *, dry_run: bool = False) -> int:
    """Resize every pod that differs from the schedule; return the number of failed patches."""
    minute = minute_of_period(now, schedule["period"])
    groups = groups_at(schedule, minute)
    container = schedule["container"]
    pods = {p["metadata"]["name"]: p for p in api.pods(namespace, schedule["selector"])}
    failures = 0
    for name, cores in desired_cores(list(pods.values()), groups):
        if current_cores(pods[name], container) == float(cores):
            continue
        action = "would resize" if dry_run else "resize"
        print(f"{now.isoformat()} minute {minute}: {action} {namespace}/{name} to {cores} CPU", flush=True)
        if dry_run:
            continue
        try:
            api.resize(namespace, name, resize_patch(container, cores))
        except OSError as exc:  # urllib's HTTPError and URLError are OSErrors
            print(f"resize of {namespace}/{name} failed: {exc}", file=sys.stderr, flush=True)
            failures += 1
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Resize a Deployment's pods in place to a themis schedule.")
    parser.add_argument("--schedule", required=True, type=Path, help="schedule.json from the ConfigMap")
    parser.add_argument("--api", help="API server URL, e.g. http://127.0.0.1:8001 from `kubectl proxy` (default: in-cluster)")
    parser.add_argument("--namespace", help="default: the service account's namespace")
    parser.add_argument("--at", help="act as if it were this UTC time (ISO 8601), e.g. to preview with --dry-run")
    parser.add_argument("--dry-run", action="store_true", help="print the resizes without making them")
    args = parser.parse_args(argv)
    schedule = json.loads(args.schedule.read_text())
    namespace = args.namespace or (SERVICE_ACCOUNT / "namespace").read_text().strip()
    now = datetime.fromisoformat(args.at.replace("Z", "+00:00")) if args.at else datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return 1 if run(schedule, Api(args.api), namespace, now, dry_run=args.dry_run) else 0


if __name__ == "__main__":
    sys.exit(main())
