"""Behavioural tests of trained models: overfit a tiny batch, direction, invariance (Made With ML's model tests)."""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from mlsys_lab import evaluate
from mlsys_lab.data.features import FEATURE_COLUMNS, build_features
from mlsys_lab.training import TrainingConfig, build_pipeline, split_data, train
from mlsys_lab.training.datasets import SplitData

#: A serving candidate of the demo grid (the one the demo chose on small before validation used only known labels).
CHOSEN = {"family": "random_forest", "params": {"n_estimators": 25, "max_depth": 8}}


@pytest.fixture(scope="module")
def chosen(small_frame, small_split):
    config = TrainingConfig(**CHOSEN, split=small_split, validation_folds=0)
    return train(config, small_frame)


@pytest.mark.parametrize(
    ("family", "params"),
    [
        ("decision_tree", {"max_depth": None}),
        ("random_forest", {"n_estimators": 20, "max_depth": None}),
        ("hist_gradient_boosting", {"min_samples_leaf": 1, "l2_regularization": 0.0, "max_iter": 200}),
    ],
)
def test_a_model_can_overfit_a_tiny_batch(family, params, small_frame, small_split):
    # If a flexible model cannot memorise 200 rows, the training code is broken (labels shuffled, features
    # misaligned, a constant column...), whatever the validation score says.
    config = TrainingConfig(family=family, params=params, split=small_split, validation_folds=0)
    data = split_data(config, small_frame)
    rng = np.random.default_rng(0)
    frauds = np.flatnonzero(data.y_train == 1)[:20]
    genuine = rng.choice(np.flatnonzero(data.y_train == 0), 180, replace=False)
    rows = np.r_[frauds, genuine]
    X, y = data.X_train[rows], data.y_train[rows]
    with threadpool_limits(1):  # default OpenMP threads make boosting ~10x slower on 2 cores
        pipeline = build_pipeline(config).fit(X, y)
    assert evaluate.average_precision(y, pipeline.predict_proba(X)[:, 1]) > 0.99


def _raise_amounts(transactions: pd.DataFrame, rows: pd.Index, factor: float) -> pd.DataFrame:
    changed = transactions.copy()
    changed.loc[rows, "tx_amount"] = (changed.loc[rows, "customer_id_avg_amount_30day_window"] * factor).clip(
        lower=250.0
    )
    return changed


def test_raising_the_amount_far_above_the_habit_does_not_lower_the_score(chosen, small_frame, small_split):
    # Genuine test transactions with an ordinary amount, one per customer: a transaction's features depend on
    # its own amount and the same customer's earlier ones, so changing one row per customer changes nothing else.
    test = split_data(chosen.config, small_frame).test
    ordinary = test[(test["tx_fraud"] == 0) & (test["tx_amount"] < 100)]
    rows = ordinary.drop_duplicates("customer_id", keep="last").sample(200, random_state=0).index
    raw = small_frame.drop(columns=[c for c in FEATURE_COLUMNS if c != "tx_amount"])
    changed = _raise_amounts(small_frame, rows, factor=10.0)[raw.columns]
    # Recompute the features as the system would: the customer's averages include the new amount.
    before_X = small_frame.loc[rows, list(FEATURE_COLUMNS)].to_numpy()
    after_X = build_features(changed).loc[rows, list(FEATURE_COLUMNS)].to_numpy()
    amount, habit = FEATURE_COLUMNS.index("tx_amount"), FEATURE_COLUMNS.index("customer_id_avg_amount_30day_window")
    assert (after_X[:, amount] >= 250).all() and (after_X[:, amount] >= 9.99 * before_X[:, habit]).all()
    before = chosen.pipeline.predict_proba(before_X)[:, 1]
    after = chosen.pipeline.predict_proba(after_X)[:, 1]
    assert (after >= before).all(), f"{int((after < before).sum())} scores fell when the amount rose far above habit"
    assert after.mean() > before.mean() + 0.1, "a far larger amount than usual should raise suspicion markedly"


def test_renaming_customers_changes_nothing(chosen, small_frame):
    # The customer id is a key, not a signal: a permutation of ids leaves features and scores identical.
    raw_columns = [c for c in small_frame.columns if c not in FEATURE_COLUMNS or c == "tx_amount"]
    raw = small_frame[raw_columns]
    ids = raw["customer_id"].unique()
    renamed_ids = dict(zip(ids, np.random.default_rng(1).permutation(ids) + 1_000_000, strict=True))
    renamed = raw.assign(customer_id=raw["customer_id"].map(renamed_ids))
    original = small_frame[list(FEATURE_COLUMNS)].to_numpy()
    recomputed = build_features(renamed)[list(FEATURE_COLUMNS)].to_numpy()
    np.testing.assert_allclose(recomputed, original, rtol=1e-12, atol=1e-9)
    data: SplitData = split_data(chosen.config, small_frame)
    test_rows = data.test.index
    scored = chosen.pipeline.predict_proba(small_frame.loc[test_rows, list(FEATURE_COLUMNS)].to_numpy())
    rescored = chosen.pipeline.predict_proba(build_features(renamed).loc[test_rows, list(FEATURE_COLUMNS)].to_numpy())
    assert scored.tobytes() == rescored.tobytes()
