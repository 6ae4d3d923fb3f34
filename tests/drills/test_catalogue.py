"""The drill catalogue's argument checks, without a server."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsys_lab.drills import AnswerKey, DrillRecord, DrillSystem
from mlsys_lab.drills.catalogue import spike_mitigated


def _record(kind: str, *, fast: bool = True, random_state: int = 0) -> DrillRecord:
    key = AnswerKey(kind=kind, root_cause="none", start_s=0.0, start_utc="", impact={})
    return DrillRecord(kind, fast, random_state, key, measured={}, load={}, alerts=[])


@pytest.mark.parametrize(
    ("as_is", "names"),
    [
        (_record("skew"), "'skew'"),
        (_record("spike", fast=False), "fast=False"),
        (_record("spike", random_state=3), "random_state 3"),
    ],
)
def test_the_mitigated_spike_refuses_an_as_is_record_of_another_drill_mode_or_seed(tmp_path, as_is, names):
    system = DrillSystem(tmp_path, None, 1, 2, pd.DataFrame(), random_state=0)
    with pytest.raises(ValueError, match="run drill 'spike' first") as refused:
        spike_mitigated(system, tmp_path, fast=True, as_is=as_is)
    assert names in str(refused.value)
    assert not any(tmp_path.iterdir()), "nothing may start before the record is refused"
