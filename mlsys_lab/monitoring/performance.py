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
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mlsys_lab import evaluate
from mlsys_lab.data.labels import known_labels
from mlsys_lab.monitoring.drift import WindowTooSmall

__all__ = [
    "RecallComparison",
    "RecallDropRule",
    "WindowPerformance",
    "expected_average_precision",
    "known_frauds",
    "performance_timeline",
    "recall_variance",
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


def known_frauds(
    window: pd.DataFrame,
    y_proba: npt.ArrayLike,
    *,
    as_of_seconds: int,
    threshold: float,
    clusters: Sequence[str] = ("customer_id", "terminal_id"),
) -> pd.DataFrame:
    """The frauds of ``window`` known at ``as_of_seconds``, one row each: ``alerted`` (0/1) and the cluster columns.

    What :class:`RecallDropRule` compares: recall among the known frauds is ``alerted.mean()``.
    ``window`` needs ``tx_fraud``, ``tx_label_seconds`` and the ``clusters`` columns.
    """
    missing = [c for c in ("tx_fraud", "tx_label_seconds", *clusters) if c not in window.columns]
    if missing:
        raise ValueError(f"window lacks column(s) {missing}: pass the transactions (or decisions) with their labels")
    scores = np.asarray(y_proba, dtype=np.float64)
    if scores.shape != (len(window),):
        raise ValueError(f"y_proba must hold one score per row ({len(window)}), got shape {scores.shape}")
    known = known_labels(window, as_of_seconds).fillna(0).to_numpy(dtype=np.int8) == 1
    frauds = window.loc[known, list(clusters)].reset_index(drop=True)
    frauds["alerted"] = (scores[known] >= threshold).astype(np.float64)
    return frauds


def _cluster_sum_of_squares(residuals: pd.Series, keys: list[pd.Series]) -> tuple[float, int]:
    sums = residuals.groupby(keys).sum()
    return float((sums**2).sum()), len(sums)


def recall_variance(frauds: pd.DataFrame, clusters: Sequence[str] = ("customer_id", "terminal_id")) -> float:
    """Variance of recall among ``frauds`` (``alerted`` 0/1), robust to frauds that come in clusters.

    Frauds are not independent draws: a compromised terminal's frauds (scenario 2), a compromised
    card's (scenario 3), a tested card's (card testing) are caught or missed together, because they
    share their window features. Counting them as independent (the binomial ``r (1 - r) / n``)
    makes a window of 70 known frauds look far surer than it is; that is why a binomial test on
    matured recall raised 5.7 false alarms per 100 drift-free days. This is the
    cluster-robust (sandwich) variance of the ratio ``sum(alerted) / n``, clustered two ways at once
    (Cameron, Gelbach and Miller 2011: by card plus by terminal minus by both), never below the
    binomial variance nor below either one-way variance (the two-way sum can come out smaller).

    Examples
    --------
    >>> independent = pd.DataFrame({"customer_id": range(8), "terminal_id": range(8), "alerted": [1, 0] * 4})
    >>> round(recall_variance(independent), 4)  # no shared card or terminal: r (1 - r) / n, corrected
    0.0357
    >>> one_terminal = independent.assign(terminal_id=[0, 0, 0, 0, 1, 2, 3, 4], alerted=[1, 1, 1, 1, 0, 0, 0, 0])
    >>> recall_variance(one_terminal) > recall_variance(independent)
    True
    """
    n = len(frauds)
    if n == 0:
        raise WindowTooSmall("no known fraud: recall is undefined")
    recall = float(frauds["alerted"].mean())
    residuals = frauds["alerted"] - recall
    one_way = []
    for name in clusters:
        squares, groups = _cluster_sum_of_squares(residuals, [frauds[name]])
        one_way.append(groups / max(groups - 1, 1) * squares / n**2)
    variance = max([recall * (1 - recall) / max(n - 1, 1), *one_way])
    if len(clusters) == 2:
        squares, groups = _cluster_sum_of_squares(residuals, [frauds[c] for c in clusters])
        both = groups / max(groups - 1, 1) * squares / n**2
        variance = max(variance, one_way[0] + one_way[1] - both)
    return variance


@dataclass(frozen=True)
class RecallComparison:
    """A window's recall among its known frauds against the reference's, as :class:`RecallDropRule` judged it."""

    reference_recall: float
    current_recall: float
    reference_frauds: int
    current_frauds: int
    z: float  # (current - reference) / the clustered standard error of the difference
    pvalue: float  # one-sided: the chance of a drop at least this large with no change
    alarm: bool  # evidence (pvalue < alpha) and size (a drop of at least min_drop)


@dataclass(frozen=True)
class RecallDropRule:
    """When a drop of matured-label recall is an alarm: evidence that counts clustered frauds, a size, a minimum.

    Recall among the frauds *known* at the report time needs no genuine label and, while the label
    delay does not depend on the score, is unbiased at any lag: the first label-based signal of
    concept drift. But a window holds few frauds, and fewer independent ones. The rule compares a
    window of ``window_days`` days, reported ``lag_days`` after it closes, with the reference window
    reported at the same lag (both have had the same time to mature), and alarms only when

    - **evidence**: a one-sided z-test of the drop, with each window's variance from
      :func:`recall_variance` (clustered by card and by terminal), below ``alpha``;
    - **size**: the recall fell by at least ``min_drop`` (a practical bound, as ``DriftRule``'s);
    - **enough frauds**: both windows hold at least ``min_known_frauds`` known frauds
      (:meth:`compare` raises :class:`~mlsys_lab.monitoring.drift.WindowTooSmall` otherwise: no decision).

    ``for_windows`` consecutive alarming windows fire the alert (the job's rules use it too). Measured
    (``benchmarks/bench_monitoring.py``, 12 drift-free ``small`` worlds of 160 days, 1,308 monitored
    days): the binomial two-proportion test it replaces alarmed on 5.7 days per 100, this one with
    one window on 1.1, with two consecutive windows on 0.6; card testing at ten times its default
    rate was still found in 4 of 5 worlds, 5-7 days after it started (the binomial test: 3-4).

    Examples
    --------
    >>> rule = RecallDropRule()
    >>> ref = pd.DataFrame({"customer_id": range(40), "terminal_id": range(40), "alerted": [1.0] * 24 + [0.0] * 16})
    >>> cur = ref.assign(alerted=[1.0] * 8 + [0.0] * 32)
    >>> result = rule.compare(ref, cur)
    >>> (result.reference_recall, result.current_recall, result.alarm)
    (0.6, 0.2, True)
    """

    alpha: float = 0.01
    min_drop: float = 0.2
    min_known_frauds: int = 10
    window_days: int = 7
    lag_days: int = 1
    for_windows: int = 2
    clusters: tuple[str, ...] = ("customer_id", "terminal_id")

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"RecallDropRule.alpha must be a false-alarm rate in (0, 1), got {self.alpha}")
        if not 0 <= self.min_drop < 1:
            raise ValueError(f"RecallDropRule.min_drop must be a drop of recall in [0, 1), got {self.min_drop}")
        for name in ("min_known_frauds", "window_days", "for_windows"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"RecallDropRule.{name} must be a positive whole number, got {value!r}")
        if not (isinstance(self.lag_days, int) and self.lag_days >= 0):
            raise ValueError(f"RecallDropRule.lag_days must be a whole number of days >= 0, got {self.lag_days!r}")
        if not 1 <= len(self.clusters) <= 2:
            raise ValueError(f"RecallDropRule.clusters names one or two columns (card, terminal), got {self.clusters}")

    def window(self, report_day: int) -> tuple[int, int]:
        """First and last day of the window a report at the end of ``report_day`` judges."""
        last = report_day - self.lag_days
        return last - self.window_days + 1, last

    def compare(self, reference: pd.DataFrame, current: pd.DataFrame) -> RecallComparison:
        """Judge ``current``'s known frauds against ``reference``'s (each from :func:`known_frauds`)."""
        for name, frauds in (("reference", reference), ("current", current)):
            if len(frauds) < self.min_known_frauds:
                raise WindowTooSmall(
                    f"the {name} window holds {len(frauds)} known fraud(s), fewer than min_known_frauds="
                    f"{self.min_known_frauds}: recall on so few says nothing; wait for more labels or widen window_days"
                )
        ref, cur = float(reference["alerted"].mean()), float(current["alerted"].mean())
        se = math.sqrt(recall_variance(reference, self.clusters) + recall_variance(current, self.clusters))
        z = (cur - ref) / se if se > 0 else (0.0 if cur == ref else math.copysign(math.inf, cur - ref))
        pvalue = float(stats.norm.cdf(z))
        return RecallComparison(
            reference_recall=ref,
            current_recall=cur,
            reference_frauds=len(reference),
            current_frauds=len(current),
            z=float(z),
            pvalue=pvalue,
            alarm=bool(pvalue < self.alpha and ref - cur >= self.min_drop),
        )
