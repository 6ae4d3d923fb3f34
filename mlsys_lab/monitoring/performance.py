"""Model performance under label delay: what we knew at report time, how complete that was, and the truth.

A fraud is labelled days to weeks after it happens, a genuine transaction only after about 30 days
(:mod:`mlsys_lab.data.labels`). So "yesterday's average precision" does not exist yesterday: on
the report day only some of yesterday's frauds are known, and no genuine label at all. This module
computes each number three ways, side by side:

Realised (``known_*``)
    From the labels known at the report time only (read through
    :func:`mlsys_lab.data.labels.known_labels`). A transaction whose label is not known yet counts as
    *not (yet) fraud*, which is what the bank's books say at that time: realised AP, card
    precision@k and precision among alerts therefore start low and rise as labels mature. Recall
    among the *known* frauds needs no genuine label at all and, while the label delay does not depend
    on the score, is unbiased at any lag: the matured-label signal that arrives first.
Label completeness, next to each realised number
    ``label_coverage``: share of the window's transactions with any label known (computable in
    production); ``fraud_completeness``: share of the window's eventual frauds already known (needs
    the truth, so only in teaching and simulation).
Truth (``true_*``)
    The same metrics on ``tx_fraud``, which the simulator knows and production never does: in a
    notebook they show how late and how biased the realised numbers are.
Label-free estimate (``expected_*``)
    From calibrated scores alone, available the moment the window closes: expected precision among
    alerts = mean score of the alerted transactions; expected recall = alerted share of the total
    score; expected AP = mean AP over labels drawn as ``Bernoulli(score)`` (the idea behind
    confidence-based performance estimation, CBPE). It assumes ``P(fraud | score)`` has not changed,
    so it follows data drift but is blind by construction to *concept* drift: when card testing
    makes low-scored transactions fraudulent, the scores, and hence the estimate, stay where they
    were while the true performance drops.

Examples
--------
>>> tx = pd.DataFrame({"tx_time_days": [0, 0, 0, 0], "customer_id": [1, 2, 3, 4],
...                    "tx_fraud": [1, 0, 1, 0], "tx_label_seconds": [3_600, 3_000_000, 900_000, 3_000_000]})
>>> perf = window_performance(tx, [0.9, 0.8, 0.1, 0.2], as_of_seconds=86_400, threshold=0.5, k=2)
>>> perf.known_precision_at_alerts, perf.true_precision_at_alerts, perf.fraud_completeness, perf.label_coverage
(0.5, 0.5, 0.5, 0.25)
>>> perf.known_recall, perf.true_recall
(1.0, 0.5)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlsys_lab import evaluate
from mlsys_lab.data.labels import known_labels

__all__ = [
    "WindowPerformance",
    "expected_average_precision",
    "performance_timeline",
    "window_performance",
]

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
_REQUIRED = ("tx_time_days", "customer_id", "tx_fraud", "tx_label_seconds")


@dataclass(frozen=True)
class WindowPerformance:
    """One window's performance as known at ``as_of_seconds``, its completeness, the truth and the estimate."""

    first_day: int
    last_day: int
    as_of_seconds: int
    n_transactions: int
    n_alerts: int
    n_known_frauds: int
    label_coverage: float
    fraud_completeness: float
    known_average_precision: float
    known_card_precision: float
    known_precision_at_alerts: float
    known_recall: float
    true_average_precision: float
    true_card_precision: float
    true_precision_at_alerts: float
    true_recall: float
    expected_average_precision: float
    expected_precision_at_alerts: float
    expected_recall: float

    def as_dict(self) -> dict[str, float]:
        """The fields as a plain dict (one row of :func:`performance_timeline`)."""
        return asdict(self)


def _ap(y: npt.NDArray[np.int8], scores: npt.NDArray[np.float64]) -> float:
    # AP is undefined without both classes (a quiet day, or a report before any label arrived).
    if y.size == 0 or y.min() == y.max():
        return math.nan
    return evaluate.average_precision(y, scores)


