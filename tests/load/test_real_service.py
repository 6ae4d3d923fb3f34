"""One short locust run against the real ``mlsys-lab serve``: the request pool is what the service accepts.

The service is changing in another branch, so this checks only what the load layer owns: every
pre-built body is accepted (no 409 from a repeated id, no 422), locust's counts match the decision
log, and the runner's numbers agree with what the server logged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import run_server
from mlsys_lab.load import runner, scenarios
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame, train

pytestmark = pytest.mark.slow


def test_locust_against_mlsys_lab_serve_every_request_accepted_and_logged(tmp_path: Path) -> None:
    tracking = TrackingSettings(root=tmp_path / "mlflow", experiment="load-test")
    frame = feature_frame(
        simulate(preset("tiny", random_state=0, n_customers=500, n_terminals=1000, n_days=45)).transactions
    )
    config = TrainingConfig(family="logistic_regression", split=TimeSplit.ending_at(45), validation_folds=2)
    registry = Registry(tracking)
    info = registry.register(train(config, frame, tracker=Tracker(tracking)))
    registry.promote(info.version, who="tests", why="load test")
    registry.close()
    log_url = f"sqlite:///{tmp_path / 'decisions.db'}"
    env = {"MLSYS_LAB_TRACKING_DIR": str(tracking.root), "MLSYS_LAB_DECISION_LOG_URL": log_url}

    # More requests than the pool's days hold once: the repeated days need fresh ids to be accepted.
    transactions = scenarios.simulated_transactions("tiny", last_days=1)
    pool = scenarios.write_request_pool(tmp_path / "pool.jsonl", transactions, len(transactions) + 100)
    n = len(transactions) + 50
    with run_server(env, output=tmp_path / "serve.log", wait_path="/ready") as server:
        result = runner.run_locust(
            server.url, scenarios.steady(4, 30, ramp_up_s=1), tmp_path / "run", pool=pool, max_requests=n
        )
    assert result.failures == {} and result.requests == n, (result.failures, result.notes)
    log = DecisionLog(log_url)
    try:
        assert len(log.decisions()) == n
    finally:
        log.close()
