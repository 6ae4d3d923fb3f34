"""One prepared system per session (two registered versions, seven days of traffic): each drill serves its own alias."""

from __future__ import annotations

import pytest

from mlsys_lab.drills import DrillSystem, prepare_system


@pytest.fixture(scope="session")
def drill_system(tmp_path_factory: pytest.TempPathFactory) -> DrillSystem:
    return prepare_system(tmp_path_factory.mktemp("drill-system"), random_state=0)
