"""Short runs against the real ``mlsys-lab serve``: the request pool is what the service accepts, and its stages.

What the load layer owns: every pre-built body is accepted (no 409 from a repeated id, no 422),
locust's counts match the decision log, and the request-path profile reads every ``Server-Timing``
stage from answers that were real, logged decisions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import run_server
from mlsys_lab.load import request_path, runner, scenarios
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A registered champion, and where ``mlsys-lab serve`` finds it; each test brings its own decision log."""
    tmp_path = tmp_path_factory.mktemp("real-service")
    tracking = TrackingSettings(root=tmp_path / "mlflow", experiment="load-test")
    frame = feature_frame(
        simulate(preset("tiny", random_state=0, n_customers=500, n_terminals=1000, n_days=45)).transactions
    )
    config = TrainingConfig(family="logistic_regression", split=TimeSplit.ending_at(45), validation_folds=2)
    registry = Registry(tracking)
    info = registry.register(train(config, frame, tracker=Tracker(tracking)))
    registry.promote(info.version, who="tests", why="load test")
    registry.close()
    return {"MLSYS_LAB_TRACKING_DIR": str(tracking.root)}


def logged_decisions(log_url: str) -> int:
    """How many decisions the log at ``log_url`` holds."""
    log = DecisionLog(log_url)
    try:
        return len(log.decisions())
    finally:
        log.close()


def test_locust_against_mlsys_lab_serve_every_request_accepted_and_logged(
    tmp_path: Path, service_env: dict[str, str]
) -> None:
    log_url = f"sqlite:///{tmp_path / 'decisions.db'}"
    env = {**service_env, "MLSYS_LAB_DECISION_LOG_URL": log_url}

    # More requests than the pool's days hold once: the repeated days need fresh ids to be accepted.
    transactions = scenarios.simulated_transactions("tiny", last_days=1)
    pool = scenarios.write_request_pool(tmp_path / "pool.jsonl", transactions, len(transactions) + 100)
    n = len(transactions) + 50
    with run_server(env, output=tmp_path / "serve.log", wait_path="/ready") as server:
        result = runner.run_locust(
            server.url, scenarios.steady(4, 30, ramp_up_s=1), tmp_path / "run", pool=pool, max_requests=n
        )
    assert result.failures == {} and result.requests == n, (result.failures, result.notes)
    assert logged_decisions(log_url) == n


def test_the_request_path_profile_reads_every_stage_from_real_answers(
    tmp_path: Path, service_env: dict[str, str]
) -> None:
    log_url = f"sqlite:///{tmp_path / 'decisions.db'}"
    env = {**service_env, "MLSYS_LAB_DECISION_LOG_URL": log_url}
    transactions = scenarios.simulated_transactions("tiny", last_days=1)
    pool = scenarios.write_request_pool(tmp_path / "pool.jsonl", transactions, 60)
    bad = tmp_path / "bad.jsonl"
    first = json.loads(pool.read_text().splitlines()[0])
    first["body"]["amount"] = "lots"
    bad.write_text(json.dumps(first) + "\n")
    with run_server(env, output=tmp_path / "serve.log", wait_path="/ready") as server:
        stages = request_path.stage_times(server.url, pool, requests=50)
        with pytest.raises(RuntimeError, match="422"):  # a profile of refused requests measures the wrong path
            request_path.stage_times(server.url, bad, requests=1)
    assert list(stages.columns) == [*request_path.STAGES, "around", "client"] and len(stages) == 50
    assert (stages[list(request_path.STAGES)] >= 0).all().all()
    assert (stages["model"] > 0).all() and (stages["log"] > 0).all(), "a stage the service runs was reported as 0"
    # total is timed around the stages (rounded to the microsecond), and the client waited for all of it.
    assert (stages["around"] >= -0.005).all() and (stages["client"] >= stages["total"] - 0.005).all()
    assert logged_decisions(log_url) == 50, "every profiled request is a real, logged decision"
