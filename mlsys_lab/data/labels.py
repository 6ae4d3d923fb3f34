"""Which fraud labels are known at a given time: the only door to ``tx_fraud`` for training and features.

A fraud is not known when it happens. Investigators confirm the alerted ones about a day later,
cardholders report the rest days to weeks later, and a transaction nobody complains about is taken as
genuine only after about a month. The simulator records when each label becomes known in
``tx_label_seconds`` (see :class:`~mlsys_lab.data.simulator.LabelDelay`); this module turns that column
into the answer to "what did we know at time t?".

Training sets and the delayed terminal-risk features must read labels through :func:`labels_known_at`
or :func:`known_labels`, never from ``tx_fraud`` directly: ``tx_fraud`` is the truth as it will be
known one day, and using it at an earlier time leaks the future into the model. Evaluation on a test
period is the one place where the full ``tx_fraud`` is the point.

Times are seconds since the simulation start, like ``tx_time_seconds``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["known_labels", "labels_known_at", "with_known_labels"]

LABEL_COLUMN = "tx_label_seconds"


def labels_known_at(transactions: pd.DataFrame, as_of_seconds: int | npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Boolean mask: is each row's label known at ``as_of_seconds`` (``tx_label_seconds <= as_of_seconds``)?

    Parameters
    ----------
    transactions : pandas.DataFrame
        Needs a ``tx_label_seconds`` column (seconds since the simulation start at which the label is known).
    as_of_seconds : int or array-like of int
        One time for every row, or one time per row (same length as ``transactions``), e.g.
        ``tx_time_seconds - 7 * 86400`` for features that may only use labels known a week before each
        transaction.

    Returns
    -------
    numpy.ndarray of bool
        One entry per row, in row order. A label that becomes known exactly at ``as_of_seconds`` counts
        as known.

    Examples
    --------
    >>> tx = pd.DataFrame({"tx_label_seconds": [100, 200, 300]})
    >>> labels_known_at(tx, 200).tolist()
    [True, True, False]
    >>> labels_known_at(tx, [50, 250, 300]).tolist()
    [False, True, True]
    """
    if LABEL_COLUMN not in transactions.columns:
        raise ValueError(
            f"transactions need a {LABEL_COLUMN!r} column to tell which labels are known; got columns "
            f"{list(transactions.columns)}: simulate them with mlsys_lab.data.simulate"
        )
    as_of = np.asarray(as_of_seconds)
    if as_of.dtype.kind not in "iuf":
        raise ValueError(f"as_of_seconds must be a number or an array of numbers (seconds), got dtype {as_of.dtype}")
    if as_of.ndim != 0 and as_of.shape != (len(transactions),):
        raise ValueError(
            f"as_of_seconds must be one number or one per row ({len(transactions)}), got shape {as_of.shape}"
        )
    result: npt.NDArray[np.bool_] = transactions[LABEL_COLUMN].to_numpy() <= as_of
    return result


def known_labels(transactions: pd.DataFrame, as_of_seconds: int | npt.ArrayLike) -> pd.Series:
    """The fraud label of each row as known at ``as_of_seconds``: 0 or 1 where known, ``<NA>`` where not.

    Unknown is not genuine: a recent transaction without a label may still turn out to be fraud. A
    caller that wants to count unlabelled rows as genuine says so explicitly (``.fillna(0)``), and
    one that trains only on matured labels drops them (``.dropna()``).

    Parameters
    ----------
    transactions : pandas.DataFrame
        Needs ``tx_fraud`` and ``tx_label_seconds``.
    as_of_seconds : int or array-like of int
        As in :func:`labels_known_at`: one time, or one per row.

    Returns
    -------
    pandas.Series
        Dtype ``Int8``, named ``tx_fraud``, with the index of ``transactions``.

    Examples
    --------
    >>> tx = pd.DataFrame({"tx_fraud": [1, 0, 1], "tx_label_seconds": [100, 200, 300]})
    >>> known_labels(tx, 250).tolist()
    [1, 0, <NA>]
    """
    known = labels_known_at(transactions, as_of_seconds)
    values = transactions["tx_fraud"].to_numpy().astype(np.int8)
    return pd.Series(pd.arrays.IntegerArray(values, ~known), index=transactions.index, name="tx_fraud")


def with_known_labels(transactions: pd.DataFrame, as_of_seconds: int) -> pd.DataFrame:
    """A copy of ``transactions`` whose ``tx_fraud`` is the label as known at ``as_of_seconds``.

    A fraud reported by then stays a fraud; every other row, genuine or not yet reported, counts as
    genuine, which is how a bank scores a past period on the day it decides. Dropping the unknown
    rows instead would drop every genuine row younger than the genuine-label delay (about 30 days)
    and leave a period made of frauds. Use it to score validation periods at a decision time: what
    is scored then cannot depend on any label reported later.

    Examples
    --------
    >>> tx = pd.DataFrame({"tx_fraud": [1, 1, 0], "tx_label_seconds": [100, 300, 200]})
    >>> with_known_labels(tx, 250)["tx_fraud"].tolist()
    [1, 0, 0]
    """
    known = known_labels(transactions, as_of_seconds).fillna(0).to_numpy(dtype=np.int8)
    return transactions.assign(tx_fraud=known)
