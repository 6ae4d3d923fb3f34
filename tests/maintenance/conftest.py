"""Shared fixtures: one simulated production history in a real SQLite decision log, made once per session.

``small`` with 300 customers and 600 terminals over 70 days (about 40,000 transactions): long
enough for label maturity (about 19 days left out), a train / delay / test split and validation
folds before it, and small enough to log in a few seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mlsys_lab.data import preset, simulate
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.maintenance.history import backfill
from mlsys_lab.training import feature_frame

N_DAYS = 70
AS_OF_DAY = 70


@dataclass(frozen=True)
class History:
    """A decision log holding ``frame`` (the whole simulation, with features) and its frauds reported by ``as_of``."""

    path: Path
    frame: pd.DataFrame
    as_of: dt.datetime

    def log(self) -> DecisionLog:
        log = DecisionLog(f"sqlite:///{self.path}")
        log.create()
        return log


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    config = preset("small", random_state=0, n_customers=300, n_terminals=600, n_days=N_DAYS)
    frame = feature_frame(simulate(config).transactions)
    path = tmp_path_factory.mktemp("maintenance-log") / "decisions.db"
    log = DecisionLog(f"sqlite:///{path}")
    log.create()
    as_of_seconds = AS_OF_DAY * 86_400
    backfill(log, frame, labels_until_seconds=as_of_seconds)
    log.close()
    as_of = (pd.Timestamp(config.start_date) + pd.Timedelta(days=AS_OF_DAY)).to_pydatetime()
    return History(path=path, frame=frame, as_of=as_of)
