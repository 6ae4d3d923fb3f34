"""The drill runner's parts: the system as the course built it, a scraper, and the evidence a drill reads.

:func:`prepare_system` builds what every drill starts from: simulated transactions, a model trained
and tracked by :func:`mlsys_lab.training.train` (validation folds, so it is registrable), registered
and aliased in the MLflow registry, plus a second registered version the corrupt-model drill can
break. Each drill serves its own alias (``MLSYS_LAB_MODEL_ALIAS``) with its own decision log, so
drills can share one prepared store. :func:`serve` starts ``mlsys-lab serve`` on a free loopback
port (:class:`~mlsys_lab.deployment.server.ServerProcess`); :class:`Scraper` polls ``/ready``,
``/health`` and ``/metrics`` (when the server has it: a 404 is recorded once and the path dropped).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import ServerProcess
from mlsys_lab.drills.traffic import Outcome
from mlsys_lab.monitoring.alerts import BurnRateRule, evaluate_rules

__all__ = [
    "ADMIN_TOKEN_BYTES",
    "DrillSystem",
    "Scraper",
    "acknowledged_missing",
    "failure_alerts",
    "hidden_start",
    "prepare_system",
    "serve",
    "utc",
]

logger = logging.getLogger(__name__)
ADMIN_TOKEN_BYTES = 16
#: Training data: enough days for two validation folds before the test period (as the deployment tests).
TRAIN_DAYS = 45
#: Days simulated after training: the drills' traffic.
TRAFFIC_DAYS = 7
#: Share of the drills' first requests the miscalibrated version alerts on (offline, on their features).
#: The good model alerts on about 0.02 % of the traffic (1 in 6,576 on seed 0): five times that is one
#: alert in 1,300 requests, which no watchdog window of a seconds-long drill can tell from the champion.
#: At 5 % a window of 100 decisions holds about 5 alerts where the champion's holds none.
MISCALIBRATED_ALERT_SHARE = 0.05
#: How many of the traffic's first transactions the miscalibrated threshold is set on: the ones a drill
#: replays, with the features a service on an empty decision log computes (it knows nothing earlier).
CALIBRATION_ROWS = 2_000


@dataclass(frozen=True)
class DrillSystem:
    """A prepared store: a champion-quality version and a spare one, and the traffic the drills replay."""

    root: Path
    tracking: Any  # TrackingSettings (typed loosely: the training layer imports MLflow lazily)
    good_version: int
    spare_version: int
    traffic: pd.DataFrame  # transactions after the training period, in time order
    random_state: int
    #: The good model re-registered with a threshold that alerts on ``MISCALIBRATED_ALERT_SHARE`` of the traffic.
    miscalibrated_version: int = 0
    #: Registered with a matching sha256 but bytes that cannot be unpickled (a half-written artifact).
    unpicklable_version: int = 0
    #: A pipeline whose coefficients are NaN (a diverged fit): it loads, and scores NaN.
    nan_version: int = 0

    def new_alias(self, kind: str) -> str:
        """A fresh alias pointing at the good version, recorded in the alias history."""
        alias = f"drill-{kind.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
        registry = Registry(self.tracking)
        try:
            registry.set_alias(alias, self.good_version, who="drill runner", why=f"{kind} drill starts")
        finally:
            registry.close()
        return alias

    def history(self, alias: str) -> list[dict[str, Any]]:
        registry = Registry(self.tracking)
        try:
            table = registry.history()
        finally:
            registry.close()
        return [
            {k: (None if pd.isna(v) else str(v) if k == "at" else v) for k, v in row.items()}
            for row in table[table["alias"] == alias].to_dict("records")
        ]


def prepare_system(root: Path, *, random_state: int = 0) -> DrillSystem:
    """Simulate, train two registrable runs, register both and three broken ones: what every drill starts from.

    The broken versions cost no training (each is the good run logged again, then spoilt): one with a
    threshold that alerts on :data:`MISCALIBRATED_ALERT_SHARE` of the traffic, one whose artifact
    cannot be unpickled (its sha256 recorded over the bad bytes, as a job that hashes what it wrote
    would), one whose coefficients are NaN. About 15-30 s.
    """
    from mlsys_lab import data
    from mlsys_lab.data.split import TimeSplit
    from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame, train

    config = data.preset(
        "tiny", random_state=random_state, n_customers=500, n_terminals=1000, n_days=TRAIN_DAYS + TRAFFIC_DAYS
    )
    transactions = data.simulate(config).transactions
    trained_on = transactions[transactions["tx_time_days"] < TRAIN_DAYS]
    frame = feature_frame(trained_on)
    tracking = TrackingSettings(root=root / "mlflow", experiment="drills")
    tracker = Tracker(tracking)
    split = TimeSplit.ending_at(TRAIN_DAYS)
    configs = [
        TrainingConfig(family="logistic_regression", split=split, validation_folds=2),
        TrainingConfig(family="logistic_regression", params={"C": 0.01}, split=split, validation_folds=2),
    ]
    registry = Registry(tracking)
    try:
        runs = [train(c, frame, tracker=tracker) for c in configs]
        versions = [registry.register(run).version for run in runs]
        traffic = transactions[transactions["tx_time_days"] >= TRAIN_DAYS].reset_index(drop=True)
        # Features of the traffic alone: a drill's service starts on an empty decision log, so it knows
        # only the transactions replayed to it (and no labels), as this frame does.
        broken = _broken_runs(runs[0], feature_frame(traffic), tracker)
        broken_versions = [registry.register(run_id).version for run_id in broken]
    finally:
        registry.close()
    return DrillSystem(root, tracking, versions[0], versions[1], traffic, random_state, *broken_versions)


def _broken_runs(good: Any, frame: pd.DataFrame, tracker: Any) -> tuple[str, str, str]:
    """Log ``good`` three more times and spoil each copy: (miscalibrated, unpicklable, NaN) run ids."""
    import copy
    import dataclasses
    import hashlib

    scores = good.pipeline.predict_proba(frame[list(good.config.features)].to_numpy(np.float64))[:, 1]
    threshold = float(np.quantile(scores[:CALIBRATION_ROWS], 1 - MISCALIBRATED_ALERT_SHARE))
    miscalibrated = tracker.log_run(good, run_name="miscalibrated threshold")
    tracker.log_metrics(miscalibrated, {"threshold": threshold})

    unpicklable = tracker.log_run(good, run_name="half-written artifact")
    tags = tracker.client.get_run(unpicklable).data.tags
    path = tracker.artifact_dir(unpicklable) / tags["model_file"]
    cut = path.read_bytes()[: path.stat().st_size // 2]  # the job's disk filled mid-write
    path.write_bytes(cut)
    tracker.client.set_tag(unpicklable, "model_sha256", hashlib.sha256(cut).hexdigest())  # it hashed what it wrote

    pipeline = copy.deepcopy(good.pipeline)
    estimator = pipeline[-1]
    estimator.coef_ = np.full_like(estimator.coef_, np.nan)  # a fit that diverged
    nan = tracker.log_run(dataclasses.replace(good, pipeline=pipeline, run_id=None), run_name="NaN coefficients")
    return miscalibrated, unpicklable, nan


def serve(system: DrillSystem, alias: str, log_url: str, output: Path, **env: str) -> ServerProcess:
    """``mlsys-lab serve`` on a free 127.0.0.1 port, serving ``alias`` and logging to ``log_url``; up when returned."""
    settings = {
        "MLSYS_LAB_TRACKING_DIR": str(system.tracking.root),
        "MLSYS_LAB_DECISION_LOG_URL": log_url,
        "MLSYS_LAB_MODEL_ALIAS": alias,
        **{f"MLSYS_LAB_{key.upper()}": value for key, value in env.items()},
    }
    return ServerProcess(settings, output=output, wait_path="/health")


class Scraper:
    """Polls ``/ready``, ``/health`` and ``/metrics`` every ``every_s`` seconds in a thread, recording each answer."""

    def __init__(self, url: str, clock: Any, *, every_s: float = 0.25) -> None:
        self.url = url
        self.clock = clock  # callable: seconds since the drill started
        self.every_s = every_s
        self.rows: list[dict[str, Any]] = []
        self._paths = ["/ready", "/health", "/metrics"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="drill-scraper")

    def move(self, url: str) -> None:
        self.url = url

    def start(self) -> Scraper:
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.rows

    def _run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self._stop.is_set():
                for path in list(self._paths):
                    row: dict[str, Any] = {"path": path}
                    try:
                        answer = client.get(f"{self.url}{path}")
                        row["status"] = answer.status_code
                        if path == "/metrics":
                            row["body"] = answer.text[:2000]
                            if answer.status_code == 404:  # not on this branch: say so once and stop asking
                                self._paths.remove(path)
                        else:
                            row["body"] = answer.json()
                    except (httpx.TransportError, ValueError) as exc:
                        row["status"], row["body"] = 0, type(exc).__name__
                    row["t"] = round(self.clock(), 3)  # when the answer (or the error) was seen
                    self.rows.append(row)
                self._stop.wait(self.every_s)


def hidden_start(random_state: int, low_s: float, high_s: float) -> float:
    """The fault's seeded start, uniform in ``[low_s, high_s)``: known to the answer key, not to the learner."""
    return float(np.random.default_rng([random_state, 7]).uniform(low_s, high_s))


