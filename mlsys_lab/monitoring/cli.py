"""``mlsys-lab monitor``: the monitoring job over a decision log (a thin shell over :mod:`mlsys_lab.monitoring.job`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ALERT_EXIT_CODE", "monitor"]

#: Exit code when at least one alert fired: a scheduler (cron, CI) can page on it.
ALERT_EXIT_CODE = 1


def _url(log: str) -> str:
    # A plain path is a SQLite file; anything with "://" is already a SQLAlchemy URL.
    if "://" in log:
        return log
    path = Path(log)
    if not path.is_file():
        raise typer.BadParameter(
            f"no decision log at {path}: give an existing SQLite file or a SQL URL", param_hint="LOG"
        )
    return f"sqlite:///{path.resolve()}"


def monitor(
    log: Annotated[
        str,
        typer.Argument(
            help="The decision log: a SQLite file path or any SQLAlchemy URL (sqlite:///..., postgresql://...)."
        ),
    ] = "runs/decisions.db",
    out: Annotated[Path, typer.Option("--out", help="Folder for metrics.csv and alerts.csv.")] = Path(
        "runs/monitoring"
    ),
    reference_days: Annotated[
        int, typer.Option(min=1, help="Days at the start of the log that form the reference.")
    ] = 7,
    skip_days: Annotated[
        int,
        typer.Option(
            min=0,
            help="Days at the start of the log to leave out (a fresh service's 30-day windows are still filling).",
        ),
    ] = 0,
    since: Annotated[str | None, typer.Option(help="Report only days from this date on (e.g. 2018-05-20).")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Report time on the transactions' clock: labels known later are not used (default: newest in the log)."
        ),
    ] = None,
    read_from: Annotated[
        str | None,
        typer.Option(
            "--read-from",
            help=(
                "Read only the decisions from this time on (e.g. 2018-06-09), through the log's index: "
                "the days before are not read, and --skip-days and --reference-days count from here."
            ),
        ),
    ] = None,
) -> None:
    """Compute per-day drift, data quality, performance (labels known at report time) and latency, run the alert rules.

    Writes OUT/metrics.csv (one row per day) and OUT/alerts.csv (the alert log: fired and cleared
    days) and prints the alert log. Exit status: 0 when no alert fired, 1 when at least one fired
    (so a scheduler can page on it), 2 on a bad argument or an unreadable log. On a long log,
    --read-from set to the first reference day gives the table of --skip-days without reading the
    days before it.
    """
    from mlsys_lab.monitoring.job import MonitorInputError, monitor_log

    url = _url(log)
    try:
        report = monitor_log(
            url, reference_days=reference_days, skip_days=skip_days, since=since, as_of=as_of, read_from=read_from
        )
    except MonitorInputError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.param) from None
    out.mkdir(parents=True, exist_ok=True)
    report.metrics.to_csv(out / "metrics.csv")
    report.alerts.to_csv(out / "alerts.csv", index=False)
    typer.echo("\n".join(report.lines()))
    typer.echo(f"wrote {out / 'metrics.csv'} and {out / 'alerts.csv'}")
    if report.fired:
        raise typer.Exit(code=ALERT_EXIT_CODE)
