"""No label from the future: selection, validation, threshold and training rows use only labels known at the decision.

The decision time is ``split.test_start_seconds``: the final model is trained, chosen and given its
threshold then (see ``mlsys_lab/training/prequential.py``). Whatever the labels that are still unknown
at that moment turn out to be, and whenever they arrive, none of those decisions may move.
"""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.evaluate import CostModel
from mlsys_lab.training import (
    THRESHOLD_FROM_TEST,
    THRESHOLD_FROM_VALIDATION,
    Constraints,
    NotRegistrable,
    TrainingConfig,
    check_registrable,
    check_registrable_record,
    feature_frame,
    select_model,
    split_data,
    tradeoff_table,
    train,
    validation_splits,
)

# 45 days of 500 customers: room for two validation folds before a 7/7/7 split, in a fraction of a second.
SPLIT = TimeSplit.ending_at(45)
DECISION = SPLIT.test_start_seconds
CANDIDATES = (
    TrainingConfig(family="logistic_regression", split=SPLIT, validation_folds=2),
    TrainingConfig(family="decision_tree", params={"max_depth": 4}, split=SPLIT, validation_folds=2),
)
# Quality and size only: latency is measured, and a measurement is not what this test is about.
RULE = Constraints(quality_within_best=0.3, p99_latency_ms=None, max_artifact_mb=None, prefer=("artifact_mb",))


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    config = preset("tiny", n_customers=500, n_terminals=1_000, n_days=45, random_state=0)
    return simulate(config).transactions


def decisions(transactions: pd.DataFrame) -> dict[str, object]:
    """Everything decided at the decision time, from these transactions: per candidate and the selection."""
    frame = feature_frame(transactions)
    runs = [train(config, frame) for config in CANDIDATES]
    table, _ = tradeoff_table(runs, frame, latency_calls=10, measure_memory=False)
    selection = select_model(table, RULE)
    return {
        "validation": [run.validation.folds.to_dict("records") for run in runs],
        "threshold": [run.threshold.as_dict() for run in runs],
        "training data": [run.fingerprint for run in runs],
        "val columns": table[["val_ap_mean", "val_ap_std", "val_cp_at_k_mean"]].to_dict(),
        "chosen": selection.chosen,
        "verdicts": selection.verdicts.to_dict(),
    }


@pytest.fixture(scope="module")
def baseline(history: pd.DataFrame) -> dict[str, object]:
    found = decisions(history)
    # Not vacuous: real scores, a usable threshold and a choice to compare.
    assert all(math.isfinite(t["threshold"]) for t in found["threshold"]), found["threshold"]
    assert all(not math.isnan(fold["average_precision"]) for run in found["validation"] for fold in run)
    assert found["chosen"] is not None
    return found


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), share=st.floats(0.05, 1.0))
@example(seed=0, share=1.0)  # every unknown label flipped
def test_labels_unknown_at_the_decision_time_move_no_decision(history, baseline, seed, share):
    rng = np.random.default_rng(seed)
    unknown = (history["tx_label_seconds"] > DECISION).to_numpy()
    flip = unknown & (rng.random(len(history)) < share)
    newest_fold = validation_splits(SPLIT, 1)[0]
    in_newest_test = history["tx_time_days"].between(newest_fold.test_start_day, newest_fold.end_day - 1).to_numpy()
    assert (flip & in_newest_test).any(), "the mutation must reach the newest fold's test days, or it tests nothing"

    mutated = history.copy()
    mutated.loc[flip, "tx_fraud"] = 1 - mutated.loc[flip, "tx_fraud"]
    # When those labels will arrive is unknown at the decision time too: any moment after it.
    later = DECISION + 1 + rng.integers(0, 60 * 86_400, int(unknown.sum()))
    mutated.loc[unknown, "tx_label_seconds"] = later

    assert decisions(mutated) == baseline


def test_the_final_model_trains_on_the_labels_known_at_the_test_start(history):
    # Not at the end of training: frauds of the last training days reported during the delay gap count.
    frame = feature_frame(history)
    config = CANDIDATES[0]
    data = split_data(config, frame)
    labels = data.train["tx_label_seconds"].to_numpy()
    fraud = data.train["tx_fraud"].to_numpy() == 1
    end_of_training = (SPLIT.train_start_day + SPLIT.train_days) * 86_400
    reported_in_the_gap = fraud & (labels > end_of_training) & (labels <= DECISION)
    assert reported_in_the_gap.sum() > 0, "the data must hold frauds reported during the gap, or this tests nothing"
    assert data.labels_as_of_seconds == DECISION
    np.testing.assert_array_equal(data.y_train, (fraud & (labels <= DECISION)).astype(np.int8))
    # And a validation fold trains on what was known at its own test start.
    fold = validation_splits(SPLIT, 1)[0]
    fold_data = split_data(config, frame, fold)
    fold_known = (fold_data.train["tx_fraud"].to_numpy() == 1) & (
        fold_data.train["tx_label_seconds"].to_numpy() <= fold.test_start_seconds
    )
    np.testing.assert_array_equal(fold_data.y_train, fold_known.astype(np.int8))


def test_validation_folds_are_scored_on_the_labels_known_at_the_decision(history):
    frame = feature_frame(history)
    run = train(CANDIDATES[0], frame)
    assert run.validation is not None and run.validation.labels_as_of_seconds == DECISION
    newest = run.validation.newest_test
    truth = history.loc[newest.index, "tx_fraud"].to_numpy()
    known = truth * (history.loc[newest.index, "tx_label_seconds"].to_numpy() <= DECISION)
    assert truth.sum() > known.sum() > 0, "the newest fold must hold frauds reported only after the decision"
    np.testing.assert_array_equal(newest["tx_fraud"].to_numpy(), known)
    assert run.validation.folds.loc[0, "test_frauds_known"] == known.sum()
    assert run.threshold_source == THRESHOLD_FROM_VALIDATION


def test_a_threshold_chosen_on_the_test_period_cannot_be_registered(history):
    frame = feature_frame(history)
    on_test = train(replace(CANDIDATES[0], validation_folds=0), frame)
    assert on_test.threshold_source == THRESHOLD_FROM_TEST
    with pytest.raises(NotRegistrable, match=r"chosen on the test period.*validation_folds >= 1"):
        check_registrable(on_test)
    with pytest.raises(NotRegistrable, match="test period"):
        check_registrable_record(on_test.params(), on_test.metrics())
    validated = train(CANDIDATES[0], frame)
    check_registrable(validated)  # no error
    check_registrable_record(validated.params(), validated.metrics())
    with pytest.raises(NotRegistrable, match="lacks param 'threshold_source'"):
        check_registrable_record({}, validated.metrics())


def test_a_never_alert_threshold_cannot_be_registered(history):
    # Every alert costs a review and catching a fraud saves nothing: training honestly answers inf, "never alert".
    config = replace(CANDIDATES[0], cost=CostModel(missed_fraud_fixed=0.0, missed_fraud_pays_amount=False, review=1.0))
    run = train(config, feature_frame(history))
    assert run.threshold.threshold == math.inf and run.threshold_source == THRESHOLD_FROM_VALIDATION
    with pytest.raises(NotRegistrable, match=r"threshold inf is not a number in \[0, 1\].*alerts_per_day"):
        check_registrable(run)
    with pytest.raises(NotRegistrable, match="threshold inf"):
        check_registrable_record(run.params(), run.metrics())
    for bad in (math.nan, -0.1, 1.5):
        broken = replace(run, threshold=replace(run.threshold, threshold=bad))
        with pytest.raises(NotRegistrable, match="not a number in"):
            check_registrable(broken)
