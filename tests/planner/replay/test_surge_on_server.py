"""The runtime surge controller of a `themis` plan, run against the reference server's real queue.

The plan holds one 1-core resnet18 replica at batch 4 (SLO 1 s) and carries the surge rule
the `themis` policy writes: the stage's service times from the bundled resnet18 profile
(measured on this CPU; one 1-core replica serves about 17 requests/s at batch 4, a 2-core
one about 27), its budget and its sizes. resnet18 rather than small_cnn: a burst beyond
what one small_cnn core carries is thousands of requests a second, more than this machine
can send. The trace is 3 requests/s with a 3 s burst at 30 requests/s from t = 4 s. The
controller `controller_for` gives the simulator for this plan decides on the server's own
observations; the server changes the real replicas, and the simulator, given the same
arrivals, acts at about the same time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.replay_support import SMALL_CNN_PROFILE

from themis.cli.app import app
from themis.planner.gates.compare import serving_models
from themis.planner.model.config import DEFAULT_SURGE_CHECK_S, DEFAULT_SURGE_RATE_WINDOW_S
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step, SurgeRule
from themis.planner.optimise.pipeline import stages_from_profiles

pytestmark = pytest.mark.slow
PROFILE = SMALL_CNN_PROFILE.with_name("resnet18_cpu.parquet")
REACTION_S = DEFAULT_SURGE_RATE_WINDOW_S + DEFAULT_SURGE_CHECK_S
"""The surge controller acts on a second of arrivals beyond the plan within this (its docstring)."""


def burst_trace(path: Path, seed: int = 7) -> np.ndarray:
    """Poisson arrivals: 3/s over [0, 9) s plus 27/s more over [4, 7) s."""
    rng = np.random.default_rng(seed)

    def poisson(rate_rps: float, t0: float, t1: float) -> np.ndarray:
        return rng.uniform(t0, t1, rng.poisson(rate_rps * (t1 - t0)))

    arrivals = np.sort(np.concatenate([poisson(3.0, 0.0, 9.0), poisson(27.0, 4.0, 7.0)]))
    path.write_text("t\n" + "\n".join(f"{t:.6f}" for t in arrivals) + "\n", encoding="utf-8")
    return arrivals


def surge_plan(path: Path) -> Path:
    """One 1-core replica at batch 4 for 9 s, with the surge rule the themis policy writes for it."""
    opening = StageAllocation((Group(1, 1),), 4)
    schedule = Schedule("themis", 1000.0, 99.0, 9.0, None, 30.0, 0.05, (Stage("resnet18", "resnet18"),), [Step(0.0, 9.0, 3.0, (opening,))])
    model = serving_models(stages_from_profiles([PROFILE], pipeline=["resnet18"]), schedule)[0]
    table = model.service_table_ms(4, (1, 2))
    rule = SurgeRule(budget_ms=1000.0, cores=(1, 2), batches=(1, 2, 4), max_replicas=2,
                     service_ms=tuple(tuple(float(x) for x in table[1:, j]) for j in range(2)))
    schedule.surge_rules = (rule,)
    path.write_text(json.dumps(schedule.to_dict()), encoding="utf-8")
    return path


def test_a_burst_makes_the_surge_controller_act_on_the_real_replicas_when_the_simulator_does(cli_runner, tmp_path) -> None:
    arrivals = burst_trace(tmp_path / "burst.csv")
    plan = surge_plan(tmp_path / "plan.json")
    result = cli_runner.invoke(app, ["replay", "--trace", str(tmp_path / "burst.csv"), "--serve", "resnet18", "--plan", str(plan),
                                     "--profile", str(PROFILE), "--out", str(tmp_path / "served.parquet"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["requests"] == arrivals.size

    actions = data["comparison"]["actions"]
    real = [a for a in actions if a["run"] == "real" and a["t_s"] > 0]
    simulated = [a for a in actions if a["run"] == "simulated" and a["t_s"] > 0]
    assert real and simulated, actions  # the plan has one step: any later action is the surge controller's
    # nothing before the burst; both act within the controller's reaction time of its start, and close to each other
    assert 4.0 < simulated[0]["t_s"] <= 4.0 + REACTION_S + 0.5
    assert 4.0 < real[0]["t_s"] <= 4.0 + REACTION_S + 1.5
    assert abs(real[0]["t_s"] - simulated[0]["t_s"]) <= DEFAULT_SURGE_CHECK_S + 1.0
    assert real[0]["total_cores"] > 1 and simulated[0]["total_cores"] > 1  # more capacity, on both

    server = data["server"]
    grew = [r for r in server["resizes"] if r["to_cores"] > r["from_cores"]] + [r for r in server["replicas"] if not r["opening"]]
    assert grew  # a real resize of the running replica, or a real replica started
