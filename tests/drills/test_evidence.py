"""A drill's evidence holds each request the generator sent: its counts are the answer key's, the drill unchanged."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsys_lab.drills import catalogue
from mlsys_lab.drills.evidence import REQUEST_COLUMNS, run_with_evidence
from mlsys_lab.drills.traffic import Traffic


def test_an_unknown_drill_is_refused_and_the_catalogue_is_left_as_it_was(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        run_with_evidence("meteor", None, tmp_path)  # type: ignore[arg-type]
    assert catalogue.Traffic is Traffic


@pytest.mark.slow
def test_api_crash_evidence_recomputes_the_answer_key(drill_system, tmp_path):
    evidence = run_with_evidence("api_crash", drill_system, tmp_path)
    key, requests = evidence.record.answer_key, evidence.requests
    assert catalogue.Traffic is Traffic
    assert list(requests.columns) == list(REQUEST_COLUMNS)
    assert len(requests) == evidence.record.load["requests"]
    assert int((requests["status"] != 200).sum()) == key.impact["requests_failed"] > 0
    acknowledged = set(requests.loc[requests["status"] == 200, "request_id"])
    assert len(acknowledged - set(evidence.decisions["request_id"])) == key.impact["decisions_lost"] == 0
    # The key's wall-clock start is the traffic's start plus the key's seconds, to the millisecond.
    assert abs((evidence.utc(key.start_s) - pd.Timestamp(key.start_utc)).total_seconds()) < 0.002
