"""An open-loop load generator: requests leave on a Poisson schedule, whether or not earlier ones have answered.

Locust is closed loop: each user waits for its answer before it sends the next request. When the
server stalls, the users stall with it, send nothing meanwhile, and the requests that real clients
would have sent during the stall (and that would have waited) are never sent nor measured. That is
**coordinated omission**: the report looks good because the generator politely stopped asking.

Here arrivals follow a Poisson process at ``rate`` (independent exponential gaps, as independent
cardholders produce), each request is sent at its intended time whatever is still in flight, and
its latency is measured from the **intended** send time, so a request delayed by a stall (or by a
busy generator) carries that delay. Bounded by ``duration_s`` and ``max_requests``; every request
has a timeout (a timed-out request is a failure with its latency at the timeout).

Runs on asyncio and aiohttp in a thread of its own, so it also works inside a Jupyter kernel, where
an event loop is already running.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlsys_lab.load.result import LatencyHistogram, LoadResult, SecondStats, bucket_ms
from mlsys_lab.load.runner import check_loopback

__all__ = ["OpenLoopConfig", "poisson_schedule", "run_open_loop"]

log = logging.getLogger(__name__)
_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True)
class OpenLoopConfig:
    """How much load, for how long.

    Parameters
    ----------
    rate
        Mean arrivals per second (the offered rate).
    duration_s
        Arrivals are scheduled in ``[0, duration_s)``.
    max_requests
        Hard cap on scheduled requests (the schedule is cut there).
    request_timeout_s
        Per-request limit; a request still unanswered then is a failure (``"timeout"``).
    connections
        Most connections open at once (aiohttp's pool); arrivals beyond it queue in the client,
        and their wait counts, since latency runs from the intended time.
    random_state
        Seed of the arrival schedule.
    """

    rate: float
    duration_s: float
    max_requests: int = 100_000
    request_timeout_s: float = 10.0
    connections: int = 256
    random_state: int = 0

    def __post_init__(self) -> None:
        for name in ("rate", "duration_s", "request_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"OpenLoopConfig.{name} must be a finite number > 0, got {value!r}")
        if self.max_requests < 1 or self.connections < 1:
            raise ValueError("OpenLoopConfig.max_requests and .connections must be >= 1")


def poisson_schedule(rate: float, duration_s: float, max_requests: int, random_state: int = 0) -> np.ndarray:
    """Intended send times (seconds from the start) of a Poisson process at ``rate``, within ``duration_s``."""
    rng = np.random.default_rng(random_state)
    expected = rate * duration_s
    gaps = rng.exponential(1.0 / rate, size=int(expected + 6 * math.sqrt(expected) + 10))
    times = np.cumsum(gaps)
    return times[times < duration_s][:max_requests]


@dataclass
class _Outcome:
    intended_s: float
    latency_ms: float
    failure: str | None


async def _send(
    session: object, url: str, body: bytes, intended: float, start: float, timeout_s: float
) -> tuple[float, str | None]:
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(url, data=body, headers=_HEADERS) as response:
                await response.read()
                failure = None if response.status < 400 else f"HTTP {response.status}"
    except TimeoutError:
        failure = "timeout"
    except aiohttp.ClientError as exc:
        failure = type(exc).__name__
    except OSError as exc:
        failure = type(exc).__name__
    return (time.perf_counter() - (start + intended)) * 1000, failure


async def _run(
    target: str, pool: Sequence[tuple[str, bytes]], schedule: np.ndarray, config: OpenLoopConfig
) -> tuple[list[_Outcome], float, float]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=config.connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        tasks = []
        max_lag = 0.0
        for i, intended in enumerate(schedule.tolist()):
            delay = start + intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                max_lag = max(max_lag, -delay)  # the generator itself was late: the latency includes it
            path, body = pool[i]
            tasks.append(
                asyncio.create_task(_send(session, target + path, body, intended, start, config.request_timeout_s))
            )
        done = await asyncio.gather(*tasks)
        duration = time.perf_counter() - start
    outcomes = [_Outcome(t, latency, failure) for t, (latency, failure) in zip(schedule.tolist(), done, strict=True)]
    return outcomes, duration, max_lag


def run_open_loop(target: str, pool: Sequence[tuple[str, bytes]], config: OpenLoopConfig) -> LoadResult:
    """Send ``pool``'s requests (in order) on a Poisson schedule to ``target`` and measure from the intended times.

    Parameters
    ----------
    target
        Base URL on 127.0.0.1 (anything else is refused).
    pool
        (path, body bytes) pairs, e.g. from :func:`~mlsys_lab.load.scenarios.read_request_pool`; it
        must hold at least as many requests as the schedule.
    config
        Rate, duration and bounds.

    Returns
    -------
    LoadResult
        ``generator="open-loop"``; seconds are counted by intended send time, with ``intended`` per
        second and ``offered_rate`` = ``config.rate``.
    """
    target = check_loopback(target)
    schedule = poisson_schedule(config.rate, config.duration_s, config.max_requests, config.random_state)
    if len(pool) < len(schedule):
        raise ValueError(
            f"the pool holds {len(pool):,} requests but the schedule needs {len(schedule):,}: "
            "write a larger pool (scenarios.write_request_pool) or lower the rate or duration"
        )
    done: list[tuple[list[_Outcome], float, float]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            done.append(asyncio.run(_run(target, pool, schedule, config)))
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)

    # A thread of its own: asyncio.run() refuses to start inside a running loop (a Jupyter kernel's).
    thread = threading.Thread(target=work, name="open-loop", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    outcomes, duration, max_lag = done[0]
    return _result(target, outcomes, duration, max_lag, schedule, config)


def _result(
    target: str,
    outcomes: list[_Outcome],
    duration: float,
    max_lag: float,
    schedule: np.ndarray,
    config: OpenLoopConfig,
) -> LoadResult:
    latency: defaultdict[int, Counter[float]] = defaultdict(Counter)
    failures: defaultdict[int, Counter[str]] = defaultdict(Counter)
    intended = Counter(int(t) for t in schedule.tolist())
    for o in outcomes:
        second = int(o.intended_s)
        latency[second][bucket_ms(max(0.0, o.latency_ms))] += 1
        if o.failure is not None:
            failures[second][o.failure] += 1
    history = tuple(
        SecondStats(
            second=s,
            requests=sum(latency[s].values()),
            histogram=LatencyHistogram.from_counts(latency[s]),
            failures=dict(failures[s]),
            intended=intended[s],
        )
        for s in range(math.ceil(config.duration_s))
    )
    total: Counter[str] = Counter()
    for f in failures.values():
        total.update(f)
    notes = (f"the generator sent up to {max_lag * 1000:.1f} ms late (counted in the latencies)",)
    return LoadResult(
        generator="open-loop",
        target=target,
        duration_s=config.duration_s,  # arrivals span this; the rate is per second of the schedule
        requests=len(outcomes),
        failures=dict(total),
        histogram=sum((s.histogram for s in history), LatencyHistogram()),
        history=history,
        offered_rate=config.rate,
        intended=len(schedule),
        notes=(*notes, f"last answer {duration:.2f} s after the start"),
    )
