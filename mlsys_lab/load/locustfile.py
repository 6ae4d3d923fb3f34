"""The locustfile the runner starts: a ``FastHttpUser`` posting pre-built scoring requests, and one stage shape.

Only a ``locust`` subprocess imports this file (importing it monkey-patches the interpreter with
gevent: never import it from a notebook or from the package). :func:`mlsys_lab.load.runner.run_locust`
passes its settings as locust command-line options (below), so everything about a run is in its
command line, written to the run folder.

- ``--mlsys-pool FILE``: the request pool (``scenarios.write_request_pool``); each request is the next
  line, shared by all users, so no transaction is sent twice. When the pool runs out the run stops
  (it was sized for the scenario: running out means the scenario sent more than planned).
- ``--mlsys-stages JSON``: ``[[until_s, users, spawn_rate], ...]``, played by :class:`StageShape`.
- ``--mlsys-rate-per-user R``: one request every 1/R s per user, each user on its own random phase
  (see :class:`ScoringUser`); 0 for unpaced.
- ``--mlsys-max-requests N``: stop after N requests (a hard bound for tests).
- ``--mlsys-samples FILE``: per-second counts written at the end: requests, failures by kind, users,
  and a latency histogram at three significant digits (``mlsys_lab.load.result.bucket_ms``), by the
  second each request **started**. Locust's own JSON keeps only ~2-digit buckets for the whole run.
- ``--mlsys-slice I/N``: in distributed mode, this worker sends only lines I, I+N, I+2N, ... of the
  pool, so that no two workers send the same transaction (each is scored once).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

# The same function the result type uses; a copy here would drift. It is pure Python (no locust import).
from mlsys_lab.load.result import bucket_ms
from mlsys_lab.load.scenarios import read_request_pool

_HEADERS = {"content-type": "application/json"}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--mlsys-pool", default="", help="request pool file (one JSON request per line)")
    parser.add_argument("--mlsys-stages", default="", help="JSON [[until_s, users, spawn_rate], ...]")
    parser.add_argument("--mlsys-rate-per-user", type=float, default=0.0, help="requests/s per user; 0 = unpaced")
    parser.add_argument("--mlsys-max-requests", type=int, default=0, help="stop after this many requests; 0 = no cap")
    parser.add_argument("--mlsys-samples", default="", help="where to write the per-second samples (JSON)")
    parser.add_argument("--mlsys-slice", default="", help="I/N: send only every N-th pool line from line I")


class _Recorder:
    """Per-second counts of every request, by its start time; written out once at the end."""

    def __init__(self) -> None:
        self.start = time.time()
        self.requests: Counter[int] = Counter()
        self.latency: defaultdict[int, Counter[float]] = defaultdict(Counter)
        self.failures: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self.users: dict[int, int] = {}
        self.sent = 0
        self.pool_exhausted = False

    def record(self, response_time: float, exception: BaseException | None, response: Any, users: int) -> None:
        started = time.time() - response_time / 1000
        second = max(0, math.floor(started - self.start))
        self.requests[second] += 1
        self.latency[second][bucket_ms(max(0.0, response_time))] += 1
        if exception is not None:
            status = getattr(response, "status_code", 0) or 0
            self.failures[second][f"HTTP {status}" if status else type(exception).__name__] += 1
        self.users[second] = max(self.users.get(second, 0), users)

    def dump(self, path: str) -> None:
        seconds = sorted(self.requests)
        payload = {
            "start": self.start,
            "stop": time.time(),
            "pool_exhausted": self.pool_exhausted,
            "seconds": [
                {
                    "second": s,
                    "requests": self.requests[s],
                    "failures": dict(self.failures[s]),
                    "users": self.users.get(s, 0),
                    "latency_ms": [[b, c] for b, c in sorted(self.latency[s].items())],
                }
                for s in seconds
            ],
        }
        with open(path, "w") as out:
            json.dump(payload, out)


_recorder = _Recorder()
_pool: list[tuple[str, bytes]] = []  # last request first, so that taking the next one is a list.pop()
_environment: Environment | None = None
# Each user's pacing phase (ScoringUser.on_start); seeded so that a run's arrival pattern can be replayed,
# and by the worker's slice in distributed mode, so that two workers do not draw the same phases.
_phases = random.Random(0)
# Read from this process's own command line at init: in distributed mode the master's custom options
# replace a worker's when the load starts, and each worker writes its own samples file.
_samples_path = ""


@events.init.add_listener
def _load_pool(environment: Environment, **_: Any) -> None:
    global _environment, _samples_path
    _environment = environment
    options = environment.parsed_options
    _samples_path = options.mlsys_samples if options is not None else ""
    if options is not None and options.mlsys_pool:
        pool = read_request_pool(Path(options.mlsys_pool))
        if options.mlsys_slice:
            index, count = (int(part) for part in options.mlsys_slice.split("/"))
            pool = pool[index::count]
            _phases.seed(index)
        _pool.extend(reversed(pool))


@events.test_start.add_listener
def _started(environment: Environment, **_: Any) -> None:
    _recorder.start = time.time()


@events.request.add_listener
def _on_request(response_time: float, exception: BaseException | None, response: Any = None, **_: Any) -> None:
    runner = _environment.runner if _environment is not None else None
    _recorder.record(response_time, exception, response, runner.user_count if runner is not None else 0)


@events.quitting.add_listener
def _write_samples(environment: Environment, **_: Any) -> None:
    if _samples_path:
        _recorder.dump(_samples_path)


class ScoringUser(FastHttpUser):
    """Posts the next request of the pool; paced by ``--mlsys-rate-per-user`` (unpaced when 0).

    Paced users send one request every ``1 / rate`` seconds, each from its own random phase. Not
    locust's ``constant_throughput``: locust starts a spawn batch (``floor(spawn_rate)`` users) at
    one instant, and ``constant_throughput`` keeps every user on the phase of its creation (a delay
    in ``on_start`` is taken off its first wait), so the users of a batch sent in lockstep for the
    whole run. Against ``mlsys-lab serve`` at 25 req/s from 10 users, 82% of the requests left
    within 2 ms of another one and waited for each other in the server: p50 50 ms where the same
    rate spread over time gave 13 ms. Independent clients do not synchronise; with a uniform
    random phase, the requests of one period arrive at uniform random times, as Poisson arrivals
    of that count do (the open-loop generator's model).
    """

    def _period(self) -> float:
        options = self.environment.parsed_options
        rate = options.mlsys_rate_per_user if options is not None else 0
        return 1.0 / rate if rate else 0.0

    def on_start(self) -> None:
        period = self._period()
        phase = _phases.uniform(0, period) if period else 0.0
        self._next_send = time.perf_counter() + phase
        if phase:
            time.sleep(phase)  # gevent's sleep here: locust patched the interpreter

    def wait_time(self) -> float:
        period = self._period()
        if not period:
            return 0.0
        now = time.perf_counter()
        # On schedule from the phase (a late sleep does not shift the next send); after an answer
        # slower than the period, send at once without a catch-up burst, as constant_throughput does.
        self._next_send = max(self._next_send + period, now)
        return self._next_send - now

    @task
    def score(self) -> None:
        options = self.environment.parsed_options
        cap = options.mlsys_max_requests if options is not None else 0
        if not _pool or (cap and _recorder.sent >= cap):
            _recorder.pool_exhausted = not _pool
            runner = self.environment.runner
            if isinstance(runner, WorkerRunner):
                # A worker that quits takes its last stats report with it: idle until the master stops
                # the run (the shape's end), which collects every worker's final counts.
                time.sleep(0.2)  # gevent's sleep here: locust patched the interpreter
            elif runner is not None:
                runner.quit()
            return
        path, body = _pool.pop()
        _recorder.sent += 1
        # Pre-encoded bytes: geventhttpclient sends them as they are (its stub says str or dict).
        self.client.post(path, data=body, headers=_HEADERS)  # type: ignore[arg-type]


class StageShape(LoadTestShape):
    """Plays ``--mlsys-stages``: at each tick, the users and spawn rate of the current stage; None at the end."""

    def tick(self) -> tuple[int, float] | None:
        runner = self.runner
        options = runner.environment.parsed_options if runner is not None else None
        stages = json.loads(options.mlsys_stages) if options is not None and options.mlsys_stages else []
        elapsed = self.get_run_time()
        for until_s, users, spawn_rate in stages:
            if elapsed < until_s:
                return int(users), float(spawn_rate)
        return None
