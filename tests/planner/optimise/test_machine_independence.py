"""Plans depend on their inputs only, never on the machine that computes them (SPEC)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.plan_support import PROFILES

from themis.planner.model.config import DEFAULT_NODE_CORES

ROOT = Path(__file__).resolve().parents[3]


def _plan_json(cpus: set[int], trace: Path, *extra: str) -> str:
    """`themis plan --json` run in a process pinned to `cpus` (as a 1-CPU CI runner is)."""
    command = [
        sys.executable, "-c", "from themis.cli.app import main; main()", "plan", "--trace", str(trace),
        "--profile", str(PROFILES / "resnet18_cpu.parquet"), "--slo", "300ms", "--scale", "2", "--json", *extra,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, preexec_fn=lambda: os.sched_setaffinity(0, cpus), cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to restrict one away")
def test_the_same_inputs_give_byte_identical_plans_on_one_cpu_and_on_all(llm_trace_path) -> None:
    every_cpu = os.sched_getaffinity(0)
    one_cpu = _plan_json({min(every_cpu)}, llm_trace_path)
    assert one_cpu == _plan_json(every_cpu, llm_trace_path)
    # and the node size is the documented default, not this host's count
    assert one_cpu == _plan_json(every_cpu, llm_trace_path, "--node-cores", str(DEFAULT_NODE_CORES))


def test_no_planning_code_reads_the_host_cpu_count() -> None:
    """Only the replay server, which runs real replicas on this host, may look at its CPUs."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "planner").rglob("*.py")
        if "replay" not in path.parts and any(probe in path.read_text() for probe in ("cpu_count", "sched_getaffinity", "nproc"))
    ]
    assert offenders == []
