"""Version skew with several workers: after an alias move, how long do two versions decide side by side?

``mlsys-lab serve --workers N`` runs N processes, and each follows the champion alias on its own
timer (``MLSYS_LAB_MODEL_REFRESH_SECONDS``; 5 s by default with several workers, see
:func:`mlsys_lab.deployment.service.follow_alias`). Between the first worker's reload and the last
one's, requests routed to different workers are decided by different versions. Nothing is wrong
with any single decision (each names its version in the log), but for that window the service as
a whole is two models: a canary's sample-ratio check, a shadow report or a rollback's effect read
over it mixes them.

The decision log shows the window, because every decision has its wall-clock ``decided_at`` and its
``model_version``, and the registry's alias history has the time of the move.
:func:`version_skew` reads both: from the move, the first decision by the new version and the last
one by the old; the window is the time between them (zero when the old version stopped before the
new one started). :class:`SteadyTraffic` is the steady load that makes the window visible: a few
threads, each opening a new connection per request so that the kernel spreads them over the
workers (one keep-alive connection reaches one worker only), bounded in requests and time,
loopback only.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
import pandas as pd

__all__ = ["SteadyTraffic", "VersionSkew", "version_skew"]


@dataclass(frozen=True)
class VersionSkew:
    """What the decision log shows after the serving alias moved from ``old`` to ``new`` at ``moved_at``.

    Attributes
    ----------
    first_new, last_old
        The first decision by ``new`` and the last one by ``old`` at or after ``moved_at``; None when
        there is none.
    decisions
        Decisions at or after ``moved_at`` (to the end of the frame given).
    old_after_move
        Of those, decisions made by ``old``.
    mixed
        Decisions from ``first_new`` to ``last_old``: those made while both versions were serving.
    """

    old: int
    new: int
    moved_at: dt.datetime
    first_new: dt.datetime | None
    last_old: dt.datetime | None
    decisions: int
    old_after_move: int
    mixed: int

    @property
    def window_seconds(self) -> float:
        """Seconds during which both versions decided (0 when they never overlapped; NaN before any new decision)."""
        if self.first_new is None:
            return math.nan
        if self.last_old is None:
            return 0.0
        return max(0.0, (self.last_old - self.first_new).total_seconds())

    @property
    def followed_seconds(self) -> float:
        """Seconds from the move until every worker serves ``new``: its last ``old`` decision (NaN before any new)."""
        if self.first_new is None:
            return math.nan
        last = self.last_old if self.last_old is not None else self.first_new
        return max(0.0, (last - self.moved_at).total_seconds())

    @property
    def first_new_seconds(self) -> float:
        """Seconds from the move to the first decision by ``new`` (NaN when there is none)."""
        return math.nan if self.first_new is None else (self.first_new - self.moved_at).total_seconds()


def version_skew(decisions: pd.DataFrame, *, old: int, new: int, moved_at: dt.datetime) -> VersionSkew:
    """The skew window after a move from ``old`` to ``new`` at ``moved_at``, read from logged decisions.

    ``decisions`` has ``decided_at`` (tz-aware UTC, as :meth:`~mlsys_lab.deployment.decision_log.DecisionLog.decisions`
    returns it) and ``model_version``; ``moved_at`` is the alias move's time (the registry's history
    ``at``, UTC; a naive value is taken as UTC). Pass the decisions up to the next move.

    Examples
    --------
    >>> t = pd.Timestamp("2026-01-01T00:00:00Z")
    >>> log = pd.DataFrame({"decided_at": [t + pd.Timedelta(seconds=s) for s in (0, 1, 2, 3, 4)],
    ...                     "model_version": [1, 2, 1, 2, 2]})
    >>> skew = version_skew(log, old=1, new=2, moved_at=t.to_pydatetime())
    >>> skew.window_seconds, skew.mixed, skew.old_after_move
    (1.0, 2, 2)
    """
    if old == new:
        raise ValueError(f"a move needs two versions, got old = new = {old}")
    missing = [c for c in ("decided_at", "model_version") if c not in decisions.columns]
    if missing:
        raise ValueError(f"decisions lacks column(s) {missing}: pass DecisionLog.decisions()")
    moved = pd.Timestamp(moved_at)
    moved = moved.tz_localize("UTC") if moved.tzinfo is None else moved.tz_convert("UTC")
    after = decisions[pd.to_datetime(decisions["decided_at"], utc=True) >= moved]
    at = pd.to_datetime(after["decided_at"], utc=True)
    versions = after["model_version"].to_numpy()
    new_times, old_times = at[versions == new], at[versions == old]
    first_new = new_times.min() if len(new_times) else None
    last_old = old_times.max() if len(old_times) else None
    mixed = 0
    if first_new is not None and last_old is not None and last_old >= first_new:
        mixed = int(((at >= first_new) & (at <= last_old)).sum())
    return VersionSkew(
        old=int(old),
        new=int(new),
        moved_at=moved.to_pydatetime(),
        first_new=None if first_new is None else first_new.to_pydatetime(),
        last_old=None if last_old is None else last_old.to_pydatetime(),
        decisions=len(after),
        old_after_move=len(old_times),
        mixed=mixed,
    )


@dataclass
class SteadyTraffic:
    """``threads`` clients sending ``bodies`` to ``url`` + ``/v1/score`` one at a time each, until stopped.

    Each request opens its own connection (no keep-alive), so the kernel spreads requests over the
    server's workers. Bounded: it stops after every body has been sent, or :meth:`stop`, or
    ``max_seconds``. ``statuses`` counts answers by status code (``-1`` for a transport error) and
    ``acknowledged`` holds the request ids the service answered 200 for.
    """

    url: str
    bodies: Iterable[dict[str, object]]
    threads: int = 4
    max_seconds: float = 300.0
    statuses: dict[int, int] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            raise ValueError(f"steady traffic goes to loopback only, got {self.url!r}")
        self._bodies = iter(self.bodies)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _next(self) -> dict[str, object] | None:
        with self._lock:
            return next(self._bodies, None)

    def _send(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection each time: any worker may take it
        with httpx.Client(base_url=self.url, timeout=60, limits=limits) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                body = self._next()
                if body is None:
                    return
                try:
                    answer = client.post("/v1/score", json=body)
                    status = answer.status_code
                except httpx.HTTPError as exc:
                    status = -1
                    answer = None
                    with self._lock:
                        self.errors.append(repr(exc))
                with self._lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    if answer is not None and status == 200:
                        self.acknowledged.add(str(answer.json()["request_id"]))
                    elif answer is not None:
                        self.errors.append(f"{status}: {answer.text[:200]}")

    def start(self) -> SteadyTraffic:
        """Start the threads; returns self."""
        self._workers = [threading.Thread(target=self._send, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop sending and wait (bounded) for the requests under way."""
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=timeout)

    @property
    def failed(self) -> int:
        """Requests not answered 200."""
        with self._lock:
            return sum(count for status, count in self.statuses.items() if status != 200)

    @property
    def sent(self) -> int:
        with self._lock:
            return sum(self.statuses.values())
