"""A diagnosis is scored field by field against the answer key, each verdict with a reason that says why."""

from __future__ import annotations

import math

import pytest

from mlsys_lab.drills.diagnosis import Diagnosis, Tolerances, score_diagnosis
from mlsys_lab.drills.record import AnswerKey

KEY = AnswerKey(
    kind="api_crash",
    root_cause="process_crash",
    start_s=10.0,
    start_utc="2026-01-01T00:00:10+00:00",
    impact={
        "requests_failed": 40,
        "decisions_lost": 0,
        "good_customers_blocked": 0,
        "error_budget_burnt": 0.5,
        "recovery_s": 4.0,
    },
)
RIGHT = Diagnosis(
    start_s=10.6,
    detected_s=11.0,
    root_cause="process_crash",
    impact={"requests_failed": 40, "decisions_lost": 0, "good_customers_blocked": 0, "error_budget_burnt": 0.505},
    recovery_s=4.5,
)


def verdicts(diagnosis: Diagnosis, **kwargs: object) -> dict[str, tuple[bool, str]]:
    return {v.field: (v.ok, v.reason) for v in score_diagnosis(diagnosis, KEY, **kwargs)}  # type: ignore[arg-type]


def test_a_right_diagnosis_is_right_on_every_field():
    got = verdicts(RIGHT)
    assert all(ok for ok, _ in got.values()), got
    assert set(got) == {
        "start_s",
        "detection_delay_s",
        "root_cause",
        "requests_failed",
        "decisions_lost",
        "good_customers_blocked",
        "error_budget_burnt",
        "recovery_s",
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"start_s": 12.5}, "start_s", "off by 2.5"),
        ({"root_cause": "concept_drift"}, "root_cause", "not what the evidence shows"),
        ({"root_cause": "gremlins"}, "root_cause", "not one of"),
        ({"impact": {**RIGHT.impact, "requests_failed": 39}}, "requests_failed", "expected 40"),
        (
            {"impact": {k: v for k, v in RIGHT.impact.items() if k != "decisions_lost"}},
            "decisions_lost",
            "not answered",
        ),
        ({"recovery_s": None}, "recovery_s", "not answered"),
        ({"detected_s": 8.0}, "detection_delay_s", "before the fault started"),
    ],
)
def test_each_wrong_field_is_wrong_with_a_reason_naming_it(change, field, words):
    wrong = Diagnosis(**{**RIGHT.__dict__, **change})
    got = verdicts(wrong)
    ok, reason = got[field]
    assert not ok and words in reason, reason
    assert all(v for f, (v, _) in got.items() if f != field), "only the changed field may be wrong"


def test_tolerances_and_the_monitoring_detection_time_are_used():
    assert verdicts(RIGHT, tolerances=Tolerances(start_s=0.1))["start_s"][0] is False
    # The monitoring fired at 13 s: a learner who says 11 s is 2 s off the real detection delay.
    assert verdicts(RIGHT, detected_by_s=13.0)["detection_delay_s"][0] is False
    assert verdicts(RIGHT, detected_by_s=11.2)["detection_delay_s"][0] is True


def test_a_key_without_recovery_does_not_mark_the_learner_down():
    key = AnswerKey(
        kind="skew",
        root_cause="client_unit_change",
        start_s=1.0,
        start_utc="",
        impact={"requests_failed": 0, "recovery_s": math.nan},
    )
    got = {
        v.field: v.ok
        for v in score_diagnosis(
            Diagnosis(start_s=1.0, root_cause="client_unit_change", impact={"requests_failed": 0}), key
        )
    }
    assert got == {"start_s": True, "root_cause": True, "requests_failed": True}
