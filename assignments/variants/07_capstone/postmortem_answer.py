# ruff: noqa
# %% correct: times from the alert record and the decision log's schema column
v2_ids = set(drift.decisions.loc[drift.decisions.schema_version == "v2", "transaction_id"])
skewed = drift.requests[drift.requests.transaction_id.isin(v2_ids)]
start = float(skewed.intended_s.min())
fired = min(a["fired_at_s"] for a in drift.record.alerts)
POSTMORTEM = {
    "drill": "skew",
    "timeline": {"started": str(drift.started_utc + pd.Timedelta(seconds=start)), "detected": drift.utc(fired)},
    "detection_delay_s": fired - start,
    "root_cause": "client_unit_change",
    "impact": {
        "requests_failed": int((drift.requests.status != 200).sum()),
        "decisions_lost": 0,
        "good_customers_blocked": 0,
        "error_budget_burnt": incident_impact(drift.requests, drift.decisions)["error_budget_burnt"],
        "decisions_on_wrong_unit": int(((drift.requests.status == 200) & (drift.requests.intended_s >= start)).sum()),
    },
    "action_items": [{"action": "schema contract test", "owner": "API", "test": test_v2_cents_are_v1_euros}],
}


# %% correct: a new MON3 test written for the action item
@ml_test("MON3")
def v2_amount_is_divided_by_100(system):
    base = {"transaction_id": 2, "customer_id": 2, "terminal_id": 2}
    tx = system["parse_v2"](
        {**base, "tx_datetime": "2018-05-03T12:00:00+02:00", "amount_minor": 5000, "currency": "EUR"}
    )
    assert tx.tx_amount == 50.0


onset = skew_onset_s(drift.requests, drift.decisions)
detected = float(drift.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "skew",
    "timeline": {"started": drift.utc(onset).isoformat(), "detected": drift.utc(detected).isoformat()},
    "detection_delay_s": detected - onset,
    "root_cause": "client_unit_change",
    "impact": {
        **incident_impact(drift.requests, drift.decisions),
        "good_customers_blocked": 0,
        "decisions_on_wrong_unit": int(drift.decisions.schema_version.eq("v2").sum()),
    },
    "action_items": [{"action": "unit test of the v2 conversion", "owner": "API", "test": v2_amount_is_divided_by_100}],
}


# %% wrong: timestamps from the notebook's clock
onset = skew_onset_s(drift.requests, drift.decisions)
detected = float(drift.alerts.fired_at_s.min())
now = pd.Timestamp.now(tz="UTC")
POSTMORTEM = {
    "drill": "skew",
    "timeline": {"started": (now - pd.Timedelta(seconds=detected - onset)).isoformat(), "detected": now.isoformat()},
    "detection_delay_s": detected - onset,
    "root_cause": "client_unit_change",
    "impact": {
        **incident_impact(drift.requests, drift.decisions),
        "good_customers_blocked": 0,
        "decisions_on_wrong_unit": int(((drift.requests.status == 200) & (drift.requests.intended_s >= onset)).sum()),
    },
    "action_items": [{"action": "schema contract test", "owner": "API", "test": test_v2_cents_are_v1_euros}],
}


# %% wrong: the detection delay measured from the start of the traffic
onset = skew_onset_s(drift.requests, drift.decisions)
detected = float(drift.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "skew",
    "timeline": {"started": drift.utc(onset).isoformat(), "detected": drift.utc(detected).isoformat()},
    "detection_delay_s": detected,
    "root_cause": "client_unit_change",
    "impact": {
        **incident_impact(drift.requests, drift.decisions),
        "good_customers_blocked": 0,
        "decisions_on_wrong_unit": int(((drift.requests.status == 200) & (drift.requests.intended_s >= onset)).sum()),
    },
    "action_items": [{"action": "schema contract test", "owner": "API", "test": test_v2_cents_are_v1_euros}],
}


# %% wrong: every request of the whole drill counted as on the wrong unit
onset = skew_onset_s(drift.requests, drift.decisions)
detected = float(drift.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "skew",
    "timeline": {"started": drift.utc(onset).isoformat(), "detected": drift.utc(detected).isoformat()},
    "detection_delay_s": detected - onset,
    "root_cause": "client_unit_change",
    "impact": {
        **incident_impact(drift.requests, drift.decisions),
        "good_customers_blocked": 0,
        "decisions_on_wrong_unit": len(drift.requests),
    },
    "action_items": [{"action": "schema contract test", "owner": "API", "test": test_v2_cents_are_v1_euros}],
}


# %% wrong: the action item's test cannot fail
@ml_test("MON3")
def v2_is_accepted(system):
    body = {
        "transaction_id": 1,
        "customer_id": 1,
        "terminal_id": 1,
        "tx_datetime": "2018-05-01T10:00:00+02:00",
        "amount_minor": 1999,
        "currency": "EUR",
    }
    assert system["parse_v2"](body).tx_amount > 0


onset = skew_onset_s(drift.requests, drift.decisions)
detected = float(drift.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "skew",
    "timeline": {"started": drift.utc(onset).isoformat(), "detected": drift.utc(detected).isoformat()},
    "detection_delay_s": detected - onset,
    "root_cause": "client_unit_change",
    "impact": {
        **incident_impact(drift.requests, drift.decisions),
        "good_customers_blocked": 0,
        "decisions_on_wrong_unit": int(((drift.requests.status == 200) & (drift.requests.intended_s >= onset)).sum()),
    },
    "action_items": [{"action": "check that v2 is accepted", "owner": "API", "test": v2_is_accepted}],
}


