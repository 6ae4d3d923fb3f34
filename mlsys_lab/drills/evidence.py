"""What a learner diagnoses a drill from: its record, every request the load generator sent, and the decision log.

A :class:`~mlsys_lab.drills.record.DrillRecord` keeps the load generator's own log, one row per
request: which transaction, when it was meant to leave, when its answer (or error) came back, and
its ``request_id``. :func:`run_with_evidence` runs one drill of :mod:`~mlsys_lab.drills.catalogue`
and turns that log into a frame, beside the decision log read back after the servers stopped;
:func:`evidence_of` does the same for a record already made.

Times are seconds from the traffic's start (the answer key's clock); :meth:`Evidence.utc` turns
one into a wall-clock timestamp for a postmortem's timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.drills import catalogue
from mlsys_lab.drills.record import DrillRecord
from mlsys_lab.drills.runner import DrillSystem
from mlsys_lab.drills.traffic import REQUEST_COLUMNS

__all__ = ["REQUEST_COLUMNS", "Evidence", "evidence_of", "requests_frame", "run_with_evidence"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evidence:
    """One drill's evidence.

    Attributes
    ----------
    record
        The drill's record (answer key, alerts, scrapes, registry history, load summary).
    requests
        One row per request the generator sent (:data:`REQUEST_COLUMNS`), in send order:
        ``intended_s``, ``sent_s``, ``done_s`` in seconds from the traffic's start, ``status``
        (0: no HTTP answer), ``error``, ``request_id`` ("" unless 200), ``decision``, ``score``.
    decisions
        The decision log after the drill (:meth:`~mlsys_lab.deployment.decision_log.DecisionLog.decisions`).
    started_utc
        The wall-clock moment the traffic started (time 0 of every ``*_s`` column), UTC.
    """

    record: DrillRecord
    requests: pd.DataFrame
    decisions: pd.DataFrame
    started_utc: pd.Timestamp

    @property
    def alerts(self) -> pd.DataFrame:
        """The alerts the system's monitoring raised during the drill (``rule``, ``fired_at_s``, ...)."""
        return pd.DataFrame(self.record.alerts, columns=["rule", "severity", "fired_at_s", "cleared_at_s"])

    @property
    def scrapes(self) -> pd.DataFrame:
        """Every ``/ready``, ``/health`` and ``/metrics`` poll: ``t`` (seconds), ``path``, ``status``, ``body``."""
        return pd.DataFrame(self.record.scrapes, columns=["t", "path", "status", "body"])

    def utc(self, seconds: float) -> pd.Timestamp:
        """The wall-clock (UTC) moment ``seconds`` after the traffic started."""
        return self.started_utc + pd.Timedelta(seconds=float(seconds))


def requests_frame(requests: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A record's per-request log as a frame with :data:`REQUEST_COLUMNS`, in index (send) order."""
    frame = pd.DataFrame(list(requests), columns=list(REQUEST_COLUMNS))
    return frame.sort_values("index", kind="stable").reset_index(drop=True)


def evidence_of(record: DrillRecord) -> Evidence:
    """The evidence of a drill that ran: its record's request log as a frame, and its decision log read back.

    Raises
    ------
    ValueError
        For a record with no request log (a drill in simulated time sends no traffic).
    """
    if not record.requests or not record.decision_log:
        raise ValueError(
            f"drill {record.kind!r} recorded no requests and no decision log: it ran in simulated time, "
            "so there is no request-level evidence; read its record (alerts, measured) instead"
        )
    log = DecisionLog(f"sqlite:///{record.decision_log}")
    try:
        decisions = log.decisions()
    finally:
        log.close()
    requests = requests_frame(record.requests)
    logger.debug("drill %s: %d requests, %d decisions", record.kind, len(requests), len(decisions))
    return Evidence(record, requests, decisions, pd.Timestamp(record.traffic_started_wall, unit="s", tz="UTC"))


def run_with_evidence(kind: str, system: DrillSystem, workdir: Path, *, fast: bool = True) -> Evidence:
    """Run drill ``kind`` (:func:`~mlsys_lab.drills.catalogue.run_drill`) and return its evidence (:func:`evidence_of`).

    Raises
    ------
    ValueError
        For an unknown or unavailable drill (from ``run_drill``), or a drill that sent no traffic.
    """
    return evidence_of(catalogue.run_drill(kind, system, workdir, fast=fast))
