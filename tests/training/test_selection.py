"""Model selection: prequential folds, the measured trade-off table and a rule that explains itself."""

import math

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data.split import TimeSplit
from mlsys_lab.training import (
    Constraints,
    TrainingConfig,
    build_pipeline,
    candidate_grid,
    measure_latency,
    measure_memory_of,
    prequential_evaluate,
    select_model,
    split_data,
    tradeoff_table,
)

TABLE = pd.DataFrame(
    {
        "val_ap_mean": [0.60, 0.59, 0.50, 0.595],
        "val_ap_std": [0.05, 0.05, 0.02, 0.20],
        "p99_cpu_ms": [9.0, 1.0, 0.2, 0.9],
        "p99_wall_ms": [12.0, 6.5, 7.0, 6.0],  # a busy machine: every wall p99 is over the budget
        "artifact_mb": [30.0, 1.0, 0.1, 2.0],
    },
    index=["forest", "boosting", "logistic", "wobbly"],
)


def test_select_model_picks_the_cheapest_acceptable_and_says_why_others_lost():
    selection = select_model(TABLE, Constraints(quality_within_best=0.02, p99_latency_ms=5.0, max_artifact_mb=20.0))
    assert selection.chosen == "wobbly"  # acceptable and the fastest
    verdicts = selection.verdicts
    assert verdicts.loc["forest", "broken"] == "p99_cpu_ms 9.00 ms > 5 ms; artifact 30.00 MB > 20 MB"
    assert "val_ap_mean 0.500 < best 0.600 - 0.02" in verdicts.loc["logistic", "broken"]
    assert verdicts.loc["boosting", "accepted"] and verdicts.loc["boosting", "broken"] == ""
    assert "rejected forest" in selection.explain()


def test_the_cheapest_acceptable_wins_not_the_best_acceptable():
    # Three acceptable candidates whose quality order is the reverse of their cost order: a rule that
    # sorted the acceptable ones by quality would pick "best_but_slow"; the stated rule picks "cheap".
    table = pd.DataFrame(
        {
            "val_ap_mean": [0.60, 0.58, 0.56, 0.40],
            "p99_cpu_ms": [4.0, 2.0, 0.5, 0.1],
            "artifact_mb": [5.0, 1.0, 3.0, 0.1],
        },
        index=["best_but_slow", "middle", "cheap", "too_weak"],
    )
    selection = select_model(table, Constraints(quality_within_best=0.05))
    assert selection.verdicts["accepted"].tolist() == [True, True, True, False]
    assert table["val_ap_mean"].idxmax() == "best_but_slow" != selection.chosen
    assert selection.chosen == "cheap", selection.explain()
    # The order of the tie-breaking columns is the rule too: by artifact size first, "middle" wins.
    by_size = select_model(table, Constraints(quality_within_best=0.05, prefer=("artifact_mb", "p99_cpu_ms")))
    assert by_size.chosen == "middle"


def test_the_budget_is_checked_on_cpu_time_by_default_and_on_wall_time_only_when_asked():
    assert select_model(TABLE, Constraints()).verdicts.loc["boosting", "accepted"]
    on_wall = select_model(TABLE, Constraints(latency="p99_wall_ms"))
    assert on_wall.chosen is None
    assert "p99_wall_ms 6.50 ms > 5 ms" in on_wall.verdicts.loc["boosting", "broken"]


def test_the_old_name_ap_within_best_still_means_quality_within_best():
    assert Constraints(ap_within_best=0.07) == Constraints(quality_within_best=0.07)
    assert Constraints(quality_within_best=0.07).ap_within_best == 0.07
    with pytest.raises(ValueError, match="quality_within_best only"):
        Constraints(ap_within_best=0.07, quality_within_best=0.07)


def test_a_stability_limit_rejects_a_model_whose_folds_disagree():
    selection = select_model(TABLE, Constraints(max_quality_std=0.1))
    assert selection.chosen == "boosting"
    assert "quality std 0.200 > 0.1" in selection.verdicts.loc["wobbly", "broken"]


def test_no_acceptable_model_is_said_plainly_and_nan_breaks_a_limit():
    table = TABLE.assign(p99_cpu_ms=[9.0, math.nan, 7.0, 6.0])
    selection = select_model(table, Constraints())
    assert selection.chosen is None
    assert "p99_cpu_ms nan ms" in selection.verdicts.loc["boosting", "broken"]
    assert "No candidate" in selection.explain()


def test_constraints_reject_nonsense_by_name():
    with pytest.raises(ValueError, match="p99_latency_ms"):
        Constraints(p99_latency_ms=-1.0)
    with pytest.raises(ValueError, match="val_ap_mean"):
        select_model(TABLE.drop(columns="val_ap_mean"))
    with pytest.raises(ValueError, match="p99_cpu_ms"):
        select_model(TABLE.drop(columns="p99_cpu_ms"))


