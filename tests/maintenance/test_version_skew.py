"""The version-skew window with several workers, read from the decision log: a unit check of the reading, and one
real ``mlsys-lab serve --workers 2`` whose alias moves twice under steady traffic with no failed request."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import pytest

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import CHAMPION, Registry
from mlsys_lab.deployment.server import run_server
from mlsys_lab.load import scenarios
from mlsys_lab.maintenance.skew import SteadyTraffic, version_skew
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame, train

T0 = pd.Timestamp("2026-12-01T21:00:00Z")


def _log(seconds: list[float], versions: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"decided_at": [T0 + pd.Timedelta(seconds=s) for s in seconds], "model_version": versions})


def test_skew_window_is_the_overlap_after_the_move() -> None:
    # Before the move only version 1 counts for nothing; after it, 2 starts at +1.0 s, 1 last decides at +2.5 s.
    log = _log([-3, 0.5, 1.0, 1.5, 2.5, 3.0, 4.0], [1, 1, 2, 1, 1, 2, 2])
    skew = version_skew(log, old=1, new=2, moved_at=T0.to_pydatetime())
    assert skew.first_new_seconds == pytest.approx(1.0) and skew.followed_seconds == pytest.approx(2.5)
    assert skew.window_seconds == pytest.approx(1.5), "both versions decided from +1.0 s to +2.5 s"
    assert skew.mixed == 3 and skew.old_after_move == 3 and skew.decisions == 6


def test_no_skew_when_the_old_version_stops_first_and_nan_before_any_new_decision() -> None:
    clean = version_skew(_log([0.2, 1.0, 2.0], [1, 2, 2]), old=1, new=2, moved_at=T0.to_pydatetime())
    assert clean.window_seconds == 0.0 and clean.mixed == 0 and clean.followed_seconds == pytest.approx(0.2)
    waiting = version_skew(_log([0.2, 1.0], [1, 1]), old=1, new=2, moved_at=T0.to_pydatetime())
    assert waiting.first_new is None and pd.isna(waiting.window_seconds)
    with pytest.raises(ValueError, match="two versions"):
        version_skew(_log([0.0], [1]), old=1, new=1, moved_at=T0.to_pydatetime())


@pytest.mark.slow
def test_two_workers_follow_two_alias_moves_under_steady_traffic(tmp_path: Path) -> None:
    tracking = TrackingSettings(root=tmp_path / "mlflow", experiment="skew")
    frame = feature_frame(
        simulate(preset("tiny", random_state=0, n_customers=500, n_terminals=1000, n_days=45)).transactions
    )
    tracker = Tracker(tracking)
    config = TrainingConfig(family="logistic_regression", split=TimeSplit.ending_at(45), validation_folds=1)
    registry = Registry(tracking)
    v1, v2 = (registry.register(train(config, frame, tracker=tracker).run_id).version for _ in range(2))  # type: ignore[arg-type]
    registry.promote(v1, who="tests", why="initial deployment")
    log_url = f"sqlite:///{tmp_path / 'decisions.db'}"
    env = {
        "MLSYS_LAB_TRACKING_DIR": str(tracking.root),
        "MLSYS_LAB_DECISION_LOG_URL": log_url,
        "MLSYS_LAB_MODEL_REFRESH_SECONDS": "0.5",
    }
    bodies = scenarios.request_bodies(scenarios.simulated_transactions("tiny", last_days=2), 3_000)  # the bound
    log = DecisionLog(log_url)
    skews, settled = [], []
    # Two workers each import MLflow and scikit-learn and load the model: on a loaded 2-core box that took over 60 s.
    with run_server(env, output=tmp_path / "serve.log", workers=2, wait_path="/ready", start_timeout=180) as server:
        traffic = SteadyTraffic(server.url, bodies, threads=3, max_seconds=300).start()
        try:
            for old, new in ((v1, v2), (v2, v1)):
                before = int(log.decisions()["id"].max()) if len(log.decisions()) else 0
                registry.set_alias(CHAMPION, new, who="tests", why="skew move")
                moved_at = registry.history().iloc[-1]["at"]
                deadline, done = time.monotonic() + 120, False  # a bound for a loaded machine, not a timing check
                while not done and time.monotonic() < deadline:
                    newest = log.decisions(since_id=before).tail(30)
                    done = len(newest) == 30 and bool((newest["model_version"] == new).all())
                    time.sleep(0.2)
                settled.append(done)
                skews.append(version_skew(log.decisions(since_id=before), old=old, new=new, moved_at=moved_at))
        finally:
            traffic.stop()
    decisions = log.decisions()
    log.close()
    assert traffic.failed == 0 and traffic.sent > 0, (traffic.statuses, traffic.errors[:3])
    assert traffic.acknowledged <= set(decisions["request_id"]), "every acknowledged decision is in the log"
    # Both workers followed each move: 30 decisions in a row by the new version, over new connections.
    assert settled == [True, True], [(s.old, s.new, s.decisions, s.old_after_move) for s in skews]
    for skew in skews:
        # The log shows the move: the new version decided after it, and the window is a number of seconds.
        assert skew.first_new is not None, f"no decision by version {skew.new} after the move"
        assert math.isfinite(skew.window_seconds) and math.isfinite(skew.followed_seconds)
        assert 0 <= skew.mixed <= skew.decisions and skew.old_after_move < skew.decisions
