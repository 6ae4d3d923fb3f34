"""The whole maintenance loop against the running service: what ``make demo`` runs after deploying (module 06).

The demo's champion serves the simulation's last day; the loop then lets production time pass and
closes the loop on that same decision log:

1. **Production goes on** (:func:`fast_forward`). The same simulated world runs on for
   ``LoopConfig.days`` more days (the earlier days are byte-identical: the simulator lays them out
   day by day), with a new fraud pattern (card testing) starting ``drift_after`` days in. Those days'
   decisions are written into the demo's decision log as the service would have logged them (the
   champion's scores, the features it computes, :func:`~mlsys_lab.maintenance.history.backfill`),
   with every fraud label reported by the decision time, including the late labels of the days the
   demo replayed through the API. Written, not served: replaying two months one request at a time
   would take most of an hour; what is served is the rollout below. Only these days are trained
   on: the replayed days' features were computed while the service's 30-day windows were still
   filling.
2. **Retraining as of the decision time** (:func:`~mlsys_lab.maintenance.retraining.retrain`):
   labels known then, immature days left out, validated, trained and tracked; registered, alias
   ``challenger``.
3. **The gate** (:func:`gate_against_champion`): paired bootstrap over the newest mature days that
   neither model has seen, guardrails, the decision stored in the :class:`~mlsys_lab.maintenance.gate.GateStore`.
4. **Shadow, then the canary ladder** on the real service (``mlsys-lab serve`` on
   loopback, following the rollout store and the alias on a short timer), fed the days after the
   decision time through ``/v1/score/batch``; the :class:`~mlsys_lab.maintenance.rollout.Watchdog`
   judges each window of the challenger's decisions; promotion after the top step's hold, when the gate
   said so.
5. **A deliberately bad challenger** (:func:`miscalibrated_threshold`): the same retraining with its
   threshold set so that it alerts ``bad_alert_factor`` times as often as the champion. The gate
   refuses it (alert-rate guardrail); the demo then puts it on the canary anyway, as an operator
   skipping the gate would, to show the last line of defence: the watchdog switches the canary off
   after ``failures`` consecutive failing windows, and the service follows without a restart.

Everything here composes the package's functions; :class:`LoopReport` holds what happened and
:meth:`LoopReport.incomplete` says why the loop did not complete (the demo exits 1 on it).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import pandas as pd

from mlsys_lab.data import CardTesting, SimulatorConfig, simulate
from mlsys_lab.data.features import SECONDS_PER_DAY
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import CHALLENGER, CHAMPION, Registry
from mlsys_lab.deployment.replay import ReplayError, fraud_labels, request_bodies
from mlsys_lab.deployment.server import run_server
from mlsys_lab.deployment.settings import ENV_PREFIX, ServiceSettings
from mlsys_lab.maintenance.gate import (
    GateConfig,
    GateDecision,
    GateStore,
    gate_against_champion,
    gate_rows,
)
from mlsys_lab.maintenance.history import backfill
from mlsys_lab.maintenance.retraining import Retraining, Trigger, retrain, schedule_trigger, training_frame
from mlsys_lab.maintenance.rollout import (
    Ladder,
    RolloutStore,
    SampleRatio,
    Watchdog,
    WatchdogConfig,
    WindowCheck,
    sample_ratio,
    shadow_report,
)
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame

__all__ = [
    "LoopConfig",
    "LoopReport",
    "RolloutRun",
    "StepResult",
    "fast_forward",
    "gate_against_champion",
    "miscalibrated_threshold",
    "run_loop",
]

logger = logging.getLogger(__name__)

WHO = "make demo"


@dataclass(frozen=True)
class LoopConfig:
    """The loop's stated rule: how long production runs on, the drift, the ladder, the watchdog, the gate."""

    days: int = 61  # production days after the replay, written into the log before retraining
    drift_after: int = 10  # card testing (fraud scenario 4) starts this many days into them
    traffic_days: int = 20  # days after the decision time available to shadow and canary (sent only as needed)
    retrain_every_days: int = 28  # the schedule that triggers the retraining
    validation_folds: int = 2
    gate_days: int = 14
    gate: GateConfig = field(default_factory=GateConfig)
    ladder: Ladder = field(default_factory=lambda: Ladder((0.05, 0.25, 0.5, 1.0), hold_windows=2))
    #: The watchdog judges windows of this many of the challenger's decisions (its min_decisions too). At a 0.5 %
    #: alert rate a window of 50 holds one alert in expectation: alerting five times as often would pass most
    #: windows; in 250 a x5 challenger fails about 7 windows in 8. Its latency guardrail is off: a busy
    #: laptop's wall p99 measures the laptop (the gate checks CPU time instead).
    watchdog: WatchdogConfig = field(default_factory=lambda: WatchdogConfig(min_decisions=250, max_p99_ms=1e9))
    shadow_transactions: int = 1_000
    bad_alert_factor: float = 5.0
    refresh_seconds: float = 0.5


