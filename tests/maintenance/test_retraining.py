"""Retraining from the decision log: labels known at T only, immature days left out, validated, tracked, triggered."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.decision_log import Decision, DecisionLog
from mlsys_lab.maintenance import retraining
from mlsys_lab.maintenance.retraining import Trigger, choose_maturity, retrain, training_frame
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig

from .conftest import AS_OF_DAY, History

CONFIG = TrainingConfig(family="logistic_regression", split=TimeSplit(train_start_day=0), validation_folds=2)


def test_training_frame_uses_only_labels_known_at_as_of(history: History) -> None:
    # As of day 60 the log already holds labels reported up to day 70: those must not count.
    log = history.log()
    as_of = history.as_of - dt.timedelta(days=10)
    frame = training_frame(log, as_of)
    truth = history.frame.set_index("transaction_id")
    expected = (truth["tx_fraud"] == 1) & (truth["tx_label_seconds"] <= 60 * 86_400)
    got = frame.set_index("transaction_id")["tx_fraud"].astype(bool)
    assert got.equals(expected.reindex(got.index)), "a fraud reported after T was used as a label at T"
    assert frame["tx_time_days"].max() == 59
    assert got.sum() < (truth.loc[got.index, "tx_fraud"] == 1).sum()  # some frauds are not known yet


@pytest.fixture(scope="module")
def logged(history: History) -> pd.DataFrame:
    return training_frame(history.log(), history.as_of)


def test_training_frame_features_are_the_logged_ones(history: History, logged: pd.DataFrame) -> None:
    frame = logged
    offline = history.frame.set_index("transaction_id").loc[frame["transaction_id"], list(FEATURE_COLUMNS)]
    np.testing.assert_allclose(frame[list(FEATURE_COLUMNS)].to_numpy(), offline.to_numpy(), rtol=1e-12)


def test_maturity_matches_the_simulators_delay_distribution(logged: pd.DataFrame) -> None:
    # Default delays: 60 % Exponential(1 day), 40 % Uniform(2, 28) days; 85 % are reported by day 18.2.
    frame = logged
    chosen = choose_maturity(frame, AS_OF_DAY, coverage=0.85)
    assert chosen.source == "estimated" and chosen.frauds_used >= 60
    assert 17 <= chosen.days <= 21, chosen
    assert chosen.coverage_observed >= 0.85
    assert 0.25 <= chosen.reporting_by_day[1] <= 0.50, chosen.reporting_by_day  # 38 % in expectation
    lower = choose_maturity(frame, AS_OF_DAY, coverage=0.6)
    assert lower.days < chosen.days  # a laxer target trusts younger days


def test_maturity_falls_back_when_too_few_frauds_to_estimate(logged: pd.DataFrame) -> None:
    frame = logged
    chosen = choose_maturity(frame, 35, coverage=0.85)  # only days <= 5 are 30 days old
    assert chosen.source == "fallback" and chosen.days == 28 and math.isnan(chosen.coverage_observed)


@pytest.mark.slow
def test_retrain_leaves_out_immature_days_and_tracks_the_trigger(history: History, tmp_path: Path) -> None:
    tracker = Tracker(TrackingSettings(root=tmp_path / "store", experiment="retrain"))
    trigger = Trigger("performance", "matured card precision below 0.2 for 3 windows", windows=3)
    result = retrain(history.log(), history.as_of + dt.timedelta(hours=9), CONFIG, trigger=trigger, tracker=tracker)
    record = result.record()
    maturity = result.maturity.days
    assert record["as_of_day"] == AS_OF_DAY and record["trigger"]["kind"] == "performance"
    assert record["immature_days_left_out"] == [AS_OF_DAY - maturity, AS_OF_DAY - 1]
    assert result.split.end_day == AS_OF_DAY - maturity  # the newest trained-on or tested day is mature
    assert result.run.window["train"]["last_day"] < result.split.test_start_day
    assert result.immature_rows_left_out == int((history.frame["tx_time_days"] >= AS_OF_DAY - maturity).sum())
    assert record["threshold_source"] == "validation" and record["rows_quarantined"] == 0
    tracked = tracker.client.get_run(result.run_id)
    assert tracked.data.tags["retrain.trigger"] == "performance"
    assert tracked.data.metrics["retrain_maturity_days"] == maturity
    assert tracked.data.params["labels_known_at_day"] == str(result.split.test_start_day)


@pytest.mark.slow
def test_retrain_validates_the_logged_rows_first(history: History, tmp_path: Path) -> None:
    path = tmp_path / "decisions.db"
    shutil.copy(history.path, path)
    log = DecisionLog(f"sqlite:///{path}")
    row = history.frame.iloc[len(history.frame) // 2]
    log.record(
        Decision(
            request_id="bad-amount",
            decided_at=dt.datetime.now(dt.UTC),
            transaction_id=10**9,
            customer_id=int(row.customer_id),
            terminal_id=int(row.terminal_id),
            tx_datetime=pd.Timestamp(row.tx_datetime).to_pydatetime(),
            tx_amount=-5.0,  # the log stores it; the data layer's validation must not let it train
            model_version=1,
            features={name: 0.0 for name in FEATURE_COLUMNS},
            score=0.0,
            decision=False,
            threshold=0.5,
            latency_ms=0.0,
        )
    )
    result = retrain(log, history.as_of, CONFIG, trigger=Trigger("manual", "test"))
    assert result.rows_quarantined == 1 and result.quarantine_rules == {"negative_amount": 1}
    assert result.rows_logged == len(history.frame) + 1


def test_triggers() -> None:
    assert retraining.sustained_trigger("quality", [True, True], 3, "null share") is None
    fired = retraining.sustained_trigger("performance", [False, True, True, True], 3, "matured CP@k")
    assert fired is not None and fired.kind == "performance" and "3 consecutive" in fired.reason
    with pytest.raises(ValueError, match="trigger kind"):
        Trigger("whim", "because")
