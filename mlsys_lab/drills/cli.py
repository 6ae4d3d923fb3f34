"""``mlsys-lab drill run KIND``: prepare the system, run one failure drill, print its answer key and summary.

The record (answer key, alerts, scrapes, registry history, load results) is written as JSON to
``OUT/KIND/record.json``. Exits 2 on an unknown or unavailable drill.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Failure drills with known answers (module 07).", no_args_is_help=True)


class DrillName(StrEnum):
    corrupt_model = "corrupt_model"
    api_crash = "api_crash"
    log_unwritable = "log_unwritable"
    skew = "skew"
    spike = "spike"
    blocking_good_customers = "blocking_good_customers"
    corrupt_model_unpicklable = "corrupt_model_unpicklable"
    corrupt_model_nan = "corrupt_model_nan"
    spike_mitigated = "spike_mitigated"
    concept_drift = "concept_drift"


@app.command()
def run(
    kind: Annotated[DrillName, typer.Argument(help="Which drill.")],
    fast: Annotated[bool, typer.Option("--fast", help="Seconds, not minutes (CI, the notebook's fast mode).")] = False,
    random_state: Annotated[int, typer.Option(min=0, help="Seed of the data and of the hidden start.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for the system, the servers' logs and the record.")] = Path(
        "runs/drills"
    ),
) -> None:
    """Run drill KIND against the real service on 127.0.0.1 and print its answer key and record summary."""
    from mlsys_lab.drills import prepare_system, run_drill

    out = out.resolve()
    system = prepare_system(out / f"system-{random_state}", random_state=random_state)
    record = run_drill(kind.value, system, out, fast=fast)
    path = record.write(out / kind.value / "record.json")
    typer.echo(json.dumps(record.to_dict()["answer_key"], indent=2))
    typer.echo(record.summary())
    typer.echo(f"record: {path}")
