"""The maintenance loop's completion check, on the real loop: a watchdog that cannot act leaves it incomplete.

``make demo`` exits 1 on :meth:`LoopReport.incomplete`; the demo's own test (tests/test_demo_and_cli.py)
shows the loop completing with the default watchdog. Here the watchdog's alert-rate limit is out of
reach, so the deliberately bad challenger climbs the canary ladder unopposed, and the loop must say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.maintenance.loop import LoopConfig, miscalibrated_threshold, run_loop
from mlsys_lab.maintenance.rollout import WatchdogConfig
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, cards_per_day, feature_frame, train


def test_miscalibrated_threshold_lands_near_the_factor_even_on_a_trees_few_scores() -> None:
    # A tree's scores: most rows share one leaf. A plain quantile would put the threshold at that
    # leaf and alert on 90% of the rows; the nearest rate to 5 x 0.5% is the 2% leaf.
    scores = np.r_[np.full(900, 0.001), np.full(80, 0.02), np.full(15, 0.3), np.full(5, 0.9)]
    threshold = miscalibrated_threshold(scores, 0.005, 5.0)
    assert float(np.mean(scores >= threshold)) == pytest.approx(0.02), threshold
    with pytest.raises(ValueError, match="reference alert rate"):
        miscalibrated_threshold(scores, 0.0, 5.0)


@pytest.mark.slow  # simulates 135 days of 300 cards, trains three models, serves a few days (about 30-90 s)
def test_the_loop_is_incomplete_when_the_bad_challenger_is_not_rolled_back(tmp_path: Path) -> None:
    config = preset("small", random_state=0, n_customers=300, n_terminals=600)
    transactions = simulate(config).transactions
    tracking = TrackingSettings(root=tmp_path / "runs", experiment="loop")
    champion_config = TrainingConfig(
        family="logistic_regression", split=TimeSplit.ending_at(config.n_days), validation_folds=2
    )
    run = train(champion_config, feature_frame(transactions), tracker=Tracker(tracking))
    registry = Registry(tracking)
    version = registry.register(run).version
    registry.promote(version, who="tests", why="launch")
    registry.close()
    blind = LoopConfig(
        traffic_days=8,
        shadow_transactions=300,
        watchdog=WatchdogConfig(min_decisions=20, max_alert_rate_ratio=1e9, max_p99_ms=1e9),
    )
    loop = run_loop(
        config,
        tracking,
        tmp_path / "decisions.db",
        transactions,
        champion_config,
        first_logged_day=config.n_days,  # nothing was replayed: the log starts with the fast-forwarded days
        k=cards_per_day(config.n_customers),
        loop=blind,
    )
    assert loop.bad_alert_ratio > 2, "the bad challenger must be bad for this test to mean anything"
    assert not loop.bad.watchdog_acted
    assert loop.bad.steps and loop.bad.steps[0].challenger_decisions > 0, "the bad challenger never served"
    assert "was not rolled back" in loop.incomplete(), loop.incomplete()
    assert loop.unlogged == 0
    log = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")
    try:
        assert loop.bad_version in set(log.decisions(since_id=0)["model_version"])
    finally:
        log.close()
