"""A drill's evidence is read from its record: each request the generator sent, its counts the answer key's."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlsys_lab.drills.evidence import REQUEST_COLUMNS, evidence_of, run_with_evidence
from mlsys_lab.drills.record import AnswerKey, DrillRecord


def _record(**changes) -> DrillRecord:
    key = AnswerKey("concept_drift", "concept_drift", 0.0, "2018-05-01T00:00:00+00:00", {})
    return DrillRecord(kind="concept_drift", fast=True, random_state=0, answer_key=key, measured={}, load={},
                       alerts=[], **changes)  # fmt: skip


def test_an_unknown_drill_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        run_with_evidence("meteor", None, tmp_path)  # type: ignore[arg-type]


def test_a_record_without_requests_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="simulated time"):
        evidence_of(_record())


@pytest.mark.slow
def test_api_crash_evidence_recomputes_the_answer_key(drill_system, tmp_path):
    evidence = run_with_evidence("api_crash", drill_system, tmp_path)
    key, requests, record = evidence.record.answer_key, evidence.requests, evidence.record
    assert list(requests.columns) == list(REQUEST_COLUMNS)
    assert len(requests) == len(record.requests) == record.load["requests"]
    assert requests["index"].is_monotonic_increasing
    assert int((requests["status"] != 200).sum()) == key.impact["requests_failed"] > 0
    acknowledged = set(requests.loc[requests["status"] == 200, "request_id"])
    assert len(acknowledged - set(evidence.decisions["request_id"])) == key.impact["decisions_lost"] == 0
    # The key's wall-clock start is the traffic's start plus the key's seconds, to the millisecond.
    assert abs((evidence.utc(key.start_s) - pd.Timestamp(key.start_utc)).total_seconds()) < 0.002
    # The record written as JSON keeps the request log: evidence can be rebuilt from the file alone.
    saved = json.loads(record.write(tmp_path / "record.json").read_text())
    assert len(saved["requests"]) == len(requests) and saved["traffic_started_wall"] == record.traffic_started_wall
