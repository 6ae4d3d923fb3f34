"""Known-answer evaluation: detection rate, delay and false alarms, on a tiny case and on one real run."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mlsys_lab.data import AmountInflation, preset, simulate
from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.monitoring.evaluation import CONTROL, DETECTORS, daily_alarms, evaluate_detectors
from mlsys_lab.training import TrainingConfig, build_pipeline, feature_frame, split_data
from mlsys_lab.training.threshold import threshold_for_budget

pytestmark = pytest.mark.filterwarnings("error")


def test_detection_delay_and_false_alarms_on_a_tiny_case() -> None:
    # Runs a and b have an event on day 10; c and d are controls with 4 monitored days each.
    alarms = pd.DataFrame(
        [
            # run a: an alarm before the event (not a detection), then one 2 days after it
            ("a", 9, True), ("a", 10, False), ("a", 11, False), ("a", 12, True),
            # run b: never alarms after the start
            ("b", 9, False), ("b", 10, False), ("b", 11, False), ("b", 12, False),
            ("c", 1, True), ("c", 2, False), ("c", 3, False), ("c", 4, False),
            ("d", 1, False), ("d", 2, True), ("d", 3, True), ("d", 4, False),
        ],
        columns=["run", "day", "alarm"],
    ).assign(detector="rule")  # fmt: skip
    runs = pd.DataFrame(
        {"event": ["AmountInflation", "AmountInflation", CONTROL, CONTROL], "start_day": [10, 10, None, None]},
        index=["a", "b", "c", "d"],
    )
    table = evaluate_detectors(alarms, runs, target_delay_days=1).set_index("event")
    event = table.loc["AmountInflation"]
    assert event["detected"] == 0.5, "one of two runs alarms after the start"
    assert event["median_delay_days"] == 2.0 and event["max_delay_days"] == 2.0
    assert event["on_time"] == 0.0, "a delay of 2 days is late for a 1-day target"
    control = table.loc[CONTROL]
    assert control["false_alarms_per_100_days"] == pytest.approx(100 * 3 / 8)
    assert control["monitored_days"] == 8 and math.isnan(control["detected"])
    with pytest.raises(ValueError, match="not in runs"):
        evaluate_detectors(alarms.assign(run="zzz"), runs)


@pytest.mark.slow
def test_amount_inflation_is_caught_on_its_first_day_and_not_before() -> None:
    sim = simulate(preset("small", random_state=3, drift=(AmountInflation(start_day=55),)))
    frame = feature_frame(sim.transactions)
    config = TrainingConfig(family="logistic_regression", split=TimeSplit(train_start_day=30), validation_folds=0)
    data = split_data(config, frame)
    scores = (
        build_pipeline(config)
        .fit(data.X_train, data.y_train)
        .predict_proba(data_matrix := frame[list(FEATURE_COLUMNS)].to_numpy())[:, 1]
    )
    assert data_matrix.shape[0] == len(sim.transactions)
    days = frame["tx_time_days"].to_numpy()
    reference = (days >= 44) & (days <= 50)
    threshold = threshold_for_budget(scores[reference], days[reference], 20)
    alarms = daily_alarms(
        sim.transactions,
        frame[list(FEATURE_COLUMNS)],
        scores,
        threshold=threshold,
        reference_days=(44, 50),
        days=range(51, 58),
    )
    assert set(alarms["detector"]) == set(DETECTORS)
    features = alarms[alarms["detector"] == "features: evidence+size"].set_index("day")["alarm"]
    assert not features.loc[51:54].any(), "no drift before day 55"
    assert features.loc[55:].all(), "amounts x1.25 from day 55 on"


def test_alerts_are_printed_against_the_truth_and_an_alert_before_every_event_is_a_false_alarm() -> None:
    from mlsys_lab.monitoring.job import MonitoringReport

    alerts = pd.DataFrame(
        {
            "rule": ["feature drift", "matured recall dropped"],
            "severity": ["page", "page"],
            "fired_at": pd.to_datetime(["2018-06-10", "2018-06-26"]),
            "cleared_at": pd.to_datetime([None, None]),
            "value_at_fire": [1.0, 1.0],
        }
    )
    report = MonitoringReport(
        pd.DataFrame(index=pd.date_range("2018-06-09", periods=30)), alerts, (70, 76), pd.Timestamp("2018-07-10"), 0.5
    )
    lines = report.lines_against_truth({"card testing": pd.Timestamp("2018-06-20")})
    assert lines[1] == "truth (the simulator's drift log): card testing from 2018-06-20"
    assert lines[2] == "ALERT feature drift: fired 2018-06-10, FALSE ALARM: before any drift event"
    assert lines[3] == (
        "ALERT matured recall dropped: fired 2018-06-26, 6 day(s) after card testing started (label-delay floor 1 d)"
    )
