"""A postmortem's checkable parts are scored against the evidence; a linked test must catch the drill's fault."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.drills import ml_test_score as mts
from mlsys_lab.drills.evidence import REQUEST_COLUMNS, Evidence
from mlsys_lab.drills.ml_test_score import ml_test
from mlsys_lab.drills.postmortem import score_postmortem
from mlsys_lab.drills.record import AnswerKey, DrillRecord

STARTED = pd.Timestamp("2026-12-01T17:00:00", tz="UTC")
KEY = AnswerKey(
    kind="skew",
    root_cause="client_unit_change",
    start_s=6.5,
    start_utc=(STARTED + pd.Timedelta(seconds=6.5)).isoformat(),
    impact={
        "requests_failed": 0,
        "decisions_lost": 0,
        "good_customers_blocked": 0,
        "error_budget_burnt": 0.0,
        "recovery_s": float("nan"),
        "decisions_on_wrong_unit": 300,
    },
)
EVIDENCE = Evidence(
    record=DrillRecord(
        kind="skew",
        fast=True,
        random_state=0,
        answer_key=KEY,
        measured={"detected_at_s": 11.0},
        load={},
        alerts=[{"rule": "score drift", "severity": "page", "fired_at_s": 11.0, "cleared_at_s": None}],
    ),
    requests=pd.DataFrame(columns=list(REQUEST_COLUMNS)),
    decisions=pd.DataFrame(),
    started_utc=STARTED,
)


@ml_test("MON3")
def cents_become_euros(system):
    v1 = {"transaction_id": 1, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-05-01T10:00:00"}
    v2 = {**v1, "tx_datetime": "2018-05-01T10:00:00+02:00", "amount_minor": 1250, "currency": "EUR"}
    assert system["parse_v1"]({**v1, "tx_amount": 12.5}).tx_amount == system["parse_v2"](v2).tx_amount


@ml_test("MON3")
def cannot_fail(system):
    assert system["parse_v2"] is not None


@ml_test("MON5")
def scores_are_finite(system):  # a good test, but of another item: it cannot catch a unit change
    assert np.isfinite(system["score"](system["X"])).all()


RIGHT = {
    "drill": "skew",
    "timeline": {"started": EVIDENCE.utc(6.9).isoformat(), "detected": EVIDENCE.utc(11.0).isoformat()},
    "detection_delay_s": 4.5,
    "root_cause": "client_unit_change",
    "impact": {
        "requests_failed": 0,
        "decisions_lost": 0,
        "good_customers_blocked": 0,
        "error_budget_burnt": 0.0,
        "decisions_on_wrong_unit": 300,
    },
    "action_items": [{"action": "contract test of v2 amounts", "owner": "API team", "test": cents_become_euros}],
}


@pytest.fixture(scope="module")
def system():
    return mts.reference_system(random_state=0)


def verdicts(postmortem, system):
    return {v.field: (v.ok, v.reason) for v in score_postmortem(postmortem, EVIDENCE, system=system)}


def test_a_right_postmortem_is_right_on_every_part(system):
    got = verdicts(RIGHT, system)
    assert all(ok for ok, _ in got.values()), got
    assert {"timeline.started", "timeline.detected", "detection_delay_s", "action_items"} <= set(got)
    assert "impact.decisions_on_wrong_unit" in got and "impact.recovery_s" not in got


@pytest.mark.parametrize(
    ("change", "part", "words"),
    [
        ({"timeline": {**RIGHT["timeline"], "started": "2026-12-01T17:00:09+00:00"}}, "timeline.started", "off by"),
        ({"timeline": {**RIGHT["timeline"], "started": "2026-12-01T17:00:06.5"}}, "timeline.started", "no time zone"),
        ({"timeline": {**RIGHT["timeline"], "detected": None}}, "timeline.detected", "not answered"),
        ({"detection_delay_s": 11.0}, "detection_delay_s", "expected 4.5"),
        ({"root_cause": "concept_drift"}, "root_cause", "not what the evidence shows"),
        ({"impact": {**RIGHT["impact"], "decisions_on_wrong_unit": 299}}, "impact.decisions_on_wrong_unit", "off by"),
        ({"action_items": [{"action": "a vague hope", "owner": "us"}]}, "action_items", "no action item links"),
        ({"action_items": [{"action": "x", "test": cannot_fail}]}, "action_items", "cannot catch"),
        ({"action_items": [{"action": "x", "test": scores_are_finite}]}, "action_items", "not tagged with MON3"),
        ({"drill": "api_crash"}, "drill", "not 'skew'"),
    ],
)
def test_each_wrong_part_is_wrong_with_a_reason(system, change, part, words):
    got = verdicts({**RIGHT, **change}, system)
    ok, reason = got[part]
    assert not ok and words in reason, reason
    assert all(v for p, (v, _) in got.items() if p != part), "only the changed part may be wrong"


def test_a_missing_impact_number_is_wrong_and_the_system_is_required_for_linked_tests(system):
    impact = {k: v for k, v in RIGHT["impact"].items() if k != "error_budget_burnt"}
    assert verdicts({**RIGHT, "impact": impact}, system)["impact.error_budget_burnt"][0] is False
    with pytest.raises(ValueError, match="needs the system"):
        score_postmortem(RIGHT, EVIDENCE)


def _crash_evidence() -> Evidence:
    """Ten requests a second for 8 s; the server is killed at 3.0 s and serves again from 5.0 s."""
    sent = np.arange(0.0, 8.0, 0.1)
    down = (sent >= 3.0) & (sent < 5.0)
    requests = pd.DataFrame(
        {
            "index": np.arange(len(sent)),
            "transaction_id": np.arange(len(sent)),
            "intended_s": sent,
            "sent_s": sent,
            "done_s": sent + np.where(down, 0.05, 0.01),
            "status": np.where(down, 0, 200),
            "error": np.where(down, "ConnectError", ""),
            "request_id": [f"r{i}" if not d else "" for i, d in enumerate(down)],
            "decision": False,
            "score": 0.01,
        },
        columns=list(REQUEST_COLUMNS),
    )
    key = AnswerKey("api_crash", "process_crash", 3.0, (STARTED + pd.Timedelta(seconds=3.0)).isoformat(), {})
    record = DrillRecord(kind="api_crash", fast=True, random_state=0, answer_key=key, measured={}, load={}, alerts=[])
    decisions = pd.DataFrame({"request_id": requests.request_id[requests.status == 200]})
    return Evidence(record, requests, decisions, STARTED)


def no_outage_over_a_second(evidence):
    failed = evidence.requests[evidence.requests.status != 200]
    assert failed.empty or failed.done_s.max() - failed.done_s.min() <= 1.0


def some_requests_were_sent(evidence):  # true on any day: it cannot catch a repeat
    assert len(evidence.requests) >= 0


def more_than_a_thousand_requests(evidence):  # fails on a normal day already: it tells nothing about the fault
    assert len(evidence.requests) > 1_000


@pytest.mark.parametrize(
    ("test", "ok", "words"),
    [
        (no_outage_over_a_second, True, "passes before the fault and fails on the api_crash drill"),
        (some_requests_were_sent, False, "passes on the api_crash drill too"),
        (more_than_a_thousand_requests, False, "fails before the fault already"),
        (cents_become_euros, False, "raised TypeError"),
    ],
)
def test_a_crash_postmortem_links_an_evidence_test_that_passes_before_the_fault_and_fails_on_the_drill(test, ok, words):
    postmortem = {"drill": "api_crash", "action_items": [{"action": "a second replica", "test": test}]}
    (got,) = [v for v in score_postmortem(postmortem, _crash_evidence()) if v.field == "action_items"]
    assert got.ok is ok and words in got.reason, got.reason
