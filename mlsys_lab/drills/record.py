"""What a drill leaves behind: the answer key (what was injected, when, and its exact impact) and the record.

The answer key is computed from the injection and from the raw evidence (every request the load
generator sent and what came back, the decision log), never from what the monitoring said: it is
the ground truth a learner's diagnosis, and the monitoring itself, are graded against.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ROOT_CAUSES", "AnswerKey", "DrillRecord"]

#: The closed list a diagnosis chooses its root cause from.
ROOT_CAUSES: tuple[str, ...] = (
    "corrupt_model_artifact",
    "process_crash",
    "decision_log_unwritable",
    "client_unit_change",
    "traffic_above_capacity",
    "concept_drift",
    "miscalibrated_threshold",
    "none",
)


@dataclass(frozen=True)
class AnswerKey:
    """The truth about one drill.

    Attributes
    ----------
    kind
        The drill (``corrupt_model``, ``api_crash``, ...).
    root_cause
        One of :data:`ROOT_CAUSES`.
    start_s
        When the fault started, in seconds from the drill's start (for day-scale drills, the
        simulated day is in ``impact["start_day"]``).
    start_utc
        The same moment on the wall clock (ISO 8601, UTC).
    impact
        Exact counts: ``requests_failed``, ``decisions_lost``, ``good_customers_blocked``,
        ``error_budget_burnt`` (share of the drill's error budget), ``recovery_s``, and the drill's own.
    """

    kind: str
    root_cause: str
    start_s: float
    start_utc: str
    impact: dict[str, float]

    def __post_init__(self) -> None:
        if self.root_cause not in ROOT_CAUSES:
            raise ValueError(f"root_cause {self.root_cause!r} is not one of {ROOT_CAUSES}")


@dataclass
class DrillRecord:
    """Everything one drill run recorded, with its answer key.

    ``scrapes`` are ``{"t": seconds, "path": ..., "status": ..., "body": ...}`` rows from polling
    ``/ready``, ``/health`` and, when the server has it, ``/metrics``; ``alerts`` the alert log the
    monitoring rules produced over the drill; ``registry_history`` the alias moves; ``load`` the
    load generator's summary; ``measured`` what the drill measured, in the answer key's terms;
    ``requests`` the load generator's own log, one dict per request it sent
    (:data:`~mlsys_lab.drills.traffic.REQUEST_COLUMNS`, in send order; empty for a drill in simulated
    time), and ``traffic_started_wall`` the ``time.time()`` its clock starts from: every ``*_s`` in
    the record is seconds after it.
    """

    kind: str
    fast: bool
    random_state: int
    answer_key: AnswerKey
    measured: dict[str, float]
    load: dict[str, Any]
    alerts: list[dict[str, Any]]
    scrapes: list[dict[str, Any]] = field(default_factory=list)
    registry_history: list[dict[str, Any]] = field(default_factory=list)
    decision_log: str = ""
    server_logs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    traffic_started_wall: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole record."""
        return json.loads(json.dumps(asdict(self), default=str))

    def write(self, path: Path) -> Path:
        """Write the record as JSON to ``path``; returns it."""
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    def summary(self) -> str:
        """A few lines: the answer key against what was measured."""
        key = self.answer_key
        lines = [
            f"drill {self.kind} ({'fast' if self.fast else 'default'} mode, random_state {self.random_state})",
            f"answer key: root cause {key.root_cause}, started at {key.start_s:.2f} s ({key.start_utc})",
        ]
        for name, value in key.impact.items():
            got = self.measured.get(name)
            shown = "" if got is None else f"   recorded {got:g}"
            lines.append(f"  {name:<24} {value:g}{shown}")
        fired = sorted({str(alert["rule"]) for alert in self.alerts})
        lines.append(f"alerts fired: {', '.join(fired) if fired else 'none'}")
        lines += [f"note: {note}" for note in self.notes]
        if self.decision_log:
            lines.append(f"decision log: {self.decision_log}")
        return "\n".join(lines)
