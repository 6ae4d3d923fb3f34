"""The one command-line entry point, ``mlsys-lab``, with a subcommand per job.

The CLI is a thin shell: every subcommand parses its options and calls one function of the package.
Bad arguments exit with code 2 and a message that names the option, never with a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="mlsys-lab: build, break and repair a fraud-detection system on your laptop.",
    no_args_is_help=True,
    add_completion=False,
)

Preset = Annotated[str, typer.Option("--preset", "-p", help="Simulator preset: tiny, small, medium or full.")]
Seed = Annotated[int, typer.Option("--seed", help="random_state of the simulation and the model.")]


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
) -> None:
    # Logging is configured here, in the shell, never at import time in the package.
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def demo(preset: Preset = "small", seed: Seed = 0) -> None:
    """Run the system's main job end to end on embedded defaults and print what it measured."""
    from mlsys_lab.demo import format_report, run_demo

    try:
        report = run_demo(preset, random_state=seed)
    except ValueError as exc:  # bad preset or seed: say which, without a traceback
        raise typer.BadParameter(str(exc)) from None
    typer.echo(format_report(report))


@app.command()
def simulate(
    out: Annotated[Path, typer.Argument(help="Output CSV file.")],
    preset: Preset = "small",
    seed: Seed = 0,
) -> None:
    """Simulate a preset's transactions and write them to OUT."""
    from mlsys_lab import data

    if out.suffix != ".csv":
        raise typer.BadParameter(f"unknown file type {out.suffix!r}: name a .csv file", param_hint="OUT")
    try:
        config = data.preset(preset, random_state=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--preset") from None
    transactions = data.simulate(config).transactions
    transactions.to_csv(out, index=False)
    typer.echo(f"wrote {len(transactions):,} transactions to {out}")


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The notebook to check.")],
) -> None:
    """Run nbgrader's validator on PATH and exit non-zero when any test cell fails.

    nbgrader's own ``validate`` exits 0 even when tests fail; this one tells the truth.
    """
    from mlsys_lab import course

    report = course.validate_notebook(path)
    typer.echo(report.summary())
    raise typer.Exit(code=0 if report.passed else 1)


@app.command()
def notebooks(
    root: Annotated[Path, typer.Option(help="The repository root (holds assignments/source/).")] = Path("."),
) -> None:
    """Regenerate notebooks/ (student versions) and solutions/ from assignments/source/."""
    from mlsys_lab import course

    for name in course.build_course(root):
        typer.echo(f"built {name}")