@dataclass(frozen=True)
class StepResult:
    """One canary step: the share, the windows the watchdog judged, and the routed cards' sample-ratio check."""

    share: float
    windows: tuple[WindowCheck, ...]
    challenger_decisions: int
    decisions: int
    cards: SampleRatio


@dataclass(frozen=True)
class RolloutRun:
    """A challenger's way through shadow and the canary ladder, and how it ended."""

    version: int
    shadow: dict[str, float] | None
    steps: tuple[StepResult, ...]
    watchdog_acted: str  # "" when the watchdog never acted
    promoted: bool
    challenger_after_stop: int  # challenger decisions after the watchdog acted (the service follows on its timer)
    requests: int
    seconds: float


@dataclass(frozen=True)
class LoopReport:
    """What the loop did: production days written, the retraining, the gate, and the two rollouts."""

    start_day: int
    as_of_day: int
    drift_day: int
    fast_forward: tuple[int, int]  # decisions and labels written
    champion_version: int
    retraining: Retraining
    challenger_version: int
    gate: GateDecision
    gate_id: int
    good: RolloutRun | None  # None when the gate kept the champion
    bad_threshold: float
    bad_alert_ratio: float  # its alert rate over the champion's, on the gate days
    bad_version: int
    bad_gate: GateDecision
    bad: RolloutRun
    acknowledged: int
    unlogged: int  # acknowledged request ids missing from the log (must be 0)
    champion_at_end: int
    seconds: dict[str, float]

    def incomplete(self) -> str:
        """Why the loop did not complete ("" when it did): a lost decision, or a bad challenger left serving."""
        problems = []
        if self.unlogged:
            problems.append(f"{self.unlogged} acknowledged decisions are missing from the decision log")
        if not self.bad.watchdog_acted:
            problems.append(
                f"the bad challenger (version {self.bad_version}, alerting {self.bad_threshold:.4f}) was not rolled "
                f"back by the watchdog over {len(self.bad.steps)} canary step(s)"
            )
        if self.gate.promote and self.good is not None and not (self.good.promoted or self.good.watchdog_acted):
            problems.append(f"the gate promoted version {self.challenger_version} but its rollout reached no end")
        return "; ".join(problems)


def fast_forward(
    log: DecisionLog,
    frame: pd.DataFrame,
    registry: Registry,
    *,
    first_day: int,
    as_of_day: int,
    replayed: pd.DataFrame | None = None,
) -> tuple[int, int]:
    """Write days ``first_day`` to ``as_of_day - 1`` of ``frame`` into ``log`` as the champion would have decided them.

    ``frame`` has the simulator's columns and the 15 features; labels are those reported by the
    start of ``as_of_day``. ``replayed`` (the rows the service served before) gets its labels reported
    after the replay's end recorded too, so the log knows every label known at ``as_of_day``.
    Returns ``(decisions, labels)`` written.
    """
    champion = registry.load(CHAMPION)
    rows = frame[(frame["tx_time_days"] >= first_day) & (frame["tx_time_days"] < as_of_day)]
    scores = champion.score(rows[list(champion.info.features)].to_numpy(dtype=np.float64))
    until = as_of_day * SECONDS_PER_DAY
    written, labels = backfill(
        log,
        rows,
        scores=scores,
        threshold=champion.threshold,
        model_version=champion.version,
        labels_until_seconds=until,
    )
    if replayed is not None and len(replayed):
        late = fraud_labels(replayed, until)
        late = late[late["label_seconds"] >= first_day * SECONDS_PER_DAY]  # the replay sent the earlier ones
        for tx_id, label_time in zip(late["transaction_id"].tolist(), late["label_time"].tolist(), strict=True):
            log.record_label(int(tx_id), True, dt.datetime.fromisoformat(label_time))
        labels += len(late)
    return written, labels


