"""The decision threshold: daily alert budget first, then the cheapest threshold within it."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_lab import evaluate
from mlsys_lab.training import choose_threshold, threshold_for_budget, threshold_report


def test_threshold_for_budget_agrees_with_module_00_examples():
    assert threshold_for_budget([0.9, 0.2, 0.6, 0.4, 0.8, 0.3], [0, 0, 0, 1, 1, 1], 2) == 0.4
    assert threshold_for_budget([0.5, 0.5, 0.5, 0.1], [0, 0, 0, 0], 2) == math.inf  # ties alert together
    assert threshold_for_budget([0.7, 0.5, 0.5, 0.1], [0, 0, 0, 0], 2) == 0.7
    assert threshold_for_budget([0.3, 0.2], [0, 0], 5) == 0.2
    assert threshold_for_budget([0.3, 0.2], [0, 0], 0) == math.inf


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.8, 0.9]), min_size=1, max_size=40),
    data=st.data(),
    budget=st.integers(0, 6),
)
def test_threshold_for_budget_is_the_lowest_observed_score_within_budget(scores, data, budget):
    days = data.draw(st.lists(st.integers(0, 3), min_size=len(scores), max_size=len(scores)))
    scores, days = np.array(scores), np.array(days)

    def worst_day(t: float) -> int:
        return max(int(((scores >= t) & (days == d)).sum()) for d in np.unique(days))

    feasible = [t for t in np.unique(scores) if worst_day(t) <= budget]
    assert threshold_for_budget(scores, days, budget) == (min(feasible) if feasible else math.inf)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=1, max_size=30),
    data=st.data(),
    budget=st.integers(0, 5),
    false_alarm=st.sampled_from([0.0, 5.0, 50.0]),
)
def test_choose_threshold_is_the_cheapest_within_budget(labels, data, budget, false_alarm):
    n = len(labels)
    scores = np.array(data.draw(st.lists(st.sampled_from([0.1, 0.4, 0.6, 0.9]), min_size=n, max_size=n)))
    amount = np.array(data.draw(st.lists(st.floats(1, 300), min_size=n, max_size=n)))
    days = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    cost = evaluate.CostModel(false_alarm=false_alarm)
    choice = choose_threshold(labels, scores, amount, days, budget, cost)
    budget_threshold = threshold_for_budget(scores, days, budget)
    candidates = [t for t in [*np.unique(scores), math.inf] if t >= budget_threshold]

    def total(t: float) -> float:
        return evaluate.decision_cost(labels, (scores >= t).astype(int), amount, cost)["total"]

    assert choice.threshold >= budget_threshold
    assert choice.alerts_per_day_max <= budget
    assert math.isclose(total(choice.threshold), min(total(t) for t in candidates), rel_tol=1e-9, abs_tol=1e-9)
    n_days = len(np.unique(days))
    assert math.isclose(choice.expected_daily_cost, total(choice.threshold) / n_days, rel_tol=1e-9, abs_tol=1e-9)


def test_threshold_report_counts_alerts_per_day_and_cost():
    report = threshold_report(0.5, [1, 0, 0, 1], [0.9, 0.6, 0.1, 0.2], [100.0, 10.0, 10.0, 40.0], [0, 0, 1, 1], 2)
    assert report.alerts_per_day_mean == 1.0 and report.alerts_per_day_max == 2
    # Missed: the 40.0 fraud (+10 fixed); false alarm: 5. Two days.
    assert report.expected_daily_cost == (40.0 + 10.0 + 5.0) / 2
    assert report.precision == 0.5 and report.recall == 0.5
