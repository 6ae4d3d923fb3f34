"""``mlsys-lab retrain``, ``mlsys-lab gate`` and ``mlsys-lab rollout``: thin shells over :mod:`mlsys_lab.maintenance`.

Each prints its decision and its reasons and exits non-zero when it refuses: 1 for a decision
against (the gate keeps the champion, a promotion without a passing gate decision), 2 for bad
arguments or data too short to decide on. Stores come from the service's settings
(``MLSYS_LAB_TRACKING_DIR``, ``MLSYS_LAB_DECISION_LOG_URL``) unless the options name them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Module 06: retraining, the gate and rollouts.", no_args_is_help=True, add_completion=False)
rollout_app = typer.Typer(help="Shadow, canary, promote, rollback.", no_args_is_help=True, add_completion=False)

AsOf = Annotated[
    dt.datetime, typer.Option("--as-of", help="The decision time, on the transactions' clock (e.g. 2018-06-10).")
]
TrackingDir = Annotated[Path | None, typer.Option("--tracking-dir", help="Tracking store and registry folder.")]
LogUrl = Annotated[str | None, typer.Option("--decision-log", help="SQLAlchemy URL of the decision log.")]
Who = Annotated[str, typer.Option("--who", help="Who makes this move (kept in the history).")]


def _settings(tracking_dir: Path | None, decision_log: str | None):  # type: ignore[no-untyped-def]
    from mlsys_lab.deployment.settings import ServiceSettings

    given = {
        "MLSYS_LAB_TRACKING_DIR": str(tracking_dir) if tracking_dir else "",
        "MLSYS_LAB_DECISION_LOG_URL": decision_log or "",
    }
    return ServiceSettings.from_env(given)


def _log(url: str):  # type: ignore[no-untyped-def]
    from mlsys_lab.deployment.decision_log import DecisionLog

    log = DecisionLog(url)
    log.create()
    return log


def retrain_command(
    as_of: AsOf,
    trigger: Annotated[str, typer.Option(help="schedule, drift, quality, performance or manual.")] = "manual",
    reason: Annotated[str, typer.Option(help="Why, in a sentence (kept in the record).")] = "started by hand",
    family: Annotated[str, typer.Option(help="Model family.")] = "logistic_regression",
    validation_folds: Annotated[int, typer.Option(min=1)] = 2,
    coverage: Annotated[float, typer.Option(help="Share of a day's frauds reported for it to count as mature.")] = 0.85,
    register: Annotated[bool, typer.Option(help="Register the run and point 'challenger' at it.")] = True,
    tracking_dir: TrackingDir = None,
    decision_log: LogUrl = None,
    who: Who = "cli",
) -> None:
    """Retrain from the decision log as of --as-of, on mature days only; print the record; register the challenger."""
    from mlsys_lab.data.split import TimeSplit
    from mlsys_lab.deployment.registry import CHALLENGER, Registry
    from mlsys_lab.maintenance.retraining import Trigger, retrain
    from mlsys_lab.training import NotRegistrable, Tracker, TrainingConfig

    settings = _settings(tracking_dir, decision_log)
    try:
        config = TrainingConfig(family=family, split=TimeSplit(train_start_day=0), validation_folds=validation_folds)
        result = retrain(
            _log(settings.decision_log_url),
            as_of,
            config,
            trigger=Trigger(trigger, reason),
            tracker=Tracker(settings.tracking),
            coverage=coverage,
        )
    except ValueError as exc:
        typer.echo(f"retrain refused: {exc}", err=True)
        raise typer.Exit(code=2) from None
    record = result.record()
    typer.echo(f"retrained {record['model']} as of day {record['as_of_day']} (trigger {trigger}: {reason})")
    typer.echo(f"  maturity: {result.maturity.explanation}")
    split = record["split"]
    typer.echo(
        f"  trained on days {split['train_start_day']}-{split['train_start_day'] + split['train_days'] - 1} "
        f"(labels known at day {split['labels_known_at_day']}); unseen mature days {record['unseen_days']}; "
        f"{record['rows_quarantined']} rows quarantined; {record['immature_rows_left_out']} immature rows left out"
    )
    typer.echo(f"  run {result.run_id}; threshold {record['threshold']:.4f} ({record['threshold_source']})")
    if register:
        registry = Registry(settings.tracking)
        try:
            info = registry.register(result.run_id)  # type: ignore[arg-type]
        except NotRegistrable as exc:
            typer.echo(f"not registered: {exc}", err=True)
            raise typer.Exit(code=1) from None
        registry.set_alias(
            CHALLENGER, info.version, who=who, why=f"retrained as of day {record['as_of_day']} ({trigger})"
        )
        typer.echo(f"registered as version {info.version}, alias '{CHALLENGER}'")


def gate_command(
    version: Annotated[int, typer.Argument(help="The challenger's version.")],
    as_of: AsOf,
    gate_days: Annotated[int, typer.Option(min=2, help="Mature days to compare on.")] = 14,
    margin: Annotated[float, typer.Option(help="The lower bound of the gain must beat this.")] = 0.005,
    coverage: Annotated[float, typer.Option(help="Share of a day's frauds reported for it to count as mature.")] = 0.85,
    promote: Annotated[bool, typer.Option(help="Promote when the gate says so.")] = False,
    tracking_dir: TrackingDir = None,
    decision_log: LogUrl = None,
    who: Who = "cli",
) -> None:
    """Judge VERSION against the champion on the newest mature days; store the decision; exit 1 when it refuses."""
    import pandas as pd

    from mlsys_lab.deployment.decision_log import DEFAULT_ORIGIN
    from mlsys_lab.deployment.registry import CHAMPION, Registry, RegistryError
    from mlsys_lab.maintenance.gate import GateConfig, GateStore, gate_against_champion
    from mlsys_lab.maintenance.retraining import choose_maturity, training_frame
    from mlsys_lab.training import cards_per_day

    settings = _settings(tracking_dir, decision_log)
    registry = Registry(settings.tracking)
    as_of_day = int((pd.Timestamp(as_of) - pd.Timestamp(DEFAULT_ORIGIN)) // pd.Timedelta(days=1))
    frame = training_frame(_log(settings.decision_log_url), pd.Timestamp(DEFAULT_ORIGIN) + pd.Timedelta(days=as_of_day))
    maturity = choose_maturity(frame, as_of_day, coverage=coverage)
    try:
        decision = gate_against_champion(  # the one path from a log to a decision, as the demo's loop takes
            registry,
            frame,
            version,
            as_of_day=as_of_day,
            maturity_days=maturity.days,
            gate_days=gate_days,
            k=cards_per_day(int(frame["customer_id"].nunique())),
            config=GateConfig(margin=margin),
        )
    except (ValueError, RegistryError) as exc:
        typer.echo(f"gate refused: {exc}", err=True)
        raise typer.Exit(code=2) from None
    decision_id = GateStore(settings.tracking.root, registry.model_name).add(decision)
    typer.echo(decision.summary())
    typer.echo(f"  maturity: {maturity.explanation}")
    typer.echo(f"decision {decision_id} stored in {settings.tracking.root / 'gate_decisions.db'}")
    if decision.promote and promote:
        registry.promote(version, who=who, why=f"gate decision {decision_id}: {decision.reasons[0]}")
        typer.echo(f"promoted version {version} to {CHAMPION}")
    raise typer.Exit(code=0 if decision.promote else 1)


def _store(tracking_dir: Path | None):  # type: ignore[no-untyped-def]
    from mlsys_lab.maintenance.rollout import RolloutStore

    return RolloutStore(_settings(tracking_dir, None).tracking.root)


@rollout_app.command("shadow")
def shadow_command(
    version: Annotated[int, typer.Argument(help="The challenger scored in shadow.")],
    tracking_dir: TrackingDir = None,
    who: Who = "cli",
) -> None:
    """Score every request with VERSION too (answers stay the champion's); services follow on their next tick."""
    from mlsys_lab.deployment.registry import Registry

    Registry(_settings(tracking_dir, None).tracking).verify(version)  # a corrupt artifact never reaches a service
    state = _store(tracking_dir).set("shadow", version, 0.0, who=who, why="shadow scoring")
    typer.echo(f"shadow: version {state.challenger_version} scores every request beside the champion")


@rollout_app.command("canary")
def canary_command(
    version: Annotated[int, typer.Argument(help="The challenger on the canary.")],
    share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of cards routed to it.")] = 0.01,
    tracking_dir: TrackingDir = None,
    who: Who = "cli",
) -> None:
    """Route SHARE of the cards (by a stable hash of the card id) to VERSION."""
    from mlsys_lab.deployment.registry import Registry

    Registry(_settings(tracking_dir, None).tracking).verify(version)
    state = _store(tracking_dir).set("canary", version, share, who=who, why=f"canary step to {share:.0%}")
    typer.echo(f"canary: version {state.challenger_version} decides for {state.share:.0%} of the cards")


@rollout_app.command("promote")
def promote_command(
    version: Annotated[int, typer.Argument(help="The version to make champion.")],
    tracking_dir: TrackingDir = None,
    who: Who = "cli",
) -> None:
    """Make VERSION the champion, only if the newest gate decision about it promoted it; the canary ends."""
    from mlsys_lab.deployment.registry import CHAMPION, Registry
    from mlsys_lab.maintenance.gate import GateStore

    settings = _settings(tracking_dir, None)
    registry = Registry(settings.tracking)
    store = GateStore(settings.tracking.root, registry.model_name)
    table = store.table()
    mine = table[table["challenger_version"] == version] if not table.empty else table
    if mine.empty or not bool(mine.iloc[-1]["promote"]):
        typer.echo(
            f"promotion refused: no passing gate decision for version {version} "
            f"({'none on record' if mine.empty else 'the newest one kept the champion'}); run mlsys-lab gate first",
            err=True,
        )
        raise typer.Exit(code=1)
    decision_id = int(mine.iloc[-1]["id"])
    registry.promote(version, who=who, why=f"gate decision {decision_id}")
    _store(tracking_dir).set("off", None, 0.0, who=who, why=f"version {version} promoted to {CHAMPION}")
    typer.echo(f"promoted version {version} to {CHAMPION} (gate decision {decision_id}); canary and shadow off")


@rollout_app.command("rollback")
def rollback_command(
    why: Annotated[str, typer.Option(help="Why (kept in the history).")],
    tracking_dir: TrackingDir = None,
    who: Who = "cli",
) -> None:
    """Move the champion back to the version before its newest promotion; switch any canary or shadow off."""
    from mlsys_lab.deployment.registry import Registry, RegistryError

    registry = Registry(_settings(tracking_dir, None).tracking)
    try:
        back = registry.rollback(who=who, why=why)
    except RegistryError as exc:
        typer.echo(f"rollback refused: {exc}", err=True)
        raise typer.Exit(code=1) from None
    _store(tracking_dir).set("off", None, 0.0, who=who, why=f"rollback: {why}")
    typer.echo(f"rolled back: champion is version {back} ({why})")


@rollout_app.command("status")
def status_command(tracking_dir: TrackingDir = None) -> None:
    """Print the rollout's state and its history of moves."""
    store = _store(tracking_dir)
    state = store.current()
    typer.echo(json.dumps({"mode": state.mode, "version": state.challenger_version, "share": state.share}))
    typer.echo(store.history().to_string(index=False))


def register(main: typer.Typer) -> None:
    """Add ``retrain``, ``gate`` and ``rollout`` to the main ``mlsys-lab`` app."""
    main.command("retrain")(retrain_command)
    main.command("gate")(gate_command)
    main.add_typer(rollout_app, name="rollout")