def miscalibrated_threshold(scores: npt.ArrayLike, reference_rate: float, factor: float) -> float:
    """The threshold at which ``scores`` alert closest to ``factor`` times ``reference_rate`` (a share of decisions).

    Closest in ratio, among the scores' own values: a tree's scores take a few values only, so a
    quantile can land on a leaf holding most of the rows and alert on nearly everything.

    Examples
    --------
    >>> round(miscalibrated_threshold(np.linspace(0, 1, 1001), 0.01, 5.0), 2)
    0.95
    """
    values = np.asarray(scores, dtype=float)
    if values.size == 0 or not 0.0 < reference_rate < 1.0 or factor <= 0:
        raise ValueError(
            f"need scores, a reference alert rate in (0, 1) and a positive factor; got {values.size} scores, "
            f"rate {reference_rate}, factor {factor}"
        )
    candidates = np.unique(values)
    rates = 1.0 - np.searchsorted(np.sort(values), candidates, side="left") / values.size  # share >= each candidate
    target = min(1.0, factor * reference_rate)
    return float(candidates[np.argmin(np.abs(np.log(rates / target)))])


class _Traffic:
    """The days after the decision time as batch bodies, in time order, consumed by the rollouts in turn."""

    def __init__(self, rows: pd.DataFrame, batch: int) -> None:
        rows = rows.sort_values(["tx_time_seconds", "transaction_id"], kind="stable")
        bodies = request_bodies(rows)
        self._batches: Iterator[list[dict[str, object]]] = iter(
            [bodies[i : i + batch] for i in range(0, len(bodies), batch)]
        )

    def next(self) -> list[dict[str, object]] | None:
        return next(self._batches, None)


@dataclass
class _Sender:
    client: httpx.Client
    traffic: _Traffic
    cursor: int = 0  # a decision id at or before the newest: reads start here, not at the log's start
    acknowledged: set[str] = field(default_factory=set)
    requests: int = 0

    def send(self) -> bool:
        """One batch through the API; False when the traffic is used up."""
        bodies = self.traffic.next()
        if bodies is None:
            return False
        answer = self.client.post("/v1/score/batch", json={"transactions": bodies})
        if answer.status_code != 200:
            raise ReplayError(f"POST /v1/score/batch answered {answer.status_code}: {answer.text[:500]}")
        self.acknowledged.update(str(r["request_id"]) for r in answer.json()["results"])
        self.requests += len(bodies)
        return True


def _newest_id(log: DecisionLog, since: int) -> int:
    # The log's newest id (one query; it read every decision since `since` into a frame, 6.5 s of the
    # demo's rollouts), never before `since`.
    return max(since, log.newest_id())


def _wait_for_version(client: httpx.Client, version: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/ready").json().get("model_version") == version:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the service did not follow the champion alias to version {version} within {timeout_s:g} s")


def _rollout(
    sender: _Sender,
    log: DecisionLog,
    registry: Registry,
    store: RolloutStore,
    version: int,
    *,
    reference_alert_rate: float,
    config: LoopConfig,
    k: int,
    promote_why: str | None,
) -> RolloutRun:
    """Shadow, then the canary ladder with the watchdog on every window; promote at the top when ``promote_why``.

    ``promote_why`` None: the challenger may not be promoted (it did not pass the gate); it climbs
    the ladder only as long as the watchdog lets it, and is switched off at the top.
    """
    started, requests_before = time.perf_counter(), sender.requests
    tick = 3 * config.refresh_seconds  # the service follows the rollout store on this timer
    # Shadow: every request scored by the challenger too; the answers stay the champion's.
    shadow_before = len(store.shadow_frame())
    store.set("shadow", version, 0.0, who=WHO, why="shadow before the canary")
    time.sleep(tick)
    sent = 0
    while sent < config.shadow_transactions and sender.send():
        sent = sender.requests - requests_before
    shadow_rows = store.shadow_frame().iloc[shadow_before:]
    shadow = shadow_report(shadow_rows, k=k) if len(shadow_rows) else None

    dog = Watchdog(registry, store, version, reference_alert_rate, promoted=False, config=config.watchdog)
    steps: list[StepResult] = []
    share: float | None = config.ladder.steps[0]
    while share is not None and not dog.acted:
        store.set("canary", version, share, who=WHO, why=f"canary step to {share:.0%}")
        time.sleep(tick)
        step_start = _newest_id(log, sender.cursor)
        sender.cursor = step_start
        seen, windows, clean = step_start, [], 0
        while clean < config.ladder.hold_windows and not dog.acted:
            window = log.decisions(since_id=seen)
            ours = window[window["model_version"] == version]
            if len(ours) >= config.watchdog.min_decisions:
                last = int(ours["id"].iloc[config.watchdog.min_decisions - 1])
                check = dog.observe(window[window["id"] <= last])
                windows.append(check)
                clean = clean + 1 if check.passed else 0
                seen = last
            elif not sender.send():
                break  # traffic used up: the step ends unfinished
        step = log.decisions(since_id=step_start)
        routed = step[step["model_version"] == version]
        # Counted in cards, as routed: is the challenger's share of the cards the share the step set?
        cards = step["customer_id"].unique()
        steps.append(
            StepResult(
                share=share,
                windows=tuple(windows),
                challenger_decisions=len(routed),
                decisions=len(step),
                cards=sample_ratio(routed["customer_id"].nunique(), len(cards), share),
            )
        )
        if clean < config.ladder.hold_windows:
            break
        share = config.ladder.next_share(share)

    promoted, after_stop = False, 0
    if dog.acted:
        stopped_at = _newest_id(log, sender.cursor)
        sender.cursor = stopped_at
        time.sleep(tick)
        sender.send()
        after = log.decisions(since_id=stopped_at)
        after_stop = int((after["model_version"] == version).sum())
    elif share is None and promote_why is not None:
        registry.promote(version, who=WHO, why=promote_why)
        store.set("off", None, 0.0, who=WHO, why=f"version {version} promoted to {CHAMPION}")
        _wait_for_version(sender.client, version)
        promoted = True
    else:
        why = "it did not pass the gate" if promote_why is None else "the traffic ran out before the top of the ladder"
        store.set("off", None, 0.0, who=WHO, why=f"version {version} not promoted: {why}")
    return RolloutRun(
        version=version,
        shadow=shadow,
        steps=tuple(steps),
        watchdog_acted=dog.acted,
        promoted=promoted,
        challenger_after_stop=after_stop,
        requests=sender.requests - requests_before,
        seconds=time.perf_counter() - started,
    )


