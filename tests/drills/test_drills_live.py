"""Every drill in fast mode against a real ``mlsys-lab serve`` on 127.0.0.1: its answer key matches what it recorded.

The answer key comes from the injection and the raw evidence (each request's answer, the decision
log read back); the record's ``measured`` fields come from what the monitoring saw (alerts,
``/ready`` scrapes, drift statistics). No timing is asserted: the machine may be busy.
"""

from __future__ import annotations

import math

import pytest

from mlsys_lab.deployment.decision_log import DecisionLog
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


def test_the_spike_with_load_shedding_fails_only_by_429_and_holds_the_as_is_run_in_its_key(drill_system, tmp_path):
    from mlsys_lab.drills.catalogue import SHED_IN_FLIGHT, SPIKE_COMPARED

    record = run_drill("spike_mitigated", drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert key.kind == record.kind == "spike_mitigated" and got["max_in_flight"] == SHED_IN_FLIGHT
    assert {f"as_is_{name}" for name in SPIKE_COMPARED} <= set(key.impact)
    assert key.impact["as_is_requests_shed"] == 0, "the service sheds nothing unless MLSYS_LAB_MAX_IN_FLIGHT is set"
    # Whether 45 requests/s overload one worker depends on the machine: what shedding promises does not.
    failed = [r for r in record.requests if r["status"] != 200]
    assert all(r["status"] == 429 and "MLSYS_LAB_MAX_IN_FLIGHT" in r["error"] for r in failed), failed[:3]
    assert key.impact["requests_failed"] == key.impact["requests_shed"] == len(failed)
    assert key.impact["decisions_lost"] == key.impact["as_is_decisions_lost"] == 0
    log = DecisionLog(f"sqlite:///{record.decision_log}")
    try:
        logged = set(log.decisions()["transaction_id"])
    finally:
        log.close()
    assert not {r["transaction_id"] for r in failed} & logged, "a shed request decided nothing"
    assert len(logged) == sum(r["status"] == 200 for r in record.requests)


def test_unknown_kinds_are_refused_with_the_choices(drill_system, tmp_path):
    assert not SKIPPED, "every drill of the issue runs now"
    with pytest.raises(ValueError, match="choose one of"):
        run_drill("meteor", drill_system, tmp_path)
    assert "process_crash" in ROOT_CAUSES


@pytest.mark.parametrize(
    ("kind", "refused_by"), [("corrupt_model_unpicklable", "IntegrityError"), ("corrupt_model_nan", "ModelUnusable")]
)
def test_an_unpicklable_or_nan_scoring_version_is_refused_and_the_good_one_keeps_serving(
    drill_system, tmp_path, kind, refused_by
):
    record = run_drill(kind, drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert got["reload_status"] == 409, f"the reload of the {kind} version must be refused"
    assert got["serving_version"] == key.impact["serving_version"] == drill_system.good_version
    assert key.impact["decisions_by_corrupt_version"] == 0 and key.impact["requests_failed"] == 0
    assert key.impact["decisions_lost"] == 0
    assert got["ready_says_why"] == 1.0, f"/ready must name {refused_by} in reload_refused"
    assert got["detected_at_s"] >= key.start_s, "the alert cannot fire before the fault"
    broken = drill_system.unpicklable_version if kind.endswith("unpicklable") else drill_system.nan_version
    assert [move["to_version"] for move in record.registry_history] == [drill_system.good_version, broken]


def test_a_miscalibrated_champion_is_rolled_back_and_the_good_customers_it_blocked_are_counted(drill_system, tmp_path):
    record = run_drill("blocking_good_customers", drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert key.root_cause == "miscalibrated_threshold"
    assert key.impact["requests_failed"] == 0 and key.impact["decisions_lost"] == 0
    assert got["alert_rate_miscalibrated"] > max(0.02, 2 * got["alert_rate_good"]), "the planted threshold alerts more"
    assert got["watchdog_min_ratio"] > 2, "each failing window broke the 2x alert-rate guardrail"
    moves = [m for m in record.registry_history if m["alias"] == "champion"]
    last = moves[-1]
    assert (
        last["action"] == "rollback" and last["who"] == "watchdog" and last["to_version"] == drill_system.good_version
    )
    assert "alert rate" in last["why"]
    assert got["failing_windows"] >= 3 and key.start_s <= got["detected_at_s"] <= got["rolled_back_at_s"]
    # The key's count, recomputed here from the decision log and the simulator's truth.
    log = DecisionLog(f"sqlite:///{record.decision_log}")
    try:
        decisions = log.decisions()
    finally:
        log.close()
    by_bad = decisions[decisions["model_version"] == drill_system.miscalibrated_version]
    fraud = drill_system.traffic.set_index("transaction_id")["tx_fraud"].reindex(by_bad["transaction_id"]).to_numpy()
    blocked_genuine = int((by_bad["decision"].to_numpy() & (fraud == 0)).sum())
    assert key.impact["good_customers_blocked"] == blocked_genuine > 0
    assert key.impact["decisions_by_miscalibrated_version"] == len(by_bad)
    assert 0 < key.impact["blocked_that_the_good_model_passes"] <= blocked_genuine
    # After the rollback the good version decides again.
    assert decisions["model_version"].iloc[-1] == drill_system.good_version


def test_card_testing_live_the_key_matches_the_decision_log_and_only_matured_labels_see_it(drill_system, tmp_path):
    from mlsys_lab.data import CARD_TESTING_SCENARIO, CardTesting, preset, simulate
    from mlsys_lab.data.features import SECONDS_PER_DAY
    from mlsys_lab.drills.catalogue import CARD_TESTS_PER_5K_PER_DAY

    record = run_drill("concept_drift", drill_system, tmp_path)
    key, got = record.answer_key, record.measured
    assert key.root_cause == "concept_drift" and record.server_logs, "the days must go through a real server"
    # The simulator's truth, simulated again here, against what the live service logged.
    start_day, n_days = int(key.impact["start_day"]), int(record.load["simulated_days"])
    event = CardTesting(start_day=start_day, customers_per_5k_per_day=CARD_TESTS_PER_5K_PER_DAY)
    truth = simulate(preset("small", random_state=0, n_days=n_days, drift=(event,))).transactions
    log = DecisionLog(f"sqlite:///{record.decision_log}")
    try:
        decisions, labels, seen = log.decisions(), log.labels(), log.history_frame()
    finally:
        log.close()
    assert len(decisions) == len(truth) and set(decisions["transaction_id"]) == set(truth["transaction_id"])
    assert key.impact["decisions_lost"] == 0
    tested = truth.loc[truth["tx_fraud_scenario"] == CARD_TESTING_SCENARIO, "transaction_id"]
    passed = ~decisions.set_index("transaction_id")["decision"].reindex(tested).to_numpy(dtype=bool)
    assert key.impact["card_testing_frauds"] == len(tested) > 0
    assert key.impact["card_testing_frauds_missed"] == int(passed.sum()) > 0, "card testing must slip past the model"
    # The weeks before the reference days were written as the service's past; every later day went live.
    live_from = int(record.load["live_from_day"]) * SECONDS_PER_DAY
    assert record.load["transactions_live"] == int((truth["tx_time_seconds"] >= live_from).sum()) > 0
    assert got["decisions_backfilled"] == int((truth["tx_time_seconds"] < live_from).sum())
    # Every fraud label known by the last day is in the log once, at its simulated time: those known by the live
    # start from the backfill, every later one through /v1/feedback.
    known = truth[(truth["tx_fraud"] == 1) & (truth["tx_label_seconds"] <= n_days * SECONDS_PER_DAY)]
    later = int((known["tx_label_seconds"] > live_from).sum())
    assert labels["is_fraud"].all() and got["labels_sent"] == later > 0
    # The labels known between two score batches go in one /v1/feedback/batch request, never after the next batch.
    assert 0 < record.load["label_requests"] <= record.load["batches"] + 1
    assert got["labels_sent"] + got["labels_backfilled"] == got["labels_recorded"] == len(labels) == len(known)
    labelled = seen.dropna(subset=["tx_label_seconds"])
    assert dict(zip(labelled["transaction_id"], labelled["tx_label_seconds"], strict=True)) == dict(
        zip(known["transaction_id"], known["tx_label_seconds"].astype(float), strict=True)
    )
    # What the monitoring saw in the log: only the matured labels find it, days late, and nothing before it.
    assert got["false_alarms_before_start"] == 0
    assert math.isfinite(got["detected_day"]) and got["detection_delay_days"] >= 1, "labels arrive days late"
    assert math.isnan(got["label_free_detected_day"]), "the label-free estimate cannot see card testing"
    assert got["true_recall_before"] - got["true_recall_after"] >= 0.1, "card testing costs recall"
    assert got["expected_recall_after"] >= got["expected_recall_before"] - 0.05, "the estimate does not fall with it"
    # The cross-check: the service's online features give the offline scores, so the verdicts agree.
    assert got["max_score_difference"] < 1e-9
    assert got["verdicts_differing_from_offline"] == 0 and got["offline_detected_day"] == got["detected_day"]
