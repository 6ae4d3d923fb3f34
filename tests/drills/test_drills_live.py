"""Every drill in fast mode against a real ``mlsys-lab serve`` on 127.0.0.1: its answer key matches what it recorded.

The answer key comes from the injection and the raw evidence (each request's answer, the decision
log read back); the record's ``measured`` fields come from what the monitoring saw (alerts,
``/ready`` scrapes, drift statistics). No timing is asserted: the machine may be busy.
"""

from __future__ import annotations

import math

import pytest

from mlsys_lab.drills import ROOT_CAUSES, SKIPPED, run_drill

pytestmark = pytest.mark.slow  # each drill starts one to three servers


def test_corrupt_model_keeps_the_good_version_and_ready_says_why(drill_system, tmp_path):
    record = run_drill("corrupt_model", drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert got["reload_status"] == 409, "the reload of a version with flipped bytes must be refused"
    assert got["serving_version"] == key.impact["serving_version"] == drill_system.good_version
    assert key.impact["decisions_by_corrupt_version"] == 0 and key.impact["requests_failed"] == 0
    assert key.impact["decisions_lost"] == 0
    assert got["ready_says_why"] == 1.0, "/ready must carry the refusal's reason (IntegrityError)"
    assert got["detected_at_s"] >= key.start_s, "the alert cannot fire before the fault"
    assert [move["to_version"] for move in record.registry_history] == [
        drill_system.good_version,
        drill_system.spare_version,
    ]
    # The spare version's file got its bytes back: other drills can use it.
    from mlsys_lab.deployment.registry import Registry

    assert Registry(drill_system.tracking).verify(drill_system.spare_version).version == drill_system.spare_version


def test_api_crash_loses_no_acknowledged_decision_and_measures_the_downtime(drill_system, tmp_path):
    record = run_drill("api_crash", drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert key.root_cause == "process_crash"
    assert key.impact["decisions_lost"] == 0, "a decision answered 200 is missing from the log"
    assert key.impact["requests_failed"] > 0 and key.impact["status_500"] == 0
    assert math.isfinite(key.impact["recovery_s"]) and key.impact["recovery_s"] > 0, "the restart must be seen"
    assert got["first_failure_s"] >= key.start_s and got["recovered_at_s"] > got["first_failure_s"]
    assert got["detected_at_s"] >= key.start_s, "the burn-rate page fires after the kill, not before"
    assert len(record.server_logs) == 2, "killed once, restarted once"


def test_a_read_only_log_answers_503_with_the_reason_never_500_and_loses_nothing(drill_system, tmp_path):
    record = run_drill("log_unwritable", drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert key.impact["status_500"] == 0 and key.impact["decisions_lost"] == 0
    assert got["answered_503"] > 0, "the read-only phase must answer 503"
    assert got["reason_names_the_log"] == 1.0, "every 503 must say the decision log refused"
    assert len(record.server_logs) == 3, "read-write, read-only, read-write"


def test_skew_from_a_hidden_time_is_detected_by_score_drift_after_it_started(drill_system, tmp_path):
    record = run_drill("skew", drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert key.root_cause == "client_unit_change" and key.impact["decisions_on_wrong_unit"] > 0
    assert got["false_alarms_before_start"] == 0
    assert math.isfinite(got["detected_at_s"]) and got["detection_delay_s"] > 0


def test_spike_runs_three_times_the_rate_and_scores_the_capacity_prediction(drill_system, tmp_path):
    record = run_drill("spike", drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert key.impact["spike_rate"] == 3 * 15.0
    # Requests are scheduled at a fixed rate: exactly rate x length of them fall in the spike, give or take one.
    assert abs(key.impact["requests_in_spike"] - key.impact["spike_rate"] * key.impact["spike_s"]) <= 1
    assert got["service_time_ms"] > 0 and "predicted_p99_ms" in got
    assert key.impact["decisions_lost"] == 0


def test_the_watchdog_drill_is_skipped_with_a_reason_and_unknown_kinds_are_refused(drill_system, tmp_path):
    assert "blocking_good_customers" in SKIPPED
    with pytest.raises(ValueError, match="watchdog"):
        run_drill("blocking_good_customers", drill_system, tmp_path)
    with pytest.raises(ValueError, match="choose one of"):
        run_drill("meteor", drill_system, tmp_path)
    assert "process_crash" in ROOT_CAUSES
