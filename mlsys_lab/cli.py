"""The one command-line entry point, ``mlsys-lab``, with a subcommand per job.

The CLI is a thin shell: every subcommand parses its options and calls one function of the package.
Bad arguments exit with code 2 and a message that names the option, never with a traceback.
"""

from __future__ import annotations

import logging
import os
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
def demo(
    preset: Preset = "small",
    seed: Seed = 0,
    latency_budget_ms: Annotated[
        float | None,
        typer.Option(min=0.0, help="Single-row p99 budget of the selection rule, in ms (the rule's default: 5)."),
    ] = None,
) -> None:
    """Run the system's main job end to end on embedded defaults and print what it measured.

    Exits 1, saying why and what to do, when the main job did not complete: nothing was deployed,
    the server did not start or answered an error, an acknowledged decision is missing from the log,
    or the maintenance loop did not complete (the deliberately bad challenger was not rolled back).
    """
    import httpx

    from mlsys_lab.demo import DEMO_CONSTRAINTS, run_demo, with_latency_budget
    from mlsys_lab.deployment.replay import ReplayError
    from mlsys_lab.report import format_report

    constraints = (
        DEMO_CONSTRAINTS if latency_budget_ms is None else with_latency_budget(DEMO_CONSTRAINTS, latency_budget_ms)
    )
    try:
        report = run_demo(preset, random_state=seed, constraints=constraints)
    except ValueError as exc:  # bad preset or seed: say which, without a traceback
        raise typer.BadParameter(str(exc)) from None
    except (ReplayError, RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        typer.echo(
            f"demo failed while serving the chosen model: {exc}\n"
            "What to do: read the server's output (runs/mlflow/demo-server.log by default) for the cause, "
            "check that nothing else holds the decision log, and run `mlsys-lab demo` again.",
            err=True,
        )
        raise typer.Exit(code=1) from None
    typer.echo(format_report(report))
    if report.deployment is None:
        if report.selection.chosen is None:
            what_to_do = (
                "read the verdicts above; on a busy machine close other work or raise the latency budget "
                "(`mlsys-lab demo --latency-budget-ms 10`)."
            )
        else:
            what_to_do = "run the demo on a longer preset (`mlsys-lab demo --preset small`)."
        typer.echo(f"demo failed: {report.not_deployed}, so nothing was deployed.\nWhat to do: {what_to_do}", err=True)
        raise typer.Exit(code=1)
    if report.deployment.unlogged:
        typer.echo(
            f"demo failed: {report.deployment.unlogged} acknowledged decisions are missing from the decision log "
            f"{report.deployment.decision_log}: the service answered before committing. This is a bug: report it "
            "with the server's output.",
            err=True,
        )
        raise typer.Exit(code=1)
    if report.load_failed:
        typer.echo(
            f"demo failed in the load step: {report.load_failed}.\nWhat to do: read locust's log and the server's "
            f"output in {report.tracking.root / 'demo-load'}, check that nothing else loads this machine's "
            "loopback, and run `mlsys-lab demo` again.",
            err=True,
        )
        raise typer.Exit(code=1)
    if report.maintenance_failed:
        typer.echo(
            f"demo failed in the maintenance loop: {report.maintenance_failed}.\nWhat to do: read the loop's "
            f"server output ({report.tracking.root / 'demo-loop-server.log'}) and `mlsys-lab rollout status`, "
            "and run `mlsys-lab demo` again.",
            err=True,
        )
        raise typer.Exit(code=1)


@app.command()
def train(
    family: Annotated[
        str, typer.Option(help="Model family: logistic_regression, decision_tree, random_forest, ...")
    ] = ("logistic_regression"),
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A hyperparameter as NAME=VALUE (repeatable), e.g. max_depth=4.")
    ] = None,
    preset: Preset = "small",
    seed: Seed = 0,
    experiment: Annotated[str, typer.Option(help="MLflow experiment the run is tracked in.")] = "cli",
    validation_folds: Annotated[
        int,
        typer.Option(
            min=0,
            help="Validation folds before the test period; the threshold is chosen on the newest. "
            "0 chooses it on the test period: such a run cannot be registered.",
        ),
    ] = 3,
) -> None:
    """Train one model on a simulated preset, track it (store: MLSYS_LAB_TRACKING_DIR) and print its run id.

    The run id is what `mlsys-lab register RUN_ID` takes.
    """
    import json

    from mlsys_lab import data
    from mlsys_lab.data.split import TimeSplit
    from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame
    from mlsys_lab.training import train as train_model

    params: dict[str, object] = {}
    for item in param or []:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        try:
            params[name] = json.loads(text)
        except json.JSONDecodeError:
            params[name] = text
    try:
        sim_config = data.preset(preset, random_state=seed)
        config = TrainingConfig(
            family=family,
            params=params,  # type: ignore[arg-type]  # values checked by TrainingConfig
            split=TimeSplit.ending_at(sim_config.n_days),
            random_state=seed,
            validation_folds=validation_folds,
        )
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from None
    frame = feature_frame(data.simulate(sim_config).transactions)
    try:
        run = train_model(config, frame, tracker=Tracker(TrackingSettings(experiment=experiment)))
    except ValueError as exc:  # e.g. the folds do not fit in the preset's days
        raise typer.BadParameter(
            f"{exc} (preset {preset!r} has {sim_config.n_days} days): "
            "use fewer --validation-folds or a longer --preset",
            param_hint="--validation-folds",
        ) from None
    typer.echo(f"trained {config.name}: test AP {run.test_metrics['average_precision']:.3f}")
    typer.echo(f"run id {run.run_id}  (next: mlsys-lab register {run.run_id})")


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
    target: Annotated[
        str,
        typer.Argument(
            metavar="NOTEBOOK",
            help="The notebook's path, or a module name (00_notebook_thinking) from work/ or the repository root.",
        ),
    ],
) -> None:
    """Run nbgrader's validator on NOTEBOOK and exit non-zero when any test cell fails.

    nbgrader's own ``validate`` exits 0 even when tests fail; this one tells the truth.
    """
    from mlsys_lab import course

    try:
        path = course.find_student_notebook(target)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="NOTEBOOK") from None
    report = course.validate_notebook(path)
    typer.echo(report.summary())
    raise typer.Exit(code=0 if report.passed else 1)


