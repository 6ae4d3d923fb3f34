"""Tests of the time split and the calendar flags."""

import pandas as pd
import pytest

from mlsys_lab.data.features import TimeFlags
from mlsys_lab.data.split import TimeSplit, split_by_time


def test_split_leaves_the_delay_gap_out():
    tx = pd.DataFrame({"tx_time_days": [d for d in range(30) for _ in range(3)]})
    train, test = split_by_time(tx, TimeSplit(train_start_day=5, train_days=7, delay_days=7, test_days=7))
    assert sorted(train.tx_time_days.unique()) == list(range(5, 12))
    assert sorted(test.tx_time_days.unique()) == list(range(19, 26))
    assert train.tx_time_days.max() + 7 < test.tx_time_days.min()


def test_split_ending_at_uses_the_last_days():
    split = TimeSplit.ending_at(70)
    assert (split.train_start_day, split.test_start_day, split.end_day) == (49, 63, 70)
    with pytest.raises(ValueError, match="too short"):
        TimeSplit.ending_at(20)


def test_split_refuses_data_that_ends_early():
    with pytest.raises(ValueError, match="ends on day 9"):
        split_by_time(pd.DataFrame({"tx_time_days": range(10)}), TimeSplit(train_start_day=0))


@pytest.mark.parametrize("field", ["train_days", "test_days"])
def test_split_rejects_empty_periods(field):
    with pytest.raises(ValueError, match=field):
        TimeSplit(train_start_day=0, **{field: 0})


def test_time_flags_weekend_and_night_edges():
    stamps = pd.to_datetime(
        ["2018-04-06 23:59:59", "2018-04-07 00:00:00", "2018-04-08 06:59:59", "2018-04-09 07:00:00"]
    )  # Friday late, Saturday midnight, Sunday 06:59, Monday 07:00
    flags = TimeFlags().fit_transform(pd.DataFrame({"tx_datetime": stamps}))
    assert flags.tx_during_weekend.tolist() == [0, 1, 1, 0]
    assert flags.tx_during_night.tolist() == [0, 1, 1, 0]


def test_time_flags_needs_its_column():
    with pytest.raises(ValueError, match="tx_datetime"):
        TimeFlags().fit(pd.DataFrame({"x": [1]}))
