"""The root `themis` command and the single error boundary (STYLE, "Errors and exit codes").

- `InputError` (and typer usage errors) -> one plain line on stderr, exit 2;
  with `--json`, a JSON error envelope on stdout instead.
- a failed verdict (check failed, SLO unreachable) -> the command exits 1 itself.
- anything else is a bug: re-raised so it stays visible. `--debug` shows tracebacks.

Command modules register themselves below; each stays thin (parse -> package API -> render).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from themis.common import SCHEMA_VERSION, __version__
from themis.common.errors import InputError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class ThemisGroup(TyperGroup):
    """Typer's group with themis's error boundary wrapped around every subcommand."""

    def main(self, args: Any = None, *posargs: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        self.wants_json = "--json" in argv
        self.debug = "--debug" in argv
        return super().main(argv, *posargs, **kwargs)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as error:
            if getattr(self, "debug", False):
                raise
            report_bad_input(str(error), as_json=getattr(self, "wants_json", False))
            raise typer.Exit(EXIT_BAD_INPUT) from None


def report_bad_input(message: str, *, as_json: bool) -> None:
    """Print the single error line (or the JSON error envelope)."""
    if as_json:
        envelope = {"schema_version": SCHEMA_VERSION, "error": {"kind": "bad_input", "message": message}}
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
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    """themis: measure, plan, simulate and gate ML inference capacity.

    [b]Examples[/b]

      themis models
      themis profile resnet18 --device cpu --out resnet18.parquet
      themis plan --trace azure.csv --profile resnet18.parquet --slo 200ms
      themis check --profile resnet18.parquet --trace azure.csv --slo 200ms --max-replicas 8
    """


# --- command registration (one line per command module) ---
from themis.cli import check as _check  # noqa: E402
from themis.cli import compare as _compare  # noqa: E402
from themis.cli import demo as _demo  # noqa: E402
from themis.cli import forecast as _forecast  # noqa: E402
from themis.cli import models as _models  # noqa: E402
from themis.cli import plan as _plan  # noqa: E402
from themis.cli import profile as _profile  # noqa: E402
from themis.cli import profile_fit as _profile_fit  # noqa: E402
from themis.cli import replay as _replay  # noqa: E402
from themis.cli import report as _report  # noqa: E402
from themis.cli import simulate as _simulate  # noqa: E402
from themis.cli import trace as _trace  # noqa: E402

app.command("models")(_models.models)
app.add_typer(_profile.profile_app, name="profile")
_profile.profile_app.command("fit")(_profile_fit.fit)
app.command("simulate")(_simulate.simulate)
app.command("compare")(_compare.compare)
app.command("replay")(_replay.replay)
app.command("plan")(_plan.plan)
app.command("report")(_report.report)
app.command("check")(_check.check)
app.command("demo")(_demo.demo)
app.add_typer(_trace.trace_app, name="trace")
app.command("forecast")(_forecast.forecast)


def main() -> None:
    """Console-script entry point."""
    app()
