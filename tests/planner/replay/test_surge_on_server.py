"""The runtime surge controller of a `themis` plan, run against the reference server's real queue.

The plan holds one 1-core small_cnn replica at batch 4 throughout and carries a surge rule
(written here with loads small enough for this machine to send: 1 core carries 30
requests/s, 2 cores 200). The trace is 15 requests/s with a 3 s burst at 150 requests/s
from t = 4 s. The same controller object type the simulator runs for the plan
(`controller_for`) decides on the server's own observations; the server resizes the real
replica, and the simulator, given the same arrivals, acts at about the same time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.replay_support import SMALL_CNN_PROFILE as GOLDEN

from themis.cli.app import app
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step, SurgeLevel, SurgeRule


pytestmark = pytest.mark.slow
CHECK_S = 1.0
"""`controller_for`'s default check interval for a plan with surge rules."""


def burst_trace(path: Path, seed: int = 7) -> np.ndarray:
    """Poisson arrivals: 15/s over [0, 9) s plus 135/s more over [4, 7) s."""
    rng = np.random.default_rng(seed)

    def poisson(rate_rps: float, t0: float, t1: float) -> np.ndarray:
        n = rng.poisson(rate_rps * (t1 - t0))
        return rng.uniform(t0, t1, n)

    arrivals = np.sort(np.concatenate([poisson(15.0, 0.0, 9.0), poisson(135.0, 4.0, 7.0)]))
    path.write_text("t\n" + "\n".join(f"{t:.6f}" for t in arrivals) + "\n", encoding="utf-8")
    return arrivals


def surge_plan(path: Path) -> Path:
    rule = SurgeRule(replicas=1, batch=4, levels=(SurgeLevel(30.0, 1), SurgeLevel(200.0, 2)))
    schedule = Schedule(
        "themis", 50.0, 99.0, 9.0, None, 30.0, 0.05, (Stage("small_cnn", "small_cnn"),),
        [Step(0.0, 9.0, 15.0, (StageAllocation((Group(1, 1),), 4),))], surge_rules=((rule,),),
    )
    path.write_text(json.dumps(schedule.to_dict()), encoding="utf-8")
    return path


def test_a_burst_makes_the_surge_controller_resize_the_real_replica_when_the_simulator_does(cli_runner, tmp_path) -> None:
    arrivals = burst_trace(tmp_path / "burst.csv")
    plan = surge_plan(tmp_path / "plan.json")
    out = tmp_path / "served.parquet"
    result = cli_runner.invoke(app, ["replay", "--trace", str(tmp_path / "burst.csv"), "--serve", "small_cnn", "--plan", str(plan),
                                     "--profile", str(GOLDEN), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["requests"] == arrivals.size

    actions = data["comparison"]["actions"]
    real = [a for a in actions if a["run"] == "real" and a["t_s"] > 0]
    simulated = [a for a in actions if a["run"] == "simulated" and a["t_s"] > 0]
    assert real and simulated, actions  # the plan has one step: any later action is the surge controller's
    assert real[0]["total_cores"] == simulated[0]["total_cores"] == 2
    # nothing happens before the burst; both react within a check or two of its start, and within a check of each other
    assert 4.0 < simulated[0]["t_s"] <= 4.0 + 2 * CHECK_S
    assert abs(real[0]["t_s"] - simulated[0]["t_s"]) <= CHECK_S + 0.1

    resizes = data["server"]["resizes"]
    assert resizes and (resizes[0]["from_cores"], resizes[0]["to_cores"]) == (1, 2)  # a real resize of the running replica
    assert resizes[0]["requested_s"] == pytest.approx(real[0]["t_s"], abs=0.05)
    assert data["server"]["replicas"][0]["opening"] and len(data["server"]["replicas"]) == 1
