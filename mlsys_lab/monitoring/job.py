"""The monitoring job: read the decision log, compute one row of monitoring metrics per day, run the alert rules.

What ``mlsys-lab monitor`` runs. The log is read through its public methods only
(:meth:`~mlsys_lab.deployment.decision_log.DecisionLog.decisions` for scores, features and latency,
:meth:`~mlsys_lab.deployment.decision_log.DecisionLog.history_frame` for the labels known and when
they became known). Days are on the transactions' clock (``tx_time_days``, the simulator's day for
simulated traffic). The first ``reference_days`` days that have decisions are the reference; every
later day is a window, and for each one the job computes:

- **drift**: per feature, evidence *and* size (:func:`~mlsys_lab.monitoring.drift.feature_drift`,
  Bonferroni across features; the weekend flag is left out, it drifts by the calendar), on the
  score, and on the share blocked; ``drifting_features`` counts the features that alarm;
- **data quality**: the largest share of out-of-range values against the reference's ranges, and of nulls;
- **performance as known at the report time** (``as_of``, by default the newest transaction or label
  in the log): precision among blocked transactions and recall among the *known* frauds, with
  ``label_coverage`` (share of the window's transactions with a label) and ``known_frauds`` beside
  them; a window with fewer than ``min_known_frauds`` known frauds gets NaN recall, not a guess;
- **matured recall as it was known on each day** (``matured_recall``, ``matured_frauds``,
  ``recall_drop``): the :class:`~mlsys_lab.monitoring.performance.RecallDropRule`'s window ending
  ``lag_days`` before the day, with the labels known at the end of that day (never after ``as_of``),
  against the reference at the same lag, so an alert on it fires on the day it could have fired in
  production, not on the day of a hindsight report;
- **latency**: p99 of the logged request latency and the share over the 50 ms SLO.

A window too small for a statistic gets NaN there (no alarm), never an error. The alert rules
(:func:`default_rules`) then run over the table (:func:`~mlsys_lab.monitoring.alerts.evaluate_rules`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.monitoring.alerts import ThresholdRule, evaluate_rules
from mlsys_lab.monitoring.drift import DriftRule, WindowTooSmall, alert_rate_drift, feature_drift, score_drift
from mlsys_lab.monitoring.evaluation import alerts_against_truth
from mlsys_lab.monitoring.performance import RecallDropRule, known_frauds, window_performance
from mlsys_lab.monitoring.quality import data_quality, reference_ranges

__all__ = ["MonitorInputError", "MonitoringReport", "default_rules", "monitor_log", "monitoring_table"]

logger = logging.getLogger(__name__)


class MonitorInputError(ValueError):
    """The log or the arguments cannot be monitored as asked; ``param`` names the option to change.

    A subclass, so the CLI turns only these into a usage error (exit 2) and a bug elsewhere still
    shows its traceback instead of posing as a bad argument.
    """

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


SECONDS_PER_DAY = 86_400
#: Module 04's latency SLO, in milliseconds.
LATENCY_SLO_MS = 50.0
#: Left out of daily feature drift: a weekday differs from a week-long reference by construction.
CALENDAR_FEATURES = ("tx_during_weekend",)
BINARY_FEATURES = ("tx_during_night",)


@dataclass(frozen=True)
class MonitoringReport:
    """What one run of the job produced: the per-day metrics table, the reference, and the alert log."""

    metrics: pd.DataFrame  # one row per monitored day, indexed by the day's date
    alerts: pd.DataFrame  # evaluate_rules' log: rule, severity, fired_at, cleared_at, value_at_fire
    reference_days: tuple[int, int]
    as_of: pd.Timestamp
    reference_recall: float  # the reference window's recall among its frauds known at the rule's lag

    @property
    def fired(self) -> bool:
        """Whether any rule fired over the monitored days."""
        return not self.alerts.empty

    def lines(self, seconds: float | None = None) -> list[str]:
        """The printout: what was monitored, then one line per alert (fired, cleared) or "no alert fired"."""
        first, last = self.reference_days
        took = "" if seconds is None else f" ({seconds:.2f} s)"
        out = [
            f"== Monitoring{took}: {len(self.metrics)} day(s) against reference days {first}-{last}, "
            f"performance on the labels known at {self.as_of:%Y-%m-%d %H:%M}",
        ]
        if not self.fired:
            return [*out, "no alert fired"]
        for alert in self.alerts.itertuples(index=False):
            cleared = "still firing" if pd.isna(alert.cleared_at) else f"cleared {alert.cleared_at:%Y-%m-%d}"
            out.append(
                f"ALERT {alert.rule}: fired {alert.fired_at:%Y-%m-%d} (value {alert.value_at_fire:.4g}), {cleared}"
            )
        return out

    def lines_against_truth(
        self,
        events: dict[str, pd.Timestamp],
        seconds: float | None = None,
        *,
        lag_days: int = RecallDropRule().lag_days,
    ) -> list[str]:
        """:meth:`lines` with the simulator's truth beside each alert: the event it followed and its delay.

        ``events`` maps each true drift event to its start. An alert before every event is a false
        alarm. For labels, the floor is ``lag_days``: the matured-recall rule's first window with a
        day of the event is reported that many days after it starts.
        """
        head = self.lines(seconds)[0].replace("== Monitoring", "== Monitoring the production days", 1)
        truth = "; ".join(f"{name} from {start:%Y-%m-%d}" for name, start in sorted(events.items(), key=lambda e: e[1]))
        out = [head, f"truth (the simulator's drift log): {truth or 'no drift event'}"]
        if not self.fired:
            return [*out, "no alert fired"]
        judged = alerts_against_truth(self.alerts, events)
        for alert in judged.itertuples(index=False):
            when = f"fired {alert.fired_at:%Y-%m-%d}"
            if not alert.event:
                verdict = "FALSE ALARM: before any drift event"
            else:
                floor = f" (label-delay floor {lag_days} d)" if alert.rule == "matured recall dropped" else ""
                verdict = f"{alert.delay_days:.0f} day(s) after {alert.event} started{floor}"
            out.append(f"ALERT {alert.rule}: {when}, {verdict}")
        return out


def default_rules(recall_rule: RecallDropRule | None = None) -> list[ThresholdRule]:
    """The job's alert rules: two consecutive bad days to fire, two good ones to clear (out of range: one to fire).

    The matured-recall rule reads the ``recall_drop`` column, the verdict of ``recall_rule``
    (``RecallDropRule()`` by default: evidence that counts clustered frauds, and a size), and fires
    after its ``for_windows`` consecutive alarming days.
    """
    recall_rule = recall_rule or RecallDropRule()
    return [
        ThresholdRule("feature drift", "drifting_features", ">=", 1, for_windows=2, clear_windows=2, clear_threshold=0),
        ThresholdRule("score drift", "score_drift", ">=", 1, for_windows=2, clear_windows=2, clear_threshold=0),
        ThresholdRule(
            "alert rate drift", "alert_rate_drift", ">=", 1, for_windows=2, clear_windows=2, clear_threshold=0
        ),
        ThresholdRule("values out of range", "out_of_range_max", ">", 0.01, for_windows=1, clear_windows=2),
        ThresholdRule("latency p99 over SLO", "latency_p99_ms", ">", LATENCY_SLO_MS, for_windows=2, clear_windows=2),
        ThresholdRule(
            "matured recall dropped",
            "recall_drop",
            ">=",
            1,
            for_windows=recall_rule.for_windows,
            clear_windows=2,
            clear_threshold=0,
        ),
    ]


def _frames(log: DecisionLog, since: pd.Timestamp | None = None, origin: str = "2018-04-01") -> pd.DataFrame:
    decisions = log.decisions(with_features=True, since=since)
    if decisions.empty:
        where = "" if since is None else f" on or after {since:%Y-%m-%d %H:%M}"
        raise MonitorInputError(
            f"the decision log {log!r} holds no decisions{where}: nothing to monitor",
            param="LOG" if since is None else "--read-from",
        )
    history = log.history_frame(origin=origin, since=since)
    history = history[["transaction_id", "tx_time_seconds", "tx_fraud", "tx_label_seconds"]]
    features = pd.DataFrame(list(decisions["features"]), index=decisions.index)
    missing = [name for name in FEATURE_COLUMNS if name not in features.columns]
    if missing:
        raise MonitorInputError(
            f"the logged decisions lack feature(s) {missing}: was the log written by this service?", param="LOG"
        )
    # The model's inputs as logged; tx_amount is also a column of its own (the same value).
    inputs = [name for name in FEATURE_COLUMNS if name not in decisions.columns]
    frame = decisions.drop(columns="features").join(features[inputs])
    frame = frame.merge(history, on="transaction_id", how="left", validate="one_to_one")
    frame["tx_time_days"] = frame["tx_time_seconds"] // SECONDS_PER_DAY
    # A label not known yet is not a label: known_labels() looks at tx_label_seconds, NaN there.
    frame["tx_fraud"] = frame["tx_fraud"].fillna(0).astype(np.int8)
    return frame


def _timestamp(value: pd.Timestamp | str | None, param: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except ValueError as exc:
        raise MonitorInputError(
            f"{value!r} is not a date or time ({exc}); write it as 2018-05-20 or 2018-05-20T12:00", param=param
        ) from None


def _safe(compute: object) -> float:
    try:
        return float(compute())  # type: ignore[operator]
    except WindowTooSmall:
        return math.nan


def monitoring_table(
    frame: pd.DataFrame,
    *,
    reference_days: int = 7,
    skip_days: int = 0,
    as_of_seconds: int | None = None,
    rule: DriftRule | None = None,
    min_known_frauds: int = 5,
    recall_rule: RecallDropRule | None = None,
) -> tuple[pd.DataFrame, tuple[int, int], float]:
    """The per-day metrics of ``frame`` (decisions joined with labels, as :func:`monitor_log` builds it).

    The first ``skip_days`` days with decisions are left out entirely (a warm-up: see :func:`monitor_log`).

    Returns the table (indexed by ``tx_time_days``), the reference's first and last day, and the
    reference's recall among its frauds known ``recall_rule.lag_days`` after it closed (NaN when
    fewer than ``recall_rule.min_known_frauds`` were).
    """
    rule = rule or DriftRule()
    recall_rule = recall_rule or RecallDropRule()
    if skip_days < 0 or reference_days < 1:
        raise MonitorInputError(
            f"skip_days must be >= 0 and reference_days >= 1, got {skip_days} and {reference_days}",
            param="--skip-days/--reference-days",
        )
    as_of = int(as_of_seconds if as_of_seconds is not None else _newest_second(frame))
    all_days = np.sort(frame["tx_time_days"].unique())
    days = all_days[skip_days:]
    if days.size <= reference_days:
        raise MonitorInputError(
            f"the log covers {all_days.size} day(s): {skip_days} skipped, {reference_days} reference day(s) and at "
            "least one day to monitor are needed (lower --skip-days or --reference-days, or replay more traffic)",
            param="--skip-days/--reference-days",
        )
    reference = frame[(frame["tx_time_days"] >= days[0]) & (frame["tx_time_days"] <= days[reference_days - 1])]
    threshold = float(frame["threshold"].median())
    columns = [c for c in FEATURE_COLUMNS if c not in CALENDAR_FEATURES]
    ranges = reference_ranges(reference, [c for c in columns if c not in BINARY_FEATURES])
    ref_frauds = known_frauds(
        reference,
        reference["score"],
        as_of_seconds=min(as_of, int(days[reference_days - 1] + 1 + recall_rule.lag_days) * SECONDS_PER_DAY),
        threshold=threshold,
        clusters=recall_rule.clusters,
    )
    enough = len(ref_frauds) >= recall_rule.min_known_frauds
    reference_recall = float(ref_frauds["alerted"].mean()) if enough else math.nan
    day_column = frame["tx_time_days"].to_numpy()
    rows = []
    for day in days[reference_days:]:
        window = frame[day_column == day]
        try:
            drift = feature_drift(reference, window, columns=columns, binary=BINARY_FEATURES, rule=rule)
            drifting = float(drift["alarm"].sum())
            psi_max = float(drift["psi"].max())
        except WindowTooSmall:
            drifting = psi_max = math.nan
        quality = data_quality(window, columns=columns, ranges=ranges)
        perf = window_performance(
            window, window["score"], as_of_seconds=as_of, threshold=threshold, k=None, truth=False, n_label_samples=0
        )
        latency = window["latency_ms"].to_numpy()
        matured = _matured_recall(frame, day_column, int(day), ref_frauds, recall_rule, threshold, as_of)
        rows.append(
            {
                "day": int(day),
                "n_decisions": len(window),
                "drifting_features": drifting,
                "psi_max": psi_max,
                "score_drift": _safe(lambda w=window: score_drift(reference["score"], w["score"], rule=rule).alarm),
                "alert_rate_drift": _safe(
                    lambda w=window: alert_rate_drift(reference["score"], w["score"], threshold, rule=rule).alarm
                ),
                "block_rate": float(window["decision"].mean()),
                "out_of_range_max": max(quality.out_of_range.values(), default=math.nan),
                "null_rate_max": max(quality.null_rate.values(), default=math.nan),
                "known_precision_at_alerts": perf.known_precision_at_alerts,
                "known_recall": perf.known_recall if perf.n_known_frauds >= min_known_frauds else math.nan,
                "known_frauds": perf.n_known_frauds,
                "label_coverage": perf.label_coverage,
                **matured,
                "latency_p99_ms": float(np.percentile(latency, 99)),
                "slow_share": float((latency > LATENCY_SLO_MS).mean()),
            }
        )
    return pd.DataFrame(rows).set_index("day"), (int(days[0]), int(days[reference_days - 1])), reference_recall


def _matured_recall(
    frame: pd.DataFrame,
    day_column: npt.NDArray[np.int64],
    day: int,
    reference: pd.DataFrame,
    rule: RecallDropRule,
    threshold: float,
    as_of: int,
) -> dict[str, float]:
    """``matured_recall``, ``matured_frauds``, ``recall_drop`` (1, 0; NaN: no decision) known at the end of ``day``."""
    first, last = rule.window(day)
    in_window = (day_column >= first) & (day_column <= last)
    current = known_frauds(
        frame[in_window],
        frame.loc[in_window, "score"],
        as_of_seconds=min(as_of, (day + 1) * SECONDS_PER_DAY),
        threshold=threshold,
        clusters=rule.clusters,
    )
    out = {"matured_recall": math.nan, "matured_frauds": float(len(current)), "recall_drop": math.nan}
    if len(current):
        out["matured_recall"] = float(current["alerted"].mean())
    with contextlib.suppress(WindowTooSmall):  # too few frauds known on either side: no decision, NaN
        out["recall_drop"] = float(rule.compare(reference, current).alarm)
    return out


def _newest_second(frame: pd.DataFrame) -> float:
    labels = frame["tx_label_seconds"].to_numpy(dtype=np.float64)
    newest_label = np.nanmax(labels) if np.isfinite(labels).any() else -np.inf
    return float(max(frame["tx_time_seconds"].max(), newest_label))


def monitor_log(
    url: str,
    *,
    reference_days: int = 7,
    skip_days: int = 0,
    as_of: pd.Timestamp | str | None = None,
    since: pd.Timestamp | str | None = None,
    origin: str = "2018-04-01",
    read_from: pd.Timestamp | str | None = None,
) -> MonitoringReport:
    """Run the monitoring job over the decision log at ``url`` (any SQLAlchemy URL).

    Parameters
    ----------
    url : str
        The decision log's URL (``sqlite:///runs/decisions.db``).
    reference_days : int
        Days at the start of the log (after the skipped ones) that form the reference.
    skip_days : int
        Days at the start of the log to leave out: a service started on an empty log computes its
        30-day windows (and its terminal risk, 7 days delayed) from what it has seen so far, so the
        features of its first 37 days grow day by day. Monitoring them against each other finds
        that growth, rightly, as drift (measured on the demo's replay: feature drift, score drift and
        values out of range all fired during the warm-up).
    as_of : timestamp, optional
        The report time on the transactions' clock: labels known later are not used. Default: the
        newest transaction or label in the log.
    since : timestamp, optional
        Report only the days from this date on (the reference is still the log's first days).
    origin : str
        Day 0 of the transactions' clock (the simulator's default start date).
    read_from : timestamp, optional
        Read only the decisions (and their labels) from this time on, through the log's index on
        the transactions' time: the days before it are not read at all, so ``skip_days`` and the
        reference count from here. For a job over the newest weeks of a long log: the demo's
        production monitor reads the loop's days, not the replay before them. A monitored day's
        statistics read the reference and the matured-recall window that ends ``lag_days`` before
        it (``window_days`` long): with ``reference_days >= window_days + lag_days - 1`` (7 with the
        default :class:`~mlsys_lab.monitoring.performance.RecallDropRule`) that window never reaches
        before the reference, so reading from the first reference day gives the table that a
        whole-log read skipping the days before it gives.
    """
    start = pd.Timestamp(origin)
    as_of_time, since_time = _timestamp(as_of, "--as-of"), _timestamp(since, "--since")
    read_time = _timestamp(read_from, "--read-from")
    log = DecisionLog(url)
    try:
        frame = _frames(log, read_time, origin)
    finally:
        log.close()
    as_of_seconds = None if as_of_time is None else int((as_of_time - start) / pd.Timedelta(seconds=1))
    table, ref_days, reference_recall = monitoring_table(
        frame, reference_days=reference_days, skip_days=skip_days, as_of_seconds=as_of_seconds
    )
    table.index = start + pd.to_timedelta(table.index, unit="D")
    table.index.name = "day"
    if since_time is not None:
        table = table[table.index >= since_time]
        if table.empty:
            raise MonitorInputError(
                f"no monitored day on or after --since {since}: the log ends before it", param="--since"
            )
    alerts = evaluate_rules(default_rules(), table).log
    report_time = start + pd.Timedelta(seconds=as_of_seconds if as_of_seconds is not None else _newest_second(frame))
    logger.info("monitored %d day(s) against days %s: %d alert(s)", len(table), ref_days, len(alerts))
    return MonitoringReport(table, alerts, ref_days, report_time, reference_recall)
