"""Replay: does the simulator predict a real server? (issue 13's targets)

1. One replica on one core (resnet18, mobilenet_v2), batch caps 1, 4, 8, Poisson load at
   50 %, 80 % and 95 % of the profiled capacity (cap / p50 of a full batch): the real
   reference server against the simulator on the same arrivals: p99 and the violation
   rate at SLO = 2x the cap's p50. Targets: p99 within +-20 %, violation rate within
   +-5 points (at 95 % the ratio is stated: 1/(1-rho) amplifies any service-time error).
2. Two two-step plans (the first model, batch 4; the load steps from 50 % to 130 % of one
   core's capacity at half time): an in-place resize 1 -> 2 cores, and a second replica
   booting; the measured resize delay and cold start, and the violations in the step after
   the transition, real against simulated (target +-25 %).
   A third plan holds one 1-core replica and carries the surge rule the `themis` policy
   writes (the profile's service times for 1 and 2 cores, the SLO as the budget, at most 2
   replicas): the surge controller, run against the real queue, grows the stage when the
   load steps up; when it acted, real against simulated, and the violations after the step.
3. The replayer alone: the highest open-loop rate it holds on one core against a plain
   aiohttp server on the other, with the sender's lag p99 (target 2,000 req/s, lag p99 < 2 ms).

Profiles are measured first with `themis profile` (the profiler of issue 11: interleaved
windows, pooled processes; cores 1 and 2, batches 1-8 by default, pinned cores). One core
serves (CPU 1), the other runs the front end and the replayer (CPU 0), except where a plan
needs two (CPUs 0 and 1 on a 2-CPU machine, 1 and 2 where there are more). Every row
carries the 1-minute load average at its end.

    python benchmarks/bench_replay.py [--seconds 20] [--models resnet18,mobilenet_v2] [--loads 0.5,0.8,0.95]
        [--batch-caps 1,4,8] [--profile-batches 1,2,3,4,5,6,7,8] [--skip-rate]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import markdown_table, record  # noqa: E402

from themis.planner.gates.compare import serving_models  # noqa: E402
from themis.planner.model.latency import LatencyModel  # noqa: E402
from themis.planner.optimise.pipeline import stages_from_profiles  # noqa: E402
from themis.planner.replay import session, targets  # noqa: E402
from themis.planner.replay.comparison import ReplayComparison, compare_with_simulation  # noqa: E402
from themis.planner.replay.replayer import ReplayConfig, Replayer, run_event_loop  # noqa: E402
from themis.planner.replay.request_log import RequestLog  # noqa: E402
from themis.planner.replay.summary import summarize  # noqa: E402
from themis.planner.replay.templates import protocol_template  # noqa: E402
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step, SurgeRule  # noqa: E402
from themis.profiler.devices import available_cpus  # noqa: E402

PLAIN_SERVER = HERE.parent / "tests" / "planner" / "replay" / "plain_server.py"
BATCHES = "1,2,3,4,5,6,7,8"
BATCH_CAPS = (1, 4, 8)


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def profile(model: str, directory: Path, batches: str) -> Path:
    out = directory / f"{model}.parquet"
    command = [sys.executable, "-c", "from themis.cli.app import main; main()", "profile", model, "--cores", "1,2",
               "--batch-sizes", batches, "--budget-s", "1", "--out", str(out)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    print(f"profiled {model} in {time.perf_counter() - started:.0f} s (load {load()})", flush=True)
    return out


def poisson(rates_rps: list[tuple[float, float]], seed: int) -> np.ndarray:
    """Arrivals of a piecewise-constant Poisson process: [(seconds, rate), ...] in order."""
    rng, start, parts = np.random.default_rng(seed), 0.0, []
    for seconds, rate in rates_rps:
        n = rng.poisson(rate * seconds)
        parts.append(np.sort(start + rng.uniform(0.0, seconds, n)))
        start += seconds
    return np.concatenate(parts)


def plan(model: str, steps: list[tuple[float, float, list[tuple[int, int]], int]], slo_ms: float, cold_start_s: float,
         surge_rules: tuple[SurgeRule, ...] = ()) -> Schedule:
    return Schedule(
        "themis" if surge_rules else "static", slo_ms, 99.0, steps[0][1] - steps[0][0], None, cold_start_s, 1.0, (Stage(model, model),),
        [Step(t0, t1, 0.0, (StageAllocation(tuple(Group(r, c) for r, c in groups), batch),)) for t0, t1, groups, batch in steps],
        surge_rules=surge_rules,
    )


def run(model: str, schedule: Schedule, arrivals: np.ndarray, models: list[LatencyModel], cpus: tuple[int, ...]) -> tuple[RequestLog, ReplayComparison]:
    settings = targets.serve_settings(schedule, [model], input_shape=None, dtype="float32", cpus=cpus, available=available_cpus())
    log = RequestLog(arrivals)
    result = session.serve_and_replay(schedule, settings, log, ReplayConfig(timeout_s=120.0))
    return log, compare_with_simulation(log, schedule, models, result.server, schedule.slo_ms)


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}"


def one_replica_rows(model: str, profile_path: Path, seconds: float, loads: list[float], caps: list[int]) -> list[list[object]]:
    rows = []
    for batch in caps:
        empty = plan(model, [(0.0, seconds, [(1, 1)], batch)], 1.0, 30.0)
        latency = serving_models(stages_from_profiles([profile_path], pipeline=[model]), empty)
        p50_ms = latency[0].predict_ms(batch, 1)
        slo_ms = 2.0 * p50_ms
        capacity_rps = batch * 1000.0 / p50_ms
        for rho in loads:
            schedule = plan(model, [(0.0, seconds, [(1, 1)], batch)], slo_ms, 30.0)
            arrivals = poisson([(seconds, rho * capacity_rps)], seed=batch)
            log, comparison = run(model, schedule, arrivals, latency, (1,))
            real, sim, observed = comparison.real, comparison.simulated, comparison.simulated_observed
            cell = next((c for c in comparison.cells if c.batch == batch and c.cores == 1), None)
            p99_ok = real.p99_ms and sim.p99_ms and abs(sim.p99_ms / real.p99_ms - 1) <= 0.20
            viol_ok = abs(sim.violation_rate - real.violation_rate) <= 0.05
            rows.append([
                model, batch, f"{rho:.0%}", f"{rho * capacity_rps:.1f}", real.requests, f"{slo_ms:.0f}",
                f"{real.p99_ms or float('inf'):.0f}", f"{sim.p99_ms or float('inf'):.0f}", ratio(sim.p99_ms, real.p99_ms),
                f"{real.violation_rate:.1%}", f"{sim.violation_rate:.1%}", f"{100 * (sim.violation_rate - real.violation_rate):+.1f}",
                "yes" if p99_ok and viol_ok else "no", ratio(observed.p99_ms, real.p99_ms), f"{observed.violation_rate:.1%}",
                f"{cell.observed_p50_ms:.1f} / {cell.profile_p50_ms:.1f}" if cell else "n/a",
                f"{summarize(log, slo_ms).sender_lag_p99_ms:.1f}", load(),
            ])
            print(rows[-1], flush=True)
    return rows


def two_step_rows(model: str, profile_path: Path, seconds: float) -> list[list[object]]:
    """Resize 1 -> 2 cores, and a second replica booting, each at half time, as the load steps
    from 50 % to 130 % of one core's capacity (more than one core carries)."""
    batch, half = 4, seconds / 2
    probe = plan(model, [(0.0, seconds, [(1, 1)], batch)], 1.0, 30.0)
    latency = serving_models(stages_from_profiles([profile_path], pipeline=[model]), probe)
    one_core_rps = batch * 1000.0 / latency[0].predict_ms(batch, 1)
    slo_ms = 2.0 * latency[0].predict_ms(batch, 1)
    cpus = (1, 2) if len(available_cpus()) >= 3 else (0, 1)  # on 2 CPUs the second core is the front end's
    rows = []
    scenarios = [
        ("resize 1 -> 2 cores", [(0.0, half, [(1, 1)], batch), (half, seconds, [(1, 2)], batch)], "resize"),
        ("second replica boots", [(0.0, half, [(1, 1)], batch), (half, seconds, [(2, 1)], batch)], "cold start"),
    ]
    for name, steps, delay_kind in scenarios:
        schedule = plan(model, steps, slo_ms, 30.0)
        arrivals = poisson([(half, 0.5 * one_core_rps), (half, 1.3 * one_core_rps)], seed=7)
        _, comparison = run(model, schedule, arrivals, latency, cpus)
        after = comparison.steps[1]
        measured = comparison.measured_resize_s if delay_kind == "resize" else comparison.measured_cold_start_s
        planned = comparison.plan_resize_s if delay_kind == "resize" else comparison.plan_cold_start_s
        rows.append([
            name, f"{0.5 * one_core_rps:.1f} -> {1.3 * one_core_rps:.1f}", f"{slo_ms:.0f}", ",".join(map(str, cpus)), delay_kind,
            f"{measured:.3f} s" if measured is not None else "n/a", f"{planned:g} s", after.requests, after.real_violations,
            after.simulated_violations, after.simulated_measured_violations, ratio(after.simulated_measured_violations, after.real_violations),
            after.simulated_observed_violations, ratio(after.simulated_observed_violations, after.real_violations), load(),
        ])
        print(rows[-1], flush=True)
    return rows


