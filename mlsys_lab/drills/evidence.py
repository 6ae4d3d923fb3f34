"""What a learner diagnoses a drill from: its record, every request the load generator sent, and the decision log.

A :class:`~mlsys_lab.drills.record.DrillRecord` summarises the load generator's run (counts by
status, p50, p99); a diagnosis needs each request: which transaction, when it was meant to leave,
when its answer (or error) came back, and its ``request_id``. :func:`run_with_evidence` runs one
drill of :mod:`~mlsys_lab.drills.catalogue` and keeps the per-request log of the drill's
:class:`~mlsys_lab.drills.traffic.Traffic` beside the record, with the decision log read back
after the servers stopped.

How the requests are kept: while the drill runs, the catalogue's ``Traffic`` name points at a
subclass that remembers its instances (one lock, restored in ``finally``). That is a stopgap until
the record itself carries the generator's per-request log; the drills are not changed by it.

Times are seconds from the traffic's start (the answer key's clock); :meth:`Evidence.utc` turns
one into a wall-clock timestamp for a postmortem's timeline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.drills import catalogue
from mlsys_lab.drills.record import DrillRecord
from mlsys_lab.drills.runner import DrillSystem
from mlsys_lab.drills.traffic import Outcome, Traffic

__all__ = ["REQUEST_COLUMNS", "Evidence", "requests_frame", "run_with_evidence"]

logger = logging.getLogger(__name__)
_PATCH_LOCK = threading.Lock()
#: The columns of :attr:`Evidence.requests`, one row per request the generator sent.
REQUEST_COLUMNS = tuple(f.name for f in dataclasses.fields(Outcome))


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


def requests_frame(outcomes: list[Outcome]) -> pd.DataFrame:
    """The generator's outcomes as a frame with :data:`REQUEST_COLUMNS`, in index (send) order."""
    rows = [dataclasses.asdict(o) for o in sorted(outcomes, key=lambda o: o.index)]
    return pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))


@contextlib.contextmanager
def _kept_traffic() -> Iterator[list[Traffic]]:
    kept: list[Traffic] = []

    class KeptTraffic(Traffic):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            kept.append(self)

    # One drill at a time per process: the name is the catalogue module's, shared by every caller.
    with _PATCH_LOCK:
        original = catalogue.Traffic
        catalogue.Traffic = KeptTraffic  # type: ignore[misc]
        try:
            yield kept
        finally:
            catalogue.Traffic = original  # type: ignore[misc]


def run_with_evidence(kind: str, system: DrillSystem, workdir: Path, *, fast: bool = True) -> Evidence:
    """Run drill ``kind`` (:func:`~mlsys_lab.drills.catalogue.run_drill`) and keep its per-request evidence.

    Raises
    ------
    ValueError
        For an unknown or unavailable drill (from ``run_drill``), or a drill that sent no traffic.
    """
    with _kept_traffic() as kept:
        record = catalogue.run_drill(kind, system, workdir, fast=fast)
    if len(kept) != 1:
        raise ValueError(f"drill {kind!r} ran {len(kept)} load generators; expected exactly one")
    (traffic,) = kept
    log = DecisionLog(f"sqlite:///{record.decision_log}")
    try:
        decisions = log.decisions()
    finally:
        log.close()
    started = pd.Timestamp(traffic.started_wall, unit="s", tz="UTC")
    logger.debug("drill %s: %d requests, %d decisions", kind, len(traffic.outcomes), len(decisions))
    return Evidence(record, requests_frame(traffic.outcomes), decisions, started)
