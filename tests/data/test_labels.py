"""Tests of label delay: the simulator's ``tx_label_seconds`` and the ``labels`` module that reads it.

Each test is named after the bug it catches. Simulations are module-scoped on ``small`` (about 870
frauds), so the distribution checks have room for their tolerances and the file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data import (
    COLUMNS,
    FraudScenarios,
    LabelDelay,
    Simulation,
    known_labels,
    labels_known_at,
    preset,
    simulate,
)

DAY = 86_400


@pytest.fixture(scope="module")
def small() -> Simulation:
    return simulate(preset("small"))


def _delay_days(tx: pd.DataFrame) -> np.ndarray:
    return (tx["tx_label_seconds"] - tx["tx_time_seconds"]).to_numpy() / DAY


# ---------------------------------------------------------------------------------------------------
# The column the simulator writes
# ---------------------------------------------------------------------------------------------------


def test_label_is_never_known_before_the_transaction(small: Simulation) -> None:
    tx = small.transactions
    assert tx["tx_label_seconds"].dtype == np.dtype("int64")
    assert (tx["tx_label_seconds"] >= tx["tx_time_seconds"]).all()


def test_genuine_labels_arrive_after_30_to_31_days(small: Simulation) -> None:
    delay = _delay_days(small.transactions)[small.transactions["tx_fraud"].to_numpy() == 0]
    assert delay.min() >= 30 and delay.max() <= 31
    # The jitter is uniform on one day: spread over it, not stuck at one end.
    assert 30.4 < delay.mean() < 30.6


def test_fraud_labels_arrive_fast_for_a_share_and_within_four_weeks_for_all(small: Simulation) -> None:
    delay = _delay_days(small.transactions)[small.transactions["tx_fraud"].to_numpy() == 1]
    assert len(delay) > 500
    # 60 % exponential with mean 1 day, 40 % uniform on 2..28 days: P(delay <= 2 days) = 0.6 * (1 - e^-2).
    expected_fast = 0.6 * (1 - np.exp(-2))
    assert abs(np.mean(delay <= 2) - expected_fast) < 0.06, f"{np.mean(delay <= 2):.3f} of frauds known in 2 days"
    assert delay.max() <= 28 + 1e-9 or np.mean(delay > 28) < 0.002
    assert np.mean((delay > 2) & (delay <= 28)) > 0.3, "the slow route (cardholder reports) is missing"


def test_genuine_and_fraud_delays_never_overlap_with_the_defaults(small: Simulation) -> None:
    # The label decides the delay: a row whose scenario was switched off must get a genuine delay,
    # not keep the fraud one. With the defaults, "delay >= 30 days" is "genuine".
    tx = small.transactions
    assert np.array_equal(_delay_days(tx) >= 30, tx["tx_fraud"].to_numpy() == 0)
    no_s3 = simulate(preset("small", fraud=FraudScenarios(s3=False))).transactions
    assert np.array_equal(_delay_days(no_s3) >= 30, no_s3["tx_fraud"].to_numpy() == 0)


@pytest.mark.parametrize(
    ("label_delay", "low_days", "high_days", "mean_days"),
    [
        (LabelDelay(fraud_fast_share=1.0, fraud_fast_mean_days=0.5), 0.0, 20.0, 0.5),
        (LabelDelay(fraud_fast_share=0.0, fraud_slow_min_days=3, fraud_slow_max_days=9), 3.0, 9.0, 6.0),
    ],
)
def test_fraud_delay_parameters_are_honoured(
    label_delay: LabelDelay, low_days: float, high_days: float, mean_days: float
) -> None:
    tx = simulate(preset("small", label_delay=label_delay)).transactions
    delay = _delay_days(tx)[tx["tx_fraud"].to_numpy() == 1]
    assert delay.min() >= low_days - 1e-9 and delay.max() <= high_days + 1e-9
    assert abs(delay.mean() - mean_days) < 0.12 * mean_days, f"mean fraud delay {delay.mean():.2f} days"


def test_genuine_delay_parameters_are_honoured() -> None:
    tx = simulate(preset("tiny", label_delay=LabelDelay(genuine_days=7, genuine_jitter_days=0))).transactions
    assert (_delay_days(tx)[tx["tx_fraud"].to_numpy() == 0] == 7).all()


def test_no_label_delay_means_labels_known_at_transaction_time(small: Simulation) -> None:
    tx = simulate(preset("small", label_delay=None)).transactions
    assert np.array_equal(tx["tx_label_seconds"].to_numpy(), tx["tx_time_seconds"].to_numpy())
    assert labels_known_at(tx, tx["tx_time_seconds"].to_numpy()).all()


def test_label_delay_changes_no_other_column(small: Simulation) -> None:
    # Label delays draw from their own stream: switching them off or changing their parameters must
    # leave every other column byte-identical.
    for label_delay in (None, LabelDelay(fraud_fast_share=0.1, genuine_days=45)):
        other = simulate(preset("small", label_delay=label_delay)).transactions
        for column in COLUMNS:
            if column != "tx_label_seconds":
                assert other[column].to_numpy().tobytes() == small.transactions[column].to_numpy().tobytes(), (
                    f"label_delay={label_delay} changed {column!r}: label delays share a random stream with it"
                )


def test_label_times_of_early_days_do_not_depend_on_later_days() -> None:
    short = simulate(preset("tiny", n_days=20)).transactions
    long = simulate(preset("tiny", n_days=30)).transactions
    settled = 20 - FraudScenarios().s3_duration_days  # S3 windows cut off by the short run's end
    pd.testing.assert_series_equal(
        long.loc[long["tx_time_days"] < settled, "tx_label_seconds"],
        short.loc[short["tx_time_days"] < settled, "tx_label_seconds"],
    )


# ---------------------------------------------------------------------------------------------------
# labels_known_at and known_labels
# ---------------------------------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"tx_fraud": [1, 0, 1, 0], "tx_label_seconds": [100, 200, 300, 400]}, index=[10, 11, 12, 13])


def test_labels_known_at_a_single_time_includes_the_boundary() -> None:
    assert labels_known_at(_frame(), 300).tolist() == [True, True, True, False]
    assert labels_known_at(_frame(), 99).tolist() == [False] * 4
    assert labels_known_at(_frame(), np.int64(1_000)).tolist() == [True] * 4


def test_labels_known_at_one_time_per_row() -> None:
    # "Known a week before each transaction": each row asks at its own time.
    assert labels_known_at(_frame(), np.array([100, 150, 350, 400])).tolist() == [True, False, True, True]
    assert labels_known_at(_frame(), pd.Series([0, 999, 0, 999])).tolist() == [False, True, False, True]


@pytest.mark.parametrize(
    ("as_of", "match"),
    [(np.array([1, 2, 3]), "one per row"), ("yesterday", "number"), (np.array([[1, 2], [3, 4]]), "one per row")],
)
def test_labels_known_at_rejects_bad_times(as_of: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        labels_known_at(_frame(), as_of)  # type: ignore[arg-type]


def test_labels_known_at_needs_the_label_column() -> None:
    with pytest.raises(ValueError, match="tx_label_seconds"):
        labels_known_at(pd.DataFrame({"tx_fraud": [1]}), 0)


def test_known_labels_are_na_until_known_and_keep_the_index() -> None:
    labels = known_labels(_frame(), 300)
    assert labels.dtype == "Int8" and labels.name == "tx_fraud"
    assert labels.index.tolist() == [10, 11, 12, 13]
    assert labels.tolist()[:3] == [1, 0, 1] and labels.isna().tolist() == [False, False, False, True]


def test_unknown_is_not_genuine_on_simulated_data(small: Simulation) -> None:
    # At the end of day 40: every fraud of the last days is not known yet, some old ones are, and no
    # genuine transaction younger than 30 days has a label, which a leaky pipeline would read as 0.
    tx = small.transactions
    as_of = 41 * DAY
    past = tx[tx["tx_time_seconds"] <= as_of]
    labels = known_labels(past, as_of)
    recent = past["tx_time_days"].to_numpy() >= 41 - 30
    assert labels[recent & (past["tx_fraud"].to_numpy() == 0)].isna().all()
    fraud = past["tx_fraud"].to_numpy() == 1
    last_week = past["tx_time_days"].to_numpy() >= 41 - 7
    known_share = labels[fraud & last_week].notna().mean()
    assert 0.3 < known_share < 0.95, f"{known_share:.2f} of last week's frauds known: expected part of them"
    assert (labels.dropna() == past.loc[labels.notna().to_numpy(), "tx_fraud"]).all()


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: LabelDelay(fraud_fast_share=1.2), "fraud_fast_share"),
        (lambda: LabelDelay(fraud_fast_mean_days=0), "fraud_fast_mean_days"),
        (lambda: LabelDelay(fraud_slow_min_days=-1), "fraud_slow_min_days"),
        (lambda: LabelDelay(fraud_slow_min_days=10, fraud_slow_max_days=5), "fraud_slow_max_days"),
        (lambda: LabelDelay(genuine_days=float("inf")), "genuine_days"),
        (lambda: LabelDelay(genuine_jitter_days=-0.5), "genuine_jitter_days"),
    ],
)
def test_bad_label_delay_raises_value_error_naming_the_parameter(make, name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=name):
        make()