def test_candidate_grid_covers_the_four_families():
    split = TimeSplit(train_start_day=49)
    grid = candidate_grid(split, random_state=3)
    assert {c.family for c in grid} == {
        "logistic_regression",
        "decision_tree",
        "random_forest",
        "hist_gradient_boosting",
    }
    assert all(c.random_state == 3 for c in grid)
    assert len({c.name for c in grid}) == len(grid)
    assert len(candidate_grid(split, small=False)) > len(grid)


def test_prequential_folds_sit_before_the_test_period_and_give_mean_and_std(small_frame, small_split):
    config = TrainingConfig(family="logistic_regression", split=small_split, validation_folds=3)
    scores = prequential_evaluate(config, small_frame, k=20)
    folds = scores.folds
    assert folds["train_start_day"].tolist() == [35, 28, 21]
    assert (folds["test_start_day"] + 7 <= small_split.test_start_day).all(), "validation must not touch the test"
    assert folds["average_precision"].between(0, 1).all()
    assert scores.std["average_precision"] == pytest.approx(folds["average_precision"].std(ddof=1))
    assert "±" in scores.summary().loc["average_precision", "mean ± std"]


def test_measure_latency_times_single_numpy_rows(tiny_frame, forest_config):
    data = split_data(forest_config, tiny_frame)
    pipeline = build_pipeline(forest_config).fit(data.X_train, data.y_train)
    latency = measure_latency(pipeline, data.X_test, calls=50, warmup=5)
    assert 0 < latency.p50_cpu_ms <= latency.p99_cpu_ms
    assert 0 < latency.p50_wall_ms <= latency.p99_wall_ms
    assert latency.calls == 50 and latency.rounds == 3


def test_tradeoff_table_measures_every_candidate(tiny_frame, tiny_split, tracker):
    candidates = [
        TrainingConfig(family="logistic_regression", split=tiny_split, validation_folds=0),
        TrainingConfig(family="decision_tree", params={"max_depth": 3}, split=tiny_split, validation_folds=0),
    ]
    table, runs = tradeoff_table(candidates, tiny_frame, tracker=tracker, latency_calls=50)
    assert list(table.index) == [c.name for c in candidates] == list(runs)
    measured = [
        "fit_seconds",
        "p50_cpu_ms",
        "p99_cpu_ms",
        "p50_wall_ms",
        "p99_wall_ms",
        "bulk_rows_per_s",
        "artifact_mb",
        "peak_fit_memory_mb",
    ]
    assert (table[measured] > 0).all().all(), table[measured]
    assert np.isfinite(table[["test_ap", "test_cp_at_k"]].to_numpy()).all()
    # Serving measurements are added to the tracked runs.
    from mlsys_lab.training import runs_table

    tracked = runs_table(tracker).set_index("run_id")
    assert tracked.loc[table["run_id"].iloc[0], "p99_cpu_ms"] == pytest.approx(table["p99_cpu_ms"].iloc[0])
    assert (table["threshold_source"] == "test").all(), "validation_folds=0: chosen on the test period"


def test_fit_memory_can_be_measured_for_the_chosen_candidate_only(tiny_frame, tiny_split, tracker):
    # The demo's rule has no memory limit: it skips the traced refit of every candidate and measures the chosen one.
    candidates = [
        TrainingConfig(family="logistic_regression", split=tiny_split, validation_folds=0),
        TrainingConfig(family="decision_tree", params={"max_depth": 3}, split=tiny_split, validation_folds=0),
    ]
    table, runs = tradeoff_table(candidates, tiny_frame, tracker=tracker, latency_calls=50, measure_memory=False)
    assert table["peak_fit_memory_mb"].isna().all(), "measure_memory=False must not refit under tracemalloc"
    chosen = candidates[1].name
    filled = measure_memory_of(table, runs, tiny_frame, [chosen], tracker=tracker)
    assert filled.loc[chosen, "peak_fit_memory_mb"] > 0, filled["peak_fit_memory_mb"]
    assert math.isnan(filled.loc[candidates[0].name, "peak_fit_memory_mb"]), "only the named candidate is measured"
    assert table["peak_fit_memory_mb"].isna().all(), "the caller's table is not changed in place"
    pd.testing.assert_frame_equal(filled.drop(columns="peak_fit_memory_mb"), table.drop(columns="peak_fit_memory_mb"))
    from mlsys_lab.training import runs_table

    tracked = runs_table(tracker).set_index("run_id")
    run_id = filled.loc[chosen, "run_id"]
    assert tracked.loc[run_id, "peak_fit_memory_mb"] == pytest.approx(filled.loc[chosen, "peak_fit_memory_mb"])