def surge_rows(model: str, profile_path: Path, seconds: float) -> list[list[object]]:
    """One 1-core replica at batch 4 with a surge rule, the load stepping from 50 % to 130 % of
    one core's capacity at half time: when the surge controller resized the replica, real and simulated."""
    batch, half = 4, seconds / 2
    probe = plan(model, [(0.0, seconds, [(1, 1)], batch)], 1.0, 30.0)
    latency = serving_models(stages_from_profiles([profile_path], pipeline=[model]), probe)
    capacity_rps = {c: batch * 1000.0 / latency[0].predict_ms(batch, c) for c in (1, 2)}
    slo_ms = 2.0 * latency[0].predict_ms(batch, 1)
    table = latency[0].service_table_ms(batch, (1, 2))
    rule = SurgeRule(budget_ms=slo_ms, cores=(1, 2), batches=(1, 2, 4), max_replicas=2,
                     service_ms=tuple(tuple(float(x) for x in table[1:, j]) for j in range(2)))
    schedule = plan(model, [(0.0, seconds, [(1, 1)], batch)], slo_ms, 30.0, surge_rules=(rule,))
    arrivals = poisson([(half, 0.5 * capacity_rps[1]), (half, 1.3 * capacity_rps[1])], seed=11)
    cpus = (1, 2) if len(available_cpus()) >= 3 else (0, 1)
    _, comparison = run(model, schedule, arrivals, latency, cpus)

    def first_surge_s(run_name: str) -> str:
        acted = [a.t_s for a in comparison.actions if a.run == run_name and a.t_s > 0]
        return f"{acted[0]:.2f}" if acted else "none"

    after = [s for s in comparison.seconds if s.t_s >= half]
    real_after, sim_after = sum(s.real_violations for s in after), sum(s.simulated_violations for s in after)
    resize = comparison.measured_resize_s
    row = [model, f"{0.5 * capacity_rps[1]:.1f} -> {1.3 * capacity_rps[1]:.1f}", f"{half:g}", f"{slo_ms:.0f}",
           first_surge_s("real"), first_surge_s("simulated"), f"{resize:.3f} s" if resize is not None else "n/a",
           sum(s.requests for s in after), real_after, sim_after, ratio(sim_after, real_after), load()]
    print(row, flush=True)
    return [row]


