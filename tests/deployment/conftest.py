"""Shared fixtures: tiny simulated data and one tracking store with three tracked runs per session.

The tracked runs must pass the registration contract (threshold chosen on validation, in [0, 1]),
so they train on slightly larger data than ``tiny`` (``REGISTRABLE_DAYS`` days, two validation
folds): the smallest on which all three configs below get a finite threshold from validation.

MLflow's first use of a store creates its tables (seconds), so the store and the runs are made once;
tests that need a registry of their own use a fresh model name on that store (``fresh_registry``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mlsys_lab.data import Simulation, preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.training import Tracker, TrackingSettings, TrainedRun, TrainingConfig, feature_frame, train


@dataclass(frozen=True)
class TrackedStore:
    """A tracking store holding three tracked runs with different model files."""

    settings: TrackingSettings
    tracker: Tracker
    runs: tuple[TrainedRun, ...]


@pytest.fixture(scope="session")
def tiny_simulation() -> Simulation:
    return simulate(preset("tiny", random_state=0))


@pytest.fixture(scope="session")
def tiny_frame(tiny_simulation: Simulation) -> pd.DataFrame:
    return feature_frame(tiny_simulation.transactions)


REGISTRABLE_DAYS = 45


def registrable_configs(n: int = 3) -> list[TrainingConfig]:
    """Configs whose runs on ``registrable_frame`` pass the registration contract (different thresholds)."""
    split = TimeSplit.ending_at(REGISTRABLE_DAYS)
    configs = [
        TrainingConfig(family="logistic_regression", split=split, validation_folds=2),
        TrainingConfig(family="logistic_regression", params={"C": 0.01}, split=split, validation_folds=2),
        TrainingConfig(family="decision_tree", params={"max_depth": 3}, split=split, validation_folds=2),
    ]
    return configs[:n]


@pytest.fixture(scope="session")
def registrable_frame() -> pd.DataFrame:
    """Enough days for two validation folds before the test period, so thresholds come from validation."""
    config = preset("tiny", random_state=0, n_customers=500, n_terminals=1000, n_days=REGISTRABLE_DAYS)
    return feature_frame(simulate(config).transactions)


@pytest.fixture(scope="session")
def tracked_store(tmp_path_factory: pytest.TempPathFactory, registrable_frame: pd.DataFrame) -> TrackedStore:
    settings = TrackingSettings(root=tmp_path_factory.mktemp("deployment-store"), experiment="deployment-tests")
    tracker = Tracker(settings)
    runs = tuple(train(config, registrable_frame, tracker=tracker) for config in registrable_configs())
    assert len({tracker.client.get_run(r.run_id).data.tags["model_sha256"] for r in runs}) == 3
    return TrackedStore(settings=settings, tracker=tracker, runs=runs)


@pytest.fixture
def fresh_registry(tracked_store: TrackedStore) -> Iterator[Registry]:
    """A registry of its own (a new model name) on the session's store: no versions, no aliases, no history."""
    registry = Registry(tracked_store.settings, model_name=f"fraud-detector-{uuid.uuid4().hex[:8]}")
    yield registry
    registry.close()


@pytest.fixture
def protect_file() -> Iterator[Callable[[Path], None]]:
    """``protect_file(path)`` before corrupting a shared file: it gets its original bytes back after the test."""
    saved: dict[Path, bytes] = {}

    def protect(path: Path) -> None:
        saved.setdefault(path, path.read_bytes())

    yield protect
    for path, data in saved.items():
        path.write_bytes(data)
