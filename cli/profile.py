"""`themis profile MODEL` (measure into Parquet) and `themis profile show FILE`.

`profile` is a group: a first word that is not a subcommand is the MODEL of the hidden
`run` command, so `themis profile resnet18` and `themis profile show x.parquet` both work
and another subcommand is one line: `profile_app.command("fit")(fit)`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichBar
from typer.core import TyperGroup
from typer.core import _click as click

from themis.cli import output
from themis.cli.options import DTYPE_HELP, INPUT_SHAPE_HELP, parse_int_list
from themis.profiler import devices, models
from themis.profiler.errors import BadOptionError
from themis.profiler.grid import DEFAULT_BATCH_SIZES
from themis.profiler.measure import P99_MIN_SAMPLES, Budget

if TYPE_CHECKING:
    from themis.profiler import run


class ProfileGroup(TyperGroup):
    """Routes `themis profile MODEL ...` to the hidden `run` command."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            _refuse_mistyped_command(ctx, args[0], [name for name, cmd in self.commands.items() if not cmd.hidden])
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _refuse_mistyped_command(ctx: typer.Context, word: str, commands: list[str]) -> None:
    """`themis profile shwo`: a word close to a subcommand that names no model is a typo, said so."""
    import difflib

    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.6)
    if not close or word in models.SAMPLE_MODELS or ":" in word or Path(word).exists():
        return
    raise click.exceptions.UsageError(f"no such command {word!r} (did you mean {close[0]}?)", ctx=ctx)


profile_app = typer.Typer(
    cls=ProfileGroup, no_args_is_help=True, rich_markup_mode="rich",
    help="Measure a model's latency per core count and batch size into a Parquet profile.\n\n"
    "[b]Examples[/b]\n\n  themis profile resnet18 --cores 1,2 --out resnet18.parquet\n\n"
    "  themis profile small_cnn --batch-sizes 1,8,32 --budget-s 0.5 --resume --out cnn.parquet\n\n"
    "  themis profile resnet18 --cpu-limit quota --processes 5 --stability k=4,tol=3%\n\n"
    "  themis profile show resnet18.parquet --json\n\n"
    "Run [b]themis profile MODEL --help[/b] for every option of a measurement.",
)


