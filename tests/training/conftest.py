"""Shared data and one tracking store per test session (creating MLflow's tables takes seconds)."""

import pandas as pd
import pytest

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame


@pytest.fixture(scope="session")
def small_frame() -> pd.DataFrame:
    # small, not tiny: 70 days hold three validation folds before a 7/7/7 split.
    return feature_frame(simulate(preset("small", random_state=0)).transactions)


@pytest.fixture(scope="session")
def tiny_frame() -> pd.DataFrame:
    return feature_frame(simulate(preset("tiny", random_state=0)).transactions)


@pytest.fixture(scope="session")
def small_split() -> TimeSplit:
    return TimeSplit.ending_at(70)


@pytest.fixture(scope="session")
def tiny_split() -> TimeSplit:
    return TimeSplit.ending_at(30)


@pytest.fixture(scope="session")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Tracker:
    tracker = Tracker(TrackingSettings(root=tmp_path_factory.mktemp("tracking"), experiment="tests"))
    tracker.experiment_id()  # create the store once, outside any test's stderr capture
    return tracker


@pytest.fixture
def forest_config(tiny_split: TimeSplit) -> TrainingConfig:
    """A stochastic family on tiny data, without validation folds (tiny is too short for them)."""
    return TrainingConfig(
        family="random_forest", params={"n_estimators": 10, "max_depth": 6}, split=tiny_split, validation_folds=0
    )
