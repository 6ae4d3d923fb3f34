"""Metrics for rare-event detection: what a fraud system is judged on, beyond accuracy.

At 0.85% fraud, a model that never says "fraud" is 99% accurate. The metrics here answer the
questions accuracy hides:

- threshold-free ranking quality: :func:`roc_auc` and :func:`average_precision`;
- what investigators actually see: :func:`card_precision_at_k`, the share of truly compromised
  cards among the ``k`` cards they can check each day (the Fraud Detection Handbook's definition);
- what one decision rule does: :func:`confusion_metrics` with precision and recall of the fraud class;
- what it costs: :func:`decision_cost`, missed fraud against blocked legitimate customers.

Fraud is the positive class (label 1) everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn import metrics as skm

ArrayLike = npt.ArrayLike


def _binary_labels(y_true: ArrayLike, name: str = "y_true") -> npt.NDArray[np.int8]:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {y.shape}: pass a single label column")
    if y.size and not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
        raise ValueError(f"{name} must hold only 0 (genuine) and 1 (fraud), got values such as {bad.tolist()}")
    return y.astype(np.int8)


def _scores(y_score: ArrayLike, n: int, name: str = "y_proba") -> npt.NDArray[np.float64]:
    s = np.asarray(y_score, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"{name} must have one score per label ({n}), got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError(f"{name} contains NaN: a model must score every transaction")
    return s


def _need_both_classes(y: npt.NDArray[np.int8], metric: str) -> None:
    if y.size == 0 or y.min() == y.max():
        raise ValueError(
            f"{metric} needs both genuine and fraud labels, got only "
            f"{'no rows' if y.size == 0 else f'label {int(y[0])}'}: widen the evaluation window"
        )


def roc_auc(y_true: ArrayLike, y_proba: ArrayLike) -> float:
    """Area under the ROC curve: the chance a random fraud scores above a random genuine transaction.

    Insensitive to class imbalance, which is why it flatters fraud models: 0.87 can coexist with
    most alerts being false. Read it beside :func:`average_precision`.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y = _binary_labels(y_true)
    _need_both_classes(y, "ROC AUC")
    return float(skm.roc_auc_score(y, _scores(y_proba, y.size)))


