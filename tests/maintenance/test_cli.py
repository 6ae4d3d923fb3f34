"""``mlsys-lab retrain``, ``gate`` and ``rollout`` on a real decision log and a real registry: decisions printed,
exit codes that say whether they refused, records stored."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlsys_lab.cli import app
from mlsys_lab.deployment.registry import CHAMPION, Registry
from mlsys_lab.maintenance.gate import GateStore
from mlsys_lab.maintenance.rollout import RolloutStore
from mlsys_lab.training import TrackingSettings

from .conftest import History

pytestmark = pytest.mark.slow  # two tracked trainings and a registry


def test_retrain_gate_and_rollout_commands(history: History, tmp_path: Path) -> None:
    shutil.copy(history.path, tmp_path / "decisions.db")
    store = ["--tracking-dir", str(tmp_path / "mlflow"), "--decision-log", f"sqlite:///{tmp_path / 'decisions.db'}"]
    runner = CliRunner()
    day60 = (history.as_of - dt.timedelta(days=10)).date().isoformat()
    first = runner.invoke(
        app, ["retrain", "--as-of", day60, "--family", "decision_tree", "--validation-folds", "1", *store]
    )
    assert first.exit_code == 0, first.output
    assert "maturity:" in first.output and "registered as version 1" in first.output
    registry = Registry(TrackingSettings(root=tmp_path / "mlflow"))
    registry.promote(1, who="tests", why="initial deployment")

    second = runner.invoke(
        app, ["retrain", "--as-of", history.as_of.date().isoformat(), "--trigger", "schedule", *store]
    )
    assert second.exit_code == 0, second.output
    assert "trigger schedule" in second.output and "registered as version 2" in second.output

    # Without a passing gate decision, promotion is refused.
    refused = runner.invoke(app, ["rollout", "promote", "2", "--tracking-dir", str(tmp_path / "mlflow")])
    assert refused.exit_code == 1 and "no passing gate decision" in refused.output

    # A version the registry does not hold is refused as bad arguments (exit 2), and nothing is stored.
    unknown = runner.invoke(app, ["gate", "9", "--as-of", history.as_of.date().isoformat(), *store])
    assert unknown.exit_code == 2 and "gate refused" in unknown.output, unknown.output
    gate = runner.invoke(app, ["gate", "2", "--as-of", history.as_of.date().isoformat(), *store])
    promoted = "gate: PROMOTE" in gate.output
    assert gate.exit_code == (0 if promoted else 1), gate.output
    assert "gain in card precision@" in gate.output and "decision 1 stored" in gate.output
    stored = GateStore(tmp_path / "mlflow").get(1)
    assert stored["challenger_version"] == 2 and stored["champion_version"] == 1
    assert {c["name"] for c in stored["checks"]} >= {"unseen_days", "latency", "checksum", "alert_rate"}

    canary = runner.invoke(
        app, ["rollout", "canary", "2", "--share", "0.05", "--tracking-dir", str(tmp_path / "mlflow")]
    )
    assert canary.exit_code == 0 and RolloutStore(tmp_path / "mlflow").current().share == 0.05
    promote = runner.invoke(app, ["rollout", "promote", "2", "--tracking-dir", str(tmp_path / "mlflow")])
    assert promote.exit_code == (0 if promoted else 1), promote.output
    back = runner.invoke(app, ["rollout", "rollback", "--why", "test", "--tracking-dir", str(tmp_path / "mlflow")])
    if promoted:
        assert back.exit_code == 0 and registry.get(CHAMPION).version == 1
        assert registry.history().iloc[-2]["why"].startswith("gate decision 1")
    else:
        assert back.exit_code == 1 and "rollback refused" in back.output  # nothing promoted to undo
    # A promotion or rollback ends the canary; a refused one leaves it as it was.
    assert RolloutStore(tmp_path / "mlflow").current().mode == ("off" if promoted else "canary")