# %% wrong: an action item without a test
onset = skew_onset_s(drift.requests, drift.decisions)
detected = float(drift.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "skew",
    "timeline": {"started": drift.utc(onset).isoformat(), "detected": drift.utc(detected).isoformat()},
    "detection_delay_s": detected - onset,
    "root_cause": "client_unit_change",
    "impact": {
        **incident_impact(drift.requests, drift.decisions),
        "good_customers_blocked": 0,
        "decisions_on_wrong_unit": int(((drift.requests.status == 200) & (drift.requests.intended_s >= onset)).sum()),
    },
    "action_items": [{"action": "be more careful with units", "owner": "everyone"}],
}


# %% correct: the postmortem of drill 1 instead, with an evidence test that passes before the kill and fails on it
def test_no_outage_over_half_a_second(evidence):
    assert outage_window(evidence.requests)["recovery_s"] <= 0.5


crash_window = outage_window(crash.requests)
detected = float(crash.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "api_crash",
    "timeline": {
        "started": crash.utc(crash_window["first_failure_s"]).isoformat(),
        "detected": crash.utc(detected).isoformat(),
    },
    "detection_delay_s": detected - crash_window["first_failure_s"],
    "root_cause": "process_crash",
    "impact": {**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
    "action_items": [
        {
            "action": "a second replica behind the balancer",
            "owner": "platform",
            "test": test_no_outage_over_half_a_second,
        }
    ],
}


# %% correct: drill 1 from its own columns, the recovery time given too
def test_every_second_has_a_200(evidence):
    assert outage_window(evidence.requests)["recovery_s"] == 0, "a stretch of traffic got no answer"


failed = crash.requests[crash.requests.status != 200]
start = float(failed.done_s.min())
fired = min(a["fired_at_s"] for a in crash.record.alerts)
POSTMORTEM = {
    "drill": "api_crash",
    "timeline": {"started": crash.utc(start), "detected": crash.utc(fired)},
    "detection_delay_s": fired - start,
    "root_cause": "process_crash",
    "impact": {
        "requests_failed": len(failed),
        "decisions_lost": len(
            set(crash.requests.request_id[crash.requests.status == 200]) - set(crash.decisions.request_id)
        ),
        "good_customers_blocked": 0,
        "error_budget_burnt": len(failed) / (0.01 * len(crash.requests)),
        "recovery_s": outage_window(crash.requests)["recovery_s"],
    },
    "action_items": [
        {
            "action": "alert when a second passes with no 200",
            "owner": "on-call",
            "test": test_every_second_has_a_200,
        }
    ],
}


# %% wrong: drill 1's action item links a test that passes on the crash too
def test_requests_were_logged(evidence):
    assert len(evidence.requests) >= 0


crash_window = outage_window(crash.requests)
detected = float(crash.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "api_crash",
    "timeline": {
        "started": crash.utc(crash_window["first_failure_s"]).isoformat(),
        "detected": crash.utc(detected).isoformat(),
    },
    "detection_delay_s": detected - crash_window["first_failure_s"],
    "root_cause": "process_crash",
    "impact": {**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
    "action_items": [{"action": "keep logging", "owner": "platform", "test": test_requests_were_logged}],
}


# %% wrong: drill 1's postmortem links the skew drill's MON3 test, which says nothing about a crash
crash_window = outage_window(crash.requests)
detected = float(crash.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "api_crash",
    "timeline": {
        "started": crash.utc(crash_window["first_failure_s"]).isoformat(),
        "detected": crash.utc(detected).isoformat(),
    },
    "detection_delay_s": detected - crash_window["first_failure_s"],
    "root_cause": "process_crash",
    "impact": {**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
    "action_items": [{"action": "schema contract test", "owner": "API", "test": test_v2_cents_are_v1_euros}],
}


# %% wrong: drill 1's timeline from drill 2's evidence clock
def test_no_outage_over_half_a_second(evidence):
    assert outage_window(evidence.requests)["recovery_s"] <= 0.5


crash_window = outage_window(crash.requests)
detected = float(crash.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "api_crash",
    "timeline": {
        "started": drift.utc(crash_window["first_failure_s"]).isoformat(),
        "detected": drift.utc(detected).isoformat(),
    },
    "detection_delay_s": detected - crash_window["first_failure_s"],
    "root_cause": "process_crash",
    "impact": {**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
    "action_items": [{"action": "a second replica", "owner": "platform", "test": test_no_outage_over_half_a_second}],
}


# %% wrong: drill 1's error budget taken as the SLO's share of the requests, not (1 - slo) of them
def test_no_outage_over_half_a_second(evidence):
    assert outage_window(evidence.requests)["recovery_s"] <= 0.5


crash_window = outage_window(crash.requests)
detected = float(crash.alerts.fired_at_s.min())
POSTMORTEM = {
    "drill": "api_crash",
    "timeline": {
        "started": crash.utc(crash_window["first_failure_s"]).isoformat(),
        "detected": crash.utc(detected).isoformat(),
    },
    "detection_delay_s": detected - crash_window["first_failure_s"],
    "root_cause": "process_crash",
    "impact": {
        **incident_impact(crash.requests, crash.decisions),
        "error_budget_burnt": int((crash.requests.status != 200).sum()) / (0.99 * len(crash.requests)),
        "good_customers_blocked": 0,
    },
    "action_items": [{"action": "a second replica", "owner": "platform", "test": test_no_outage_over_half_a_second}],
}