def average_precision(y_true: ArrayLike, y_proba: ArrayLike) -> float:
    """Average precision: the area under the precision-recall curve of the fraud class.

    Its floor is the fraud share (about 0.0085 here), not 0.5, so it shows how far a model is above
    guessing on a rare class.

    Examples
    --------
    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y = _binary_labels(y_true)
    _need_both_classes(y, "Average precision")
    return float(skm.average_precision_score(y, _scores(y_proba, y.size)))


@dataclass(frozen=True)
class CardPrecision:
    """Card precision@k and the per-day values it averages."""

    k: int
    mean: float
    per_day: pd.DataFrame  # day, card_precision, n_detected, n_compromised_cards


def card_precision_at_k(
    transactions: pd.DataFrame,
    y_proba: ArrayLike,
    k: int = 100,
    *,
    day_column: str = "tx_time_days",
    card_column: str = "customer_id",
    label_column: str = "tx_fraud",
    remove_detected: bool = True,
) -> CardPrecision:
    """Card precision@k as the Fraud Detection Handbook defines it.

    Investigators check cards, not transactions, and only ``k`` of them a day. For each day, in order:

    1. drop the cards already detected as compromised on earlier days (they are blocked);
    2. give each remaining card its highest score and its highest label of the day;
    3. take the ``k`` cards with the highest scores (ties broken by card id, so the result is stable);
    4. card precision = compromised cards among them / ``k``.

    The result is the mean over days. The denominator is ``k`` even on a day with fewer cards, as in
    the handbook, so a quiet day cannot inflate the number.

    Parameters
    ----------
    transactions
        One row per transaction with at least the day, card and label columns.
    y_proba
        The model's fraud score for each row, aligned with ``transactions``.
    k
        Cards investigators can check per day.
    remove_detected
        Drop cards detected on earlier days (the handbook's default).

    Examples
    --------
    >>> tx = pd.DataFrame({"tx_time_days": [0, 0, 0, 1, 1], "customer_id": [1, 1, 2, 1, 3],
    ...                    "tx_fraud": [0, 1, 0, 1, 0]})
    >>> # Day 0: card 1 (max score 0.9, max label 1) is a hit. Day 1: card 1 is removed, card 3 is a miss.
    >>> card_precision_at_k(tx, [0.9, 0.2, 0.5, 0.9, 0.1], k=1).mean
    0.5
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of cards per day, got {k}")
    missing = [c for c in (day_column, card_column, label_column) if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lacks column(s) {missing}: pass the simulator's frame or set *_column")
    y = _binary_labels(transactions[label_column].to_numpy(), label_column)
    scores = _scores(y_proba, y.size)
    frame = pd.DataFrame(
        {
            "day": transactions[day_column].to_numpy(),
            "card": transactions[card_column].to_numpy(),
            "label": y,
            "score": scores,
        }
    )
    # Per card and day: the highest score and the highest label, computed once for all days.
    cards = frame.groupby(["day", "card"], sort=True).agg(score=("score", "max"), label=("label", "max"))
    cards = cards.reset_index()

    detected: set[int] = set()
    rows = []
    for day, day_cards in cards.groupby("day", sort=True):
        if remove_detected and detected:
            day_cards = day_cards[~day_cards["card"].isin(detected)]
        ranked = day_cards.sort_values(["score", "card"], ascending=[False, True], kind="mergesort")
        top = ranked.head(k)
        hits = top.loc[top["label"] == 1, "card"]
        rows.append(
            {
                "day": day,
                "card_precision": len(hits) / k,
                "n_detected": len(hits),
                "n_compromised_cards": int(day_cards["label"].sum()),
            }
        )
        if remove_detected:
            detected.update(hits.tolist())
    per_day = pd.DataFrame(rows, columns=["day", "card_precision", "n_detected", "n_compromised_cards"])
    mean = float(per_day["card_precision"].mean()) if len(per_day) else float("nan")
    return CardPrecision(k=k, mean=mean, per_day=per_day)


@dataclass(frozen=True)
class ConfusionMetrics:
    """Counts and rates for one decision rule, fraud as the positive class."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else float("nan")

    @property
    def precision(self) -> float:
        """Share of alerts that are fraud; 0.0 when there are no alerts (nothing was caught)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """Share of frauds that raised an alert; 0.0 when there is no fraud to catch."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_positive_rate(self) -> float:
        """Share of genuine transactions blocked: the customers a false alarm annoys."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def as_dict(self) -> dict[str, float]:
        """Counts and rates in one flat dict, for tables."""
        rates = {name: getattr(self, name) for name in ("accuracy", "precision", "recall", "f1", "false_positive_rate")}
        return {**asdict(self), **rates}


def confusion_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> ConfusionMetrics:
    """Count true/false positives/negatives of a 0/1 decision, fraud (1) as the positive class.

    Examples
    --------
    >>> m = confusion_metrics([0, 0, 0, 1, 1], [0, 1, 0, 1, 0])
    >>> (m.tp, m.fp, m.tn, m.fn), m.precision, m.recall
    ((1, 1, 2, 1), 0.5, 0.5)
    """
    y = _binary_labels(y_true)
    pred = _binary_labels(y_pred, "y_pred")
    if pred.shape != y.shape:
        raise ValueError(f"y_pred must have one decision per label ({y.size}), got {pred.size}")
    return ConfusionMetrics(
        tp=int(((pred == 1) & (y == 1)).sum()),
        fp=int(((pred == 1) & (y == 0)).sum()),
        tn=int(((pred == 0) & (y == 0)).sum()),
        fn=int(((pred == 0) & (y == 1)).sum()),
    )


@dataclass(frozen=True, kw_only=True)
class CostModel:
    """What each kind of mistake costs the bank, in currency units.

    A missed fraud costs the fraudulent amount (the bank refunds it) plus a fixed handling cost. A
    false alarm blocks a genuine customer: a phone call, an annoyed customer, sometimes a lost one.
    The defaults are illustrative round numbers, not industry data; change them to see how the best
    threshold moves.
    """

    missed_fraud_fixed: float = 10.0
    missed_fraud_pays_amount: bool = True
    false_alarm: float = 5.0
    review: float = 0.0  # cost of an investigator looking at any alert, fraud or not

    def __post_init__(self) -> None:
        for name in ("missed_fraud_fixed", "false_alarm", "review"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}: costs are positive amounts")


def decision_cost(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    amount: ArrayLike | None = None,
    cost: CostModel | None = None,
) -> dict[str, float]:
    """Total cost of a set of decisions, split by kind of mistake.

    Parameters
    ----------
    y_true, y_pred
        True labels and 0/1 decisions (1 = block as fraud).
    amount
        Transaction amounts; needed when ``cost.missed_fraud_pays_amount`` is true.
    cost
        The cost model; :class:`CostModel` defaults when omitted.

    Examples
    --------
    >>> decision_cost([1, 0, 1], [0, 1, 1], amount=[100.0, 20.0, 50.0])["total"]  # 100+10 missed, 5 blocked
    115.0
    """
    cost = cost or CostModel()
    y = _binary_labels(y_true)
    pred = _binary_labels(y_pred, "y_pred")
    if pred.shape != y.shape:
        raise ValueError(f"y_pred must have one decision per label ({y.size}), got {pred.size}")
    missed = (y == 1) & (pred == 0)
    if cost.missed_fraud_pays_amount:
        if amount is None:
            raise ValueError("amount is required when the cost model charges missed frauds their amount")
        amounts = np.asarray(amount, dtype=np.float64)
        if amounts.shape != y.shape:
            raise ValueError(f"amount must have one value per label ({y.size}), got shape {amounts.shape}")
        missed_cost = float(amounts[missed].sum()) + cost.missed_fraud_fixed * int(missed.sum())
    else:
        missed_cost = cost.missed_fraud_fixed * int(missed.sum())
    false_alarm_cost = cost.false_alarm * int(((y == 0) & (pred == 1)).sum())
    review_cost = cost.review * int(pred.sum())
    return {
        "missed_fraud": missed_cost,
        "false_alarms": false_alarm_cost,
        "reviews": review_cost,
        "total": missed_cost + false_alarm_cost + review_cost,
    }


def summarize(
    y_true: ArrayLike,
    y_proba: ArrayLike,
    transactions: pd.DataFrame,
    *,
    threshold: float = 0.5,
    k: int = 100,
    cost: CostModel | None = None,
) -> dict[str, float]:
    """The metrics this course reports for a scored test period, in one flat dict.

    Threshold-free ranking metrics (AUC, AP, card precision@k) and the confusion metrics and cost of
    the decision ``y_proba >= threshold``.
    """
    y = _binary_labels(y_true)
    scores = _scores(y_proba, y.size)
    decision = (scores >= threshold).astype(np.int8)
    confusion = confusion_metrics(y, decision)
    costs = decision_cost(y, decision, transactions["tx_amount"].to_numpy(), cost)
    return {
        "roc_auc": roc_auc(y, scores),
        "average_precision": average_precision(y, scores),
        f"card_precision@{k}": card_precision_at_k(transactions, scores, k).mean,
        **confusion.as_dict(),
        "cost_total": costs["total"],
    }
