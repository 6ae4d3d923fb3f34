"""The drills: each starts the real service, replays simulator traffic, injects one fault at a hidden time.

Every drill returns a :class:`~mlsys_lab.drills.record.DrillRecord` whose answer key is computed
from the injection and from the raw evidence (each request the generator sent and its answer, the
decision log read back after the servers stopped), and whose ``measured`` fields are what the
system's own monitoring saw (alerts over the generator's per-second errors, ``/ready`` and
``/health`` scrapes, drift statistics over the logged scores). A drill passes its own check when
the two agree; a learner's diagnosis is scored against the key (:mod:`mlsys_lab.drills.diagnosis`).

``fast=True`` runs each drill for seconds (CI, the notebook's fast mode); the default runs longer
at the same rates, so the statistics have more to work on.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
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

__all__ = ["DRILLS", "SKIPPED", "run_drill"]

logger = logging.getLogger(__name__)

#: Drills this package cannot run yet, and why.
SKIPPED = {
    "blocking_good_customers": "needs the alert-rate guardrail and watchdog rollback (module 06), not on this branch"
}


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

    def __init__(self, system: DrillSystem, kind: str, workdir: Path, **env: str) -> None:
        self.system, self.kind, self.workdir = system, kind, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.alias = system.new_alias(kind)
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
        )


def _bodies(system: DrillSystem, n: int) -> list[dict[str, object]]:
    rows = system.traffic.iloc[:n]
    if len(rows) < n:
        raise ValueError(f"the drill needs {n} transactions, the system holds {len(system.traffic)}")
    return request_bodies(rows)


def _budget_burnt(failed: int, requests: int, slo: float = 0.99) -> float:
    """Share of the drill's error budget (1 - slo of its requests) the failures used (1.0 = all of it)."""
    return failed / ((1 - slo) * requests) if requests else 0.0


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


def corrupt_model(system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """A new version is aliased, then its artifact's bytes flip on disk before the service reloads it.

    The service must refuse it (sha256), keep serving the last good version, fail no request, and
    say why on ``/ready`` (``reload_refused``); an alert fires on that.
    """
    plan = _plan(fast)
    fault_at = hidden_start(system.random_state, *plan.fault_window)
    live = _Live(system, "corrupt_model", workdir)
    registry = Registry(system.tracking)
    path = registry.get(system.spare_version).artifact_path
    original = path.read_bytes()
    reload_status: list[int] = []

    def fault() -> None:
        registry.set_alias(live.alias, system.spare_version, who="drill: deploy job", why="new version")
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
    failed = sum(not o.ok for o in outcomes)
    key = AnswerKey(
        kind="corrupt_model",
        root_cause="corrupt_model_artifact",
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact={
            "requests_failed": failed,
            "decisions_lost": lost,
            "good_customers_blocked": 0,
            "error_budget_burnt": _budget_burnt(failed, len(outcomes)),
            "recovery_s": 0.0,
            "decisions_by_corrupt_version": int((versions == system.spare_version).sum()),
            "serving_version": system.good_version,
        },
    )
    scrapes = live.scraper.rows if live.scraper else []
    alerts = _scrape_alerts(scrapes, "/ready", "reload refused", lambda s: bool(_field(s, "reload_refused")))
    after = [s for s in scrapes if s["path"] == "/ready" and s["t"] > fault_at and s["status"] == 200]
    measured = {
        "reload_status": reload_status[0] if reload_status else 0,
        "serving_version": float(after[-1]["body"]["model_version"]) if after else math.nan,
        "ready_says_why": float(any("IntegrityError" in str(_field(s, "reload_refused")) for s in after)),
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
    failed = sum(not o.ok for o in outcomes)
    key = AnswerKey(
        kind=kind,
        root_cause=cause,
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact={
            "requests_failed": failed,
            "decisions_lost": lost,
            "good_customers_blocked": 0,
            "error_budget_burnt": _budget_burnt(failed, len(outcomes)),
            "recovery_s": downtime,
            "status_500": sum(o.status >= 500 and o.status != 503 for o in outcomes),
        },
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
    failed = sum(not o.ok for o in outcomes)
    key = AnswerKey(
        kind="skew",
        root_cause="client_unit_change",
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact={
            "requests_failed": failed,
            "decisions_lost": lost,
            "good_customers_blocked": 0,
            "error_budget_burnt": _budget_burnt(failed, len(outcomes)),
            "recovery_s": math.nan,  # nothing recovers until the client is fixed
            "first_skewed_transaction": int(outcomes[first_skewed].transaction_id),
            "decisions_on_wrong_unit": int(sum(o.ok for o in outcomes[first_skewed:])),
        },
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


def spike(system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """Three times the rate for a bounded time; module 04's capacity model predicts the spike's p99 first.

    The service time comes from the server's CPU-seconds over the baseline (before the spike); the
    prediction is M/M/1's p99 at three times the rate (one uvicorn worker, one BLAS thread).
    """
    plan = _plan(fast, rate=15.0)
    length = 3.0 if fast else 20.0
    fault_at = hidden_start(system.random_state, *plan.fault_window)
    live = _Live(system, "spike", workdir)
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
        kind="spike",
        root_cause="traffic_above_capacity",
        start_s=fault_at,
        start_utc=utc(wall + fault_at),
        impact={
            "requests_failed": failed,
            "decisions_lost": lost,
            "good_customers_blocked": 0,
            "error_budget_burnt": _budget_burnt(failed, len(outcomes)),
            "recovery_s": 0.0 if failed == 0 else _outage(outcomes, fault_at)[2],
            "spike_rate": 3 * plan.rate,
            "spike_s": length,
            "requests_in_spike": len(during),
            "measured_p99_ms": measured_p99,
        },
    )
    ratio = predicted.get("predicted_p99_ms", math.nan) / measured_p99 if measured_p99 else math.nan
    measured = {**predicted, "measured_p99_ms": measured_p99, "prediction_over_measured": ratio}
    notes = [
        "the load generator shares the cores with the server: the measured p99 includes the generator's own delay",
    ]
    alerts = failure_alerts(outcomes, plan.duration_s)
    measured["acknowledged"] = acknowledged
    return live.record(key, measured, outcomes, alerts, fast=fast, notes=notes)


DRILLS: dict[str, Callable[..., DrillRecord]] = {
    "corrupt_model": corrupt_model,
    "api_crash": api_crash,
    "log_unwritable": log_unwritable,
    "skew": skew,
    "spike": spike,
}


def run_drill(kind: str, system: DrillSystem, workdir: Path, *, fast: bool = True) -> DrillRecord:
    """Run the drill ``kind`` (one of :data:`DRILLS`) on a prepared system; its files go under ``workdir``."""
    if kind in SKIPPED:
        raise ValueError(f"drill {kind!r} is not available: {SKIPPED[kind]}")
    if kind not in DRILLS:
        raise ValueError(f"unknown drill {kind!r}: choose one of {sorted(DRILLS)}")
    return DRILLS[kind](system, workdir / kind, fast=fast)
