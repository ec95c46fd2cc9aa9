"""One meaning per option name across every command, and every default shown in `--help`.

Walks the options of every command of the real typer app. Two commands may use one option
name only with one definition: the same object from `themis.cli.options` (or another shared
module), or the same help text and type. The names below are each a command's own thing by
design (its output file, its own earlier run), listed with why; a new clash fails.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import typer

from themis.cli.app import app

PER_COMMAND = {
    "--out": "the file this command writes its own result to",
    "--out-dir": "the folder this command writes its own artefacts to",
    "--overwrite": "replace what this command wrote before instead of refusing",
    "--resume": "carry on this command's own interrupted run",
    "--html": "the HTML report this command writes",
    "--plan": "a plan JSON written by `themis plan`, read by the command",
    "--engine": "where this command's work runs: local, or ray",
    "--seed": "the seed of this command's own randomness",
    "--policy": "a scaling policy; each command lists the policies it can run",
    "--interval": "a duration everywhere (60s, 5m, 400ms, a bare number of seconds): the command's time step",
    "--cores": "core counts: those profile measures, those the planners may allocate",
    "--batch-sizes": "batch sizes: those profile measures, those the planners may choose",
    "--profile": "profile Parquet files of the models the command reads",
    "--pipeline": "a pipeline YAML of stages",
}


def _commands(group=None, prefix: str = "") -> list[tuple[str, object]]:
    group = group or typer.main.get_command(app)
    found = []
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        found += _commands(cmd, f"{full} ") if hasattr(cmd, "commands") else [(full, cmd)]
    return found


def _options() -> list[tuple[str, object]]:
    return [(name, param) for name, cmd in _commands() for param in cmd.params if param.param_type_name == "option"]


def _meaning(param) -> tuple:
    """What an option says it is: its help, and whether it repeats or is a flag."""
    return (param.help, param.multiple, param.is_flag)


def _definition(param) -> object:
    """The declaration it was made from (a typer `OptionInfo`): one object for a shared option."""
    return param.type_descriptor.parameter_info


def _clash(found: list[tuple[str, object]]) -> str:
    """Why the uses of one name disagree, or "" when they agree: one meaning, and one type
    unless they are the one shared declaration."""
    meanings = defaultdict(list)
    for command, param in found:
        meanings[_meaning(param)].append(command)
    if len(meanings) > 1:
        return "; ".join(f"{', '.join(cmds)}: {m[0]!r}" for m, cmds in meanings.items())
    types = defaultdict(list)
    for command, param in found:
        types[(id(_definition(param)), param.bare_type())].append(command)
    if len({t for _, t in types}) > 1 and len({d for d, _ in types}) > 1:
        return "same help, different types: " + "; ".join(f"{', '.join(cmds)}: {t}" for (_, t), cmds in types.items())
    return ""


def test_the_walk_sees_every_command() -> None:
    names = {name for name, _ in _commands()}
    assert {"plan", "compare", "check", "simulate", "report", "demo", "profile run", "trace inspect", "forecast", "replay"} <= names


def test_one_option_name_has_one_meaning() -> None:
    uses: dict[str, list[tuple[str, object]]] = defaultdict(list)
    for command, param in _options():
        for name in param.opts:
            uses[name].append((command, param))
    clashes = []
    for name, found in sorted(uses.items()):
        if name in PER_COMMAND or name in ("--json", "-h", "--help"):
            continue
        why = _clash(found)
        if why:
            clashes.append(f"{name}: {why}")
    assert not clashes, "one option name, several meanings:\n" + "\n".join(clashes)


def test_every_allowed_clash_is_still_a_clash() -> None:
    """An entry of PER_COMMAND that no longer differs between commands is dead and goes."""
    uses = defaultdict(list)
    for command, param in _options():
        for name in param.opts:
            uses[name].append((command, param))
    assert [name for name in PER_COMMAND if not _clash(uses.get(name, []))] == []


@pytest.mark.parametrize("command", [name for name, _ in _commands()])
def test_every_default_is_shown_in_help(command: str) -> None:
    cmd = dict(_commands())[command]
    hidden_defaults = [
        param.opts[0] for param in cmd.params
        if param.param_type_name == "option" and not param.is_flag and not param.hidden and not param.required
        and not isinstance(param.show_default, str) and param.default in (None, [], ())
    ]
    assert not hidden_defaults, f"`themis {command} --help` shows no default for {', '.join(hidden_defaults)}"
