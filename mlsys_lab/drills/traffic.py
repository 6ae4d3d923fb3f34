"""The drills' load generator: paced requests with a per-request record, to a target that can move.

Module 04's generators (:mod:`mlsys_lab.load`) summarise a run into histograms; a drill needs each
request: which transaction, when it was meant to leave, what came back and its ``request_id``, so
that "no acknowledged decision is missing from the log" can be checked id by id and the downtime
read from the first failure to the first success. Requests leave on a fixed schedule (request ``i``
at ``i / rate`` seconds, with the rate allowed to change over time) from a pool of threads, each
with its own keep-alive connection; a thread that falls behind sends at once, and the latency is
measured from the intended time, so a stall is not hidden (the open-loop idea of
:mod:`mlsys_lab.load.openloop`, with bounded concurrency). The target URL is read before every
request, so a restarted server on a new port (a load balancer's view) takes over the traffic.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
import numpy as np

__all__ = ["REQUEST_COLUMNS", "Outcome", "Target", "Traffic", "schedule"]


class Target:
    """The URL traffic goes to; :meth:`move` points it at a restarted server."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        with self._lock:
            return self._url

    def move(self, url: str) -> None:
        with self._lock:
            self._url = url


@dataclass(frozen=True)
class Outcome:
    """One request: what was sent, when (seconds from the traffic's start), and what came back."""

    index: int
    transaction_id: int
    intended_s: float
    sent_s: float
    done_s: float
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    error: str  # transport error name, or the answer's ``detail`` for a non-200
    request_id: str  # "" unless 200
    decision: bool
    score: float

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def latency_ms(self) -> float:
        return (self.done_s - self.intended_s) * 1000


#: The fields of one request in a drill's record (:attr:`~mlsys_lab.drills.record.DrillRecord.requests`).
REQUEST_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Outcome))


def schedule(rates: Sequence[tuple[float, float]], duration_s: float) -> np.ndarray:
    """Intended send times for piecewise-constant rates: ``rates`` = ``[(from_s, req/s), ...]`` sorted by ``from_s``."""
    times: list[float] = []
    bounds = [start for start, _ in rates[1:]] + [duration_s]
    for (start, rate), end in zip(rates, bounds, strict=True):
        if rate <= 0:
            continue
        times.extend(np.arange(start, end, 1.0 / rate).tolist())
    return np.asarray(times)


class Traffic:
    """Send ``bodies[i]`` to ``path(i)`` at ``times[i]`` seconds, from ``threads`` threads; bounded by ``times``.

    Parameters
    ----------
    target
        Where to send (read before each request).
    bodies
        JSON bodies, one per intended time (at least ``len(times)``).
    times
        Intended send times, seconds from :meth:`start`.
    path
        The endpoint of request ``i`` (e.g. ``/v1/score``, or ``/v2/score`` once a client changed).
    timeout_s
        Per-request timeout.
    """

    def __init__(
        self,
        target: Target,
        bodies: Sequence[dict[str, object]],
        times: np.ndarray,
        *,
        path: Callable[[int], str] = lambda _i: "/v1/score",
        body_for: Callable[[int, dict[str, object]], dict[str, object]] | None = None,
        threads: int = 8,
        timeout_s: float = 5.0,
    ) -> None:
        if len(bodies) < len(times):
            raise ValueError(f"{len(times)} intended requests but only {len(bodies)} bodies")
        self.target = target
        self.bodies = bodies
        self.times = np.asarray(times, dtype=np.float64)
        self.path = path
        self.body_for = body_for
        self.timeout_s = timeout_s
        self.outcomes: list[Outcome] = []
        self.started = 0.0  # perf_counter at start
        self.started_wall = 0.0  # time.time() at start
        self._next = 0
        self._end = float("inf")
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"drill-{i}") for i in range(threads)]

    def now(self) -> float:
        """Seconds since the traffic started."""
        return time.perf_counter() - self.started

    def start(self) -> Traffic:
        self.started, self.started_wall = time.perf_counter(), time.time()
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> list[Outcome]:
        for thread in self._threads:
            thread.join(timeout=self.times[-1] + 10 * self.timeout_s if len(self.times) else 10)
        return sorted(self.outcomes, key=lambda o: o.index)

    def stop_after(self, seconds: float) -> None:
        """Send nothing intended after ``seconds`` (an outage drill ends a little after the service is back)."""
        with self._lock:
            self._end = seconds

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.times) or self.times[self._next] > self._end:
                return None
            self._next += 1
            return self._next - 1

    def _work(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while (i := self._take()) is not None:
                wait = self.times[i] - self.now()
                if wait > 0:
                    time.sleep(wait)
                body = self.bodies[i] if self.body_for is None else self.body_for(i, self.bodies[i])
                sent = self.now()
                status, error, request_id, decision, score = 0, "", "", False, float("nan")
                try:
                    answer = client.post(f"{self.target.url}{self.path(i)}", json=body)
                    status = answer.status_code
                    if status == 200:
                        data = answer.json()
                        request_id, decision, score = str(data["request_id"]), bool(data["decision"]), data["score"]
                    else:
                        error = str(answer.json().get("detail", ""))[:300] if answer.content else ""
                except httpx.TransportError as exc:
                    error = type(exc).__name__
                except ValueError as exc:  # an answer that is not JSON: a bug worth seeing in the record
                    error = f"not JSON: {exc}"
                outcome = Outcome(
                    index=i,
                    transaction_id=int(body["transaction_id"]),  # type: ignore[call-overload]
                    intended_s=float(self.times[i]),
                    sent_s=sent,
                    done_s=self.now(),
                    status=status,
                    error=error,
                    request_id=request_id,
                    decision=decision,
                    score=float(score),
                )
                with self._lock:
                    self.outcomes.append(outcome)
