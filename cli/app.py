"""The root `themis` command and the single error boundary (STYLE, "Errors and exit codes").

Every way a command can end is decided here, once:

- success -> exit 0; a failed verdict (check failed, SLO out of reach): the command exits
  1 itself (`EXIT_FAILED`);
- bad input (`InputError`) or bad usage (an unknown option, a missing argument, a bad
  value) -> one plain line on stderr, exit 2;
- Ctrl-C -> exit 130, with whatever the command already saved kept;
- anything else is a bug -> one line asking for a report, exit 3; `--debug` (accepted
  anywhere on the command line) shows the traceback instead.

Under `--json` every error is also a JSON envelope on stdout (`schema_version`, `error`:
`kind` and `message`), so a pipeline always gets JSON.

Command modules register themselves below; each stays thin (parse -> package API -> render).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
import typer.core
from typer.core import TyperGroup

from themis.common import SCHEMA_VERSION, __version__
from themis.common.errors import InputError, first_line

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
REPORT_URL = "https://github.com/themis-capacity/themis/issues"

click = typer.core._click  # the click this typer runs on (typer >= 0.20 vendors its own)


class ThemisGroup(TyperGroup):
    """Typer's group with themis's error boundary wrapped around every command."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        wants_json = "--json" in argv
        debug = "--debug" in argv
        argv = [a for a in argv if a != "--debug"]
        try:
            code = super().main(argv, prog_name=prog_name or "themis", complete_var=complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as error:  # `themis` or a group alone: its help, not an error
            typer.echo(error.ctx.get_help())
            code = EXIT_OK
        except click.exceptions.UsageError as error:
            code = _bad_usage(error, wants_json)
        except typer.Abort:
            code = EXIT_INTERRUPTED
        except InputError as error:
            if debug:
                raise
            report_error("bad_input", str(error), as_json=wants_json)
            code = EXIT_BAD_INPUT
        except click.exceptions.ClickException as error:  # a bad value typer itself checks (e.g. a file that must exist)
            report_error("bad_input", error.format_message(), as_json=wants_json)
            code = EXIT_BAD_INPUT
        except Exception as error:  # noqa: BLE001 - the one place bugs are caught, to say so in one line
            if debug:
                raise
            message = (
                f"internal error ({type(error).__name__}: {first_line(error)}); this is a bug in themis {__version__}: "
                f"please report it with the command line at {REPORT_URL} (rerun with --debug for the traceback)"
            )
            report_error("internal", message, as_json=wants_json)
            code = EXIT_INTERNAL
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def _bad_usage(error: Exception, as_json: bool) -> int:
    """One line naming the command and what is wrong with its usage (no box)."""
    ctx = getattr(error, "ctx", None)
    where = ctx.command_path if ctx is not None else "themis"
    message = str(getattr(error, "format_message", lambda: error)())
    if message and message[0].isupper() and not message[:2].isupper():
        message = message[0].lower() + message[1:]
    report_error("bad_usage", f"{where}: {message} (see `{where} --help`)", as_json=as_json)
    return EXIT_BAD_INPUT


def report_error(kind: str, message: str, *, as_json: bool) -> None:
    """Print the single error line on stderr (and the JSON error envelope on stdout)."""
    if as_json:
        envelope = {"schema_version": SCHEMA_VERSION, "error": {"kind": kind, "message": message}}
        typer.echo(json.dumps(envelope))
    typer.echo(f"themis: error: {message}", err=True)


app = typer.Typer(
    name="themis",
    cls=ThemisGroup,
    help="Profile ML models on real hardware and plan autoscaling that holds a latency SLO at the lowest cost.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"themis {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors (accepted anywhere on the line)."),
) -> None:
    """themis: measure, plan, simulate and gate ML inference capacity.

    [b]Examples[/b]

      themis models
      themis profile resnet18 --device cpu --out resnet18.parquet
      themis plan --trace azure.csv --profile resnet18.parquet --slo 200ms
      themis check --profile resnet18.parquet --trace azure.csv --slo 200ms --budget-replicas 8
    """


# --- command registration (one line per command module) ---
from themis.cli import check as _check  # noqa: E402
from themis.cli import compare as _compare  # noqa: E402
from themis.cli import demo as _demo  # noqa: E402
from themis.cli import fleet as _fleet  # noqa: E402
from themis.cli import forecast as _forecast  # noqa: E402
from themis.cli import init as _init  # noqa: E402
from themis.cli import models as _models  # noqa: E402
from themis.cli import plan as _plan  # noqa: E402
from themis.cli import profile as _profile  # noqa: E402
from themis.cli import profile_fit as _profile_fit  # noqa: E402
from themis.cli import profile_published as _profile_published  # noqa: E402
from themis.cli import replay as _replay  # noqa: E402
from themis.cli import report as _report  # noqa: E402
from themis.cli import simulate as _simulate  # noqa: E402
from themis.cli import trace as _trace  # noqa: E402

app.command("init")(_init.init)
app.command("models")(_models.models)
app.add_typer(_profile.profile_app, name="profile")
_profile.profile_app.command("fit")(_profile_fit.fit)
_profile.profile_app.command("published")(_profile_published.published)
app.command("simulate")(_simulate.simulate)
app.command("compare")(_compare.compare)
app.command("replay")(_replay.replay)
app.command("plan")(_plan.plan)
app.command("report")(_report.report)
app.command("check")(_check.check)
app.command("demo")(_demo.demo)
app.add_typer(_trace.trace_app, name="trace")
app.command("forecast")(_forecast.forecast)
app.add_typer(_fleet.fleet_app, name="fleet")


def main() -> None:
    """Console-script entry point."""
    app()
