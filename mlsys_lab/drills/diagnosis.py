"""Score a learner's diagnosis of a drill against its answer key, field by field, each verdict with its reason.

What a learner hands in (a :class:`Diagnosis`): when the incident started, when and how it was
detected, the root cause from :data:`~mlsys_lab.drills.record.ROOT_CAUSES`, the impact numbers
(requests failed, decisions lost, good customers blocked, error budget burnt) and the recovery
time. :func:`score_diagnosis` returns one :class:`Verdict` per field; a notebook's hidden tests
call it and show the failing reasons.

Examples
--------
>>> key = AnswerKey(kind="api_crash", root_cause="process_crash", start_s=3.0, start_utc="",
...                 impact={"requests_failed": 12, "decisions_lost": 0, "recovery_s": 1.5})
>>> verdicts = score_diagnosis(Diagnosis(start_s=3.4, root_cause="process_crash", detected_s=4.0,
...                                      impact={"requests_failed": 12, "decisions_lost": 0}, recovery_s=1.6), key)
>>> [v.field for v in verdicts if v.ok]
['start_s', 'detection_delay_s', 'root_cause', 'requests_failed', 'decisions_lost', 'recovery_s']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlsys_lab.drills.record import ROOT_CAUSES, AnswerKey

__all__ = ["IMPACT_FIELDS", "Diagnosis", "Tolerances", "Verdict", "score_diagnosis"]

#: The impact numbers a diagnosis may give; the answer key's other fields are drill-specific.
IMPACT_FIELDS = ("requests_failed", "decisions_lost", "good_customers_blocked", "error_budget_burnt")


@dataclass(frozen=True)
class Diagnosis:
    """A learner's account of one drill. ``None`` (or a missing impact) means "not answered"."""

    start_s: float | None = None
    detected_s: float | None = None
    root_cause: str | None = None
    impact: dict[str, float] = field(default_factory=dict)
    recovery_s: float | None = None


@dataclass(frozen=True)
class Tolerances:
    """How close is right: absolute seconds for times, a relative share for counts (at least ``count_abs``)."""

    start_s: float = 1.0
    recovery_s: float = 1.0
    count_rel: float = 0.0  # impact counts are exact by default: the logs give them exactly
    count_abs: float = 0.0
    budget_abs: float = 0.01


@dataclass(frozen=True)
class Verdict:
    """One field: right or not, and why (what was expected, what came back)."""

    field: str
    ok: bool
    reason: str


def _close(name: str, got: float | None, expected: float, tolerance: float, unit: str = "") -> Verdict:
    if got is None or (isinstance(got, float) and math.isnan(got)):
        return Verdict(name, False, f"{name}: not answered; expected {expected:g}{unit}")
    if isinstance(expected, float) and math.isnan(expected):
        return Verdict(name, True, f"{name}: the key has no value to compare with (e.g. no recovery yet)")
    off = abs(float(got) - float(expected))
    ok = off <= tolerance
    reason = f"{name}: expected {expected:g}{unit} (within {tolerance:g}{unit}), got {float(got):g}{unit}"
    return Verdict(name, ok, reason if ok else f"{reason}: off by {off:g}{unit}")


def score_diagnosis(
    diagnosis: Diagnosis, key: AnswerKey, *, tolerances: Tolerances | None = None, detected_by_s: float | None = None
) -> list[Verdict]:
    """Per-field verdicts of ``diagnosis`` against ``key``.

    Parameters
    ----------
    diagnosis
        The learner's answer.
    key
        The drill's answer key.
    tolerances
        How close counts as right.
    detected_by_s
        When the monitoring really fired (from the drill record), if known: the learner's detection
        time must then be no earlier than the start and within ``start_s`` tolerance of it.
        Without it, a detection is checked only for being after the start.

    Fields scored: ``start_s``, ``detection_delay_s`` (when given), ``root_cause``, every impact
    number the key holds among :data:`IMPACT_FIELDS` (a number the learner left out is wrong),
    and ``recovery_s`` when the key has one.
    """
    tol = tolerances or Tolerances()
    verdicts = [_close("start_s", diagnosis.start_s, key.start_s, tol.start_s, " s")]
    if diagnosis.detected_s is not None:
        delay = diagnosis.detected_s - key.start_s
        if detected_by_s is not None:
            verdicts.append(_close("detection_delay_s", delay, detected_by_s - key.start_s, tol.start_s, " s"))
        else:
            ok = delay >= -tol.start_s
            verdicts.append(
                Verdict(
                    "detection_delay_s",
                    ok,
                    f"detection_delay_s: {delay:g} s after the start"
                    + ("" if ok else ": a detection cannot come before the fault started"),
                )
            )
    if diagnosis.root_cause not in ROOT_CAUSES:
        verdicts.append(
            Verdict("root_cause", False, f"root_cause: {diagnosis.root_cause!r} is not one of {list(ROOT_CAUSES)}")
        )
    else:
        ok = diagnosis.root_cause == key.root_cause
        verdicts.append(
            Verdict(
                "root_cause",
                ok,
                f"root_cause: {diagnosis.root_cause}" + (" is right" if ok else " is not what the evidence shows"),
            )
        )
    for name in IMPACT_FIELDS:
        if name not in key.impact:
            continue
        expected = float(key.impact[name])
        tolerance = tol.budget_abs if name == "error_budget_burnt" else max(tol.count_abs, tol.count_rel * expected)
        verdicts.append(_close(name, diagnosis.impact.get(name), expected, tolerance))
    if "recovery_s" in key.impact and not math.isnan(float(key.impact["recovery_s"])):
        verdicts.append(
            _close("recovery_s", diagnosis.recovery_s, float(key.impact["recovery_s"]), tol.recovery_s, " s")
        )
    return verdicts