class BarProgress:
    """`run.Progress` as a rich progress bar on stderr: steps done (a cell in one process), current cell, ETA."""

    def __init__(self, bar: RichBar) -> None:
        self.bar, self.task = bar, None

    def add_steps(self, steps: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("starting", total=steps)
        else:
            self.bar.update(self.task, total=(self.bar.tasks[0].total or 0) + steps)

    def step_started(self, label: str) -> None:
        self.bar.update(self.task, description=label)

    def step_finished(self) -> None:
        self.bar.advance(self.task)


@profile_app.command("run", hidden=True)
def profile(
    model: str = typer.Argument(..., help="A sample model (see `themis models`), a TorchScript/.pt2 file, or package.module:factory."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda (every GPU), cuda:N, or all (CPU plus every GPU)."),
    batch_sizes: str = typer.Option(",".join(map(str, DEFAULT_BATCH_SIZES)), "--batch-sizes", help="Comma-separated batch sizes."),
    cores: str = typer.Option(None, "--cores", help="Comma-separated CPU core counts.", show_default="1,2,4,... up to the CPUs available"),
    dtype: str = typer.Option("float32", "--dtype", help=DTYPE_HELP),
    input_shape: str = typer.Option(None, "--input-shape", help=INPUT_SHAPE_HELP, show_default="the model's"),
    budget_s: float = typer.Option(1.0, "--budget-s", help="Seconds of timed calls per cell at least, all processes together."),
    min_samples: int = typer.Option(P99_MIN_SAMPLES, "--min-samples", help=f"Timed calls per cell at least, all processes together (a p99 needs {P99_MIN_SAMPLES})."),
    warmup_calls: int = typer.Option(3, "--warmup-calls", help="Untimed calls per batch size, before any batch size is timed."),
    processes: int = typer.Option(3, "--processes", help="Fresh worker processes per core count; their calls are pooled."),
    stability: str = typer.Option("k=3,tol=5%", "--stability", help="A cell is done when its last k window medians agree within tol (e.g. 5%, k=3,tol=5%,windows=10, or off)."),
    cpu_limit: str = typer.Option("pin", "--cpu-limit", help="pin: exclusive cores (CPU affinity); quota: a CFS quota of N cores (cgroup), as a resizable pod gets."),
    seed: int = typer.Option(0, "--seed", help="Seed of the shuffled order in which each worker times its cells."),
    out: Path = typer.Option(
        None, "--out", help="Profile file (.parquet).", show_default="a new file in the profile store, profiles/MODEL/DEVICE-UTC.parquet"
    ),
    resume: bool = typer.Option(False, "--resume", help="Keep the ok cells already in --out (or the newest stored profile) and measure the others."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out instead of refusing."),
    engine: str = typer.Option("local", "--engine", help="local, or ray: the same grid on every node class of a Ray cluster."),
    address: str = typer.Option(None, "--address", help="--engine ray: the cluster to join.", show_default="RAY_ADDRESS, else a local Ray"),
    as_json: bool = output.JSON_OPTION,
) -> None:
    """Measure MODEL on each device, core count and batch size; write a Parquet profile.

    [b]Example[/b]: themis profile resnet18 --cores 1,2 --batch-sizes 1,2,4,8 --out resnet18.parquet
    """
    from themis.profiler import run
    from themis.profiler.llm import is_llm_model
    from themis.profiler.stability import parse_stability

    if resume and overwrite:
        raise BadOptionError("--resume keeps the cells in --out and --overwrite discards them: pass one", option="--overwrite")
    if is_llm_model(model):  # prefill and decode iterations, measured by the LLM profiler
        from themis.cli.profile_llm import profile_llm_command

        return profile_llm_command(model, device=device, cores=cores, dtype=dtype, budget_s=budget_s, min_samples=min_samples,
                                   warmup=warmup_calls, out=out, overwrite=overwrite, resume=resume, as_json=as_json)
    if dtype not in models.DTYPES:
        raise BadOptionError(f"unknown dtype {dtype!r}; use one of {', '.join(models.DTYPES)}", option="--dtype")
    if engine not in ("local", "ray"):
        raise BadOptionError(f"unknown engine {engine!r}; use local or ray", option="--engine")
    budget = Budget(budget_s=budget_s, min_samples=min_samples, warmup=warmup_calls)
    budget.validate()
    spec = models.resolve_model(model, models.parse_input_shape(input_shape) if input_shape else None)
    if engine == "ray":
        _profile_cluster(spec, device, batch_sizes, cores, dtype, budget, out, resume, overwrite, address, as_json)
        return
    available = len(devices.available_cpus())
    core_counts = list(parse_int_list(cores, "--cores")) if cores else devices.default_core_counts(available)
    if max(core_counts) > available:
        raise BadOptionError(f"{max(core_counts)} cores asked for, only {available} CPUs available", option="--cores")
    chosen = devices.resolve_devices(device)
    request = run.ProfileRequest(
        model=spec, devices=chosen, core_counts=core_counts,
        batch_sizes=list(parse_int_list(batch_sizes, "--batch-sizes")), dtype=dtype,
        budget=budget,
        out=out or _stored_out(spec.name, [d.label for d in chosen], resume), resume=resume, overwrite=overwrite,
        processes=processes, stability=parse_stability(stability), cpu_limit=cpu_limit.strip().lower(), seed=seed,
    )
    request.validate()
    try:
        if sys.stderr.isatty() and not as_json:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with RichBar(*columns, console=output.err_console, transient=True) as bar:
                result = run.run_profile(request, BarProgress(bar))
        else:
            result = run.run_profile(request)
    except KeyboardInterrupt:
        output.err_console.print(f"interrupted: finished cells are kept in {request.out}; add --resume to carry on")
        raise typer.Abort from None  # exit 130 (cli/app.py)
    output.render(result, as_json=as_json, out=None, show=lambda console: _show(console, result))


def _profile_cluster(spec: models.ModelSpec, device: str, batch_sizes: str, cores: str | None, dtype: str, budget: Budget, out: Path | None,
                     resume: bool, overwrite: bool, address: str | None, as_json: bool) -> None:
    """`--engine ray`: the grid on every node class of the cluster, merged into one profile."""
    from themis.profiler import cluster, run

    request = run.ProfileRequest(
        model=spec, devices=[], core_counts=list(parse_int_list(cores, "--cores")) if cores else [],
        batch_sizes=list(parse_int_list(batch_sizes, "--batch-sizes")), dtype=dtype, budget=budget,
        out=out or _stored_out(spec.name, ["cluster"], resume), resume=resume, overwrite=overwrite,
    )
    result = cluster.profile_cluster(request, device.strip().lower(), cores_given=bool(cores), address=address)
    output.render(result, as_json=as_json, out=None, show=lambda console: _show(console, result))


def _stored_out(model: str, device_labels: list[str], resume: bool) -> Path:
    """No --out: a new file in the profile store, or with --resume the newest stored one of this model and device."""
    from themis.profiler import store

    label = store.device_label(device_labels)
    if not resume:
        path = store.new_profile_path(model, label)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    newest = store.newest_profile(model, label)
    if newest is None:
        raise BadOptionError(f"no stored profile of {model} on {label} in {store.STORE_DIR}/ to resume; pass --out FILE", option="--resume")
    return newest


@profile_app.command("show")
def show(
    file: Path = typer.Argument(..., help="A profile written by `themis profile`."),
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Print a stored profile as tables (or JSON).

    [b]Example[/b]: themis profile show resnet18.parquet --json
    """
    from themis.profiler import run
    from themis.profiler.table import read_profile
    from themis.reports.profile_tables import show_profile

    frame = read_profile(file)
    result = run.ProfileResult(frame, frame.attrs["environment"], file)
    output.render(result, as_json=as_json, out=out, show=lambda console: show_profile(console, frame, result.environment, file))


def _show(console: Any, result: run.ProfileResult) -> None:
    from themis.reports.profile_tables import show_profile

    show_profile(console, result.frame, result.environment, result.path)
    again = f", measured {result.remeasured_cells} again after a sanity check" if result.remeasured_cells else ""
    console.print(f"measured {result.measured_cells} cell(s), kept {result.kept_cells} from the existing file{again}")
    console.print(result.summary_line(), highlight=False)