@app.command()
def notebooks(
    root: Annotated[Path, typer.Option(help="The repository root (holds assignments/source/).")] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite generated files even when someone edited them by hand.")
    ] = False,
) -> None:
    """Regenerate notebooks/ (student versions) and solutions/ from assignments/source/.

    Refuses, writing nothing, when a file it would overwrite or remove differs from what the last
    build wrote and from git's copy (answers typed into notebooks/, say), unless --force.
    """
    from mlsys_lab import course

    try:
        built = course.build_course(root, force=force)
    except course.EditedFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    for name in built:
        typer.echo(f"built {name}")


#: How long uvicorn's supervisor waits for a worker's answer before it kills it as hung.
WORKER_HEALTHCHECK_SECONDS = 60


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (MLSYS_LAB_HOST; 127.0.0.1, so nothing outside sees it).")
    ] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65_535, help="TCP port (MLSYS_LAB_PORT; 8000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="uvicorn worker processes, sharing the decision log (MLSYS_LAB_WORKERS; 1)."),
    ] = None,
) -> None:
    """Run the scoring API (FastAPI on uvicorn) on the registry's champion.

    Settings come from MLSYS_LAB_* variables (tracking store, decision log URL, tokens, alias,
    batch limit, host, port, workers): see mlsys_lab.deployment.settings; an option given here wins.
    With several workers each one follows the registry alias every MLSYS_LAB_MODEL_REFRESH_SECONDS
    (5 unless set), since /admin/reload reaches only the worker that receives it, and GET /metrics
    merges every worker's metrics through a fresh folder under MLSYS_LAB_METRICS_DIR (runs/metrics).
    """
    import uvicorn
    from pydantic import ValidationError

    from mlsys_lab.deployment import metrics
    from mlsys_lab.deployment.settings import ServiceSettings

    try:
        settings = ServiceSettings.from_env()
    except ValidationError as exc:
        raise typer.BadParameter(f"invalid MLSYS_LAB_* setting: {exc}") from None
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    workers = settings.workers if workers is None else workers
    if host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("binding to %s: the API is reachable from other machines", host)
    # The worker processes read their settings themselves; "several workers" travels as the factory's name.
    factory = "create_worker_app_from_env" if workers > 1 else "create_app_from_env"
    # Several workers merge their metrics through a fresh folder named in os.environ, where
    # prometheus-client looks for it when each spawned worker imports it.
    with metrics.multiprocess_folder(workers, settings.metrics_dir, os.environ):
        uvicorn.run(
            f"mlsys_lab.deployment.service:{factory}",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,  # warnings hide its lines anyway; off, uvicorn skips building them per request
            # A spawned worker re-imports this CLI (all its commands) before it can answer the
            # supervisor's first ping: that took over 5 s, uvicorn's default, on a busy 2-core box,
            # and the supervisor then killed and respawned the workers forever.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )


Who = Annotated[str, typer.Option("--who", help="Who moves the alias (kept in the alias history).")]
Why = Annotated[str, typer.Option("--why", help="Why (kept in the alias history).")]


@app.command()
def register(run_id: Annotated[str, typer.Argument(help="The MLflow run id of a tracked training run.")]) -> None:
    """Register a tracked run as a new version of the fraud-detector model (store: MLSYS_LAB_TRACKING_DIR)."""
    from mlsys_lab.deployment.registry import IntegrityError, Registry, RegistryError
    from mlsys_lab.training import NotRegistrable

    try:
        info = Registry().register(run_id)
    except (RegistryError, IntegrityError, NotRegistrable) as exc:  # exit code 2, the message names RUN_ID
        raise typer.BadParameter(str(exc), param_hint="RUN_ID") from None
    typer.echo(f"registered run {run_id} as version {info.version} (sha256 {info.sha256})")


@app.command()
def promote(
    version: Annotated[int, typer.Argument(help="The version to serve as champion.")], who: Who, why: Why
) -> None:
    """Make VERSION the champion (after its checksum passes); running services pick it up on reload."""
    from mlsys_lab.deployment.registry import IntegrityError, Registry, RegistryError

    try:
        Registry().promote(version, who=who, why=why)
    except (RegistryError, IntegrityError) as exc:
        raise typer.BadParameter(str(exc), param_hint="VERSION") from None
    typer.echo(f"champion is now version {version}")


@app.command()
def rollback(who: Who, why: Why) -> None:
    """Point champion back at the version it had before its newest promotion."""
    from mlsys_lab.deployment.registry import IntegrityError, Registry, RegistryError

    try:
        version = Registry().rollback(who=who, why=why)
    except (RegistryError, IntegrityError) as exc:
        typer.echo(f"rollback refused: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"champion is now version {version}")


# --------------------------------------------------------------------------------------------------
# Course commands for students and instructors
# --------------------------------------------------------------------------------------------------


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab(
    ctx: typer.Context,
    root: Annotated[Path, typer.Option(help="The repository root (holds notebooks/).")] = Path("."),
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Where students answer; ROOT/work by default.")
    ] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="Every notebook runs its short version (smaller data, shorter runs).")
    ] = False,
) -> None:
    """Copy new course files into work/ (never overwriting one) and open JupyterLab there as a student.

    Any further arguments go to `jupyter lab` (e.g. `--ServerApp.port=8889`). Works as root and
    without a display; JupyterLab's terminal has this environment's `mlsys-lab` on PATH. `--fast`
    is for a slow laptop: the lessons are the same, on less data (graded runs always use it).
    """
    import os
    import subprocess
    import sys

    from mlsys_lab import course

    work = work_dir if work_dir is not None else root / course.WORK_DIR
    try:
        copied = course.sync_student_work(root, work)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--root") from None
    for relative in copied:
        typer.echo(f"copied {relative} into {work}/")
    typer.echo(f"Your answers live in {work}/: builds, tests and `git pull` never touch it.")
    sys.stdout.flush()  # before exec replaces this process
    command = course.lab_command(root, work, ctx.args, fast=fast)
    if os.name == "posix":
        # Become JupyterLab, so Ctrl-C and a SIGTERM reach the server itself and nothing is orphaned.
        os.chdir(command.cwd)
        os.execve(command.argv[0], command.argv, command.env)
    try:
        code = subprocess.call(command.argv, env=command.env, cwd=command.cwd)
    except KeyboardInterrupt:  # Ctrl-C stops JupyterLab; that is the normal way out
        code = 0
    raise typer.Exit(code=code)


