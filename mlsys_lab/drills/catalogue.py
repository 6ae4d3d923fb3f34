"""The drills: each starts the real service, replays simulator traffic, injects one fault at a hidden time.

Every drill returns a :class:`~mlsys_lab.drills.record.DrillRecord` whose answer key is computed
from the injection and from the raw evidence (each request the generator sent and its answer, the
decision log read back after the servers stopped), and whose ``measured`` fields are what the
system's own monitoring saw (alerts over the generator's per-second errors, ``/ready`` and
``/health`` scrapes, drift statistics over the logged scores). A drill passes its own check when
the two agree; a learner's diagnosis is scored against the key (:mod:`mlsys_lab.drills.diagnosis`).

``fast=True`` runs each drill for seconds (CI, the notebook's fast mode); the default runs longer
at the same rates, so the statistics have more to work on.

:func:`concept_drift` runs in compressed simulated time: matured labels need weeks, so its days go
through the real service in batches (``/v1/score/batch``) with the labels through ``/v1/feedback/batch``
at their simulated times, and its detectors run over the decision log once per simulated day.
Every answer key's impact block starts with the same five numbers (:func:`_impact`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.replay import request_bodies
from mlsys_lab.deployment.server import ServerProcess
from mlsys_lab.drills.record import AnswerKey, DrillRecord
from mlsys_lab.drills.runner import (
    DrillSystem,
    Scraper,
    acknowledged_missing,
    failure_alerts,
    hidden_start,
    serve,
    utc,
    wait_ready,
)
from mlsys_lab.drills.traffic import Outcome, Target, Traffic, schedule
from mlsys_lab.load.capacity import mmc_response_quantile, process_cpu_seconds
from mlsys_lab.monitoring.alerts import ThresholdRule, evaluate_rules
from mlsys_lab.monitoring.drift import DriftRule

__all__ = ["CORRUPTIONS", "DRILLS", "SKIPPED", "run_drill"]

logger = logging.getLogger(__name__)

#: Drills this package cannot run yet, and why (none left: kept so callers can still ask).
SKIPPED: dict[str, str] = {}


#: Longest an outage drill's traffic may run: a restart on a busy machine can take tens of seconds.
MAX_OUTAGE_DRILL_S = 120.0


@dataclass(frozen=True)
class _Plan:
    duration_s: float
    rate: float
    fault_window: tuple[float, float]  # the hidden start is drawn in here


def _plan(fast: bool, *, rate: float = 20.0) -> _Plan:
    return _Plan(8.0, rate, (2.5, 4.5)) if fast else _Plan(40.0, rate, (10.0, 25.0))


class _Live:
    """One live drill: its alias, log, servers, target, scraper and traffic; always cleaned up."""

    def __init__(self, system: DrillSystem, kind: str, workdir: Path, *, alias: str = "", **env: str) -> None:
        self.system, self.kind, self.workdir = system, kind, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.alias = alias or system.new_alias(kind)
        self.log_path = workdir / "decisions.db"
        self.log_url = f"sqlite:///{self.log_path}"
        self.token = secrets.token_urlsafe(16)
        # The replay compresses time (a simulated day passes in under a minute), so after a long outage
        # the next transactions are days ahead of the last logged one; the service's "too far ahead"
        # guard (a day by default) would refuse them all. A month keeps the guard, not the false alarm.
        self.env = {"admin_token": self.token, "max_ahead_seconds": str(30 * 86_400), **env}
        self.servers: list[ServerProcess] = []
        self.current = self.start_server(self.log_url)
        wait_ready(self.current.url)
        self.target = Target(self.current.url)
        self.traffic: Traffic | None = None
        self.scraper: Scraper | None = None

    def start_server(self, log_url: str) -> ServerProcess:
        output = self.workdir / f"server-{len(self.servers)}.log"
        server = serve(self.system, self.alias, log_url, output, **self.env)
        self.servers.append(server)
        return server

    def replace_server(self, log_url: str, *, kill: bool) -> None:
        """Stop (SIGTERM) or kill (SIGKILL) the current server, start another, point the traffic at it."""
        (self.current.kill if kill else self.current.stop)()
        self.current = self.start_server(log_url)
        self.target.move(self.current.url)
        if self.scraper is not None:
            self.scraper.move(self.current.url)

    def run(
        self, traffic: Traffic, fault_at_s: float, fault: Callable[[], None], *, tail_s: float | None = None
    ) -> tuple[list[Outcome], float]:
        """Start traffic and the scraper, call ``fault`` at ``fault_at_s``, wait for the traffic; return the wall start.

        With ``tail_s``, the traffic stops ``tail_s`` seconds after ``fault`` returned (an outage
        drill's fault returns once the replacement server is up, however long that took).
        """
        self.traffic = traffic
        traffic.start()
        self.scraper = Scraper(self.current.url, traffic.now).start()
        time.sleep(max(0.0, fault_at_s - traffic.now()))
        fault()
        if tail_s is not None:
            traffic.stop_after(traffic.now() + tail_s)
        outcomes = traffic.join()
        self.scraper.stop()
        return outcomes, traffic.started_wall

    def close(self) -> None:
        for server in self.servers:
            server.stop()

    def record(
        self,
        key: AnswerKey,
        measured: dict[str, float],
        outcomes: list[Outcome],
        alerts: list[dict[str, Any]],
        *,
        fast: bool,
        notes: list[str] | None = None,
    ) -> DrillRecord:
        statuses = pd.Series([o.status for o in outcomes]).value_counts().sort_index()
        latencies = np.array([o.latency_ms for o in outcomes if o.ok])
        load = {
            "requests": len(outcomes),
            "by_status": {str(k): int(v) for k, v in statuses.items()},
            "p50_ms": float(np.percentile(latencies, 50)) if latencies.size else math.nan,
            "p99_ms": float(np.percentile(latencies, 99)) if latencies.size else math.nan,
        }
        return DrillRecord(
            kind=self.kind,
            fast=fast,
            random_state=self.system.random_state,
            answer_key=key,
            measured=measured,
            load=load,
            alerts=alerts,
            scrapes=self.scraper.rows if self.scraper else [],
            registry_history=self.system.history(self.alias),
            decision_log=str(self.log_path),
            server_logs=[str(s.output_path) for s in self.servers],
            notes=notes or [],
            requests=[dataclasses.asdict(o) for o in sorted(outcomes, key=lambda o: o.index)],
            traffic_started_wall=self.traffic.started_wall if self.traffic else 0.0,
        )


def _bodies(system: DrillSystem, n: int) -> list[dict[str, object]]:
    rows = system.traffic.iloc[:n]
    if len(rows) < n:
        raise ValueError(f"the drill needs {n} transactions, the system holds {len(system.traffic)}")
    return request_bodies(rows)


def _budget_burnt(failed: int, requests: int, slo: float = 0.99) -> float:
    """Share of the drill's error budget (1 - slo of its requests) the failures used (1.0 = all of it)."""
    return failed / ((1 - slo) * requests) if requests else 0.0


def _impact(
    outcomes: list[Outcome], lost: int, *, recovery_s: float, good_customers_blocked: int = 0, **own: float
) -> dict[str, float]:
    """The answer key's impact block, the same five numbers for every drill, then the drill's ``own``.

    ``requests_failed`` and the error budget are counted from the generator's answers; ``lost`` is
    what :func:`~mlsys_lab.drills.runner.acknowledged_missing` found.
    """
    failed = sum(not o.ok for o in outcomes)
    return {
        "requests_failed": failed,
        "decisions_lost": lost,
        "good_customers_blocked": good_customers_blocked,
        "error_budget_burnt": _budget_burnt(failed, len(outcomes)),
        "recovery_s": recovery_s,
        **own,
    }


def _outage(outcomes: list[Outcome], after_s: float) -> tuple[float, float, float]:
    """(first failure, first success after the last failure, the outage's length) as the generator saw them.

    A failure counts when its answer (or error) came back, at or after ``after_s``: a request sent
    just before a kill fails because of it. Recovery is the send time of the first success after
    the last failure.
    """
    failed = [o for o in outcomes if not o.ok and o.done_s >= after_s]
    if not failed:
        return math.nan, math.nan, 0.0
    first = min(o.done_s for o in failed)
    last = max(o.sent_s for o in failed)
    recovered = min((o.sent_s for o in outcomes if o.ok and o.sent_s > last), default=math.nan)
    return first, recovered, recovered - first


def _scrape_alerts(scrapes: list[dict[str, Any]], path: str, name: str, bad: Callable[[dict[str, Any]], bool]) -> list:
    rows = [s for s in scrapes if s["path"] == path]
    if not rows:
        return []
    metrics = pd.DataFrame(
        {"bad": [1.0 if bad(s) else 0.0 for s in rows]}, index=pd.to_datetime([s["t"] for s in rows], unit="s")
    ).sort_index()
    log = evaluate_rules([ThresholdRule(name=name, metric="bad", comparison=">", threshold=0.5)], metrics).log
    origin = pd.Timestamp(0)
    return [
        {
            "rule": row["rule"],
            "severity": row["severity"],
            "fired_at_s": (row["fired_at"] - origin).total_seconds(),
            "cleared_at_s": None if pd.isna(row["cleared_at"]) else (row["cleared_at"] - origin).total_seconds(),
        }
        for row in log.to_dict("records")
    ]


# -- the drills ------------------------------------------------------------------------------------------------


#: The corrupt-model variants: what is wrong with the version the alias moves to, and what refuses it.
CORRUPTIONS = {
    "flipped_bytes": "one byte of the registered file flips after the alias moved: the sha256 check (IntegrityError)",
    "unpicklable": "the file was written half and hashed as it was: sha256 matches, unpickling fails (IntegrityError)",
    "nan_scores": "a fit that diverged, NaN coefficients: it loads, the probe scores NaN (ModelUnusable)",
}
#: What ``/ready``'s ``reload_refused`` must name for each variant.
_REFUSED_BY = {"flipped_bytes": "IntegrityError", "unpicklable": "IntegrityError", "nan_scores": "ModelUnusable"}


def corrupt_model(
    system: DrillSystem, workdir: Path, *, fast: bool = True, variant: str = "flipped_bytes"
) -> DrillRecord:
    """A new version is aliased and the service told to reload it, but the version is broken (:data:`CORRUPTIONS`).

    ``flipped_bytes`` (the default): the spare version's bytes flip on disk before the reload.
    ``unpicklable`` and ``nan_scores``: the alias moves to a version registered broken
    (:func:`~mlsys_lab.drills.runner.prepare_system` made them). In every variant the service must
    refuse it, keep serving the last good version, fail no request, and say why on ``/ready``
    (``reload_refused``, naming the check that refused it); an alert fires on that.
    """
    if variant not in CORRUPTIONS:
        raise ValueError(f"unknown corrupt_model variant {variant!r}: choose one of {sorted(CORRUPTIONS)}")
    broken = {
        "flipped_bytes": system.spare_version,
        "unpicklable": system.unpicklable_version,
        "nan_scores": system.nan_version,
    }[variant]
    if not broken:
        raise ValueError(f"this DrillSystem has no {variant} version: build it with drills.prepare_system")
    kind = {
        "flipped_bytes": "corrupt_model",
        "unpicklable": "corrupt_model_unpicklable",
        "nan_scores": "corrupt_model_nan",
    }[variant]
    plan = _plan(fast)
    fault_at = hidden_start(system.random_state, *plan.fault_window)
    live = _Live(system, kind, workdir)
    registry = Registry(system.tracking)
    path = registry.get(system.spare_version).artifact_path
    original = path.read_bytes()
    reload_status: list[int] = []

    def fault() -> None:
        registry.set_alias(live.alias, broken, who="drill: deploy job", why="new version")
        if variant == "flipped_bytes":
            flipped = bytearray(original)
            flipped[len(flipped) // 2] ^= 0xFF  # one byte of the file rots after the alias moved
            path.write_bytes(bytes(flipped))
        answer = httpx.post(
            f"{live.current.url}/admin/reload", headers={"Authorization": f"Bearer {live.token}"}, timeout=30
        )
        reload_status.append(answer.status_code)

    try:
        times = schedule([(0.0, plan.rate)], plan.duration_s)
        outcomes, wall = live.run(Traffic(live.target, _bodies(system, len(times)), times), fault_at, fault)
    finally:
        path.write_bytes(original)  # the spare version serves other drills
        registry.close()
        live.close()
    acknowledged, lost = acknowledged_missing(outcomes, live.log_url)
    from mlsys_lab.deployment.decision_log import DecisionLog

    log = DecisionLog(live.log_url)
    try:
        versions = log.decisions()["model_version"]
    finally:
        log.close()
    key = AnswerKey(
        kind=kind,
        root_cause="corrupt_model_artifact",
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact=_impact(
            outcomes,
            lost,
            recovery_s=0.0,
            decisions_by_corrupt_version=int((versions == broken).sum()),
            serving_version=system.good_version,
        ),
    )
    scrapes = live.scraper.rows if live.scraper else []
    alerts = _scrape_alerts(scrapes, "/ready", "reload refused", lambda s: bool(_field(s, "reload_refused")))
    after = [s for s in scrapes if s["path"] == "/ready" and s["t"] > fault_at and s["status"] == 200]
    measured = {
        "reload_status": reload_status[0] if reload_status else 0,
        "serving_version": float(after[-1]["body"]["model_version"]) if after else math.nan,
        "ready_says_why": float(any(_REFUSED_BY[variant] in str(_field(s, "reload_refused")) for s in after)),
        "detected_at_s": alerts[0]["fired_at_s"] if alerts else math.nan,
        "acknowledged": acknowledged,
    }
    return live.record(key, measured, outcomes, alerts, fast=fast)


def _field(scrape: dict[str, Any], name: str) -> Any:
    body = scrape.get("body")
    return body.get(name) if isinstance(body, dict) else None


def api_crash(system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """``kill -9`` of the server mid-load; a supervisor restarts it on the same decision log at once.

    Downtime is measured from the load generator; every decision it saw acknowledged must be in the log.
    """
    plan = _plan(fast)
    fault_at = hidden_start(system.random_state, *plan.fault_window)
    live = _Live(system, "api_crash", workdir)
    try:
        times = schedule([(0.0, plan.rate)], MAX_OUTAGE_DRILL_S)
        outcomes, wall = live.run(
            Traffic(live.target, _bodies(system, len(times)), times, timeout_s=2.0),
            fault_at,
            lambda: live.replace_server(live.log_url, kill=True),
            tail_s=plan.duration_s - plan.fault_window[1],
        )
    finally:
        live.close()
    return _outage_record(live, outcomes, wall, fault_at, "api_crash", "process_crash", fast)


def _outage_record(
    live: _Live, outcomes: list[Outcome], wall: float, fault_at: float, kind: str, cause: str, fast: bool
) -> DrillRecord:
    acknowledged, lost = acknowledged_missing(outcomes, live.log_url)
    first, recovered, downtime = _outage(outcomes, fault_at)
    key = AnswerKey(
        kind=kind,
        root_cause=cause,
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact=_impact(
            outcomes, lost, recovery_s=downtime, status_500=sum(o.status >= 500 and o.status != 503 for o in outcomes)
        ),
    )
    scrapes = live.scraper.rows if live.scraper else []
    alerts = failure_alerts(outcomes, max((o.intended_s for o in outcomes), default=1.0) + 1)
    alerts += _scrape_alerts(scrapes, "/ready", "not ready", lambda s: s["status"] != 200)
    not_ready = [s["t"] for s in scrapes if s["path"] == "/ready" and s["status"] != 200 and s["t"] >= first - 1]
    measured = {
        "first_failure_s": first,
        "recovered_at_s": recovered,
        "ready_down_s": (max(not_ready) - min(not_ready)) if not_ready else 0.0,
        "detected_at_s": min((a["fired_at_s"] for a in alerts), default=math.nan),
        "acknowledged": acknowledged,
        "answered_503": sum(o.status == 503 for o in outcomes),
    }
    return live.record(key, measured, outcomes, alerts, fast=fast)


def log_unwritable(system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """The decision log's volume comes back read-only for a while (the server restarts on it), then writable.

    Every request meanwhile must get a 503 with the reason (or no answer while the process restarts),
    never a 500; nothing acknowledged may be missing from the log.
    """
    plan = _plan(fast)
    fault_at = hidden_start(system.random_state, *plan.fault_window)
    length = 2.0 if fast else 8.0
    live = _Live(system, "log_unwritable", workdir)
    read_only = f"sqlite:///file:{live.log_path}?mode=ro&uri=true"

    def fault() -> None:
        live.replace_server(read_only, kill=False)
        time.sleep(length)
        live.replace_server(live.log_url, kill=False)

    try:
        times = schedule([(0.0, plan.rate)], MAX_OUTAGE_DRILL_S)
        traffic = Traffic(live.target, _bodies(system, len(times)), times, timeout_s=2.0)
        outcomes, wall = live.run(traffic, fault_at, fault, tail_s=plan.duration_s - plan.fault_window[1])
    finally:
        live.close()
    record = _outage_record(live, outcomes, wall, fault_at, "log_unwritable", "decision_log_unwritable", fast)
    reasons = {o.error for o in outcomes if o.status == 503}
    record.measured["reason_names_the_log"] = float(bool(reasons) and all("decision log" in r for r in reasons))
    return record


def _v2_in_euros(body: dict[str, object]) -> dict[str, object]:
    """The skewed client: v2's ``amount_minor`` (cents) filled with the euro amount, rounded: 100x too small."""
    return {
        "transaction_id": body["transaction_id"],
        "customer_id": body["customer_id"],
        "terminal_id": body["terminal_id"],
        "tx_datetime": f"{body['tx_datetime']}+02:00",  # simulated May: Brussels summer time
        "amount_minor": max(1, round(float(body["tx_amount"]))),  # type: ignore[arg-type]
        "currency": "EUR",
    }


def skew(system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """Training/serving skew: a client moves to v2 and sends euros where cents are expected, from a hidden time.

    Detected by score drift (:class:`~mlsys_lab.monitoring.drift.DriftRule`) over the logged scores:
    a reference of the first decisions, then sliding windows of ``window`` decisions.
    """
    plan = _Plan(14.0, 40.0, (6.0, 7.0)) if fast else _Plan(40.0, 40.0, (15.0, 25.0))
    fault_at = hidden_start(system.random_state, *plan.fault_window)
    times = schedule([(0.0, plan.rate)], plan.duration_s)
    first_skewed = int(np.searchsorted(times, fault_at))
    live = _Live(system, "skew", workdir)
    try:
        traffic = Traffic(
            live.target,
            _bodies(system, len(times)),
            times,
            path=lambda i: "/v2/score" if i >= first_skewed else "/v1/score",
            body_for=lambda i, body: _v2_in_euros(body) if i >= first_skewed else body,
        )
        outcomes, wall = live.run(traffic, fault_at, lambda: None)
    finally:
        live.close()
    acknowledged, lost = acknowledged_missing(outcomes, live.log_url)
    scored = pd.DataFrame([o.__dict__ for o in outcomes if o.ok]).sort_values("intended_s")
    window, step = 200, 50
    reference = scored[scored["intended_s"] < fault_at]["score"].to_numpy()[:window]
    rule = DriftRule()
    detected_at, false_alarms = math.nan, 0
    for start in range(len(reference), len(scored) - window + 1, step):
        current = scored.iloc[start : start + window]
        if rule.compare(reference, current["score"].to_numpy(), feature="score").alarm:
            if current["intended_s"].iloc[0] < fault_at and current["intended_s"].iloc[-1] < fault_at:
                false_alarms += 1
            elif math.isnan(detected_at):
                detected_at = float(current["intended_s"].iloc[-1])
    key = AnswerKey(
        kind="skew",
        root_cause="client_unit_change",
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact=_impact(
            outcomes,
            lost,
            recovery_s=math.nan,  # nothing recovers until the client is fixed
            first_skewed_transaction=int(outcomes[first_skewed].transaction_id),
            decisions_on_wrong_unit=int(sum(o.ok for o in outcomes[first_skewed:])),
        ),
    )
    alerts = (
        [{"rule": "score drift", "severity": "page", "fired_at_s": detected_at, "cleared_at_s": None}]
        if not math.isnan(detected_at)
        else []
    )
    measured = {
        "detected_at_s": detected_at,
        "detection_delay_s": detected_at - fault_at,
        "false_alarms_before_start": false_alarms,
        "acknowledged": acknowledged,
    }
    return live.record(key, measured, outcomes, alerts, fast=fast)


#: The spike's mitigation: at most this many scoring requests in flight, a 429 with Retry-After above it
#: (``MLSYS_LAB_MAX_IN_FLIGHT``, :mod:`mlsys_lab.deployment.shedding`). One worker scores one request at a
#: time (the GIL, one BLAS thread), so two in flight is one being scored and one about to be: a third
#: would only wait, and its wait is the tail the spike adds.
SHED_IN_FLIGHT = 2


def spike(system: DrillSystem, workdir: Path, *, fast: bool = True, max_in_flight: int = 0) -> DrillRecord:
    """Three times the rate for a bounded time; module 04's capacity model predicts the spike's p99 first.

    The service time comes from the server's CPU-seconds over the baseline (before the spike); the
    prediction is M/M/1's p99 at three times the rate (one uvicorn worker, one BLAS thread). With
    ``max_in_flight``, the server sheds load (:data:`SHED_IN_FLIGHT`): the requests it refuses are
    answered 429 at once and counted in ``requests_shed`` (they are failures for the error budget
    too: the client was not served).
    """
    plan = _plan(fast, rate=15.0)
    length = 3.0 if fast else 20.0
    fault_at = hidden_start(system.random_state, *plan.fault_window)
    kind = "spike_mitigated" if max_in_flight else "spike"
    shedding = {"max_in_flight": str(max_in_flight)} if max_in_flight else {}
    live = _Live(system, kind, workdir, **shedding)
    predicted: dict[str, float] = {}
    times = schedule([(0.0, plan.rate), (fault_at, 3 * plan.rate), (fault_at + length, plan.rate)], plan.duration_s)
    try:
        pid = live.current.process.pid
        cpu_start = process_cpu_seconds(pid)
        traffic = Traffic(live.target, _bodies(system, len(times)), times)

        def fault() -> None:  # the prediction, made before the spike from what the baseline measured
            done = len(traffic.outcomes)
            service_time = (process_cpu_seconds(pid) - cpu_start) / max(done, 1)
            predicted["service_time_ms"] = service_time * 1000
            predicted["predicted_p99_ms"] = 1000 * mmc_response_quantile(0.99, 3 * plan.rate, service_time, 1)

        outcomes, wall = live.run(traffic, fault_at, fault)
    finally:
        live.close()
    acknowledged, lost = acknowledged_missing(outcomes, live.log_url)
    during = [o for o in outcomes if fault_at <= o.intended_s < fault_at + length]
    latencies = np.array([o.latency_ms for o in during if o.ok])
    measured_p99 = float(np.percentile(latencies, 99)) if latencies.size else math.nan
    failed = sum(not o.ok for o in outcomes)
    key = AnswerKey(
        kind=kind,
        root_cause="traffic_above_capacity",
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact=_impact(
            outcomes,
            lost,
            recovery_s=0.0 if failed == 0 else _outage(outcomes, fault_at)[2],
            spike_rate=3 * plan.rate,
            spike_s=length,
            requests_in_spike=len(during),
            requests_shed=sum(o.status == 429 for o in outcomes),
            measured_p99_ms=measured_p99,
        ),
    )
    ratio = predicted.get("predicted_p99_ms", math.nan) / measured_p99 if measured_p99 else math.nan
    measured = {**predicted, "measured_p99_ms": measured_p99, "prediction_over_measured": ratio}
    notes = [
        "the load generator shares the cores with the server: the measured p99 includes the generator's own delay",
    ]
    if max_in_flight:
        notes.append(f"mitigation: load shedding, at most {max_in_flight} scoring requests in flight (429 above)")
    alerts = failure_alerts(outcomes, plan.duration_s)
    measured["acknowledged"] = acknowledged
    measured["max_in_flight"] = max_in_flight
    return live.record(key, measured, outcomes, alerts, fast=fast, notes=notes)


#: What the spike's mitigation is compared on: the as-is run's numbers join the mitigated run's key.
SPIKE_COMPARED = ("requests_failed", "requests_shed", "error_budget_burnt", "measured_p99_ms", "decisions_lost")


def spike_mitigated(
    system: DrillSystem, workdir: Path, *, fast: bool = True, as_is: DrillRecord | None = None
) -> DrillRecord:
    """The spike twice, at the same hidden time: as it is, then with load shedding (:data:`SHED_IN_FLIGHT`).

    The record is the mitigated run's; its answer key also holds the as-is run's impact under
    ``as_is_<name>`` for :data:`SPIKE_COMPARED`, so that "did the mitigation help, and what did it
    cost" is read from one key: shed requests fail fast instead of queueing, so the served requests'
    p99 should fall while requests_failed rises by what was shed. ``as_is``, a ``spike`` record of
    the same system and mode (one a notebook already ran), is used instead of running the spike again.
    """
    if as_is is None:
        as_is = spike(system, workdir / "as_is", fast=fast)
    elif as_is.kind != "spike" or as_is.fast != fast or as_is.random_state != system.random_state:
        raise ValueError(
            f"as_is must be a 'spike' record of this system in the same mode (fast={fast}, random_state "
            f"{system.random_state}), got {as_is.kind!r} (fast={as_is.fast}, random_state {as_is.random_state}): "
            "run drill 'spike' first, or pass as_is=None"
        )
    mitigated = spike(system, workdir / "shedding", fast=fast, max_in_flight=SHED_IN_FLIGHT)
    key = mitigated.answer_key
    both = {**key.impact, **{f"as_is_{name}": as_is.answer_key.impact[name] for name in SPIKE_COMPARED}}
    mitigated.answer_key = dataclasses.replace(key, impact=both)
    mitigated.notes.append(f"the as-is run's record: {as_is.decision_log} (its key's numbers are as_is_* here)")
    return mitigated


#: Decisions per watchdog window in the blocking drill (the watchdog's ``min_decisions``).
WATCHDOG_WINDOW = 100
#: Longest the blocking drill's traffic may run: the watchdog needs three windows after the promotion.
MAX_BLOCKING_DRILL_S = 90.0


def blocking_good_customers(system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """A challenger with a miscalibrated threshold is promoted; the watchdog's alert-rate guardrail rolls it back.

    The drill serves ``champion`` (the alias :meth:`~mlsys_lab.deployment.registry.Registry.rollback`
    moves), promotes the good version first, then at the hidden time promotes
    :attr:`~mlsys_lab.drills.runner.DrillSystem.miscalibrated_version` (the good model with a threshold
    that alerts about five times as often). The service follows the alias on its own timer. A
    :class:`~mlsys_lab.maintenance.rollout.Watchdog` reads the decision log in windows of
    :data:`WATCHDOG_WINDOW` decisions, against the alert rate the champion had before, and after three
    failing windows rolls the champion back. The answer key counts, from the decision log and the
    simulator's truth, the genuine transactions the miscalibrated version blocked: the good customers
    the incident cost (and how many of them the good model would have passed, scored again from the
    logged features).
    """
    from mlsys_lab.deployment.decision_log import DecisionLog
    from mlsys_lab.deployment.registry import CHAMPION
    from mlsys_lab.maintenance.rollout import RolloutStore, Watchdog, WatchdogConfig

    if not system.miscalibrated_version:
        raise ValueError("this DrillSystem has no miscalibrated version: build it with drills.prepare_system")
    plan = _Plan(MAX_BLOCKING_DRILL_S, 40.0, (3.0, 5.0)) if fast else _Plan(MAX_BLOCKING_DRILL_S, 40.0, (10.0, 20.0))
    tail_s = 2.0 if fast else 10.0
    fault_at = hidden_start(system.random_state, *plan.fault_window)
    good, bad = system.good_version, system.miscalibrated_version
    registry = Registry(system.tracking)
    registry.promote(good, who="drill runner", why="blocking_good_customers drill starts")
    store = RolloutStore(system.tracking.root)
    live = _Live(system, "blocking_good_customers", workdir, alias=CHAMPION, model_refresh_seconds="0.25")
    log = DecisionLog(live.log_url)
    events: dict[str, float] = {}
    reasons: list[str] = []
    failed_windows: list[float] = []
    ratios: list[float] = []  # the watchdog's alert-rate ratio (one alert added to each side) of each failing window
    # The latency guardrail is off: on a shared machine the logged p99 measures the machine, and the
    # breach this drill plants is the alert rate.
    config = WatchdogConfig(min_decisions=WATCHDOG_WINDOW, max_p99_ms=math.inf)
    traffic_box: list[Traffic] = []

    def watch(promoted_after_id: int, reference: float) -> None:
        dog = Watchdog(registry, store, bad, reference, promoted=True, config=config)
        traffic, seen = traffic_box[0], promoted_after_id
        while traffic.now() < plan.duration_s and not dog.acted:
            window = log.decisions(since_id=seen)
            window = window[window["model_version"] == bad]
            if len(window) < WATCHDOG_WINDOW:
                time.sleep(0.1)
                continue
            check = dog.observe(window.iloc[:WATCHDOG_WINDOW])
            seen = int(window["id"].iloc[WATCHDOG_WINDOW - 1])
            if not check.passed:
                failed_windows.append(traffic.now())
                ratios.append(check.alert_rate_ratio)
        if not dog.acted:
            return
        events["rolled_back_at_s"] = traffic.now()
        reasons.append(dog.acted)
        rolled_at = int(log.decisions()["id"].max())
        while traffic.now() < plan.duration_s:  # until the service decides with the good version again
            after = log.decisions(since_id=rolled_at)
            if (after["model_version"] == good).any():
                events["followed_at_s"] = traffic.now()
                break
            time.sleep(0.1)
        traffic.stop_after(traffic.now() + tail_s)

    watcher: list[threading.Thread] = []

    def fault() -> None:
        before = log.decisions()
        reference = float(before["decision"].mean()) if len(before) else 0.0
        promoted_after = int(before["id"].max()) if len(before) else 0
        registry.promote(bad, who="drill: release job", why="challenger passed the offline gate")
        thread = threading.Thread(target=watch, args=(promoted_after, reference), daemon=True, name="drill-watchdog")
        watcher.append(thread)
        thread.start()

    try:
        times = schedule([(0.0, plan.rate)], plan.duration_s)
        traffic_box.append(Traffic(live.target, _bodies(system, len(times)), times))
        outcomes, wall = live.run(traffic_box[0], fault_at, fault)
        for thread in watcher:
            thread.join(timeout=30)
        decisions = log.decisions(with_features=True)
    finally:
        log.close()
        store.close()
        live.close()
        if registry.get(CHAMPION).version != good:  # the watchdog did not act: leave the store as found
            registry.promote(good, who="drill runner", why="blocking_good_customers drill ends")
        registry.close()
    acknowledged, lost = acknowledged_missing(outcomes, live.log_url)
    truth = system.traffic.set_index("transaction_id")["tx_fraud"]
    by_bad = decisions[decisions["model_version"] == bad]
    genuine = truth.reindex(by_bad["transaction_id"]).to_numpy() == 0
    blocked = by_bad[genuine & by_bad["decision"].to_numpy()]
    good_model = Registry(system.tracking)
    try:
        champion = good_model.load(good)
    finally:
        good_model.close()
    rows = np.array([[f[name] for name in champion.info.features] for f in blocked["features"]], dtype=np.float64)
    would_pass = int((champion.score(rows) < champion.threshold).sum()) if len(rows) else 0
    started = pd.Timestamp(wall, unit="s", tz="UTC")
    bad_times = (by_bad["decided_at"] - started).dt.total_seconds()
    key = AnswerKey(
        kind="blocking_good_customers",
        root_cause="miscalibrated_threshold",
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact=_impact(
            outcomes,
            lost,
            # From the promotion to the miscalibrated version's last decision, as the log recorded it.
            recovery_s=float(bad_times.max() - fault_at) if len(by_bad) else math.nan,
            good_customers_blocked=len(blocked),
            good_cards_blocked=int(blocked["customer_id"].nunique()),
            blocked_that_the_good_model_passes=would_pass,
            decisions_by_miscalibrated_version=len(by_bad),
            alerts_by_miscalibrated_version=int(by_bad["decision"].sum()),
            frauds_caught_by_miscalibrated_version=int(
                (truth.reindex(by_bad["transaction_id"]).to_numpy() == 1)[by_bad["decision"].to_numpy()].sum()
            ),
        ),
    )
    before = decisions[decisions["model_version"] == good]
    measured: dict[str, float] = {
        "alert_rate_good": float(before["decision"].mean()) if len(before) else math.nan,
        "alert_rate_miscalibrated": float(by_bad["decision"].mean()) if len(by_bad) else math.nan,
        "detected_at_s": failed_windows[0] if failed_windows else math.nan,
        "rolled_back_at_s": events.get("rolled_back_at_s", math.nan),
        "followed_at_s": events.get("followed_at_s", math.nan),
        "failing_windows": len(failed_windows),
        "acknowledged": acknowledged,
    }
    measured["watchdog_min_ratio"] = min(ratios, default=math.nan)
    alerts = [
        {"rule": "alert-rate guardrail", "severity": "page", "fired_at_s": t, "cleared_at_s": None}
        for t in failed_windows[:1]
    ]
    if "rolled_back_at_s" in events:
        alerts.append(
            {
                "rule": "watchdog rollback",
                "severity": "info",
                "fired_at_s": events["rolled_back_at_s"],
                "cleared_at_s": None,
            }
        )
    return live.record(key, measured, outcomes, alerts, fast=fast, notes=reasons)


#: The concept-drift drill's world: the monitoring benchmark's (``benchmarks/bench_monitoring.py``).
CONCEPT_TRAIN_START_DAY = 30  # train on days 30-36, labels known at day 44 (the 7-day gap)
CONCEPT_REFERENCE_DAYS = (44, 50)
CONCEPT_FIRST_MONITORED_DAY = 51
#: Card testing at ten times its default rate: at the default, about 3 card-testing frauds a day join
#: about 13 others and the matured labels find it 4 times out of 5 (the benchmark); the drill needs a
#: known answer on every seed.
CARD_TESTS_PER_5K_PER_DAY = 30.0
#: The served threshold's daily alert budget, set on the reference days' scores.
CONCEPT_ALERTS_PER_DAY = 20


def concept_drift(system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """Silent concept drift: card testing starts on a hidden day; only the matured labels can see it.

    Live, in compressed simulated time. The ``small`` world (the monitoring benchmark's set-up,
    seeded by the system's ``random_state``) gets the simulator's
    :class:`~mlsys_lab.data.CardTesting` event from a hidden day. A logistic regression trained
    (and tracked, with a validation fold for its threshold) on days before the event is registered
    in the system's store and served by a real ``mlsys-lab serve`` on loopback. Every simulated day
    goes through ``/v1/score/batch`` in time order (a day takes well under a second), and each fraud
    label goes to ``/v1/feedback/batch`` once the replay's clock passes the time it became known, as the
    service's real label path. Then the monitoring's daily detectors
    (:func:`mlsys_lab.monitoring.evaluation.daily_alarms`: matured recall, the label-free estimate)
    run over what the decision log recorded, read back as ``mlsys-lab monitor`` reads it (scores,
    features, labels and their times), once per simulated day with the labels known by that day.

    Card testing is many tiny charges and one large one on cards that look normal, so features and
    scores barely move: the label-free recall estimate stays flat, the matured recall drops once the
    frauds are reported, days late. The answer key: the start day, the card-testing frauds and how
    many the served model let through (the simulator's truth against the logged decisions);
    measured: the first day each detector fired and the detection delay, from the log. The same
    model scores the same features offline as a cross-check (``offline_*`` and
    ``max_score_difference`` in ``measured``): the service computes the features online from what
    it was sent, so the two must agree. ``workdir`` gets the decision log, the server's output and
    the daily verdicts (``alarms.csv``, ``alarms_offline.csv``).
    """
    from mlsys_lab.data import CARD_TESTING_SCENARIO, CardTesting, preset, simulate
    from mlsys_lab.data.features import FEATURE_COLUMNS, SECONDS_PER_DAY
    from mlsys_lab.data.split import TimeSplit
    from mlsys_lab.deployment.decision_log import DecisionLog
    from mlsys_lab.maintenance.history import backfill
    from mlsys_lab.monitoring import evaluation
    from mlsys_lab.monitoring.performance import window_performance
    from mlsys_lab.training import Tracker, TrainingConfig, feature_frame, threshold_for_budget, train

    workdir.mkdir(parents=True, exist_ok=True)
    first_day, last_day, n_days = (55, 58, 72) if fast else (55, 65, 90)
    start_day = int(hidden_start(system.random_state, first_day, last_day + 1))
    event = CardTesting(start_day=start_day, customers_per_5k_per_day=CARD_TESTS_PER_5K_PER_DAY)
    config = preset("small", random_state=system.random_state, n_days=n_days, drift=(event,))
    transactions = simulate(config).transactions
    frame = feature_frame(transactions)
    training = TrainingConfig(
        family="logistic_regression",
        split=TimeSplit(train_start_day=CONCEPT_TRAIN_START_DAY),
        validation_folds=1,
        alerts_per_day=CONCEPT_ALERTS_PER_DAY,
    )
    tracker = Tracker(system.tracking)
    run = train(training, frame, tracker=tracker)
    run_id = run.run_id
    if run_id is None:  # train() with a tracker always records the run
        raise RuntimeError("the concept-drift model was not tracked: it cannot be registered")
    offline_scores = run.pipeline.predict_proba(frame[list(training.features)].to_numpy(np.float64))[:, 1]
    days = transactions["tx_time_days"].to_numpy()
    in_reference = (days >= CONCEPT_REFERENCE_DAYS[0]) & (days <= CONCEPT_REFERENCE_DAYS[1])
    # The operator sets the alert budget on the latest week of scores before the drill (no labels needed). With
    # the validation fold's threshold (chosen on days 30-36) the matured-recall rule never fired on seed 0.
    threshold = threshold_for_budget(offline_scores[in_reference], days[in_reference], CONCEPT_ALERTS_PER_DAY)
    tracker.log_metrics(run_id, {"threshold": threshold})
    alias = f"drill-concept-drift-{uuid.uuid4().hex[:6]}"
    registry = Registry(system.tracking)
    try:
        version = registry.register(run_id).version
        registry.set_alias(alias, version, who="drill runner", why="concept_drift drill: trained before the event")
    finally:
        registry.close()

    # The weeks before the reference days are the service's past: written into its decision log as it would
    # have logged them (the same model's scores on the same features, the labels known by then), so the live
    # server starts from that history (it rebuilds its feature state from the log) and only the weeks the
    # monitoring reads go through it. They are what the drill is about, and this cuts the replay by ~60%.
    live_from = CONCEPT_REFERENCE_DAYS[0] * SECONDS_PER_DAY
    past = transactions["tx_time_seconds"].to_numpy() < live_from
    prefill = DecisionLog(f"sqlite:///{workdir / 'decisions.db'}")
    try:
        prefill.create()
        backfilled, labels_backfilled = backfill(
            prefill,
            frame[past],
            scores=offline_scores[past],
            threshold=threshold,
            model_version=version,
            labels_until_seconds=live_from,
        )
    finally:
        prefill.close()
    live = _Live(system, "concept_drift", workdir, alias=alias)
    try:
        replay = _replay_days(live, transactions, end_seconds=n_days * SECONDS_PER_DAY, from_seconds=live_from)
    finally:
        live.close()
    log = DecisionLog(live.log_url)
    try:
        decisions = log.decisions(with_features=True)
        history = log.history_frame()
        labels_recorded = len(log.labels())
    finally:
        log.close()
    logged = _logged_frame(decisions, history, FEATURE_COLUMNS, SECONDS_PER_DAY)
    ids = transactions["transaction_id"].to_numpy()
    by_id = logged.set_index("transaction_id")
    if not np.isin(ids, by_id.index.to_numpy()).all():
        raise RuntimeError("the decision log lacks transactions the replay sent: the drill cannot be scored")
    scores = by_id["score"].reindex(ids).to_numpy()  # the live scores, row-aligned with the simulator's rows
    decided = by_id["decision"].reindex(ids).to_numpy(dtype=bool)
    served_threshold = float(logged["threshold"].median())
    monitored = range(CONCEPT_FIRST_MONITORED_DAY, n_days)

    def alarms_of(world: pd.DataFrame, features: pd.DataFrame, y_proba: np.ndarray, cut: float) -> pd.DataFrame:
        return evaluation.daily_alarms(
            world, features, y_proba, threshold=cut, reference_days=CONCEPT_REFERENCE_DAYS, days=monitored
        )

    alarms = alarms_of(logged, logged[list(FEATURE_COLUMNS)], logged["score"].to_numpy(), served_threshold)
    alarms.to_csv(workdir / "alarms.csv", index=False)
    offline = alarms_of(transactions, frame[list(FEATURE_COLUMNS)], offline_scores, threshold)
    offline.to_csv(workdir / "alarms_offline.csv", index=False)

    tested = transactions["tx_fraud_scenario"].to_numpy() == CARD_TESTING_SCENARIO

    def first_alarm(table: pd.DataFrame, detector: str) -> float:
        hit = table[(table["detector"] == detector) & table["alarm"] & (table["day"] >= start_day)]
        return float(hit["day"].min()) if len(hit) else math.nan

    def recall(first: int, last: int, field: str) -> float:  # with every label known: the truth
        mask = (days >= first) & (days <= last)
        perf = window_performance(transactions[mask], scores[mask], as_of_seconds=10**9, threshold=threshold, k=None)
        return float(getattr(perf, field))

    start_utc = (pd.Timestamp(config.start_date, tz="UTC") + pd.Timedelta(days=start_day)).isoformat()
    key = AnswerKey(
        kind="concept_drift",
        root_cause="concept_drift",
        start_s=float(start_day * SECONDS_PER_DAY),
        start_utc=start_utc,
        impact={
            **_impact([], len(replay.acknowledged - set(decisions["request_id"])), recovery_s=math.nan),
            # recovery_s: nothing recovers until a model trained on the new frauds is promoted
            "start_day": start_day,
            "card_testing_frauds": int(tested.sum()),
            "card_testing_frauds_missed": int((tested & ~decided).sum()),
        },
    )
    matured, label_free = first_alarm(alarms, "matured recall"), first_alarm(alarms, "label-free recall")
    after = (start_day + 3, min(n_days - 1, start_day + 9))
    concept_alarms = alarms[alarms["alarm"] & alarms["detector"].isin(_CONCEPT_DETECTORS)]
    measured = {
        "detected_day": matured,
        "detection_delay_days": matured - start_day,
        "label_free_detected_day": label_free,
        "false_alarms_before_start": float((concept_alarms["day"] < start_day).sum()),
        "true_recall_before": recall(*CONCEPT_REFERENCE_DAYS, "true_recall"),
        "true_recall_after": recall(*after, "true_recall"),
        "expected_recall_before": recall(*CONCEPT_REFERENCE_DAYS, "expected_recall"),
        "expected_recall_after": recall(*after, "expected_recall"),
        "card_testing_frauds_passed": float((tested & ~decided).sum()),
        "decisions_logged": float(len(decisions)),
        "labels_sent": float(replay.labels_sent),
        "labels_recorded": float(labels_recorded),
        "threshold": served_threshold,
        # The cross-check: the same model, offline, on the simulator's own features.
        "offline_detected_day": first_alarm(offline, "matured recall"),
        "offline_label_free_detected_day": first_alarm(offline, "label-free recall"),
        # Over the days the service scored itself (the past was written with the offline scores).
        "max_score_difference": float(np.max(np.abs(scores[~past] - offline_scores[~past]))),
        "decisions_backfilled": float(backfilled),
        "labels_backfilled": float(labels_backfilled),
        "verdicts_differing_from_offline": float((alarms["alarm"].to_numpy() != offline["alarm"].to_numpy()).sum()),
    }
    alerts = [
        {
            "rule": row["detector"],
            "severity": "page",
            "fired_at_s": float(row["day"] * SECONDS_PER_DAY),
            "cleared_at_s": None,
        }
        for row in concept_alarms.to_dict("records")
    ]
    day_seconds = np.array(replay.day_seconds)
    return DrillRecord(
        kind="concept_drift",
        fast=fast,
        random_state=system.random_state,
        answer_key=key,
        measured=measured,
        load={
            "requests": replay.batches + replay.label_requests,
            "batches": replay.batches,
            "label_requests": replay.label_requests,
            "transactions": len(transactions),
            "transactions_live": int((~past).sum()),
            "simulated_days": n_days,
            "live_from_day": CONCEPT_REFERENCE_DAYS[0],
            "replay_s": float(day_seconds.sum()),
            "median_day_s": float(np.median(day_seconds)),
            "slowest_day_s": float(day_seconds.max()),
        },
        alerts=alerts,
        registry_history=system.history(alias),
        decision_log=str(live.log_path),
        server_logs=[str(s.output_path) for s in live.servers],
        notes=[
            f"compressed simulated time: days 0-{CONCEPT_REFERENCE_DAYS[0] - 1} were written into the decision log "
            "as the service's past (backfill: the same model's scores, the labels known by then); from day "
            f"{CONCEPT_REFERENCE_DAYS[0]} every simulated day went through /v1/score/batch and every fraud label "
            "through /v1/feedback/batch at its label time; start_s and fired_at_s are simulated seconds, start_utc the "
            "simulated date",
            f"model version {version} (trained on days {CONCEPT_TRAIN_START_DAY}-{CONCEPT_TRAIN_START_DAY + 6}), "
            f"threshold {served_threshold:.4f}: a budget of {CONCEPT_ALERTS_PER_DAY} alerts a day on the reference "
            f"days {CONCEPT_REFERENCE_DAYS[0]}-{CONCEPT_REFERENCE_DAYS[1]} (logged by every decision)",
            "only fraud labels are sent: genuine ones change no feature and no recall",
        ],
    )


#: The concept-drift drill's two detectors: what the labels say, and what a label-free estimate says.
_CONCEPT_DETECTORS = ("matured recall", "label-free recall")


@dataclass
class _Replayed:
    """What :func:`_replay_days` sent: the acknowledged request ids, counts, and each simulated day's wall time."""

    acknowledged: set[str]
    batches: int
    labels_sent: int
    day_seconds: list[float]
    label_requests: int = 0


def _replay_days(live: _Live, transactions: pd.DataFrame, *, end_seconds: int, from_seconds: int = 0) -> _Replayed:
    """Every day of ``transactions`` through ``/v1/score/batch`` in time order, fraud labels through the feedback batch.

    Only the transactions from ``from_seconds`` on, and the labels that became known after it: what came
    before is already in the service's log (see :func:`concept_drift`).

    A label goes before the first batch that starts after it became known (a label known at its
    transaction's second follows that transaction, so the service has the decision it labels). The
    features use a label only once it is ``delay_days`` old, so labels sent at batch boundaries give
    the service what offline features see. A batch never spans two days, so each day is timed.
    """
    from mlsys_lab.deployment.replay import LabelFeed, ReplayError, fraud_labels, request_bodies

    ordered = transactions.sort_values(["tx_time_seconds", "transaction_id"], kind="stable")
    pending = fraud_labels(ordered, end_seconds)
    pending = pending[pending["label_seconds"] > from_seconds]  # backfill wrote those known by from_seconds
    ordered = ordered[ordered["tx_time_seconds"] >= from_seconds]
    from mlsys_lab.deployment.settings import ServiceSettings

    limit = int(ServiceSettings.model_fields["batch_limit"].default)  # the service's default batch limit
    replayed = _Replayed(set(), 0, 0, [])
    headers = {"Authorization": f"Bearer {live.token}"}
    with httpx.Client(base_url=live.current.url, timeout=60, headers=headers) as client:
        labels = LabelFeed(client, pending, limit=limit)
        for _, day in ordered.groupby("tx_time_days", sort=True):
            clock = time.perf_counter()
            bodies, seconds = request_bodies(day), day["tx_time_seconds"].tolist()
            for start in range(0, len(bodies), limit):
                labels.send_before(seconds[start])
                answer = client.post("/v1/score/batch", json={"transactions": bodies[start : start + limit]})
                if answer.status_code != 200:
                    raise ReplayError(f"/v1/score/batch answered {answer.status_code}: {answer.text[:500]}")
                replayed.acknowledged.update(str(r["request_id"]) for r in answer.json()["results"])
                replayed.batches += 1
            replayed.day_seconds.append(time.perf_counter() - clock)
        labels.send_before(math.inf)
        replayed.labels_sent, replayed.label_requests = labels.sent, labels.requests
    return replayed


def _logged_frame(
    decisions: pd.DataFrame, history: pd.DataFrame, feature_columns: tuple[str, ...], seconds_per_day: int
) -> pd.DataFrame:
    """The decision log as the monitoring job reads it: one row per decision, its features, labels and their times.

    ``tx_fraud`` is 1 for a transaction labelled fraud, else 0, with ``tx_label_seconds`` NaN where no
    label arrived: a detector that asks for labels known by a day sees only those.
    """
    features = pd.DataFrame(list(decisions["features"]), index=decisions.index)[list(feature_columns)]
    frame = decisions.drop(columns=["features", "tx_amount"]).join(features)
    labels = history[["transaction_id", "tx_time_seconds", "tx_fraud", "tx_label_seconds"]]
    frame = frame.merge(labels, on="transaction_id", how="left", validate="one_to_one")
    frame["tx_time_days"] = frame["tx_time_seconds"] // seconds_per_day
    frame["tx_fraud"] = frame["tx_fraud"].fillna(0).astype(np.int8)
    return frame.sort_values(["tx_time_seconds", "transaction_id"], kind="stable", ignore_index=True)


DRILLS: dict[str, Callable[..., DrillRecord]] = {
    "corrupt_model": corrupt_model,
    "corrupt_model_unpicklable": partial(corrupt_model, variant="unpicklable"),
    "corrupt_model_nan": partial(corrupt_model, variant="nan_scores"),
    "api_crash": api_crash,
    "log_unwritable": log_unwritable,
    "skew": skew,
    "spike": spike,
    "spike_mitigated": spike_mitigated,
    "blocking_good_customers": blocking_good_customers,
    "concept_drift": concept_drift,
}


def run_drill(kind: str, system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """Run the drill ``kind`` (one of :data:`DRILLS`) on a prepared system; its files go under ``workdir``."""
    if kind in SKIPPED:
        raise ValueError(f"drill {kind!r} is not available: {SKIPPED[kind]}")
    if kind not in DRILLS:
        raise ValueError(f"unknown drill {kind!r}: choose one of {sorted(DRILLS)}")
    return DRILLS[kind](system, workdir / kind, fast=fast)
