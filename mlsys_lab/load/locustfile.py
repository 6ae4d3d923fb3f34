"""The locustfile the runner starts: a ``FastHttpUser`` posting pre-built scoring requests, and one stage shape.

Only a ``locust`` subprocess imports this file (importing it monkey-patches the interpreter with
gevent: never import it from a notebook or from the package). :func:`mlsys_lab.load.runner.run_locust`
passes its settings as locust command-line options (below), so everything about a run is in its
command line, written to the run folder.

- ``--mlsys-pool FILE``: the request pool (``scenarios.write_request_pool``); each request is the next
  line, shared by all users, so no transaction is sent twice. When the pool runs out the run stops
  (it was sized for the scenario: running out means the scenario sent more than planned).
- ``--mlsys-stages JSON``: ``[[until_s, users, spawn_rate], ...]``, played by :class:`StageShape`.
- ``--mlsys-rate-per-user R``: ``constant_throughput(R)`` per user; 0 for unpaced.
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
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.user.wait_time import constant_throughput

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
    """Posts the next request of the pool; paced by ``--mlsys-rate-per-user`` (unpaced when 0)."""

    def wait_time(self) -> float:
        rate = self.environment.parsed_options.mlsys_rate_per_user if self.environment.parsed_options else 0
        if not rate:
            return 0.0
        if not hasattr(self, "_pacing"):
            self._pacing = constant_throughput(rate)
        return float(self._pacing(self))

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
