"""The numpy row path scores exactly as the pipeline it stands for, and only pipelines it knows.

What each test catches: a scorer that forgets a scaler, takes the wrong class's column, compares a
tree's float64 inputs with its thresholds where scikit-learn compares float32 ones (rows exactly on
a threshold), or is given to a subclass that overrides ``predict_proba`` (the hot-swap tests'
pipelines do) would score differently from ``predict_proba``.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlsys_lab.deployment.row_scoring import row_scorer

from .test_service_contract import SwapWhileScoring, fake_model


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6)) * [1, 10, 100, 0.1, 1, 5] + [0, 50, 200, 0, 3, 0]
    y = (X[:, 0] + X[:, 1] / 10 + rng.normal(size=400) > 5).astype(int)
    return X, y


def on_thresholds(pipeline: Pipeline, row: np.ndarray) -> np.ndarray:
    """Copies of ``row`` with one feature exactly on each split of a tree (none for a linear model)."""
    last = pipeline.steps[-1][1]
    if not isinstance(last, DecisionTreeClassifier):
        return row[None, :]
    scale = pipeline.steps[0][1] if len(pipeline.steps) > 1 else None
    rows = []
    for feature, threshold in zip(last.tree_.feature, last.tree_.threshold, strict=True):
        if feature >= 0:
            copy = row.copy()
            copy[feature] = threshold * (scale.scale_[feature] if scale is not None else 1.0)
            rows.append(copy)
    return np.array(rows)


@pytest.mark.parametrize(
    "steps",
    [
        [("scale", StandardScaler()), ("model", LogisticRegression())],
        [("model", LogisticRegression(C=0.1))],
        [("scale", StandardScaler(with_mean=False)), ("model", DecisionTreeClassifier(max_depth=4, random_state=0))],
        [("model", DecisionTreeClassifier(random_state=0))],  # grown to purity: many leaves, exact thresholds
    ],
    ids=["scaler+logistic", "logistic", "scaler+tree", "deep tree"],
)
@pytest.mark.parametrize("fraud_labels", [(0, 1), (2, 1)], ids=["fraud column 1", "fraud column 0"])
def test_the_row_path_gives_predict_proba_on_every_row(steps, fraud_labels):
    X, y = data()
    y = np.where(y == 1, fraud_labels[1], fraud_labels[0])
    pipeline = Pipeline(steps).fit(X, y)
    column = list(pipeline.classes_).index(1)
    scorer = row_scorer(pipeline, column)
    assert scorer is not None
    probe = np.vstack([X, on_thresholds(pipeline, X[0])])
    np.testing.assert_allclose(scorer(probe), pipeline.predict_proba(probe)[:, column], rtol=1e-9, atol=1e-12)
    one = scorer(X[:1])
    assert one.shape == (1,) and one.dtype == np.float64


def test_pipelines_it_does_not_know_keep_predict_proba():
    X, y = data()
    forest = Pipeline([("model", RandomForestClassifier(n_estimators=3, random_state=0))]).fit(X, y)
    assert row_scorer(forest, 1) is None
    # A subclass may override predict_proba (the hot-swap tests' pipeline does): exact types only.
    assert row_scorer(SwapWhileScoring([("model", LogisticRegression())]).fit(X, y), 1) is None
    assert fake_model(pipeline_class=SwapWhileScoring)._row_scorer is None


def test_a_served_logistic_regression_takes_the_row_path_and_scores_as_before():
    model = fake_model()
    assert model._row_scorer is not None
    rows = np.random.default_rng(2).normal(size=(20, len(model.info.features)))
    np.testing.assert_allclose(model.score(rows), model.pipeline.predict_proba(rows)[:, 1], rtol=1e-9, atol=1e-12)
