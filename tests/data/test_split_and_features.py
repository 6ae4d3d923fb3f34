"""Tests of the time split and the calendar flags."""

import pandas as pd
import pytest

from mlsys_lab.data.features import TimeFlags
from mlsys_lab.data.split import TimeSplit, prequential_splits, split_by_time


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


def _cards_frame() -> pd.DataFrame:
    """Card 1 defrauded on day 2 (reported at once); card 2 defrauded on day 9 but reported on day 20."""
    day = 86_400
    rows = [
        # day, card, fraud, label known at (seconds)
        (2, 1, 1, 2 * day + 100),
        (9, 2, 1, 20 * day),
        (14, 1, 0, 44 * day),
        (14, 2, 0, 44 * day),
        (14, 3, 0, 44 * day),
        (16, 1, 0, 46 * day),
        (17, 3, 1, 17 * day + 5),
        (20, 3, 0, 50 * day),
    ]
    frame = pd.DataFrame(rows, columns=["tx_time_days", "customer_id", "tx_fraud", "tx_label_seconds"])
    frame["tx_time_seconds"] = frame["tx_time_days"] * day + 10
    return frame


def test_split_removes_cards_known_compromised_before_each_test_day():
    frame = _cards_frame()
    split = TimeSplit(train_start_day=0, train_days=7, delay_days=7, test_days=7)
    _, kept = split_by_time(frame, split, remove_known_compromised=False)
    _, cleaned = split_by_time(frame, split, remove_known_compromised=True)
    assert len(kept) == 6
    # Card 1's fraud (day 2) was known long before: its test rows go. Card 2's fraud was reported only on
    # day 20, so on day 14 it is not known: it stays. Card 3's own fraud on day 17 is what the test is for.
    assert sorted(zip(cleaned.tx_time_days, cleaned.customer_id, strict=True)) == [(14, 2), (14, 3), (17, 3), (20, 3)]


def test_prequential_folds_shift_back_one_test_period():
    folds = prequential_splits(TimeSplit(train_start_day=30, test_days=7), 4)
    assert [f.train_start_day for f in folds] == [30, 23, 16, 9]
    assert all(f.test_start_day - f.train_start_day == 14 for f in folds)
    with pytest.raises(ValueError, match="do not fit"):
        prequential_splits(TimeSplit(train_start_day=10), 3)
    with pytest.raises(ValueError, match="n_folds"):
        prequential_splits(TimeSplit(train_start_day=10), 0)


def test_a_card_is_blocked_only_from_the_day_its_fraud_was_known_a_delay_earlier():
    # Card 4's fraud on day 5 is reported on day 11 at noon. Test day D may use what was known at the
    # start of day D - 7 (the training labels' horizon): on day 15 that is day 8, before the report, so
    # the card is not known yet and its transaction is scored; on day 20 (horizon day 13) it is blocked.
    day = 86_400
    rows = [
        (5, 4, 1, 11 * day + day // 2),
        (15, 4, 0, 45 * day),
        (18, 4, 0, 48 * day),  # horizon day 11, 00:00: twelve hours before the report
        (19, 4, 0, 49 * day),  # horizon day 12: known
        (20, 4, 0, 50 * day),
        (15, 5, 0, 45 * day),
    ]
    frame = pd.DataFrame(rows, columns=["tx_time_days", "customer_id", "tx_fraud", "tx_label_seconds"])
    frame["tx_time_seconds"] = frame["tx_time_days"] * day + 10
    split = TimeSplit(train_start_day=0, train_days=7, delay_days=7, test_days=7)
    _, cleaned = split_by_time(frame, split, remove_known_compromised=True)
    kept = sorted(zip(cleaned.tx_time_days, cleaned.customer_id, strict=True))
    assert kept == [(15, 4), (15, 5), (18, 4)], "card 4 is known from day 19 (report on day 11 + 7-day horizon)"
