"""Performance under label delay: only labels known at report time, completeness, truth, and the label-free estimate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data import CardTesting, preset, simulate
from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.monitoring.performance import expected_average_precision, performance_timeline, window_performance
from mlsys_lab.training import TrainingConfig, build_pipeline, feature_frame, split_data

pytestmark = pytest.mark.filterwarnings("error")

DAY = 86_400


def _window() -> pd.DataFrame:
    # Six transactions on day 0; frauds at rows 0, 2 and 4, their labels known at 1 h, 2 days and 20 days.
    return pd.DataFrame(
        {
            "tx_time_days": [0] * 6,
            "customer_id": [1, 2, 3, 4, 5, 6],
            "tx_fraud": [1, 0, 1, 0, 1, 0],
            "tx_label_seconds": [3_600, 31 * DAY, 2 * DAY, 31 * DAY, 20 * DAY, 31 * DAY],
        }
    )


SCORES = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.05])


def test_realised_numbers_use_only_labels_known_at_the_report_time() -> None:
    window = _window()
    day_one = window_performance(window, SCORES, as_of_seconds=DAY, threshold=0.5, k=2)
    assert day_one.n_known_frauds == 1
    assert day_one.known_precision_at_alerts == pytest.approx(1 / 3)  # alerts 0, 1, 2; only 0 known as fraud
    assert day_one.known_recall == 1.0
    # A label not yet known cannot move a realised number: flip the not-yet-known fraud at row 4.
    flipped = window.assign(tx_fraud=[1, 0, 1, 0, 0, 0])
    again = window_performance(flipped, SCORES, as_of_seconds=DAY, threshold=0.5, k=2)
    assert again.known_precision_at_alerts == day_one.known_precision_at_alerts
    assert again.known_average_precision == day_one.known_average_precision
    assert again.true_recall != day_one.true_recall, "the truth does see it"


def test_completeness_grows_as_labels_arrive_and_the_realised_numbers_reach_the_truth() -> None:
    window = _window()
    rows = [window_performance(window, SCORES, as_of_seconds=t * DAY, threshold=0.5, k=2) for t in (1, 3, 21, 32)]
    assert [r.fraud_completeness for r in rows] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert [r.label_coverage for r in rows] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 1.0])
    final = rows[-1]
    assert final.known_average_precision == pytest.approx(final.true_average_precision)
    assert final.known_precision_at_alerts == pytest.approx(final.true_precision_at_alerts)
    assert final.known_card_precision == pytest.approx(final.true_card_precision)


def test_without_truth_the_true_fields_stay_empty() -> None:
    perf = window_performance(_window(), SCORES, as_of_seconds=DAY, threshold=0.5, k=2, truth=False)
    assert math.isnan(perf.true_average_precision) and math.isnan(perf.fraud_completeness)
    assert perf.label_coverage == pytest.approx(1 / 6), "coverage needs no truth"


def test_label_free_estimates_follow_the_scores() -> None:
    perf = window_performance(_window(), SCORES, as_of_seconds=DAY, threshold=0.5, k=2)
    assert perf.expected_precision_at_alerts == pytest.approx(0.8)  # mean of 0.9, 0.8, 0.7
    assert perf.expected_recall == pytest.approx(2.4 / SCORES.sum())
    calibrated = np.r_[np.full(900, 0.01), np.full(100, 0.9)]
    assert expected_average_precision(calibrated) == pytest.approx(0.83, abs=0.03)


def test_timeline_reports_each_window_at_its_lag() -> None:
    tx = pd.concat([_window().assign(tx_time_days=d) for d in range(3)], ignore_index=True)
    timeline = performance_timeline(tx, np.tile(SCORES, 3), days=[0, 1, 2], threshold=0.5, k=None, lag_days=1)
    assert timeline.index.tolist() == [1, 2, 3]
    assert timeline["as_of_seconds"].tolist() == [2 * DAY, 3 * DAY, 4 * DAY]


@pytest.mark.slow
def test_label_free_estimate_misses_card_testing_while_the_truth_drops() -> None:
    # Card testing at ten times the default rate (the default adds about 3 frauds a day to ~13 on
    # small, too little to measure in one test): tiny night-time charges become fraud, which the model
    # scores low. P(fraud | score) changes, so the estimate built on it cannot follow.
    sim = simulate(preset("small", random_state=0, drift=(CardTesting(start_day=55, customers_per_5k_per_day=30.0),)))
    frame = feature_frame(sim.transactions)
    config = TrainingConfig(family="logistic_regression", split=TimeSplit(train_start_day=30), validation_folds=0)
    data = split_data(config, frame)
    scores = (
        build_pipeline(config)
        .fit(data.X_train, data.y_train)
        .predict_proba(frame[list(FEATURE_COLUMNS)].to_numpy())[:, 1]
    )
    days = frame["tx_time_days"].to_numpy()

    def perf(first: int, last: int) -> object:
        mask = (days >= first) & (days <= last)
        return window_performance(sim.transactions[mask], scores[mask], as_of_seconds=10**9, threshold=0.05, k=None)

    before, after = perf(44, 50), perf(58, 64)
    # Seed 0 measured: true AP 0.34 -> 0.26, the label-free estimate 0.67 -> 0.87 (it rises: the new
    # large charges score high, the new tiny frauds score low and count as "expected genuine").
    assert after.true_average_precision < before.true_average_precision - 0.05, (before, after)
    assert after.expected_average_precision > before.expected_average_precision - 0.02, (before, after)
    gap_before = before.expected_average_precision - before.true_average_precision
    gap_after = after.expected_average_precision - after.true_average_precision
    assert gap_after > gap_before + 0.15, "the estimate drifts away from the truth under concept drift"