def run_loop(
    config: SimulatorConfig,
    tracking: TrackingSettings,
    decision_log: Path,
    transactions: pd.DataFrame,
    champion_config: TrainingConfig,
    *,
    first_logged_day: int,
    k: int,
    loop: LoopConfig | None = None,
) -> LoopReport:
    """Run the loop on the demo's decision log and tracking store (see the module docstring).

    ``config`` is the demo's simulation, ``transactions`` the rows it accepted (days from
    ``first_logged_day`` on were served and are in ``decision_log``), ``champion_config`` the serving
    champion's training config (the challenger is the same family and hyperparameters, retrained).

    Raises :class:`~mlsys_lab.deployment.replay.ReplayError` (a ``RuntimeError``) or ``TimeoutError``
    when the service cannot be run, ``ValueError`` when the data is too short to retrain on.
    """
    loop = loop or LoopConfig()
    seconds: dict[str, float] = {}
    start_day, as_of_day = config.n_days, config.n_days + loop.days
    drift_day = start_day + loop.drift_after
    clock = time.perf_counter()
    world = replace(
        config,
        n_days=as_of_day + loop.traffic_days,
        drift=(*config.drift, CardTesting(start_day=drift_day)),
    )
    later = simulate(world).transactions
    # The days already simulated stay what the service saw (the accepted rows). The continuation draws
    # the same rows for them except a few dozen amounts of S3 cards compromised in the last two weeks
    # (S3 picks which of a card's transactions it inflates over its whole 14 days).
    world_rows = pd.concat([transactions, later[later["tx_time_days"] >= start_day]], ignore_index=True)
    frame = feature_frame(world_rows.sort_values(["tx_time_seconds", "transaction_id"], ignore_index=True))
    replayed = transactions[transactions["tx_time_days"] >= first_logged_day]
    seconds["simulate"] = time.perf_counter() - clock

    url = f"sqlite:///{decision_log}"
    log, registry, store = DecisionLog(url), Registry(tracking), RolloutStore(tracking.root)
    gates = GateStore(tracking.root, registry.model_name)
    try:
        store.set("off", None, 0.0, who=WHO, why="a fresh demo run starts with no rollout")
        champion = registry.get(CHAMPION)
        clock = time.perf_counter()
        written = fast_forward(log, frame, registry, first_day=start_day, as_of_day=as_of_day, replayed=replayed)
        seconds["fast_forward"] = time.perf_counter() - clock

        clock = time.perf_counter()
        as_of = (pd.Timestamp(config.start_date) + pd.Timedelta(days=as_of_day)).to_pydatetime()
        trained_at = champion_config.split.train_start_day + champion_config.split.train_days
        trigger = schedule_trigger(trained_at, as_of_day, loop.retrain_every_days) or Trigger(
            "manual", "the demo retrains at the end of its production days"
        )
        # The champion's family, hyperparameters and seed; retrain places the split on the mature days.
        base = replace(champion_config, validation_folds=loop.validation_folds, cards_per_day=k)
        tracker = Tracker(tracking)
        logged = training_frame(log, as_of)  # read once: the retrainings and the gate use the same rows
        retrained = retrain(log, as_of, base, trigger=trigger, tracker=tracker, logged=logged)
        info = registry.register(retrained.run)
        registry.set_alias(CHALLENGER, info.version, who=WHO, why=f"retrained as of day {as_of_day} ({trigger.kind})")
        seconds["retrain"] = time.perf_counter() - clock

        clock = time.perf_counter()
        gate = gate_against_champion(
            registry,
            logged,
            info.version,
            as_of_day=as_of_day,
            maturity_days=retrained.maturity.days,
            gate_days=loop.gate_days,
            k=k,
            config=loop.gate,
        )
        gate_id = gates.add(gate)
        seconds["gate"] = time.perf_counter() - clock

        # The bad challenger: the same retraining (another seed) with a threshold alerting x factor.
        clock = time.perf_counter()
        bad_run = retrain(
            log,
            as_of,
            replace(base, random_state=base.random_state + 1),
            trigger=Trigger("manual", f"a deliberately miscalibrated challenger (alerts x{loop.bad_alert_factor:g})"),
            tracker=tracker,
            logged=logged,
        )
        rows = gate_rows(logged, as_of_day, retrained.maturity.days, loop.gate_days)
        reference = float(np.mean(rows["score"].to_numpy() >= champion.threshold))
        bad_features = list(bad_run.run.config.features)
        bad_scores = bad_run.run.pipeline.predict_proba(rows[bad_features].to_numpy(dtype=np.float64))[:, 1]
        bad_threshold = miscalibrated_threshold(bad_scores, reference, loop.bad_alert_factor)
        bad_ratio = float(np.mean(bad_scores >= bad_threshold)) / reference
        assert bad_run.run_id is not None
        tracker.log_metrics(bad_run.run_id, {"threshold": bad_threshold})  # the miscalibration, on record
        bad_info = registry.register(bad_run.run_id)
        bad_gate = gate_against_champion(
            registry,
            logged,
            bad_info.version,
            as_of_day=as_of_day,
            maturity_days=retrained.maturity.days,
            gate_days=loop.gate_days,
            k=k,
            config=loop.gate,
        )
        gates.add(bad_gate)
        seconds["bad_challenger"] = time.perf_counter() - clock

        # The rollouts, on the real service fed the days after the decision time.
        clock = time.perf_counter()
        env = {
            "MLSYS_LAB_TRACKING_DIR": str(tracking.root),
            f"{ENV_PREFIX}DECISION_LOG_URL": url,
            f"{ENV_PREFIX}MODEL_ALIAS": CHAMPION,
            f"{ENV_PREFIX}MODEL_REFRESH_SECONDS": str(loop.refresh_seconds),
        }
        batch = ServiceSettings.from_env(env).batch_limit
        traffic = _Traffic(frame[frame["tx_time_days"] >= as_of_day], batch)
        last_id = _newest_id(log, 0)
        with (
            run_server(env, output=tracking.root / "demo-loop-server.log", wait_path="/ready") as server,
            httpx.Client(base_url=server.url, timeout=60) as client,
        ):
            sender = _Sender(client, traffic, cursor=last_id)
            good = None
            if gate.promote:
                good = _rollout(
                    sender,
                    log,
                    registry,
                    store,
                    info.version,
                    reference_alert_rate=reference,
                    config=loop,
                    k=k,
                    promote_why=f"gate decision {gate_id}: {gate.reasons[0]}; canary clean at every step",
                )
            # The gate refused it; it goes on the canary anyway, to show what stops it in production.
            bad = _rollout(
                sender,
                log,
                registry,
                store,
                bad_info.version,
                reference_alert_rate=reference,
                config=loop,
                k=k,
                promote_why=None,
            )
            champion_at_end = int(client.get("/ready").json()["model_version"])
        seconds["rollout"] = time.perf_counter() - clock
        served = log.decisions(since_id=last_id)
        unlogged = len(sender.acknowledged - set(served["request_id"]))
    finally:
        for closing in (log, registry, store, gates):
            closing.close()
    return LoopReport(
        start_day=start_day,
        as_of_day=as_of_day,
        drift_day=drift_day,
        fast_forward=written,
        champion_version=champion.version,
        retraining=retrained,
        challenger_version=info.version,
        gate=gate,
        gate_id=gate_id,
        good=good,
        bad_threshold=bad_threshold,
        bad_alert_ratio=bad_ratio,
        bad_version=bad_info.version,
        bad_gate=bad_gate,
        bad=bad,
        acknowledged=len(sender.acknowledged),
        unlogged=unlogged,
        champion_at_end=champion_at_end,
        seconds=seconds,
    )
