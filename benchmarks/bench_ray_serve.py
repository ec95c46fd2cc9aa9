"""Ray Serve as a real peer: the same model and trace on Ray Serve's own autoscaling and on a
themis plan run by the reference server (issue 13).

1. A window of the bundled Azure LLM 2023 code trace (its busiest stretch, `--scale`d) is
   planned with `themis plan --policy themis` on the bundled profile of the model (measured
   on this CPU), and that plan is run for real by `themis replay --serve` (replicas pinned
   to CPUs, the surge controller on the real queue).
2. Ray Serve serves the same sample model: one deployment, 1 CPU and 1 torch thread a
   replica, dynamic batching up to the same batch (`@serve.batch`, no wait), autoscaling on
   `target_ongoing_requests` between 1 and `--max-replicas` replicas. The same trace is
   replayed against it with `themis replay --url` (a JSON body; the replica serves an input
   of the model's shape made once per batch size, as the reference server does). Its
   replica-seconds are read from `serve.status()` every 0.25 s (starting, running and
   stopping replicas all count, as a booting or draining replica counts for themis).

Both runs are judged on the same SLO; themis's core-seconds and replica-seconds are the
reference server's. Ray is an optional extra (`pip install "ray[serve]"`); it is imported
only here.

    python benchmarks/bench_ray_serve.py [--model small_cnn] [--seconds 60] [--scales 1,4] [--slo 50ms]
        [--batch 4] [--max-replicas 2] [--target-ongoing 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import markdown_table, record  # noqa: E402

from themis.data import bundled_trace  # noqa: E402
from themis.planner.traffic.loading import load_trace  # noqa: E402

PROFILES = HERE.parent / "tests" / "data" / "profiles"
BUSY_WINDOW_S = 856.0
"""Start of the busiest stretch of the bundled Azure LLM 2023 code trace."""
THEMIS = [sys.executable, "-c", "from themis.cli.app import main; main()"]


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def write_window(path: Path, seconds: float) -> int:
    arrivals = load_trace(bundled_trace("azure_llm_2023_code")).arrivals_s
    window = arrivals[(arrivals >= BUSY_WINDOW_S) & (arrivals < BUSY_WINDOW_S + seconds)] - BUSY_WINDOW_S
    path.write_text("t\n" + "\n".join(f"{t:.6f}" for t in window) + "\n", encoding="utf-8")
    return int(window.size)


def themis(*args: str) -> dict:
    run = subprocess.run([*THEMIS, *args, "--json"], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"themis {' '.join(args[:1])} failed: {run.stderr.strip()[-2000:]}")
    return json.loads(run.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_on_ray(model: str, batch: int, max_replicas: int, target_ongoing: float, port: int):  # -> ray.serve handle
    """Deploy the model on a fresh local Ray instance with Serve's autoscaling; returns the app name."""
    import ray
    from ray import serve

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    serve.start(http_options={"host": "127.0.0.1", "port": port})

    @serve.deployment(
        ray_actor_options={"num_cpus": 1},
        max_ongoing_requests=max(8, 4 * batch),
        autoscaling_config={"min_replicas": 1, "initial_replicas": 1, "max_replicas": max_replicas,
                            "target_ongoing_requests": target_ongoing, "upscale_delay_s": 3.0, "downscale_delay_s": 30.0},
    )
    class Model:
        def __init__(self) -> None:
            os.environ["OMP_NUM_THREADS"] = "1"
            import torch

            torch.set_num_threads(1)
            from themis.profiler.models import load_model, resolve_model

            self.torch = torch
            self.module, make_input = load_model(resolve_model(model), "float32", "cpu")
            self.inputs = {k: make_input(k) for k in range(1, batch + 1)}
            with torch.inference_mode():
                for x in self.inputs.values():
                    self.module(x)

        @serve.batch(max_batch_size=batch, batch_wait_timeout_s=0.0)
        async def infer(self, items: list[int]) -> list[int]:
            with self.torch.inference_mode():
                output = self.module(self.inputs[len(items)])
            return [int(c) for c in output.reshape(output.shape[0], -1).argmax(dim=1).tolist()]

        async def __call__(self, request) -> dict:
            await request.body()
            return {"class": await self.infer(0)}

    serve.run(Model.bind(), name="bench", route_prefix="/model")
    return serve


def count_replicas(serve, stop: threading.Event, samples: list[tuple[float, int]]) -> None:
    while not stop.wait(0.25):
        try:
            deployments = serve.status().applications["bench"].deployments
            replicas = sum(n for d in deployments.values() for n in d.replica_states.values())
        except Exception:  # Serve restarting its controller: skip the sample
            continue
        samples.append((time.perf_counter(), replicas))


def replica_seconds(samples: list[tuple[float, int]]) -> float:
    return sum(n * (t1 - t0) for (t0, n), (t1, _) in zip(samples, samples[1:]))


