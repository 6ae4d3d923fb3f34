"""The one command-line entry point, ``mlsys-lab``, with a subcommand per job.

The CLI is a thin shell: every subcommand parses its options and calls one function of the package.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

app = typer.Typer(
    help="mlsys-lab: build, break and repair a fraud-detection system on your laptop.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress to stderr.")) -> None:
    # Logging is configured here, in the shell, never at import time in the package.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


PresetOption = typer.Option("small", "--preset", "-p", help="Simulator preset: tiny, small, medium or full.")
SeedOption = typer.Option(0, "--seed", help="random_state of the simulation and the model.")


@app.command()
def demo(preset: str = PresetOption, seed: int = SeedOption) -> None:
    """Run the system's main job end to end on embedded defaults and print what it measured."""
    from mlsys_lab.demo import format_report, run_demo

    typer.echo(format_report(run_demo(preset, random_state=seed)))


@app.command()
def simulate(
    out: Path = typer.Argument(..., help="Output CSV file."),
    preset: str = PresetOption,
    seed: int = SeedOption,
) -> None:
    """Simulate a preset's transactions and write them to OUT."""
    from mlsys_lab import data

    if out.suffix != ".csv":
        raise typer.BadParameter(f"unknown file type {out.suffix!r}: name a .csv file", param_hint="OUT")
    transactions = data.simulate(data.preset(preset, random_state=seed)).transactions
    transactions.to_csv(out, index=False)
    typer.echo(f"wrote {len(transactions):,} transactions to {out}")


@app.command()
def validate(path: Path = typer.Argument(..., exists=True, dir_okay=False, help="The notebook to check.")) -> None:
    """Run nbgrader's validator on PATH and exit non-zero when any test cell fails.

    nbgrader's own ``validate`` exits 0 even when tests fail; this one tells the truth.
    """
    from mlsys_lab import course

    report = course.validate_notebook(path)
    typer.echo(report.summary())
    raise typer.Exit(code=0 if report.passed else 1)


@app.command()
def notebooks(
    root: Path = typer.Option(Path("."), help="The repository root (holds assignments/source/)."),
) -> None:
    """Regenerate notebooks/ (student versions) and solutions/ from assignments/source/."""
    from mlsys_lab import course

    for name in course.build_course(root):
        typer.echo(f"built {name}")
