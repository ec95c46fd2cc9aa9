"""Progress in CI logs: off a terminal, compare and check print a plain line every few seconds
(`themis.cli.progress.heartbeat`); on a terminal they stay quiet."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from themis.cli import progress
from themis.cli.app import app

RESNET18 = str(Path(__file__).parents[1] / "data" / "profiles" / "resnet18_cpu.parquet")
LINE = re.compile(r"^(compare|check): .+ \(\d[\d,]* s\)$")


def test_heartbeat_repeats_what_the_work_is_doing_until_it_ends(capsys) -> None:
    release = threading.Event()
    with progress.heartbeat("work", on_terminal=False, every_s=0.01) as beat:
        beat.step("step one")
        release.wait(0.2)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(re.fullmatch(r"work: step one \(\d+ s\)", line) for line in lines)
    release.wait(0.05)
    assert capsys.readouterr().err == ""  # nothing once the work is done


def test_heartbeat_stays_quiet_on_a_terminal(capsys) -> None:
    with progress.heartbeat("work", on_terminal=True, every_s=0.01):
        threading.Event().wait(0.05)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "--trace", "azure_llm_2023_code", "--profile", RESNET18, "--slo", "2s", "--policies", "themis,hpa"],
        ["check", "--trace", "azure_llm_2023_code", "--profile", RESNET18, "--slo", "2s", "--budget-replicas", "40"],
    ],
)
def test_compare_and_check_print_progress_lines_in_a_ci_log(cli_runner, monkeypatch, args) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.05)  # the CliRunner's stderr is not a terminal
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{args[0]}: ")]
    assert lines and all(LINE.match(line) for line in lines), result.stderr
