"""The matured-recall rule: quiet when one cluster of frauds is missed by chance, still firing on card testing.

What each test catches: a rule that counts clustered frauds as independent (the binomial test that
raised 5-7 false alarms per 100 drift-free days), one that decides on a handful of known frauds,
and one that no longer sees card testing at ten times its default rate, or sees it before any of
its labels could have arrived.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data import CardTesting, preset, simulate
from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.monitoring.drift import WindowTooSmall
from mlsys_lab.monitoring.evaluation import daily_alarms
from mlsys_lab.monitoring.performance import RecallDropRule, known_frauds, recall_variance
from mlsys_lab.training import TrainingConfig, build_pipeline, feature_frame, split_data
from mlsys_lab.training.threshold import threshold_for_budget

pytestmark = pytest.mark.filterwarnings("error")


def _frauds(alerted: list[int], terminals: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": range(len(alerted)), "terminal_id": terminals, "alerted": np.asarray(alerted, dtype=float)}
    )


def _binomial_pvalue(reference: pd.DataFrame, current: pd.DataFrame) -> float:
    # The old test: a pooled two-proportion z-test, every fraud an independent draw.
    p, q = reference["alerted"].mean(), current["alerted"].mean()
    pooled = (reference["alerted"].sum() + current["alerted"].sum()) / (len(reference) + len(current))
    se = math.sqrt(pooled * (1 - pooled) * (1 / len(reference) + 1 / len(current)))
    return float(0.5 * math.erfc(-(q - p) / se / math.sqrt(2)))


def test_one_missed_terminal_is_not_evidence_of_a_drop() -> None:
    # Reference: 60 independent frauds, half caught. Current: the same 30 independent frauds plus one
    # compromised terminal whose 30 frauds the model missed together (one cluster, not 30 draws).
    reference = _frauds([1, 0] * 30, list(range(60)))
    current = _frauds([1, 0] * 15 + [0] * 30, list(range(100, 130)) + [999] * 30)
    assert _binomial_pvalue(reference, current) < 0.01, "the binomial test calls this a drop: the old false alarm"
    judged = RecallDropRule().compare(reference, current)
    assert judged.reference_recall == 0.5 and judged.current_recall == 0.25, "a drop of 0.25, above the size bound"
    assert not judged.alarm and judged.pvalue > RecallDropRule().alpha, (
        f"30 frauds of one terminal are one piece of evidence, not 30: p = {judged.pvalue:.4f}"
    )
    # The same drop spread over 60 independent frauds is evidence.
    spread = _frauds([1, 0] * 15 + [0] * 30, list(range(200, 260)))
    assert RecallDropRule().compare(reference, spread).alarm, "a drop over independent frauds must alarm"
    assert recall_variance(current) > 5 * recall_variance(spread)


def test_too_few_known_frauds_is_no_decision() -> None:
    reference = _frauds([1, 0] * 30, list(range(60)))
    with pytest.raises(WindowTooSmall, match="min_known_frauds"):
        RecallDropRule(min_known_frauds=10).compare(reference, _frauds([0] * 9, list(range(9))))


def test_known_frauds_uses_only_labels_known_at_the_report() -> None:
    window = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "terminal_id": [7, 8, 9],
            "tx_fraud": [1, 1, 0],
            "tx_label_seconds": [100, 10_000, 200],
        }
    )
    frauds = known_frauds(window, [0.9, 0.1, 0.8], as_of_seconds=1_000, threshold=0.5)
    assert frauds["customer_id"].tolist() == [1] and frauds["alerted"].tolist() == [1.0]


@pytest.mark.slow  # one `small` world simulated, featurised and scored (about 10-20 s)
def test_card_testing_at_ten_times_its_rate_fires_matured_recall_after_its_labels_can_arrive() -> None:
    start = 55
    sim = simulate(
        preset("small", random_state=0, drift=(CardTesting(start_day=start, customers_per_5k_per_day=30.0),))
    )
    frame = feature_frame(sim.transactions)
    config = TrainingConfig(family="logistic_regression", split=TimeSplit(train_start_day=30), validation_folds=0)
    data = split_data(config, frame)
    scores = (
        build_pipeline(config)
        .fit(data.X_train, data.y_train)
        .predict_proba(frame[list(FEATURE_COLUMNS)].to_numpy())[:, 1]
    )
    days = frame["tx_time_days"].to_numpy()
    reference = (days >= 44) & (days <= 50)
    threshold = threshold_for_budget(scores[reference], days[reference], 20)
    alarms = daily_alarms(
        sim.transactions,
        frame[["tx_amount"]],  # one feature keeps the drift part cheap: the recall detector is under test
        scores,
        threshold=threshold,
        reference_days=(44, 50),
        days=range(51, 70),
        binary=(),
        calendar=None,
    )
    recall = alarms[alarms["detector"] == "matured recall"].set_index("day")["alarm"]
    rule = RecallDropRule()
    # A report on day d judges days up to d - lag: before start + lag, no card-testing fraud is in any window.
    assert not recall.loc[: start + rule.lag_days - 1].any(), "an alarm before any card-testing label existed"
    assert recall.loc[start:].sum() >= 3, f"card testing x10 should keep matured recall alarming: {recall.to_dict()}"
