"""``mlsys-lab load ...``: run a scenario against a loopback URL, print the SLO verdict, write the plot.

Exits 0 when the SLO holds, 1 when it does not (so a script or CI can gate on it), 2 on bad options.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Load tests against your own service on 127.0.0.1: SLO verdicts and plots.", no_args_is_help=True
)


class ScenarioName(StrEnum):
    steady = "steady"
    step = "step"
    spike = "spike"
    soak = "soak"
    million = "1m-per-hour"


class GeneratorName(StrEnum):
    locust = "locust"
    open_loop = "open-loop"


@app.command()
def run(
    target: Annotated[str, typer.Option(help="The service's URL; only http://127.0.0.1:<port> is accepted.")] = (
        "http://127.0.0.1:8000"
    ),
    scenario: Annotated[ScenarioName, typer.Option(help="Load shape.")] = ScenarioName.steady,
    generator: Annotated[GeneratorName, typer.Option(help="locust (closed loop) or open-loop (Poisson).")] = (
        GeneratorName.locust
    ),
    users: Annotated[int, typer.Option(min=1, help="Locust users (steady, soak, 1m-per-hour).")] = 20,
    rate: Annotated[float, typer.Option(min=0, help="Offered requests/s in total; 0 = unpaced (locust only).")] = 0,
    duration: Annotated[float, typer.Option(min=1, help="Seconds measured after the ramp-up.")] = 30,
    ramp_up: Annotated[float, typer.Option(min=0, help="Seconds of ramp-up, left out of the SLO.")] = 5,
    slo_p99_ms: Annotated[float, typer.Option(min=0.001, help="SLO: 99% of requests within this many ms.")] = 50,
    slo_max_errors: Annotated[float, typer.Option(min=0, max=0.999, help="SLO: largest error ratio.")] = 0.001,
    slo_min_rps: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="SLO: requests/s to sustain (default: 90% of --rate, or 0: a short Poisson run varies by a few %).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Run folder: locust's files, result.json, plot.png.")] = Path("runs/load"),
    preset: Annotated[str, typer.Option(help="Simulator preset the request bodies come from.")] = "tiny",
) -> None:
    """Run a load scenario, print the SLO verdict and write OUT/plot.png; exit 1 when the SLO fails."""
    from mlsys_lab.load import openloop, scenarios
    from mlsys_lab.load.plot import plot_run
    from mlsys_lab.load.runner import check_loopback, run_locust
    from mlsys_lab.load.slo import SLO, check_slo

    try:
        target = check_loopback(target)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--target") from None
    paced = rate if rate > 0 else None
    if scenario is ScenarioName.million:
        chosen = scenarios.one_million_an_hour(users, duration, ramp_up_s=ramp_up)
    elif scenario is ScenarioName.step:
        chosen = scenarios.step(rate_per_user=None if paced is None else paced / users)
    elif scenario is ScenarioName.spike:
        chosen = scenarios.spike(rate_per_user=None if paced is None else paced / users)
    elif scenario is ScenarioName.soak:
        chosen = scenarios.soak(users, duration, rate=paced or scenarios.ONE_MILLION_AN_HOUR_RPS, ramp_up_s=ramp_up)
    else:
        chosen = scenarios.steady(users, duration, rate=paced, ramp_up_s=ramp_up)
    offered = chosen.offered_rate
    slo = SLO(
        latency_ms=slo_p99_ms,
        latency_share=0.99,
        max_error_ratio=slo_max_errors,
        min_rps=slo_min_rps if slo_min_rps is not None else (0.9 * offered if offered else 0.0),
        min_duration_s=chosen.duration_s - chosen.ramp_up_s,
        ramp_up_s=chosen.ramp_up_s,
    )
    try:
        transactions = scenarios.simulated_transactions(preset)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--preset") from None
    out.mkdir(parents=True, exist_ok=True)
    pool_size = chosen.max_requests() if offered else 200_000
    pool = scenarios.write_request_pool(
        out / "requests.jsonl", transactions, pool_size, endpoint=chosen.endpoint, batch_size=chosen.batch_size
    )
    if generator is GeneratorName.open_loop:
        if offered is None:
            raise typer.BadParameter("the open-loop generator needs a rate: pass --rate", param_hint="--rate")
        config = openloop.OpenLoopConfig(rate=offered, duration_s=chosen.duration_s, max_requests=pool_size)
        result = openloop.run_open_loop(target, scenarios.read_request_pool(pool), config)
    else:
        result = run_locust(target, chosen, out, pool=pool)
    verdict = check_slo(result, slo)
    plot = plot_run(result, slo, out / "plot.png")
    p = result.window(slo.ramp_up_s).histogram
    summary = {
        "scenario": chosen.name,
        "generator": result.generator,
        "requests": result.requests,
        "failures": dict(result.failures),
        "achieved_rps": result.rps,
        "offered_rps": result.offered_rate,
        "p50_ms": p.percentile(0.5) if p.total else None,
        "p95_ms": p.percentile(0.95) if p.total else None,
        "p99_ms": p.percentile(0.99) if p.total else None,
        "passed": verdict.passed,
        "reasons": [str(r) for r in verdict.reasons],
        "notes": list(result.notes),
    }
    (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    typer.echo(
        f"{chosen.name} with {result.generator}: {result.requests:,} requests, {result.rps:,.1f} req/s achieved"
        + (f" of {offered:,.1f} offered" if offered else "")
        + f"; after the ramp-up p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, p99 {summary['p99_ms']} ms"
    )
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(str(verdict))
    typer.echo(f"plot: {plot}")
    raise typer.Exit(code=0 if verdict.passed else 1)
