"""Tests of mlsys_lab.evaluate: each metric on hand-computed examples and against scikit-learn."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlsys_lab import evaluate


@pytest.fixture
def scored_days() -> tuple[pd.DataFrame, np.ndarray]:
    """Three days, four cards; worked out by hand in test_card_precision_by_hand."""
    tx = pd.DataFrame(
        {
            "tx_time_days": [0, 0, 0, 0, 1, 1, 1, 2, 2],
            "customer_id": [1, 1, 2, 3, 1, 2, 4, 2, 4],
            "tx_fraud": [0, 1, 0, 0, 1, 1, 0, 1, 0],
        }
    )
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.95, 0.3, 0.5, 0.7, 0.6])
    return tx, scores


def test_card_precision_by_hand(scored_days):
    tx, scores = scored_days
    # Day 0: card 1 max score 0.9 (label max 1), card 2 0.8 (0), card 3 0.2 (0). Top 2 = {1, 2}: 1 hit -> 0.5.
    # Day 1: card 1 was detected on day 0, so it is removed. Cards 4 (0.5, 0) and 2 (0.3, 1): 1 hit -> 0.5.
    # Day 2: card 2 was detected on day 1, removed. Card 4 only (0.6, 0): 0 hits / k -> 0.0.
    result = evaluate.card_precision_at_k(tx, scores, k=2)
    assert result.per_day["card_precision"].tolist() == [0.5, 0.5, 0.0]
    assert result.mean == pytest.approx(1 / 3)
    assert result.per_day["n_detected"].tolist() == [1, 1, 0]


def test_card_precision_without_removal_counts_cards_again(scored_days):
    tx, scores = scored_days
    # Without removal, day 1's top 2 are card 1 (0.95, fraud) and card 4 (0.5): 0.5.
    # Day 2: card 2 (0.7, fraud) and card 4: 0.5.
    result = evaluate.card_precision_at_k(tx, scores, k=2, remove_detected=False)
    assert result.per_day["card_precision"].tolist() == [0.5, 0.5, 0.5]


def test_card_precision_ranks_cards_not_transactions():
    # Card 1 has three high-scoring transactions; ranking transactions would fill the top 2 with card 1.
    tx = pd.DataFrame({"tx_time_days": [0] * 4, "customer_id": [1, 1, 1, 2], "tx_fraud": [1, 1, 1, 1]})
    result = evaluate.card_precision_at_k(tx, [0.9, 0.8, 0.7, 0.1], k=2)
    assert result.mean == 1.0  # two distinct compromised cards among the top 2 cards


def test_card_precision_divides_by_k_on_quiet_days():
    tx = pd.DataFrame({"tx_time_days": [0], "customer_id": [7], "tx_fraud": [1]})
    assert evaluate.card_precision_at_k(tx, [0.5], k=4).mean == 0.25


def test_card_precision_rejects_bad_input(scored_days):
    tx, scores = scored_days
    with pytest.raises(ValueError, match="k must be"):
        evaluate.card_precision_at_k(tx, scores, k=0)
    with pytest.raises(ValueError, match="customer_id"):
        evaluate.card_precision_at_k(tx.drop(columns="customer_id"), scores)
    with pytest.raises(ValueError, match="one score per label"):
        evaluate.card_precision_at_k(tx, scores[:-1])


def test_ranking_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.1
    scores = rng.random(500) + y * 0.3
    assert evaluate.roc_auc(y.astype(int), scores) == pytest.approx(skm.roc_auc_score(y, scores))
    assert evaluate.average_precision(y.astype(int), scores) == pytest.approx(skm.average_precision_score(y, scores))


def test_constant_scores_sit_at_the_floor():
    y = np.array([0] * 99 + [1])
    assert evaluate.roc_auc(y, np.zeros(100)) == 0.5
    assert evaluate.average_precision(y, np.zeros(100)) == pytest.approx(0.01)


def test_metrics_need_both_classes():
    with pytest.raises(ValueError, match="both genuine and fraud"):
        evaluate.average_precision([0, 0, 0], [0.1, 0.2, 0.3])


def test_labels_must_be_binary():
    with pytest.raises(ValueError, match="only 0"):
        evaluate.confusion_metrics([0, 2], [0, 1])


def test_confusion_metrics_fraud_is_positive_class():
    m = evaluate.confusion_metrics([0] * 9 + [1], [0] * 8 + [1, 1])
    assert (m.tp, m.fp, m.tn, m.fn) == (1, 1, 8, 0)
    assert m.precision == 0.5  # a macro average would say 0.75
    assert m.recall == 1.0
    assert m.accuracy == 0.9
    assert m.false_positive_rate == pytest.approx(1 / 9)
    assert m.f1 == pytest.approx(2 / 3)


def test_confusion_metrics_zero_division_is_zero():
    no_alerts = evaluate.confusion_metrics([0, 1], [0, 0])
    assert no_alerts.precision == 0.0 and no_alerts.recall == 0.0
    assert evaluate.confusion_metrics([0, 0], [1, 0]).recall == 0.0


def test_decision_cost_charges_each_mistake_once():
    cost = evaluate.decision_cost(
        [1, 1, 0, 0],
        [0, 1, 1, 0],
        amount=[100.0, 50.0, 20.0, 10.0],
        cost=evaluate.CostModel(missed_fraud_fixed=1.0, false_alarm=5.0, review=0.5),
    )
    assert cost == {"missed_fraud": 101.0, "false_alarms": 5.0, "reviews": 1.0, "total": 107.0}


def test_decision_cost_needs_amounts_when_charging_them():
    with pytest.raises(ValueError, match="amount is required"):
        evaluate.decision_cost([1], [0])
    assert evaluate.decision_cost([1], [0], cost=evaluate.CostModel(missed_fraud_pays_amount=False))["total"] == 10.0


def test_cost_model_rejects_negative_costs():
    with pytest.raises(ValueError, match="false_alarm"):
        evaluate.CostModel(false_alarm=-1)


def test_summarize_reports_the_accuracy_trap():
    tx = pd.DataFrame(
        {
            "tx_time_days": [0] * 100,
            "customer_id": range(100),
            "tx_fraud": [0] * 99 + [1],
            "tx_amount": [10.0] * 100,
        }
    )
    summary = evaluate.summarize(tx["tx_fraud"], np.zeros(100), tx, k=5)
    assert summary["accuracy"] == 0.99
    assert summary["recall"] == 0.0
    assert summary["card_precision@5"] == 0.0
    assert summary["cost_total"] == 20.0  # one missed fraud: amount 10 plus the fixed 10
