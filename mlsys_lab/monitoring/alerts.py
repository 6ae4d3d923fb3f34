"""Alert rules as typed objects, evaluated over a time-indexed metrics table into an alert log.

A drift statistic or a latency number is not an alert yet: someone gets paged only when a *rule*
says so, and a good rule is quiet on one noisy window and does not flap on and off around its
threshold. Two kinds:

:class:`ThresholdRule`
    ``metric`` (a column), aggregated over ``window`` rows (a rolling mean; 1 = the value as is),
    compared with ``threshold``. It fires after ``for_windows`` consecutive breaching windows (one
    noisy window does not page anyone) and clears after ``clear_windows`` consecutive windows on the
    safe side of ``clear_threshold`` (hysteresis: a value hovering at the threshold does not flap).
:class:`BurnRateRule`
    An SLO burn-rate rule as in Google's SRE workbook (chapter "Alerting on SLOs"): with an SLO of
    ``slo`` good events, the error budget is ``1 - slo``; the burn rate over a window is the window's
    bad share divided by the budget (1 = the budget lasts exactly the SLO period). The rule fires
    while the burn rate is at least ``burn_rate`` over *both* a long window (enough budget is really
    being spent) and a short one (it is still happening, so the alert clears soon after a fix).
    :func:`burn_rate_rules` builds the workbook's three rules (14.4x over 1 h and 5 min, 6x over 6 h
    and 30 min: pages; 1x over 3 days and 6 h: a ticket) for a 30-day SLO period, or scales their
    windows to a shorter period (a day-long replay, a minutes-long load test) keeping the burn rates,
    so each still means "2 %, 5 %, 10 % of the budget gone".

:func:`evaluate_rules` runs rules over the table and returns the state of every rule at every time
and the alert log: one row per firing, with when it fired and when it cleared (``NaT`` while open).

Examples
--------
>>> metrics = pd.DataFrame({"psi": [0.0, 0.3, 0.0, 0.3, 0.3, 0.3, 0.0, 0.0]},
...                        index=pd.date_range("2018-05-01", periods=8, freq="D"))
>>> rule = ThresholdRule(name="psi high", metric="psi", comparison=">", threshold=0.2, for_windows=2)
>>> log = evaluate_rules([rule], metrics).log
>>> log[["rule", "fired_at", "cleared_at"]].astype(str).values.tolist()
[['psi high', '2018-05-05', '2018-05-07']]
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "AlertEvaluation",
    "BurnRateRule",
    "Comparison",
    "ThresholdRule",
    "burn_rate_rules",
    "evaluate_rules",
]

logger = logging.getLogger(__name__)

Comparison = Literal[">", ">=", "<", "<="]
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
# The safe side of a clear threshold: the negation of each comparison.
_SAFE = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}

_BoolArray = npt.NDArray[np.bool_]


def _positive_int(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}.{name} must be a positive whole number of windows, got {value!r}")


@dataclass(frozen=True)
class ThresholdRule:
    """Fire when ``metric`` (rolling mean over ``window`` rows) is ``comparison threshold`` long enough.

    Parameters
    ----------
    name : str
        The alert's name, as it appears in the log.
    metric : str
        Column of the metrics table.
    comparison : {">", ">=", "<", "<="}
        Direction of a breach: ``">"`` for "too high", ``"<"`` for "too low" (e.g. matured precision).
    threshold : float
        Breach threshold.
    window : int
        Rows averaged (rolling mean, over the rows present) before comparing; 1 compares each value.
    for_windows : int
        Consecutive breaching rows before the alert fires (it fires *at* the last of them).
    clear_windows : int
        Consecutive safe rows before a firing alert clears.
    clear_threshold : float, optional
        A row is safe when its value is on the other side of this (default ``threshold``). Put it
        inside the normal range (below a ``">"`` threshold) to give the rule a hysteresis band.

    A missing value (NaN: a window too small to compute) neither breaches nor clears: the state is
    kept and every consecutive count restarts.

    Examples
    --------
    >>> ThresholdRule(name="x", metric="x", comparison=">", threshold=1.0, clear_threshold=0.5).safe_threshold
    0.5
    """

    name: str
    metric: str
    comparison: Comparison
    threshold: float
    window: int = 1
    for_windows: int = 1
    clear_windows: int = 1
    clear_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.comparison not in _OPERATORS:
            raise ValueError(f"ThresholdRule.comparison must be one of {sorted(_OPERATORS)}, got {self.comparison!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"ThresholdRule.threshold must be a finite number, got {self.threshold!r}")
        for name in ("window", "for_windows", "clear_windows"):
            _positive_int("ThresholdRule", name, getattr(self, name))
        # The clear threshold must not sit on the breach side, or a firing alert could never clear.
        if self.clear_threshold is not None and _OPERATORS[self.comparison](self.clear_threshold, self.threshold):
            raise ValueError(
                f"ThresholdRule {self.name!r}: clear_threshold {self.clear_threshold} is on the breach side of "
                f"'{self.comparison} {self.threshold}': put it on the safe side to get a hysteresis band"
            )

    @property
    def safe_threshold(self) -> float:
        """The value a row must be on the safe side of to count towards clearing."""
        return self.threshold if self.clear_threshold is None else self.clear_threshold

    def conditions(self, metrics: pd.DataFrame) -> tuple[_BoolArray, _BoolArray, pd.Series]:
        """Per row: does it breach, is it safe, and the aggregated value compared."""
        if self.metric not in metrics.columns:
            raise ValueError(
                f"rule {self.name!r} reads metric {self.metric!r}, not a column of the metrics table "
                f"{list(metrics.columns)}"
            )
        value = metrics[self.metric].astype(np.float64).rolling(self.window, min_periods=1).mean()
        if self.window > 1:
            # A rolling mean over a run of NaN is NaN; over a partial run it averages what is there.
            value = value.where(metrics[self.metric].notna())
        array = value.to_numpy()
        known = ~np.isnan(array)
        breach = known & np.asarray(_OPERATORS[self.comparison](array, self.threshold))
        safe = known & np.asarray(_OPERATORS[_SAFE[self.comparison]](array, self.safe_threshold))
        return breach, safe, value


@dataclass(frozen=True)
class BurnRateRule:
    """Multi-window SLO burn-rate rule: fire while both windows burn the error budget ``burn_rate`` x fast.

    Parameters
    ----------
    name : str
        The alert's name.
    bad, total : str
        Columns of per-row counts: bad events (errors, requests slower than the latency SLO) and all
        events. Counts, not rates, so windows of uneven traffic add up correctly.
    slo : float
        Target share of good events, e.g. 0.99 (error budget 1 %).
    long_window, short_window : pandas.Timedelta
        The two windows (the short one, usually 1/12 of the long, makes the alert stop soon after
        the burn does). Rows within ``(t - window, t]`` count; the metrics table needs a
        ``DatetimeIndex``.
    burn_rate : float
        Burn-rate factor both windows must reach.
    severity : str
        ``"page"`` or ``"ticket"``, carried into the log.

    Examples
    --------
    >>> rule = BurnRateRule(name="errors fast", bad="errors", total="requests", slo=0.99,
    ...                     long_window=pd.Timedelta("1h"), short_window=pd.Timedelta("5min"), burn_rate=14.4)
    >>> round(rule.budget, 4)
    0.01
    """

    name: str
    bad: str
    total: str
    slo: float
    long_window: pd.Timedelta
    short_window: pd.Timedelta
    burn_rate: float
    severity: str = "page"

    def __post_init__(self) -> None:
        if not 0 < self.slo < 1:
            raise ValueError(f"BurnRateRule.slo must be a share of good events in (0, 1), got {self.slo!r}")
        for name in ("long_window", "short_window"):
            value = getattr(self, name)
            if not isinstance(value, pd.Timedelta) or value <= pd.Timedelta(0):
                raise ValueError(f"BurnRateRule.{name} must be a positive pandas.Timedelta, got {value!r}")
        if self.short_window > self.long_window:
            raise ValueError(
                f"BurnRateRule {self.name!r}: short_window {self.short_window} is longer than long_window "
                f"{self.long_window}: swap them"
            )
        if not (math.isfinite(self.burn_rate) and self.burn_rate > 0):
            raise ValueError(f"BurnRateRule.burn_rate must be a positive number, got {self.burn_rate!r}")

    @property
    def budget(self) -> float:
        """The error budget, ``1 - slo``."""
        return 1.0 - self.slo

    def burn(self, metrics: pd.DataFrame, window: pd.Timedelta) -> pd.Series:
        """Burn rate over the trailing ``window`` at every row (NaN where the window saw no events)."""
        for column in (self.bad, self.total):
            if column not in metrics.columns:
                raise ValueError(
                    f"rule {self.name!r} reads column {column!r}, not in the metrics table {list(metrics.columns)}"
                )
        if not isinstance(metrics.index, pd.DatetimeIndex):
            raise ValueError(
                f"rule {self.name!r} needs a metrics table indexed by time (a DatetimeIndex) for its "
                f"{self.long_window} and {self.short_window} windows; got {type(metrics.index).__name__}"
            )
        bad = metrics[self.bad].astype(np.float64).rolling(window).sum()
        total = metrics[self.total].astype(np.float64).rolling(window).sum()
        return (bad / total.where(total > 0)) / self.budget

    def conditions(self, metrics: pd.DataFrame) -> tuple[_BoolArray, _BoolArray, pd.Series]:
        """Per row: does it breach (both windows at the burn rate), is it safe, and the long-window burn."""
        long_burn = self.burn(metrics, self.long_window)
        short_burn = self.burn(metrics, self.short_window)
        long_a, short_a = long_burn.to_numpy(), short_burn.to_numpy()
        known = ~np.isnan(long_a) & ~np.isnan(short_a)
        breach = known & (long_a >= self.burn_rate) & (short_a >= self.burn_rate)
        return breach, known & ~breach, long_burn


# The workbook's recommended rules for a 30-day SLO: (long window, short window, burn rate, severity).
_WORKBOOK_RULES = (
    (pd.Timedelta(hours=1), pd.Timedelta(minutes=5), 14.4, "page"),
    (pd.Timedelta(hours=6), pd.Timedelta(minutes=30), 6.0, "page"),
    (pd.Timedelta(days=3), pd.Timedelta(hours=6), 1.0, "ticket"),
)
_WORKBOOK_PERIOD = pd.Timedelta(days=30)


def burn_rate_rules(
    name: str, *, bad: str, total: str, slo: float, period: pd.Timedelta = _WORKBOOK_PERIOD
) -> tuple[BurnRateRule, ...]:
    """The SRE workbook's three multi-window burn-rate rules, with windows scaled to ``period``.

    For the workbook's 30-day SLO period they are 14.4x over 1 h and 5 min (2 % of the budget
    gone in an hour), 6x over 6 h and 30 min (5 % in 6 h), and 1x over 3 days and 6 h (10 % in 3
    days, a ticket). For a shorter ``period`` every window shrinks by ``period / 30 days`` and the
    burn rates stay, so each rule still fires on the same share of the budget.

    Examples
    --------
    >>> rules = burn_rate_rules("latency", bad="slow", total="requests", slo=0.99, period=pd.Timedelta(days=1))
    >>> [(str(r.long_window), str(r.short_window), r.burn_rate) for r in rules][0]
    ('0 days 00:02:00', '0 days 00:00:10', 14.4)
    """
    if not isinstance(period, pd.Timedelta) or period <= pd.Timedelta(0):
        raise ValueError(f"period must be a positive pandas.Timedelta (the SLO period), got {period!r}")
    scale = period / _WORKBOOK_PERIOD
    return tuple(
        BurnRateRule(
            name=f"{name} {burn:g}x over {(long * scale).round('s')}",
            bad=bad,
            total=total,
            slo=slo,
            long_window=(long * scale).round("s"),
            short_window=(short * scale).round("s"),
            burn_rate=burn,
            severity=severity,
        )
        for long, short, burn, severity in _WORKBOOK_RULES
    )


@dataclass(frozen=True)
class AlertEvaluation:
    """The result of :func:`evaluate_rules`.

    Attributes
    ----------
    states : pandas.DataFrame
        One bool column per rule name, indexed like the metrics: is the alert firing at that row.
    log : pandas.DataFrame
        One row per firing: ``rule``, ``severity``, ``fired_at`` (the row it fired at), ``cleared_at``
        (the row it cleared at, or ``NaT``/``NaN`` while still firing), ``value_at_fire``.
    """

    states: pd.DataFrame
    log: pd.DataFrame


def _state_machine(breach: _BoolArray, safe: _BoolArray, for_windows: int, clear_windows: int) -> _BoolArray:
    state = np.zeros(breach.size, dtype=bool)
    firing, run_breach, run_safe = False, 0, 0
    for i in range(breach.size):
        run_breach = run_breach + 1 if breach[i] else 0
        run_safe = run_safe + 1 if safe[i] else 0
        if not firing and run_breach >= for_windows:
            firing = True
        elif firing and run_safe >= clear_windows:
            firing = False
        state[i] = firing
    return state


def evaluate_rules(rules: Sequence[ThresholdRule | BurnRateRule], metrics: pd.DataFrame) -> AlertEvaluation:
    """Run ``rules`` over ``metrics`` (one row per evaluation window, sorted by its index).

    Parameters
    ----------
    rules : sequence of ThresholdRule or BurnRateRule
        Rules with distinct names.
    metrics : pandas.DataFrame
        One row per window (a day, a minute), indexed by time, sorted, with the columns the rules read.

    Returns
    -------
    AlertEvaluation
        The per-row states and the alert log.
    """
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"rule names must be distinct, got {names}")
    if not metrics.index.is_monotonic_increasing:
        raise ValueError("the metrics table must be sorted by its (time) index: sort_index() it first")
    states: dict[str, _BoolArray] = {}
    entries = []
    for rule in rules:
        breach, safe, value = rule.conditions(metrics)
        if isinstance(rule, ThresholdRule):
            state = _state_machine(breach, safe, rule.for_windows, rule.clear_windows)
            severity = "page"
        else:
            state = _state_machine(breach, safe, 1, 1)
            severity = rule.severity
        states[rule.name] = state
        edges = np.diff(np.concatenate(([False], state, [False])).astype(np.int8))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for start, end in zip(starts, ends, strict=True):
            entries.append(
                {
                    "rule": rule.name,
                    "severity": severity,
                    "fired_at": metrics.index[start],
                    "cleared_at": metrics.index[end] if end < len(metrics) else None,
                    "value_at_fire": float(value.iloc[start]),
                }
            )
    log = pd.DataFrame(entries, columns=["rule", "severity", "fired_at", "cleared_at", "value_at_fire"])
    if isinstance(metrics.index, pd.DatetimeIndex):
        log["fired_at"] = pd.to_datetime(log["fired_at"])
        log["cleared_at"] = pd.to_datetime(log["cleared_at"])
    logger.debug("evaluated %d rules over %d rows: %d firings", len(rules), len(metrics), len(log))
    return AlertEvaluation(states=pd.DataFrame(states, index=metrics.index), log=log)
