"""The decision threshold: from a daily alert budget and a cost matrix, not from 0.5.

A score becomes a decision through ``y_proba >= threshold``. Two things outside the model set it:

- **the budget**: investigators review only so many alerts a day, so no day may raise more than
  ``alerts_per_day`` (:func:`threshold_for_budget`);
- **the cost**: among the thresholds the budget allows, the bank wants the cheapest one, missed
  frauds against false alarms (:func:`choose_threshold`, with :class:`~mlsys_lab.evaluate.CostModel`).

Choose the threshold on validation scores, then report what it does on the test period with
:func:`threshold_report`: choosing and reporting on the same rows flatters it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from mlsys_lab import evaluate

__all__ = ["ThresholdChoice", "choose_threshold", "threshold_for_budget", "threshold_report"]


def _arrays(
    y_proba: npt.ArrayLike, days: npt.ArrayLike, alerts_per_day: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    scores = np.asarray(y_proba, dtype=np.float64)
    day = np.asarray(days)
    if scores.ndim != 1 or day.shape != scores.shape:
        raise ValueError(f"y_proba and days must be 1-D and the same length, got {scores.shape} and {day.shape}")
    if np.isnan(scores).any():
        raise ValueError("y_proba contains NaN: a model must score every transaction")
    if isinstance(alerts_per_day, bool) or not isinstance(alerts_per_day, int | np.integer) or alerts_per_day < 0:
        raise ValueError(f"alerts_per_day must be a non-negative integer, got {alerts_per_day!r}")
    return scores, day.astype(np.int64)


def threshold_for_budget(y_proba: npt.ArrayLike, days: npt.ArrayLike, alerts_per_day: int) -> float:
    """The lowest observed score usable as threshold so that no day raises more than ``alerts_per_day`` alerts.

    Same semantics as module 00's from-scratch exercise: alerts are ``y_proba >= threshold`` (tied
    scores alert together), the budget holds on every day separately, and the answer is
    ``float("inf")`` (alert on nothing) when no observed score keeps every day within budget.

    Examples
    --------
    >>> threshold_for_budget([0.9, 0.8, 0.1, 0.7], [0, 0, 0, 1], alerts_per_day=1)
    0.9
    >>> threshold_for_budget([0.5, 0.5, 0.1], [0, 0, 0], alerts_per_day=1)  # the tie cannot be split
    inf
    """
    scores, day = _arrays(y_proba, days, alerts_per_day)
    # The threshold must be above the (budget + 1)-th highest score of every day.
    must_exceed = -np.inf
    order = np.lexsort((-scores, day))  # by day, then score descending
    sorted_days, sorted_scores = day[order], scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_days[1:] != sorted_days[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_days)])
    over = sizes > alerts_per_day
    if over.any():
        must_exceed = float(sorted_scores[starts[over] + alerts_per_day].max())
    candidates = np.unique(scores)
    feasible = candidates[candidates > must_exceed]
    return float(feasible[0]) if feasible.size else math.inf


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold and what it does, per day, on the rows it was measured on.

    ``budget_threshold`` is the lowest threshold the budget allows; ``threshold`` is the cheapest
    one at or above it. ``expected_daily_cost`` is the total :func:`~mlsys_lab.evaluate.decision_cost`
    divided by the number of days.
    """

    threshold: float
    budget_threshold: float
    alerts_per_day_budget: int
    alerts_per_day_mean: float
    alerts_per_day_max: int
    expected_daily_cost: float
    precision: float
    recall: float
    n_days: int

    def as_dict(self) -> dict[str, float]:
        """Flat numbers for tables and tracking."""
        return {name: float(value) for name, value in asdict(self).items()}


