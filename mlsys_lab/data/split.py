"""Time-based splits: train on the past, leave a gap for labels to arrive, test on the future.

Fraud labels are not known at decision time: a card is reported days or weeks later. A model that
goes live on day ``d`` can only be trained on transactions whose labels are known by then, so the
test period starts ``delay_days`` after the training period ends. The handbook's default is 7 days
of training, 7 of delay and 7 of test.

Two more rules make the test period honest:

- cards already known to be compromised are blocked in production, so their later transactions
  are removed from each test day (:func:`split_by_time` with ``remove_known_compromised=True``);
- one split is one noisy number, so model selection uses several *prequential* folds, each shifted
  one test period further into the past (:func:`prequential_splits`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from mlsys_lab.data.features import SECONDS_PER_DAY
from mlsys_lab.data.labels import labels_known_at

__all__ = ["SECONDS_PER_DAY", "TimeSplit", "known_compromised_cards", "prequential_splits", "split_by_time"]


@dataclass(frozen=True, kw_only=True)
class TimeSplit:
    """Day ranges of one train / delay / test split (days are the simulator's ``tx_time_days``)."""

    train_start_day: int
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7

    def __post_init__(self) -> None:
        if self.train_start_day < 0:
            raise ValueError(f"train_start_day must be >= 0, got {self.train_start_day}")
        for name in ("train_days", "test_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 day, got {getattr(self, name)}")
        if self.delay_days < 0:
            raise ValueError(f"delay_days must be >= 0, got {self.delay_days}: a gap cannot be negative")

    @property
    def test_start_day(self) -> int:
        return self.train_start_day + self.train_days + self.delay_days

    @property
    def test_start_seconds(self) -> int:
        """The moment the model goes live, in seconds since the simulation start: the start of the first test day.

        Training labels, validation scores and the threshold may use only the labels known by then
        (:func:`~mlsys_lab.data.labels.known_labels` at this time).
        """
        return self.test_start_day * SECONDS_PER_DAY

    @property
    def end_day(self) -> int:
        """First day after the test period."""
        return self.test_start_day + self.test_days

    @classmethod
    def ending_at(cls, n_days: int, *, train_days: int = 7, delay_days: int = 7, test_days: int = 7) -> TimeSplit:
        """The split whose test period is the last ``test_days`` of an ``n_days`` simulation."""
        start = n_days - (train_days + delay_days + test_days)
        if start < 0:
            raise ValueError(
                f"n_days={n_days} is too short for {train_days}+{delay_days}+{test_days} days: "
                "simulate more days or shorten the split"
            )
        return cls(train_start_day=start, train_days=train_days, delay_days=delay_days, test_days=test_days)


def known_compromised_cards(
    transactions: pd.DataFrame, as_of_seconds: int, *, card_column: str = "customer_id"
) -> set[int]:
    """Cards with at least one fraud whose label is known at ``as_of_seconds``.

    Goes through :func:`~mlsys_lab.data.labels.labels_known_at`: a fraud that has happened but has
    not been reported yet does not make its card known.
    """
    known_fraud = labels_known_at(transactions, as_of_seconds) & (transactions["tx_fraud"].to_numpy() == 1)
    return set(transactions.loc[known_fraud, card_column].tolist())


def split_by_time(
    transactions: pd.DataFrame,
    split: TimeSplit,
    *,
    remove_known_compromised: bool = False,
    day_column: str = "tx_time_days",
    card_column: str = "customer_id",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the (train, test) rows of ``split``; the delay days belong to neither.

    With ``remove_known_compromised``, each test day ``D`` drops the transactions of cards with a
    fraud on or after ``train_start_day`` whose label was known ``delay_days`` before ``D`` started:
    the same information horizon as the training labels, as in the Fraud Detection Handbook. Such
    cards are blocked already, so scoring them would flatter the model.

    Examples
    --------
    >>> tx = pd.DataFrame({"tx_time_days": range(21)})
    >>> train, test = split_by_time(tx, TimeSplit(train_start_day=0))
    >>> train.tx_time_days.tolist()[-1], test.tx_time_days.tolist()[0]
    (6, 14)
    """
    days = transactions[day_column]
    if days.max() < split.end_day - 1:
        raise ValueError(
            f"the data ends on day {days.max()}, but the split needs days up to {split.end_day - 1}: "
            "simulate more days or move train_start_day earlier"
        )
    train = transactions[(days >= split.train_start_day) & (days < split.train_start_day + split.train_days)]
    test = transactions[(days >= split.test_start_day) & (days < split.end_day)]
    if not remove_known_compromised:
        return train, test

    keep = np.ones(len(test), dtype=bool)
    test_days = test[day_column].to_numpy()
    test_cards = test[card_column].to_numpy()
    # As in the handbook, "known" means reported about a fraud since training started: the bank
    # reissues a compromised card, so frauds from long before do not block it for ever.
    history = transactions[(days >= split.train_start_day) & (days < split.end_day - split.delay_days)]
    for day in range(split.test_start_day, split.end_day):
        horizon = (day - split.delay_days) * SECONDS_PER_DAY
        blocked = known_compromised_cards(history[history[day_column] < day - split.delay_days], horizon)
        if blocked:
            keep &= ~((test_days == day) & np.isin(test_cards, list(blocked)))
    return train, test[keep]


def prequential_splits(last: TimeSplit, n_folds: int) -> list[TimeSplit]:
    """``n_folds`` splits: ``last`` and copies shifted back by one test period each, newest first.

    Validating on several consecutive periods shows how much a score moves from week to week, which
    one split hides (the handbook's prequential validation).

    Examples
    --------
    >>> [s.train_start_day for s in prequential_splits(TimeSplit(train_start_day=30), 3)]
    [30, 23, 16]
    """
    if n_folds < 1:
        raise ValueError(f"n_folds must be at least 1, got {n_folds}")
    if last.train_start_day - (n_folds - 1) * last.test_days < 0:
        raise ValueError(
            f"{n_folds} folds of {last.test_days} days do not fit before day {last.train_start_day}: "
            "use fewer folds or a later split"
        )
    return [replace(last, train_start_day=last.train_start_day - k * last.test_days) for k in range(n_folds)]