@app.command()
def grades(
    assignment: Annotated[str, typer.Argument(help="The assignment, e.g. 00_notebook_thinking.")],
    course_dir: Annotated[
        Path, typer.Option("--course", help="The nbgrader course directory (holds gradebook.db).")
    ] = Path("assignments"),
) -> None:
    """Print every graded cell's score for ASSIGNMENT and each student's total, with pending manual grading marked."""
    from mlsys_lab import course

    gradebook = course_dir / "gradebook.db"
    if not gradebook.is_file() and (Path.cwd() / "gradebook.db").is_file():
        gradebook = Path.cwd() / "gradebook.db"  # run from inside the course directory
    try:
        typer.echo(course.grades_report(gradebook, assignment))
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--course") from None
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="ASSIGNMENT") from None


@app.command()
def autograde(
    assignment: Annotated[str, typer.Argument(help="The assignment, e.g. 00_notebook_thinking.")],
    course_dir: Annotated[Path, typer.Option("--course", help="The nbgrader course directory.")] = Path("assignments"),
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Students graded at once (one per core).")] = 2,
    student: Annotated[
        list[str] | None, typer.Option("--student", help="Grade only this student (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Regrade students already autograded.")] = False,
) -> None:
    """Autograde every submission of ASSIGNMENT, several students at once, into the one gradebook."""
    from mlsys_lab import course

    if jobs < 1:
        raise typer.BadParameter(f"must be at least 1, got {jobs}", param_hint="--jobs")
    try:
        result = course.autograde_class(course_dir, assignment, jobs=jobs, students=student, force=force)
    except ValueError as exc:
        text = str(exc)
        hint = "--student" if "No submission" in text else "--course" if "No gradebook" in text else "ASSIGNMENT"
        raise typer.BadParameter(text, param_hint=hint) from None
    typer.echo(f"{assignment}: graded {len(result.graded)}, skipped {len(result.skipped)}, failed {len(result.failed)}")
    for name in result.graded:
        typer.echo(f"  graded  {name}")
    for name in result.skipped:
        typer.echo(f"  skipped {name} (already autograded; --force regrades)")
    for name, reason in result.failed.items():
        typer.echo(f"  FAILED  {name}: {reason}")
    typer.echo(f"Scores: mlsys-lab grades {assignment} --course {course_dir}")
    if result.failed:
        raise typer.Exit(code=1)


from mlsys_lab.load import cli as load_cli  # noqa: E402  (the load sub-app; it imports nothing heavy at import)

app.add_typer(load_cli.app, name="load")

from mlsys_lab.monitoring.cli import monitor as _monitor  # noqa: E402  (imports nothing heavy at import)

app.command(name="monitor")(_monitor)

from mlsys_lab.drills import cli as drills_cli  # noqa: E402  (the drill sub-app; nothing heavy at import)

app.add_typer(drills_cli.app, name="drill")

from mlsys_lab.maintenance import cli as maintenance_cli  # noqa: E402  (retrain, gate, rollout; nothing heavy at import)

maintenance_cli.register(app)