def threshold_report(
    threshold: float,
    y_true: npt.ArrayLike,
    y_proba: npt.ArrayLike,
    amount: npt.ArrayLike,
    days: npt.ArrayLike,
    alerts_per_day: int,
    cost: evaluate.CostModel | None = None,
    *,
    budget_threshold: float | None = None,
) -> ThresholdChoice:
    """What ``threshold`` does on these rows: alerts per day, expected daily cost, precision, recall.

    Use it on the test period for a threshold chosen on validation; ``alerts_per_day_max`` may then
    exceed the budget, which is worth seeing before investigators do.
    """
    scores, day = _arrays(y_proba, days, alerts_per_day)
    y = np.asarray(y_true)
    alerts = (scores >= threshold).astype(np.int8)
    n_days = int(np.unique(day).size)
    per_day = np.bincount(np.unique(day, return_inverse=True)[1], weights=alerts) if n_days else np.zeros(0)
    confusion = evaluate.confusion_metrics(y, alerts)
    total = evaluate.decision_cost(y, alerts, amount, cost)["total"]
    return ThresholdChoice(
        threshold=float(threshold),
        budget_threshold=float(threshold if budget_threshold is None else budget_threshold),
        alerts_per_day_budget=int(alerts_per_day),
        alerts_per_day_mean=float(per_day.mean()) if n_days else 0.0,
        alerts_per_day_max=int(per_day.max()) if n_days else 0,
        expected_daily_cost=total / n_days if n_days else 0.0,
        precision=confusion.precision,
        recall=confusion.recall,
        n_days=n_days,
    )


def choose_threshold(
    y_true: npt.ArrayLike,
    y_proba: npt.ArrayLike,
    amount: npt.ArrayLike,
    days: npt.ArrayLike,
    alerts_per_day: int,
    cost: evaluate.CostModel | None = None,
) -> ThresholdChoice:
    """The cheapest threshold that keeps every day within the alert budget.

    Candidates are the observed scores at or above :func:`threshold_for_budget` (any threshold
    between two observed scores makes the same decisions as the upper one) and ``inf`` (alert on
    nothing). Each candidate's total cost is computed in one pass over the scores sorted high to
    low: raising an alert on a fraud saves its missed-fraud cost; on a genuine transaction it adds a
    false alarm; every alert adds the review cost. Ties go to the higher threshold (fewer alerts).

    Examples
    --------
    >>> from mlsys_lab.evaluate import CostModel
    >>> cost = CostModel(missed_fraud_fixed=0.0, false_alarm=5.0)
    >>> # Alerting on 0.9 catches a 100.0 fraud; alerting on 0.6 too would add a 5.0 false alarm.
    >>> choose_threshold([1, 0, 0], [0.9, 0.6, 0.1], [100.0, 20.0, 10.0], [0, 0, 0], 2, cost).threshold
    0.9
    """
    cost = cost or evaluate.CostModel()
    scores, day = _arrays(y_proba, days, alerts_per_day)
    y = np.asarray(y_true, dtype=np.int64)
    amounts = np.asarray(amount, dtype=np.float64)
    if y.shape != scores.shape or amounts.shape != scores.shape:
        raise ValueError(f"y_true, y_proba and amount must have the same length, got {y.shape}, {scores.shape}, ...")
    budget_threshold = threshold_for_budget(scores, day, alerts_per_day)

    # Cost of missing each fraud, i.e. what alerting on it saves.
    saved = np.where(y == 1, cost.missed_fraud_fixed + (amounts if cost.missed_fraud_pays_amount else 0.0), 0.0)
    added = np.where(y == 0, cost.false_alarm, 0.0) + cost.review
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    delta = np.cumsum(added[order] - saved[order])  # cost change of alerting on the top i+1 rows
    # A threshold t alerts on every row with score >= t: the last row of each run of tied scores.
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    thresholds = np.r_[math.inf, sorted_scores[last_of_tie]]
    change = np.r_[0.0, delta[last_of_tie]]
    allowed = thresholds >= budget_threshold
    best = int(np.argmin(np.where(allowed, change, np.inf)))  # first minimum: the highest threshold
    return threshold_report(
        float(thresholds[best]), y, scores, amounts, day, alerts_per_day, cost, budget_threshold=budget_threshold
    )
