"""The root command: version, help for every command, README coverage, no torch at startup."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from themis.cli.app import EXIT_INTERNAL, ThemisGroup, app
from themis.common.errors import InputError
from themis.common import __version__

README = Path(__file__).parents[2] / "README.md"


def _commands(group=None, prefix: str = "") -> list[tuple[str, object]]:
    """Every leaf command as ("plan", cmd) or ("trace inspect", cmd)."""
    group = group or typer.main.get_command(app)
    found = []
    for name, cmd in group.commands.items():
        if getattr(cmd, "hidden", False):
            continue
        full = f"{prefix}{name}"
        if hasattr(cmd, "commands"):
            found.append((full, cmd))
            found += _commands(cmd, f"{full} ")
        else:
            found.append((full, cmd))
    return found


COMMANDS = _commands()


def test_version(cli_runner) -> None:
    result = cli_runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"themis {__version__}"


def test_the_product_commands_are_all_there() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"profile", "models", "trace", "forecast", "plan", "simulate", "compare", "check", "report", "demo"} <= names


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_every_command_has_help_with_an_example(cli_runner, name: str) -> None:
    result = cli_runner.invoke(app, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "example" in result.stdout.lower(), f"`themis {name} --help` shows no example"


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS if not hasattr(_, "commands") or name == "profile"])
def test_every_command_has_a_section_in_the_readme(name: str) -> None:
    headings = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("### ")]
    assert any(f"`themis {name}`" in h for h in headings), f"README has no section for `themis {name}`"


HEAVY_MODULES = ("torch", "pandas", "pyarrow", "scipy", "numba", "matplotlib", "statsmodels", "plotly", "aiohttp", "ray")


def test_help_imports_none_of_the_heavy_libraries() -> None:
    """`themis --help` must answer at once: torch and the data stack load only when used."""
    probe = (
        "import sys\n"
        "from themis.cli.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_an_unknown_option_is_a_usage_error_with_exit_2(cli_runner) -> None:
    result = cli_runner.invoke(app, ["plan", "--no-such-option"])
    assert result.exit_code == 2


def test_a_usage_error_is_one_line_and_a_json_envelope(cli_runner) -> None:
    result = cli_runner.invoke(app, ["plan", "--no-such-option", "--json"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [result.stderr.strip()] and result.stderr.startswith("themis: error: themis plan:")
    envelope = json.loads(result.stdout)
    assert envelope["error"]["kind"] == "bad_usage" and "--no-such-option" in envelope["error"]["message"]


def test_debug_is_accepted_after_the_subcommand(cli_runner, llm_trace_path) -> None:
    args = ["plan", "--trace", str(llm_trace_path), "--profile", "tests/data/profiles/mlp_cpu.parquet", "--slo", "fast"]
    quiet = cli_runner.invoke(app, args)
    assert quiet.exit_code == 2 and "--slo" in quiet.stderr
    loud = cli_runner.invoke(app, [*args, "--debug"])
    assert isinstance(loud.exception, InputError)  # the traceback is shown, not swallowed


def test_a_bug_is_exit_3_with_one_line_asking_for_a_report(cli_runner) -> None:
    """The boundary itself, on a command that fails the way a bug does (an unexpected exception)."""
    buggy = typer.Typer(cls=ThemisGroup)

    @buggy.command()
    def divide(json_: bool = typer.Option(False, "--json")) -> None:
        print(1 / 0)

    @buggy.command()
    def other() -> None: ...

    result = cli_runner.invoke(buggy, ["divide", "--json"])
    assert result.exit_code == EXIT_INTERNAL
    line = result.stderr.strip()
    assert "\n" not in line and "internal error (ZeroDivisionError" in line and "report" in line and "--debug" in line
    assert json.loads(result.stdout)["error"]["kind"] == "internal"