def _card_precision(
    window: pd.DataFrame, labels: npt.NDArray[np.int8], scores: npt.NDArray[np.float64], k: int
) -> float:
    frame = pd.DataFrame(
        {"tx_time_days": window["tx_time_days"].to_numpy(), "customer_id": window["customer_id"].to_numpy()}
    )
    frame["label"] = labels
    return evaluate.card_precision_at_k(frame, scores, k, label_column="label").mean


def _share(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def expected_average_precision(y_proba: npt.ArrayLike, *, n_samples: int = 50, random_state: int = 0) -> float:
    """Average precision expected if every label were ``Bernoulli(score)``: a label-free AP estimate.

    The mean over ``n_samples`` draws of the labels; draws with a single class are skipped (NaN if
    all are). Correct only for calibrated scores and an unchanged ``P(fraud | score)``.

    Examples
    --------
    >>> # About 90 frauds among the 100 top-scored, 9 among the 900 others: AP near 0.91 * 0.9 + 0.09 * 0.1.
    >>> scores = np.r_[np.full(900, 0.01), np.full(100, 0.9)]
    >>> round(expected_average_precision(scores), 2)
    0.83
    """
    scores = np.asarray(y_proba, dtype=np.float64)
    if scores.size and (scores.min() < 0 or scores.max() > 1):
        raise ValueError("y_proba must be probabilities in [0, 1] for labels to be drawn from them")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    rng = np.random.default_rng(random_state)
    values = []
    for _ in range(n_samples):
        y = (rng.uniform(size=scores.size) < scores).astype(np.int8)
        value = _ap(y, scores)
        if not math.isnan(value):
            values.append(value)
    return float(np.mean(values)) if values else math.nan


def window_performance(
    window: pd.DataFrame,
    y_proba: npt.ArrayLike,
    *,
    as_of_seconds: int,
    threshold: float,
    k: int | None,
    truth: bool = True,
    n_label_samples: int = 50,
    random_state: int = 0,
) -> WindowPerformance:
    """Performance of the scores ``y_proba`` on ``window`` as known at ``as_of_seconds``.

    Parameters
    ----------
    window : pandas.DataFrame
        The window's transactions with ``tx_time_days``, ``customer_id``, ``tx_fraud`` and
        ``tx_label_seconds``.
    y_proba : array-like of float
        The model's score of each row, aligned with ``window``.
    as_of_seconds : int
        The report time (seconds since the simulation start): labels known later are not used.
    threshold : float
        The decision threshold: a row is alerted when its score is at least this.
    k : int or None
        Cards investigators check per day, for card precision@k; ``None`` skips it (NaN), which is
        much faster when only the counts and recall are needed.
    truth : bool
        Fill the ``true_*`` fields and ``fraud_completeness`` from ``tx_fraud`` (teaching, simulation);
        False leaves them NaN, as production must.
    n_label_samples, random_state
        For :func:`expected_average_precision`; ``n_label_samples=0`` skips it (NaN).
    """
    missing = [c for c in _REQUIRED if c not in window.columns]
    if missing:
        raise ValueError(f"window lacks column(s) {missing}: pass the simulator's transactions for the window")
    scores = np.asarray(y_proba, dtype=np.float64)
    if scores.shape != (len(window),):
        raise ValueError(f"y_proba must hold one score per row ({len(window)}), got shape {scores.shape}")
    if len(window) == 0:
        raise ValueError("the window holds no transactions: choose days with traffic")
    labels = known_labels(window, as_of_seconds)
    known = labels.notna().to_numpy()
    y_known = labels.fillna(0).to_numpy(dtype=np.int8)  # not known yet = not (yet) fraud
    alerted = scores >= threshold
    n_alerts = int(alerted.sum())
    n_known_frauds = int(y_known.sum())

    nan = math.nan
    true_ap = true_cp = true_precision = true_recall = completeness = nan
    if truth:
        y_true = window["tx_fraud"].to_numpy().astype(np.int8)
        n_frauds = int(y_true.sum())
        true_ap = _ap(y_true, scores)
        true_cp = nan if k is None else _card_precision(window, y_true, scores, k)
        true_precision = _share(float(y_true[alerted].sum()), n_alerts)
        true_recall = _share(float(y_true[alerted].sum()), n_frauds)
        completeness = _share(n_known_frauds, n_frauds)

    days = window["tx_time_days"].to_numpy()
    return WindowPerformance(
        first_day=int(days.min()),
        last_day=int(days.max()),
        as_of_seconds=int(as_of_seconds),
        n_transactions=len(window),
        n_alerts=n_alerts,
        n_known_frauds=n_known_frauds,
        label_coverage=float(known.mean()),
        fraud_completeness=completeness,
        known_average_precision=_ap(y_known, scores),
        known_card_precision=nan if k is None else _card_precision(window, y_known, scores, k),
        known_precision_at_alerts=_share(float(y_known[alerted].sum()), n_alerts),
        known_recall=_share(float(y_known[alerted].sum()), n_known_frauds),
        true_average_precision=true_ap,
        true_card_precision=true_cp,
        true_precision_at_alerts=true_precision,
        true_recall=true_recall,
        expected_average_precision=(
            expected_average_precision(scores, n_samples=n_label_samples, random_state=random_state)
            if n_label_samples
            else nan
        ),
        expected_precision_at_alerts=float(scores[alerted].mean()) if n_alerts else nan,
        expected_recall=_share(float(scores[alerted].sum()), float(scores.sum())),
    )


def performance_timeline(
    transactions: pd.DataFrame,
    y_proba: npt.ArrayLike,
    *,
    days: Iterable[int],
    threshold: float,
    k: int | None,
    window_days: int = 1,
    lag_days: int = 0,
    truth: bool = True,
    n_label_samples: int = 20,
) -> pd.DataFrame:
    """One :func:`window_performance` row per day ``d`` in ``days``, indexed by the report day.

    The window is days ``d - window_days + 1 .. d``; the report is written at the end of day
    ``d + lag_days`` (``as_of_seconds = (d + 1 + lag_days) * 86400``). Comparing a window with a
    reference window at the *same* lag compares like with like: both have had the same time to
    mature. The index is the report day, ``d + lag_days``, the day a rule on these numbers could fire.

    Parameters
    ----------
    transactions : pandas.DataFrame
        Simulator transactions (every day needed by the windows).
    y_proba : array-like of float
        One score per row of ``transactions``.
    days : iterable of int
        Last days of the windows.
    threshold, k, truth, n_label_samples
        As in :func:`window_performance`.
    window_days : int
        Days per window.
    lag_days : int
        Days between a window's end and its report.
    """
    scores = np.asarray(y_proba, dtype=np.float64)
    if scores.shape != (len(transactions),):
        raise ValueError(f"y_proba must hold one score per row ({len(transactions)}), got shape {scores.shape}")
    if window_days < 1 or lag_days < 0:
        raise ValueError(f"window_days must be >= 1 and lag_days >= 0, got {window_days} and {lag_days}")
    day_column = transactions["tx_time_days"].to_numpy()
    rows = []
    for day in days:
        mask = (day_column > day - window_days) & (day_column <= day)
        if not mask.any():
            continue
        perf = window_performance(
            transactions[mask],
            scores[mask],
            as_of_seconds=(day + 1 + lag_days) * SECONDS_PER_DAY,
            threshold=threshold,
            k=k,
            truth=truth,
            n_label_samples=n_label_samples,
            random_state=int(day),
        )
        rows.append({"report_day": day + lag_days, **perf.as_dict()})
    return pd.DataFrame(rows).set_index("report_day")
