"""What the service benchmarks serve: one model trained on a simulated bank and promoted to champion.

The benchmarks are scripts (``python benchmarks/bench_x.py``), so Python puts this folder first on
the import path and ``from _champion import champion`` works from any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.registry import ModelVersionInfo, Registry
from mlsys_lab.training import Tracker, TrackingSettings, TrainedRun, TrainingConfig, feature_frame, train


@dataclass(frozen=True)
class Champion:
    """The trained run, its registered version and the store that ``mlsys-lab serve`` reads."""

    run: TrainedRun
    info: ModelVersionInfo
    tracking: TrackingSettings

    def env(self, decision_log: Path) -> dict[str, str]:
        """The environment of an ``mlsys-lab serve`` that serves this champion and logs to ``decision_log``."""
        return {
            "MLSYS_LAB_TRACKING_DIR": str(self.tracking.root),
            "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{decision_log}",
        }


def champion(
    root: Path, who: str, preset_name: str = "small", family: str = "logistic_regression", **params: Any
) -> Champion:
    """Train ``family`` on ``preset_name`` (seed 0, two validation folds), register it and promote it.

    The store lives in ``root / "mlflow"``; ``who`` is recorded as the promoter.
    """
    config = preset(preset_name, random_state=0)
    frame = feature_frame(simulate(config).transactions)
    tracking = TrackingSettings(root=root / "mlflow", experiment=who.replace("_", "-"))
    run = train(
        TrainingConfig(family=family, params=params, split=TimeSplit.ending_at(config.n_days), validation_folds=2),
        frame,
        tracker=Tracker(tracking),
    )
    registry = Registry(tracking)
    try:
        info = registry.register(run)
        registry.promote(info.version, who=who, why="benchmark")
    finally:
        registry.close()
    return Champion(run=run, info=info, tracking=tracking)