def replayer_rows(rates: list[int], seconds: float) -> list[list[object]]:
    """The replayer pinned to CPU 0, a plain aiohttp server (uvloop) pinned to CPU 1."""
    before = os.sched_getaffinity(0)
    server = subprocess.Popen([sys.executable, str(PLAIN_SERVER)], stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: os.sched_setaffinity(0, {1}))
    url = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
    rows = []
    try:
        os.sched_setaffinity(0, {0})
        for rate in rates:
            arrivals = poisson([(seconds, rate)], seed=rate)
            log = RequestLog(arrivals)
            replayer = Replayer(protocol_template(url, "v2", "mlp", (256,), "float32", "input"), log)
            started = time.perf_counter()
            run_event_loop(replayer.run)
            wall_s = time.perf_counter() - started
            s = summarize(log, None)
            rows.append([rate, s.requests, f"{s.requests / (float(np.nanmax(log.sent_s)) - float(np.nanmin(log.sent_s))):,.0f}",
                         s.failed, f"{s.sender_lag_p50_ms:.2f}", f"{s.sender_lag_p99_ms:.2f}", f"{s.sender_lag_max_ms:.1f}",
                         f"{s.p50_ms or float('inf'):.1f}", f"{s.p99_ms or float('inf'):.1f}", f"{wall_s:.1f}", load()])
            print(rows[-1], flush=True)
    finally:
        os.sched_setaffinity(0, before)
        server.kill()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="traffic per one-replica run (two-step runs: twice this)")
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    parser.add_argument("--loads", default="0.5,0.8,0.95")
    parser.add_argument("--batch-caps", default=",".join(map(str, BATCH_CAPS)))
    parser.add_argument("--profile-batches", default=BATCHES, help="batch sizes profiled (the caps' partial batches use the fit)")
    parser.add_argument("--rates", default="500,1000,1500,2000,3000")
    parser.add_argument("--skip-rate", action="store_true")
    args, _ = parser.parse_known_args()  # benchmarks/run.py passes its own selection through
    if len(available_cpus()) < 2:
        sys.exit("bench_replay needs 2 CPUs: one serving, one replaying")
    started = time.perf_counter()
    models = args.models.split(",")
    with tempfile.TemporaryDirectory() as directory:
        profiles = {m: profile(m, Path(directory), args.profile_batches) for m in models}
        caps = [int(x) for x in args.batch_caps.split(",")]
        one = [r for m in models for r in one_replica_rows(m, profiles[m], args.seconds, [float(x) for x in args.loads.split(",")], caps)]
        two = two_step_rows(models[0], profiles[models[0]], 2 * args.seconds)
        surge = surge_rows(models[0], profiles[models[0]], 2 * args.seconds)
    rate_rows = [] if args.skip_rate else replayer_rows([int(r) for r in args.rates.split(",")], 5.0)
    body = "\n\n".join([
        f"Profiles measured by `themis profile` (issue 11's profiler: interleaved windows, 3 pooled processes, at least 100 calls "
        f"and 1 s per cell, pinned cores; batches {args.profile_batches}, cores 1 and 2; on a shared machine "
        f"most cells are flagged contended). Models {args.models}, batch caps {args.batch_caps}, loads {args.loads}. "
        f"{args.seconds:g} s of Poisson traffic per one-replica run; SLO = 2x the profile's p50 of the batch cap on 1 core; "
        "capacity = cap / p50 of a full batch. Replicas on CPU 1, front end and replayer on CPU 0. `sim` uses the profile's "
        "service times; `served times` simulates with the batch service times the replicas measured instead (what is left is "
        "the serving model's own error: HTTP, pipes, the front end, service-time spread). "
        f"`load` is the 1-minute load average at the end of each row. Total wall time {time.perf_counter() - started:.0f} s.",
        "### One replica, one core\n\n" + markdown_table(
            ["model", "batch cap", "load", "rate rps", "requests", "SLO ms", "real p99 ms", "sim p99 ms", "sim/real p99",
             "real viol.", "sim viol.", "sim - real (pp)", "within target", "sim/real p99, served times", "sim viol., served times",
             "cap's service real / profile p50 ms", "lag p99 ms", "load"], one),
        "### Two-step plans (batch 4, load steps up at the transition)\n\n" + markdown_table(
            ["plan", "rate rps", "SLO ms", "CPUs", "delay", "measured", "plan's", "requests after", "real viol.", "sim viol. (plan delays)",
             "sim viol. (measured delays)", "sim (measured) / real", "sim viol. (measured delays, served times)", "sim (served) / real",
             "load"], two),
        "### The themis surge controller against the real queue (batch 4, load steps up at half time)\n\n" + markdown_table(
            ["model", "rate rps", "step at s", "SLO ms", "real surge at s", "sim surge at s", "measured resize", "requests after",
             "real viol. after", "sim viol. after", "sim / real", "load"], surge),
    ])
    if rate_rows:
        body += "\n\n### The replayer's open-loop rate on one core\n\n" + markdown_table(
            ["offered rps", "requests", "achieved rps", "failed", "lag p50 ms", "lag p99 ms", "lag max ms", "latency p50 ms",
             "latency p99 ms", "wall s", "load"], rate_rows)
    print(body)
    record("replay", "Replay: reference server against the simulator (shared 2-vCPU machine)", body)


if __name__ == "__main__":
    main()
