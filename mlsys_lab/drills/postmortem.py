"""Score the checkable parts of a blameless postmortem against a drill's evidence, each verdict with its reason.

A postmortem is a plain dict (what a learner writes in a notebook cell)::

    {
        "drill": "skew",
        "summary": "...",                                   # narrative: graded by a person
        "timeline": {"started": "2026-12-01T17:02:03.250Z",  # when the fault started (wall clock, UTC)
                     "detected": "..."},                    # when the monitoring fired
        "detection_delay_s": 4.1,
        "root_cause": "client_unit_change",                 # one of ROOT_CAUSES
        "impact": {"requests_failed": 0, "decisions_lost": 0, "good_customers_blocked": 0,
                   "error_budget_burnt": 0.0, ...},         # any further key field given is checked too
        "action_items": [{"action": "...", "owner": "...", "test": some_ml_test}],
    }

:func:`score_postmortem` checks the timeline against the answer key and the monitoring's own
detection time, the impact numbers against the key (exact counts, as the logs give them), the
detection delay, the root cause, and that at least one action item links a test that passes on the
clean system and **fails under the drill's own fault**. Two kinds of fault, two kinds of test:

- a drill whose fault a grader fault reproduces (:data:`DRILL_FAULT_ITEMS`: the skew drill and
  cents read as euros, item MON3) links an ML Test Score test, ``test(system)``, run on the clean
  system and under that fault (:func:`~mlsys_lab.drills.ml_test_score.catches`);
- any other drill (a crash, a read-only log, a spike) links an **evidence test**,
  ``test(evidence)``: a check on the drill's own logs, such as "no outage longer than a second".
  It must pass on the evidence before the fault (:func:`evidence_before`, the same system on a
  normal day) and fail on the whole drill's evidence.

The narrative and the actions' quality stay with a person.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from mlsys_lab.drills import ml_test_score
from mlsys_lab.drills.diagnosis import IMPACT_FIELDS, Tolerances, Verdict, _close
from mlsys_lab.drills.evidence import Evidence
from mlsys_lab.drills.record import ROOT_CAUSES

__all__ = ["DRILL_FAULT_ITEMS", "evidence_before", "score_postmortem"]

#: Drill -> the ML Test Score items whose grader fault is the drill's fault (a test that catches it is linked).
DRILL_FAULT_ITEMS: dict[str, tuple[str, ...]] = {"skew": ("MON3",)}


def _timestamp(name: str, value: Any) -> tuple[pd.Timestamp | None, str]:
    if value is None:
        return None, f"{name}: not answered"
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        return None, f"{name}: {value!r} is not a timestamp ({exc}); give ISO 8601 in UTC"
    if stamp.tzinfo is None:
        return None, f"{name}: {value!r} has no time zone; give UTC (e.g. evidence.utc(seconds))"
    return stamp.tz_convert("UTC"), ""


def _at(name: str, value: Any, expected: pd.Timestamp, tolerance_s: float) -> Verdict:
    stamp, problem = _timestamp(name, value)
    if stamp is None:
        return Verdict(name, False, f"{problem}; expected {expected.isoformat()}")
    off = abs((stamp - expected).total_seconds())
    reason = f"{name}: expected {expected.isoformat()} (within {tolerance_s:g} s), got {stamp.isoformat()}"
    return Verdict(name, off <= tolerance_s, reason if off <= tolerance_s else f"{reason}: off by {off:.3f} s")


def _detected_at_s(evidence: Evidence) -> float:
    measured = evidence.record.measured.get("detected_at_s", math.nan)
    if not math.isnan(float(measured)):
        return float(measured)
    fired = [float(a["fired_at_s"]) for a in evidence.record.alerts]
    return min(fired, default=math.nan)


def evidence_before(evidence: Evidence, seconds: float) -> Evidence:
    """The evidence cut to what had happened ``seconds`` after the traffic started (answers back by then).

    Before a drill's fault this is the system on a normal day: an evidence test linked to an
    action item must pass on it, and fail on the whole drill.
    """
    requests = evidence.requests[evidence.requests["done_s"] < seconds]
    decisions = evidence.decisions
    if "decided_at" in decisions.columns and len(decisions):
        decisions = decisions[decisions["decided_at"] < evidence.utc(seconds)]
    return dataclasses.replace(evidence, requests=requests.reset_index(drop=True), decisions=decisions)


def _evidence_test_catches(linked: list[Callable[..., Any]], drill: str, evidence: Evidence) -> Verdict:
    start_s = evidence.record.answer_key.start_s
    notes = []
    for test in linked:
        name = getattr(test, "__name__", repr(test))
        verdicts: list[bool | None] = []
        for label, run_on in (("before the fault", evidence_before(evidence, start_s)), ("on the drill", evidence)):
            try:
                test(run_on)
                verdicts.append(True)
            except AssertionError:
                verdicts.append(False)
            except Exception as exc:  # a test that crashes proves nothing either way
                verdicts.append(None)
                notes.append(f"{name} raised {type(exc).__name__} {label}: {exc}")
        clean, drilled = verdicts
        if clean is True and drilled is False:
            return Verdict(
                "action_items", True, f"action_items: {name} passes before the fault and fails on the {drill} drill"
            )
        if clean is False:
            notes.append(f"{name} fails before the fault already (on the normal part of the traffic)")
        elif clean is True and drilled is True:
            notes.append(f"{name} passes on the {drill} drill too: it cannot catch a repeat")
    return Verdict(
        "action_items",
        False,
        f"action_items: no linked test(evidence) passes before the fault and fails on the {drill} drill: "
        + "; ".join(notes),
    )


def _action_items(
    postmortem: Mapping[str, Any], drill: str, system: Mapping[str, Any] | None, evidence: Evidence
) -> Verdict:
    items = postmortem.get("action_items") or []
    linked: list[ml_test_score.LearnerTest] = [
        item["test"] for item in items if isinstance(item, Mapping) and callable(item.get("test"))
    ]
    if not linked:
        return Verdict("action_items", False, "action_items: no action item links a test (a callable under 'test')")
    wanted = DRILL_FAULT_ITEMS.get(drill, ())
    if not wanted:
        return _evidence_test_catches(linked, drill, evidence)
    if system is None:
        raise ValueError("score_postmortem needs the system (ml_test_score.reference_system()) to run linked tests")
    notes = []
    for test in linked:
        tagged = [item for item in ml_test_score.items_of(test) if item in wanted]
        if not tagged:
            notes.append(f"{getattr(test, '__name__', test)} is not tagged with {' or '.join(wanted)}")
            continue
        ok, why = ml_test_score.catches(test, system, tagged[0])
        if ok:
            return Verdict("action_items", True, f"action_items: {why}")
        notes.append(why)
    return Verdict(
        "action_items", False, f"action_items: no linked test fails under the {drill} fault: " + "; ".join(notes)
    )


def score_postmortem(
    postmortem: Mapping[str, Any],
    evidence: Evidence,
    *,
    system: Mapping[str, Any] | None = None,
    tolerances: Tolerances | None = None,
) -> list[Verdict]:
    """Per-part verdicts of ``postmortem`` against the drill's ``evidence`` (its answer key and its record).

    Parameters
    ----------
    postmortem
        The learner's postmortem (see the module's docstring).
    evidence
        The drill's evidence (:func:`~mlsys_lab.drills.evidence.run_with_evidence`).
    system
        The ML Test Score system the linked tests run on (needed when the drill has a fault item).
    tolerances
        How close is right (times in seconds, counts exact by default).

    Parts scored: ``drill``, ``timeline.started``, ``timeline.detected``, ``detection_delay_s``,
    ``root_cause``, every impact number of :data:`~mlsys_lab.drills.diagnosis.IMPACT_FIELDS` the key
    holds plus any other key field the postmortem gives, and ``action_items``.
    """
    tol = tolerances or Tolerances()
    key = evidence.record.answer_key
    drill = str(postmortem.get("drill", ""))
    verdicts = [
        Verdict(
            "drill",
            drill == key.kind,
            f"drill: {drill!r}" + (" is the drill of this evidence" if drill == key.kind else f", not {key.kind!r}"),
        )
    ]
    timeline = postmortem.get("timeline") or {}
    started = pd.Timestamp(key.start_utc).tz_convert("UTC")
    verdicts.append(_at("timeline.started", timeline.get("started"), started, tol.start_s))
    detected_s = _detected_at_s(evidence)
    if not math.isnan(detected_s):
        verdicts.append(_at("timeline.detected", timeline.get("detected"), evidence.utc(detected_s), tol.start_s))
        delay = postmortem.get("detection_delay_s")
        verdicts.append(_close("detection_delay_s", delay, detected_s - key.start_s, tol.start_s, " s"))
    cause = postmortem.get("root_cause")
    if cause not in ROOT_CAUSES:
        verdicts.append(Verdict("root_cause", False, f"root_cause: {cause!r} is not one of {list(ROOT_CAUSES)}"))
    else:
        ok = cause == key.root_cause
        verdicts.append(
            Verdict(
                "root_cause", ok, f"root_cause: {cause}" + (" is right" if ok else " is not what the evidence shows")
            )
        )
    impact = postmortem.get("impact") or {}
    for name, value in key.impact.items():
        if name not in IMPACT_FIELDS and name not in impact:
            continue
        expected = float(value)
        tolerance = tol.budget_abs if name == "error_budget_burnt" else max(tol.count_abs, tol.count_rel * expected)
        verdicts.append(_close(f"impact.{name}", impact.get(name), expected, tolerance))
    verdicts.append(_action_items(postmortem, key.kind, system, evidence))  # the evidence's fault, whatever was named
    return verdicts
