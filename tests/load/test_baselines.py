"""The benchmark's comparison services do the job they claim: the naive one logs each decision, the floor none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsys_lab.data.online import OnlineFeatureState
from mlsys_lab.load import baselines, scenarios


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = OnlineFeatureState().feature_names
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, len(names))), rng.integers(0, 2, 400)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    return baselines.save_model(pipeline, names, 0.5, tmp_path_factory.mktemp("m") / "model.pkl")


def _bodies(n: int) -> list[dict]:
    return list(scenarios.request_bodies(scenarios.simulated_transactions("tiny", last_days=2), n))


def test_naive_and_floor_give_the_same_scores_and_only_naive_logs(model_path: Path, tmp_path: Path) -> None:
    db = tmp_path / "naive.db"
    bodies = _bodies(30)
    with TestClient(baselines.naive_app(model_path, db)) as naive, TestClient(baselines.floor_app(model_path)) as floor:
        a = [naive.post("/v1/score", json=b).json() for b in bodies]
        b = [floor.post("/v1/score", json=b).json() for b in bodies]
    assert [x["score"] for x in a] == pytest.approx([x["score"] for x in b])
    assert len({x["score"] for x in a}) > 1  # the features moved the score: not a constant
    with sqlite3.connect(db) as connection:
        logged = [row[0] for row in connection.execute("SELECT transaction_id FROM decisions")]
    assert logged == [body["transaction_id"] for body in bodies]  # one committed row per answer
