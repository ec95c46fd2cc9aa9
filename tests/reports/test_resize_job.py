"""The resizer script, exactly as `themis plan --k8s` ships it in its ConfigMap, run as a
process against `FakeApiServer`: a stand-in for the Kubernetes API server (as reached
through `kubectl proxy`), which cannot run here. It records every request and applies
each resize to its pods, so the test sees what a cluster would."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from themis.reports.k8s import manifests
from themis.reports.resize_job import cpu_cores, desired_cores, minute_of_period

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "report"
NAMESPACE = "serving"


class FakeApiServer:
    """Pods of one namespace: GET pods by an `app=` label selector, PATCH pods/NAME/resize."""

    def __init__(self, pods: list[dict], *, gone: frozenset[str] = frozenset()) -> None:
        self.pods = {p["metadata"]["name"]: p for p in pods}
        self.gone = gone
        """Pods still listed but deleted by the time they are patched (404)."""
        self.requests: list[tuple[str, str, str | None, dict | None]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlparse(self.path)
                api.requests.append(("GET", url.path, None, None))
                if url.path != f"/api/v1/namespaces/{NAMESPACE}/pods":
                    return self._send(404, {"kind": "Status", "code": 404})
                key, value = urllib.parse.parse_qs(url.query)["labelSelector"][0].split("=")
                items = [p for p in api.pods.values() if p["metadata"]["labels"].get(key) == value]
                self._send(200, {"kind": "PodList", "items": items})

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append(("PATCH", self.path, self.headers["Content-Type"], body))
                prefix, name = f"/api/v1/namespaces/{NAMESPACE}/pods/", self.path.rsplit("/", 2)[-2]
                if not (self.path.startswith(prefix) and self.path.endswith("/resize")) or name not in api.pods or name in api.gone:
                    return self._send(404, {"kind": "Status", "code": 404})
                (patch,) = body["spec"]["containers"]
                for container in api.pods[name]["spec"]["containers"]:
                    if container["name"] == patch["name"]:
                        container["resources"] = patch["resources"]
                self._send(200, api.pods[name])

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def patches(self) -> list[tuple[str, str, str]]:
        return [(path.split("/")[-2], ctype, body["spec"]["containers"][0]["resources"]["limits"]["cpu"])
                for method, path, ctype, body in self.requests if method == "PATCH"]


def pod(name: str, app: str, age_s: int, cores: str, phase: str = "Running", deleting: bool = False) -> dict:
    created = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=10_000 - age_s)
    metadata = {"name": name, "labels": {"app": app}, "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T03:00:00Z"
    resources = {"requests": {"cpu": cores}, "limits": {"cpu": cores}}
    return {"metadata": metadata, "spec": {"containers": [{"name": "model-server", "resources": resources}]},
            "status": {"phase": phase}}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> tuple[Path, dict]:
    """resize.py and schedule.json as the ConfigMap for the golden day holds them."""
    plan = json.loads((GOLDEN / "plan.json").read_text())
    config = manifests(plan)["resize-schedule-resnet18.yaml"]
    folder = tmp_path_factory.mktemp("configmap")
    for key, text in config["data"].items():
        (folder / key).write_text(text)
    return folder, json.loads(config["data"]["schedule.json"])


def run_resizer(folder: Path, api: FakeApiServer, at: datetime, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-B", str(folder / "resize.py"), "--schedule", str(folder / "schedule.json"), "--api", api.url,
         "--namespace", NAMESPACE, "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ"), *extra],
        capture_output=True, text=True, timeout=60,
    )


def test_it_resizes_the_oldest_pods_first_and_only_those_that_differ(shipped) -> None:
    folder, schedule = shipped
    change = next(c for c in schedule["changes"] if len(c["groups"]) == 2)  # a surge: running pods grow, new ones start small
    (big, small) = change["groups"]
    at = datetime(2026, 3, 2, tzinfo=timezone.utc) + timedelta(minutes=change["minute"], seconds=20)
    app = schedule["deployment"]
    count = big["replicas"] + small["replicas"]
    pods = [pod(f"p{i}", app, age_s=1000 - i, cores=str(small["cores"])) for i in range(count + 1)]  # one more than planned
    pods += [pod("starting", app, 5, "1", phase="Pending"), pod("leaving", app, 2000, "1", deleting=True),
             pod("other-app", "something-else", 3000, "1")]
    with FakeApiServer(pods) as api:
        first = run_resizer(folder, api, at)
        assert first.returncode == 0, first.stderr
        wanted = [(f"p{i}", "application/strategic-merge-patch+json", str(big["cores"])) for i in range(big["replicas"])]
        assert api.patches() == wanted
        assert first.stdout.count("resize serving/") == big["replicas"]
        again = run_resizer(folder, api, at)
        assert again.returncode == 0 and len(api.patches()) == len(wanted)  # nothing left to change
        for i in range(count + 1):
            expected = big["cores"] if i < big["replicas"] else small["cores"]
            assert cpu_cores(api.pods[f"p{i}"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]) == expected


def test_dry_run_prints_and_changes_nothing(shipped) -> None:
    folder, schedule = shipped
    change = next(c for c in schedule["changes"] if len(c["groups"]) == 2)
    at = datetime(2026, 3, 2, tzinfo=timezone.utc) + timedelta(minutes=change["minute"])
    with FakeApiServer([pod("p0", schedule["deployment"], 10, "1")]) as api:
        result = run_resizer(folder, api, at, "--dry-run")
    assert result.returncode == 0 and api.patches() == []
    assert "would resize serving/p0" in result.stdout


def test_a_refused_resize_is_reported_and_fails_the_job(shipped) -> None:
    """A pod that vanishes between the list and the patch: the API answers 404."""
    folder, schedule = shipped
    change = next(c for c in schedule["changes"] if len(c["groups"]) == 2)
    at = datetime(2026, 3, 2, tzinfo=timezone.utc) + timedelta(minutes=change["minute"])
    with FakeApiServer([pod("p0", schedule["deployment"], 10, "1")], gone=frozenset({"p0"})) as api:
        result = run_resizer(folder, api, at)
    assert result.returncode == 1 and "resize of serving/p0 failed" in result.stderr


def test_minutes_of_the_period_follow_cron_numbering() -> None:
    saturday = datetime(2024, 1, 6, 8, 30, tzinfo=timezone.utc)
    assert minute_of_period(saturday, "daily") == 8 * 60 + 30
    assert minute_of_period(saturday, "weekly") == 6 * 1440 + 8 * 60 + 30
    assert minute_of_period(saturday.astimezone(timezone(timedelta(hours=5))), "daily") == 8 * 60 + 30


def test_quantities_and_assignment() -> None:
    assert [cpu_cores(q) for q in ("2", "500m", 1.5)] == [2.0, 0.5, 1.5]
    pods = [pod("young", "a", 1, "1"), pod("old", "a", 100, "1")]
    assert desired_cores(pods, [{"replicas": 1, "cores": 4}, {"replicas": 1, "cores": 1}]) == [("old", 4), ("young", 1)]
    assert desired_cores(pods, []) == []