def pair_of_runs(args: argparse.Namespace, scale: float, trace: Path, profile: Path, tmp: Path) -> list[list[object]]:
    """The themis plan on the reference server, then Ray Serve, on the trace at `scale`."""
    rows: list[list[object]] = []
    batches = ",".join(str(b) for b in (1, 2, 4, 8, 16, 32) if b <= args.batch)
    plan = tmp / "plan.json"
    planned = themis("plan", "--trace", str(trace), "--profile", str(profile), "--policy", "themis", "--slo", args.slo,
                     "--interval", "10s", "--cores", "1,2", "--node-cores", "2", "--max-replicas", str(args.max_replicas),
                     "--batch-sizes", batches, "--cold-start", "5s", "--scale", str(scale), "--allow-unstable",
                     "--out", str(plan))
    print(f"planned: {planned.get('totals', {})}", flush=True)
    ours = themis("replay", "--trace", str(trace), "--serve", args.model, "--plan", str(plan), "--profile", str(profile),
                  "--scale", str(scale), "--slo", args.slo, "--out", str(tmp / f"themis_{scale:g}.json"))
    horizon_s = max(s["t_s"] + 1.0 for s in ours["comparison"]["seconds"])
    ours_replica_s = sum(min(r["gone_s"] if r["gone_s"] is not None else horizon_s, horizon_s) - max(r["requested_s"], 0.0)
                         for r in ours["server"]["replicas"])
    rows.append([f"x{scale:g}: themis plan, reference server", ours["requests"], f"{ours['violation_rate']:.2%}",
                 f"{ours['p50_ms'] or float('inf'):.1f}", f"{ours['p99_ms'] or float('inf'):.1f}", f"{ours_replica_s:.1f}",
                 f"{ours['server']['core_seconds']:.1f}",
                 len(ours["server"]["replicas"]), len(ours["server"]["resizes"]), load()])
    print(rows[-1], flush=True)

    port = free_port()
    serve = serve_on_ray(args.model, args.batch, args.max_replicas, args.target_ongoing, port)
    body = tmp / "body.json"
    body.write_text('{"request": {{request}}}', encoding="utf-8")
    stop, samples = threading.Event(), []
    counter = threading.Thread(target=count_replicas, args=(serve, stop, samples), daemon=True)
    counter.start()
    try:
        peer = themis("replay", "--trace", str(trace), "--url", f"http://127.0.0.1:{port}/model", "--body-template", str(body),
                      "--input-shape", "1", "--scale", str(scale), "--slo", args.slo, "--out", str(tmp / f"ray_{scale:g}.json"))
    finally:
        stop.set()
        counter.join()
        import ray

        serve.shutdown()
        ray.shutdown()
    most = max((n for _, n in samples), default=0)
    ray_s = replica_seconds(samples)
    name = f"x{scale:g}: Ray Serve (target_ongoing_requests {args.target_ongoing:g}, 1-{args.max_replicas} replicas)"
    rows.append([name, peer["requests"], f"{peer['violation_rate']:.2%}", f"{peer['p50_ms'] or float('inf'):.1f}",
                 f"{peer['p99_ms'] or float('inf'):.1f}",
                 f"{ray_s:.1f}", f"{ray_s:.1f}", f"up to {most}", "n/a", load()])
    print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scales", default="1,4", help="trace volume factors, one pair of runs each")
    parser.add_argument("--slo", default="50ms")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-replicas", type=int, default=2)
    parser.add_argument("--target-ongoing", type=float, default=2.0)
    args, _ = parser.parse_known_args()  # benchmarks/run.py passes its own selection through
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("starlette") is None:
        print("skipped: Ray Serve is not installed (pip install -e '.[ray-serve]')")
        return
    started = time.perf_counter()
    profile = PROFILES / f"{args.model}_cpu.parquet"
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        trace = tmp / "window.csv"
        requests = write_window(trace, args.seconds)
        for scale in [float(x) for x in args.scales.split(",")]:
            rows += pair_of_runs(args, scale, trace, profile, tmp)
    body_text = "\n\n".join([
        f"{args.model}, {args.seconds:g} s of the busiest stretch of the bundled Azure LLM 2023 code trace ({requests} requests) "
        f"at volume x{args.scales.replace(',', ', x')}, SLO {args.slo}, batch up to {args.batch}, "
        f"at most {args.max_replicas} replicas of 1-2 cores on this "
        "shared 2-vCPU machine (the replayer, the front ends and Ray share it). themis: `themis plan --policy themis` (10 s "
        "interval, plan cold start 5 s) on the bundled profile, run by `themis replay --serve`. Ray Serve: its own autoscaling, "
        "1 CPU a replica, `@serve.batch` without a wait, upscale delay 3 s, downscale delay 30 s. Replica-seconds include "
        "booting and draining replicas. `load` is the 1-minute load average after each run. "
        f"Wall time {time.perf_counter() - started:.0f} s.",
        markdown_table(["system", "requests", "violation rate", "p50 ms", "p99 ms", "replica-seconds", "core-seconds", "replicas",
                        "resizes", "load"], rows),
    ])
    print(body_text)
    record("ray-serve", "Ray Serve against a themis plan on the reference server (shared 2-vCPU machine)", body_text)


if __name__ == "__main__":
    main()
