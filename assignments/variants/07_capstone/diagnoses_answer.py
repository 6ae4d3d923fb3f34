# ruff: noqa
# %% correct: numbers read from the alert list and the logs directly
DIAGNOSES = {}
for name, evidence, cause in (("api_crash", crash, "process_crash"), ("skew", drift, "client_unit_change")):
    window = outage_window(evidence.requests)
    start = window["first_failure_s"] if name == "api_crash" else skew_onset_s(evidence.requests, evidence.decisions)
    DIAGNOSES[name] = Diagnosis(
        start_s=start,
        detected_s=min(evidence.record.alerts, key=lambda a: a["fired_at_s"])["fired_at_s"],
        root_cause=cause,
        impact={"good_customers_blocked": 0, **incident_impact(evidence.requests, evidence.decisions, slo=0.99)},
        recovery_s=window["recovery_s"] if name == "api_crash" else None,
    )


# %% correct: the crash's start from the first request with no HTTP answer
first_refused = float(crash.requests.loc[crash.requests.status == 0, "done_s"].min())
DIAGNOSES = {
    "api_crash": Diagnosis(
        start_s=first_refused,
        detected_s=float(crash.alerts.sort_values("fired_at_s").fired_at_s.iloc[0]),
        root_cause="process_crash",
        impact={**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
        recovery_s=outage_window(crash.requests)["recovery_s"],
    ),
    "skew": Diagnosis(
        start_s=skew_onset_s(drift.requests, drift.decisions),
        detected_s=float(drift.alerts.fired_at_s.iloc[0]),
        root_cause="client_unit_change",
        impact={"requests_failed": 0, "decisions_lost": 0, "good_customers_blocked": 0, "error_budget_burnt": 0.0}
        if (drift.requests.status == 200).all()
        else incident_impact(drift.requests, drift.decisions),
    ),
}


# %% wrong: the skew blamed on concept drift
crash_window = outage_window(crash.requests)
DIAGNOSES = {
    "api_crash": Diagnosis(
        start_s=crash_window["first_failure_s"],
        detected_s=float(crash.alerts.fired_at_s.min()),
        root_cause="process_crash",
        impact={**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
        recovery_s=crash_window["recovery_s"],
    ),
    "skew": Diagnosis(
        start_s=skew_onset_s(drift.requests, drift.decisions),
        detected_s=float(drift.alerts.fired_at_s.min()),
        root_cause="concept_drift",
        impact={**incident_impact(drift.requests, drift.decisions), "good_customers_blocked": 0},
    ),
}


# %% wrong: the skew started when it was detected
crash_window = outage_window(crash.requests)
DIAGNOSES = {
    "api_crash": Diagnosis(
        start_s=crash_window["first_failure_s"],
        detected_s=float(crash.alerts.fired_at_s.min()),
        root_cause="process_crash",
        impact={**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
        recovery_s=crash_window["recovery_s"],
    ),
    "skew": Diagnosis(
        start_s=float(drift.alerts.fired_at_s.min()),
        detected_s=float(drift.alerts.fired_at_s.min()),
        root_cause="client_unit_change",
        impact={**incident_impact(drift.requests, drift.decisions), "good_customers_blocked": 0},
    ),
}


# %% wrong: the crash's recovery measured from the start of the traffic
crash_window = outage_window(crash.requests)
DIAGNOSES = {
    "api_crash": Diagnosis(
        start_s=crash_window["first_failure_s"],
        detected_s=float(crash.alerts.fired_at_s.min()),
        root_cause="process_crash",
        impact={**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
        recovery_s=crash_window["recovered_s"],
    ),
    "skew": Diagnosis(
        start_s=skew_onset_s(drift.requests, drift.decisions),
        detected_s=float(drift.alerts.fired_at_s.min()),
        root_cause="client_unit_change",
        impact={**incident_impact(drift.requests, drift.decisions), "good_customers_blocked": 0},
    ),
}


# %% wrong: the crash's detection taken from the notebook's clock
import time

crash_window = outage_window(crash.requests)
DIAGNOSES = {
    "api_crash": Diagnosis(
        start_s=crash_window["first_failure_s"],
        detected_s=time.time() - crash.started_utc.timestamp(),
        root_cause="process_crash",
        impact={**incident_impact(crash.requests, crash.decisions), "good_customers_blocked": 0},
        recovery_s=crash_window["recovery_s"],
    ),
    "skew": Diagnosis(
        start_s=skew_onset_s(drift.requests, drift.decisions),
        detected_s=float(drift.alerts.fired_at_s.min()),
        root_cause="client_unit_change",
        impact={**incident_impact(drift.requests, drift.decisions), "good_customers_blocked": 0},
    ),
}


# %% wrong: the impact without the good customers blocked
crash_window = outage_window(crash.requests)
DIAGNOSES = {
    "api_crash": Diagnosis(
        start_s=crash_window["first_failure_s"],
        detected_s=float(crash.alerts.fired_at_s.min()),
        root_cause="process_crash",
        impact=incident_impact(crash.requests, crash.decisions),
        recovery_s=crash_window["recovery_s"],
    ),
    "skew": Diagnosis(
        start_s=skew_onset_s(drift.requests, drift.decisions),
        detected_s=float(drift.alerts.fired_at_s.min()),
        root_cause="client_unit_change",
        impact=incident_impact(drift.requests, drift.decisions),
    ),
}
