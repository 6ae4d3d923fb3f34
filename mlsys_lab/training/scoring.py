"""Threshold-free metrics of one scored period (ROC AUC, average precision, card precision@k) and its ``k``."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlsys_lab import evaluate

__all__ = ["CARDS_CHECKED_SHARE", "METRICS", "cards_per_day", "score_rows"]

#: Investigators check this share of all cards each day: the handbook's 100 cards a day for 5,000 customers.
CARDS_CHECKED_SHARE = 0.02

#: The metrics :func:`score_rows` returns, in this order.
METRICS = ("average_precision", "roc_auc", "card_precision_at_k")


def cards_per_day(n_customers: int) -> int:
    """Cards investigators can check per day: ``CARDS_CHECKED_SHARE`` of the customers, at least 1.

    Examples
    --------
    >>> cards_per_day(5_000), cards_per_day(1_000), cards_per_day(10)
    (100, 20, 1)
    """
    return max(1, round(n_customers * CARDS_CHECKED_SHARE))


def score_rows(rows: pd.DataFrame, y_proba: npt.ArrayLike, k: int) -> dict[str, float]:
    """ROC AUC, average precision and card precision@k of ``y_proba`` against ``rows["tx_fraud"]``.

    ``rows`` carries the labels to score against: the truth on a test period, the labels known at the
    decision time on a validation fold (:func:`~mlsys_lab.data.labels.with_known_labels`). A period
    without any fraud (possible on tiny data) gets NaN rather than an error, so one empty fold does
    not stop a whole comparison.

    Examples
    --------
    >>> rows = pd.DataFrame({"tx_fraud": [1, 0, 0], "tx_time_days": [0, 0, 0], "customer_id": [1, 2, 3]})
    >>> score_rows(rows, [0.9, 0.2, 0.1], k=1)["average_precision"]
    1.0
    """
    y = rows["tx_fraud"].to_numpy().astype(np.int8)
    if y.size == 0 or y.min() == y.max():
        return dict.fromkeys(METRICS, math.nan)
    return {
        "average_precision": evaluate.average_precision(y, y_proba),
        "roc_auc": evaluate.roc_auc(y, y_proba),
        "card_precision_at_k": evaluate.card_precision_at_k(rows, y_proba, k).mean,
    }
