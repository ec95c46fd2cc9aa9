"""The README runs as written: every `themis` command in its code blocks, in order, in a scratch
folder prepared by the preamble the README shows (section "Commands").

Measuring commands get short budgets (`--budget-s`, one process, `--quick` for the demo);
nothing else is changed. Exit 0 or 1 (a verdict: a failed check, an SLO out of reach) is a
command that ran; exit 2 (bad input) or 3 (a bug) is a README that does not run as written,
except the planner's refusal of a profile this run measured while the machine was busy.
A command that appears twice runs once (its second run would find the first one's output).
It takes about 20 minutes on the shared 2-core machine (three quick demos, the fleets).
The few commands that need what a test machine has not got are listed with why.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
README = REPO / "README.md"
BIN = Path(sys.executable).parent

NEEDS_ELSEWHERE = {
    "--url http://localhost": "an inference server listening at that URL",
    "--engine ray": "a Ray cluster (`themis fleet` on Ray is tested in tests/planner/fleet with a local Ray)",
    "AzureLLMInferenceTrace_conv_1week.csv.gz": "the week-long Azure trace, a large download",
}
BUSY_MACHINE = "measured cells are unstable or contended"
"""The planner's refusal of cells measured on a busy machine (`themis.planner.model.trust`)."""
FAST_PROFILE = {"--budget-s": "0.05", "--warmup-calls": "1", "--processes": "1"}


def readme_preamble(text: str) -> str:
    """The first ```bash block of the "Commands" section: the files the examples name."""
    section = text[text.index("\n## Commands\n"):]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "README: the Commands section shows no ```bash preamble"
    return match.group(1)


def readme_commands(text: str) -> list[tuple[int, str]]:
    """(line number, command) of every `themis` command in a code block, continuation lines
    joined; in a transcript block (one with `$ ` lines) only the `$ ` lines are commands."""
    lines = text.splitlines()
    commands, fence, transcript, i = [], False, False, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            fence = not fence
            transcript = fence and any(ln.startswith("$ ") for ln in _until_fence(lines, i + 1))
            i += 1
            continue
        stripped = line.strip()
        in_block = fence or line.startswith("    ")
        if in_block and (not transcript or stripped.startswith("$ ")):
            command = stripped.removeprefix("$ ")
            if re.match(r"^(\w+=\S+ )*themis ", command):
                start = i
                while command.endswith("\\"):
                    i += 1
                    command = command[:-1].rstrip() + " " + lines[i].strip()
                commands.append((start + 1, command.split("  #")[0].strip()))
        i += 1
    return commands


def _until_fence(lines: list[str], start: int) -> list[str]:
    end = next((j for j in range(start, len(lines)) if lines[j].startswith("```")), len(lines))
    return lines[start:end]


def shortened(argv: list[str]) -> list[str]:
    """Short budgets for the commands that measure; everything else as written."""
    if argv[:2] == ["themis", "demo"] and "--quick" not in argv:
        return [*argv, "--quick"]
    if argv[:2] != ["themis", "profile"] or argv[2] in ("show", "fit", "published"):
        return argv
    out = list(argv)
    for flag, value in FAST_PROFILE.items():
        if flag in out:
            out[out.index(flag) + 1] = min(out[out.index(flag) + 1], value, key=float)
        else:
            out += [flag, value]
    return out


def test_the_readme_names_commands_and_a_preamble() -> None:
    text = README.read_text(encoding="utf-8")
    commands = readme_commands(text)
    assert len(commands) > 30 and "examples/readme_files.py" in readme_preamble(text)
    assert not [c for _, c in commands if "(LLM):" in c]  # transcript output is not a command


@pytest.mark.slow
@pytest.mark.readme
def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "120", "NO_COLOR": "1"}
    preamble = readme_preamble(text).replace("/path/to/themis", str(REPO))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", preamble], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    failures, ran = [], set()
    for line, command in readme_commands(text):
        if any(marker in command for marker in NEEDS_ELSEWHERE) or command in ran:
            continue  # needs what this machine has not got; or ran already (a second run would find its output)
        ran.add(command)
        words = shlex.split(command)
        assignments = dict(w.split("=", 1) for w in words if re.match(r"^\w+=", w) and words.index(w) < words.index("themis"))
        argv = shortened(words[len(assignments):])
        result = subprocess.run(argv, cwd=tmp_path, env={**env, **assignments}, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode == 2 and BUSY_MACHINE in result.stderr:
            continue  # a profile measured here while the machine was busy: the planner refuses it, by design
        if result.returncode not in (0, 1):
            failures.append(f"README line {line}: {command}\n    exit {result.returncode}: {result.stderr.strip()[-400:]}")
    assert not failures, "README commands that do not run as written:\n" + "\n".join(failures)