def utc(wall: float) -> str:
    """A ``time.time()`` value as ISO 8601 UTC."""
    return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="milliseconds")


def acknowledged_missing(outcomes: list[Outcome], log_url: str) -> tuple[int, int]:
    """(acknowledged, acknowledged but missing from the log): read from the log itself after the drill."""
    acknowledged = {o.request_id for o in outcomes if o.ok}
    log = DecisionLog(log_url)
    try:
        logged = log.request_ids()
    finally:
        log.close()
    return len(acknowledged), len(acknowledged - logged)


def failure_alerts(outcomes: list[Outcome], period_s: float, *, slo: float = 0.99) -> list[dict[str, Any]]:
    """A burn-rate page on the drill's per-second failures (:class:`~mlsys_lab.monitoring.alerts.BurnRateRule`).

    The workbook's fast-burn factor, 14.4x the budget of ``1 - slo``, over a long window of an
    eighth of the drill (2-60 s) and a short one of 1 s: scaling the workbook's 1 h / 5 min to a
    drill of seconds would give windows shorter than the one-second rows.
    """
    if not outcomes:
        return []
    seconds = np.floor([o.done_s for o in outcomes]).astype(int)  # when each answer or error was seen
    failed = np.array([not o.ok for o in outcomes])
    index = pd.to_datetime(np.arange(seconds.max() + 1), unit="s")
    metrics = pd.DataFrame(
        {
            "requests": np.bincount(seconds, minlength=len(index)),
            "errors": np.bincount(seconds, weights=failed, minlength=len(index)),
        },
        index=index,
    )
    # The workbook's fast-burn page (14.4x), with windows a drill of seconds can hold: 5 s and 1 s.
    long = pd.Timedelta(seconds=max(2, min(60, round(period_s / 8))))
    rules = (
        BurnRateRule(
            name=f"errors 14.4x over {long.total_seconds():g}s",
            bad="errors",
            total="requests",
            slo=slo,
            long_window=long,
            short_window=pd.Timedelta(seconds=1),
            burn_rate=14.4,
        ),
    )
    log = evaluate_rules(rules, metrics).log
    return [
        {
            "rule": row["rule"],
            "severity": row["severity"],
            # A row is one second of traffic, known when that second ends.
            "fired_at_s": (row["fired_at"] - index[0]).total_seconds() + 1,
            "cleared_at_s": None if pd.isna(row["cleared_at"]) else (row["cleared_at"] - index[0]).total_seconds() + 1,
        }
        for row in log.to_dict("records")
    ]


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    """Wait (bounded) until ``/ready`` answers 200."""
    deadline = time.monotonic() + timeout_s
    # One client for every poll (httpx.get() builds an SSL context each time: ~38 ms of CPU per poll).
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{url}/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise TimeoutError(f"{url}/ready not 200 within {timeout_s:g} s")
