"""Time-based splits: train on the past, leave a gap for labels to arrive, test on the future.

Fraud labels are not known at decision time: a card is reported days or weeks later. A model that
goes live on day ``d`` can only be trained on transactions whose labels are known by then, so the
test period starts ``delay_days`` after the training period ends. The handbook's default is 7 days
of training, 7 of delay and 7 of test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


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


def split_by_time(
    transactions: pd.DataFrame, split: TimeSplit, day_column: str = "tx_time_days"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the (train, test) rows of ``split``; the delay days belong to neither.

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
    return train, test
