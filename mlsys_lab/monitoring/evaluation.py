"""Known-answer evaluation: score drift detectors against the simulator's drift schedule.

The simulator knows when each drift event starts (``Simulation.drift_log``), so a monitor can be
graded like a classifier: did it alarm after the event (detection rate), how many days after the
start (delay), and how often did it alarm on runs with no drift at all (false alarms per 100
monitored days)? :func:`daily_alarms` turns one run into a day-by-detector alarm table; many runs,
with and without events, go into :func:`evaluate_detectors`.

Detectors of :func:`daily_alarms`, each evaluated every monitored day on that day's transactions
against the reference window:

``features: evidence+size``, ``score: evidence+size``, ``alert rate: evidence+size``
    :class:`~mlsys_lab.monitoring.drift.DriftRule` over the features (Bonferroni across them), the
    score, and the share alerted.
``features: PSI > 0.1``, ``features: KS p < 0.05``, ``score: PSI > 0.1``, ``score: KS p < 0.05``
    The folklore rules, on the same windows, for comparison (binary features use the two-proportion
    p-value in place of KS). A day whose window is too small for the alert-rate test (fewer than 5
    alerts expected) gets no decision: no alarm, value NaN.
``matured recall``
    Concept drift needs labels. Recall among the frauds *known* at the report (no genuine label
    needed), judged by :class:`~mlsys_lab.monitoring.performance.RecallDropRule`: a window of
    ``window_days`` days reported ``lag_days`` after it closes, against the reference window at the
    same lag; evidence from a one-sided test whose variance counts frauds that come in clusters
    (by card and by terminal), *and* a drop of at least ``min_drop``, on ``for_windows`` consecutive
    report days. Undecided (no alarm) while fewer than ``min_known_frauds`` frauds are known. The
    earliest report that can see an event starting on day ``s`` is day ``s + lag_days``: an alarm
    before that is a false one, whatever the table counts.
``label-free recall``
    The same comparison on the recall expected from the scores alone, with the size bound only
    (no evidence test, which could only make it fire less): the estimate that cannot see concept drift.

A calendar flag (``tx_during_weekend``) drifts by construction between a weekday and the week-long
reference, so it is left out of daily feature drift by default. The model's score carries that
calendar effect too (a logistic regression with a weekend coefficient shifts every Saturday), so the
score and alert-rate detectors compare each day with the reference days of the same kind (weekend or
weekday) when the ``calendar`` column is among the features: without it, one control seed raised a
score alarm every weekend.

Examples
--------
>>> alarms = pd.DataFrame({"run": ["a", "a", "a", "c", "c"], "detector": ["d"] * 5,
...                        "day": [9, 10, 11, 10, 11], "alarm": [False, False, True, True, False]})
>>> runs = pd.DataFrame({"event": ["AmountInflation", "none"], "start_day": [10, None]}, index=["a", "c"])
>>> table = evaluate_detectors(alarms, runs)
>>> table[["event", "runs", "detected", "median_delay_days", "false_alarms_per_100_days"]].values.tolist()
[['AmountInflation', 1, 1.0, 1.0, nan], ['none', 1, nan, nan, 50.0]]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlsys_lab.monitoring.drift import (
    DriftRule,
    WindowTooSmall,
    feature_drift,
    ks_test,
    psi,
    score_drift,
)
from mlsys_lab.monitoring.performance import RecallDropRule, known_frauds, window_performance

__all__ = ["CONTROL", "DETECTORS", "alerts_against_truth", "daily_alarms", "evaluate_detectors"]

logger = logging.getLogger(__name__)

#: ``event`` of a run with no drift event (a control run).
CONTROL = "none"
#: The detectors :func:`daily_alarms` reports, in table order.
DETECTORS: tuple[str, ...] = (
    "features: evidence+size",
    "features: PSI > 0.1",
    "features: KS p < 0.05",
    "score: evidence+size",
    "score: PSI > 0.1",
    "score: KS p < 0.05",
    "alert rate: evidence+size",
    "matured recall",
    "label-free recall",
)
_FOLKLORE_PSI = 0.1
_FOLKLORE_P = 0.05
_SECONDS_PER_DAY = 86_400


def _expected_recall(window: pd.DataFrame, scores: npt.NDArray[np.float64], threshold: float) -> float:
    perf = window_performance(window, scores, as_of_seconds=0, threshold=threshold, k=None, n_label_samples=0)
    return perf.expected_recall


def daily_alarms(
    transactions: pd.DataFrame,
    features: pd.DataFrame,
    y_proba: npt.ArrayLike,
    *,
    threshold: float,
    reference_days: tuple[int, int],
    days: Sequence[int],
    rule: DriftRule | None = None,
    columns: Sequence[str] | None = None,
    binary: Sequence[str] = ("tx_during_night",),
    exclude: Sequence[str] = ("tx_during_weekend",),
    calendar: str | None = "tx_during_weekend",
    recall_rule: RecallDropRule | None = None,
) -> pd.DataFrame:
    """Every detector's verdict on every day of ``days``, against the reference window.

    Parameters
    ----------
    transactions : pandas.DataFrame
        The simulator's transactions (``tx_time_days``, labels and label times).
    features : pandas.DataFrame
        Their features, row-aligned with ``transactions``.
    y_proba : array-like of float
        The model's score of each row.
    threshold : float
        Decision threshold (alerts are ``y_proba >= threshold``).
    reference_days : (int, int)
        First and last day (inclusive) of the reference window.
    days : sequence of int
        Days to monitor, each a one-day window (the report day of the performance detectors).
    rule : DriftRule, optional
        Evidence-and-size rule; ``DriftRule()`` by default.
    columns, binary, exclude
        Feature columns (all of ``features`` by default), which are 0/1, and which to leave out.
    calendar : str or None
        A 0/1 feature column (weekend) by which the score's reference is matched to the day's kind;
        ``None`` compares every day with the whole reference.
    recall_rule : RecallDropRule, optional
        The matured-recall detector (see the module docstring); ``RecallDropRule()`` by default. The
        label-free detector uses its window, lag and ``min_drop``.

    Returns
    -------
    pandas.DataFrame
        Columns ``day``, ``detector`` (one of ``DETECTORS``), ``alarm`` (bool) and ``value`` (the
        number the detector looked at: the largest PSI, the smallest p-value, a recall).
    """
    rule = rule or DriftRule()
    recall_rule = recall_rule or RecallDropRule()
    scores = np.asarray(y_proba, dtype=np.float64)
    if len(features) != len(transactions) or scores.shape != (len(transactions),):
        raise ValueError(
            f"transactions ({len(transactions)} rows), features ({len(features)}) and y_proba "
            f"({scores.shape}) must be row-aligned"
        )
    names = [c for c in (features.columns if columns is None else columns) if c not in set(exclude)]
    binary = [c for c in binary if c in names]
    day_column = transactions["tx_time_days"].to_numpy()
    first, last = reference_days
    in_reference = (day_column >= first) & (day_column <= last)
    reference = features.loc[in_reference, names]
    ref_scores = all_ref_scores = scores[in_reference]
    ref_calendar = features.loc[in_reference, calendar].to_numpy() if calendar in features.columns else None
    lagged_as_of = (last + 1 + recall_rule.lag_days) * _SECONDS_PER_DAY
    ref_frauds = known_frauds(
        transactions[in_reference],
        ref_scores,
        as_of_seconds=lagged_as_of,
        threshold=threshold,
        clusters=recall_rule.clusters,
    )
    ref_expected = _expected_recall(transactions[in_reference], ref_scores, threshold)
    recall_breaches = 0  # consecutive report days whose window breached the recall rule
    rows: list[dict[str, object]] = []

    def add(day: int, detector: str, alarm: bool, value: float) -> None:
        rows.append({"day": day, "detector": detector, "alarm": bool(alarm), "value": float(value)})

    for day in days:
        today = day_column == day
        current = features.loc[today, names]
        drift = feature_drift(reference, current, columns=names, binary=binary, rule=rule)
        add(day, DETECTORS[0], drift["alarm"].any(), drift["psi"].max())
        add(day, DETECTORS[1], (drift["psi"] > _FOLKLORE_PSI).any(), drift["psi"].max())
        pvalues = drift["ks_pvalue"].where(drift["kind"] == "continuous", drift["pvalue"])
        add(day, DETECTORS[2], (pvalues < _FOLKLORE_P).any(), pvalues.min())

        cur_scores = scores[today]
        ref_scores = all_ref_scores
        if calendar is not None and calendar in features.columns:
            kind = features.loc[today, calendar].to_numpy()
            if kind.size and (kind == kind[0]).all():
                ref_scores = all_ref_scores[ref_calendar == kind[0]]
        score = score_drift(ref_scores, cur_scores, rule=rule)
        add(day, DETECTORS[3], score.alarm, score.psi)
        add(day, DETECTORS[4], psi(ref_scores, cur_scores, bins=rule.bins) > _FOLKLORE_PSI, score.psi)
        ks_p = ks_test(ref_scores, cur_scores).pvalue
        add(day, DETECTORS[5], ks_p < _FOLKLORE_P, ks_p)
        try:
            rate = rule.compare_binary(
                (ref_scores >= threshold).astype(np.float64),
                (cur_scores >= threshold).astype(np.float64),
                feature="alert_rate",
            )
            add(day, DETECTORS[6], rate.alarm, rate.share_current)
        except WindowTooSmall:
            # Too few alerts expected in a day to test a change of their share: no decision, no alarm.
            add(day, DETECTORS[6], False, math.nan)

        first_day, last_day = recall_rule.window(day)
        in_window = (day_column >= first_day) & (day_column <= last_day)
        window = transactions[in_window]
        value = math.nan
        try:
            current = known_frauds(
                window,
                scores[in_window],
                as_of_seconds=(day + 1) * _SECONDS_PER_DAY,
                threshold=threshold,
                clusters=recall_rule.clusters,
            )
            judged = recall_rule.compare(ref_frauds, current)
        except WindowTooSmall:
            recall_breaches = 0  # no decision: a run of breaches restarts, as in ThresholdRule
        else:
            value = judged.current_recall
            recall_breaches = recall_breaches + 1 if judged.alarm else 0
        add(day, DETECTORS[7], recall_breaches >= recall_rule.for_windows, value)
        expected = _expected_recall(window, scores[in_window], threshold) if len(window) else math.nan
        add(day, DETECTORS[8], ref_expected - expected >= recall_rule.min_drop, expected)
    return pd.DataFrame(rows, columns=["day", "detector", "alarm", "value"])


def evaluate_detectors(alarms: pd.DataFrame, runs: pd.DataFrame, *, target_delay_days: int = 3) -> pd.DataFrame:
    """Detection rate, delay and false-alarm rate per event type and detector.

    Parameters
    ----------
    alarms : pandas.DataFrame
        One row per run, detector and monitored day: columns ``run``, ``detector``, ``day``, ``alarm``.
    runs : pandas.DataFrame
        Indexed by run: ``event`` (the drift event's name, or ``CONTROL`` for a run without drift)
        and ``start_day`` (the event's first day; ignored for controls).
    target_delay_days : int
        A detection counts as on time when its delay is at most this.

    Returns
    -------
    pandas.DataFrame
        One row per event type and detector: ``runs``; for events ``detected`` (share of runs with an
        alarm on or after the start day), ``on_time`` (share detected within ``target_delay_days``),
        ``median_delay_days`` and ``max_delay_days`` (over detected runs); for controls
        ``false_alarms_per_100_days`` (alarm days per 100 monitored days; every alarm on a control
        run is false) and ``monitored_days``. Alarms before an event's start are not counted here.
    """
    missing = [c for c in ("run", "detector", "day", "alarm") if c not in alarms.columns]
    if missing:
        raise ValueError(f"alarms lacks column(s) {missing}")
    if not {"event", "start_day"} <= set(runs.columns):
        raise ValueError("runs needs columns 'event' and 'start_day', indexed by run")
    unknown = sorted(set(alarms["run"]) - set(runs.index))
    if unknown:
        raise ValueError(f"alarms name run(s) {unknown[:5]} that are not in runs")
    merged = alarms.join(runs[["event", "start_day"]], on="run")
    rows = []
    for (event, detector), group in merged.groupby(["event", "detector"], sort=False):
        n_runs = int(group["run"].nunique())
        row: dict[str, object] = {"event": event, "detector": detector, "runs": n_runs}
        if event == CONTROL:
            row.update(
                detected=math.nan,
                on_time=math.nan,
                median_delay_days=math.nan,
                max_delay_days=math.nan,
                false_alarms_per_100_days=100.0 * float(group["alarm"].sum()) / len(group),
                monitored_days=len(group),
            )
        else:
            after = group[(group["day"] >= group["start_day"]) & group["alarm"]]
            delays = (after.groupby("run")["day"].min() - after.groupby("run")["start_day"].first()).to_numpy()
            row.update(
                detected=len(delays) / n_runs,
                on_time=float((delays <= target_delay_days).sum()) / n_runs,
                median_delay_days=float(np.median(delays)) if len(delays) else math.nan,
                max_delay_days=float(delays.max()) if len(delays) else math.nan,
                false_alarms_per_100_days=math.nan,
                monitored_days=math.nan,
            )
        rows.append(row)
    columns = [
        "event",
        "detector",
        "runs",
        "detected",
        "on_time",
        "median_delay_days",
        "max_delay_days",
        "false_alarms_per_100_days",
        "monitored_days",
    ]
    return pd.DataFrame(rows, columns=columns)


def alerts_against_truth(alerts: pd.DataFrame, events: dict[str, pd.Timestamp]) -> pd.DataFrame:
    """Each fired alert beside the simulator's truth: the event it followed and how many days later.

    Parameters
    ----------
    alerts : pandas.DataFrame
        An alert log (:func:`~mlsys_lab.monitoring.alerts.evaluate_rules`' ``log``, timestamps in ``fired_at``).
    events : dict of str to pandas.Timestamp
        Each true drift event's name and start.

    Returns
    -------
    pandas.DataFrame
        The alert log with ``event`` (the latest event started on or before the alert; ``""`` if
        none: a false alarm) and ``delay_days`` (NaN for a false alarm).

    Examples
    --------
    >>> log = pd.DataFrame({"rule": ["a", "b"], "fired_at": pd.to_datetime(["2018-06-01", "2018-06-25"])})
    >>> alerts_against_truth(log, {"card testing": pd.Timestamp("2018-06-20")})[["event", "delay_days"]].values.tolist()
    [['', nan], ['card testing', 5.0]]
    """
    out = alerts.copy()
    ordered = sorted(events.items(), key=lambda item: item[1])
    names, delays = [], []
    for fired in out["fired_at"]:
        before = [(name, start) for name, start in ordered if start <= fired]
        names.append(before[-1][0] if before else "")
        delays.append((fired - before[-1][1]) / pd.Timedelta(days=1) if before else math.nan)
    out["event"], out["delay_days"] = names, delays
    return out
