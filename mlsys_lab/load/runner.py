"""Run locust headless as a subprocess against a loopback URL, and read what it measured into a :class:`LoadResult`.

Why a subprocess: ``import locust`` monkey-patches the interpreter with gevent, which breaks a
Jupyter kernel (locust#2098); a child process keeps the caller clean. Everything locust writes
goes to the run folder, never to the caller's stderr (a graded cell that writes to stderr scores zero):

- ``command.txt``: the exact command line;
- ``locust.log``: locust's log (``--logfile``), and ``locust.out``: its stdout and stderr;
- ``locust_stats.csv``, ``locust_stats_history.csv``, ``locust_failures.csv``: locust's CSV (``--csv``);
  its percentiles are rounded and its history can miss the last seconds, so nothing here reads them;
- ``locust.json`` (``--json-file``): locust 2.47 writes a JSON **list** with one entry per request
  name and method (no "Aggregated" entry, no errors), each holding ``num_requests``,
  ``num_failures``, ``response_times`` (a dict from the rounded latency in ms, as a string key,
  to a count: locust rounds to ~2 significant digits), ``num_reqs_per_sec`` and
  ``num_fail_per_sec`` (dicts from a Unix second to a count), ``start_time`` and
  ``last_request_timestamp``;
- ``samples.json``: the locustfile's own per-second counts (requests, failures by kind, users and a
  three-digit latency histogram by start second), what the result and the SLO check are built from.

Locust exits 1 when any request failed; the runner passes ``--exit-code-on-error 0`` so that a
failing run is a result to read, and treats any other non-zero exit as a crash.

Distributed mode (``workers=N``), for when one load generator (one core) cannot saturate the
service: one master (``--master --master-bind-host 127.0.0.1``, a free port) plays the stages and
writes ``locust.json``; N worker processes (``--worker``) send the requests, worker *i* only lines
*i*, *i+N*, ... of the pool (no transaction sent twice), each writing ``worker-i.log``, ``worker-i.out``
and ``samples-worker-i.json``. The result merges the workers' samples by wall-clock second: the same
:class:`~mlsys_lab.load.result.LoadResult` as a single generator's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlsys_lab.load.result import LatencyHistogram, LoadResult, SecondStats
from mlsys_lab.load.scenarios import Scenario

__all__ = [
    "LOCUSTFILE",
    "LocustRun",
    "check_loopback",
    "locust_command",
    "read_locust_json",
    "run_locust",
    "worker_command",
]

log = logging.getLogger(__name__)

#: The locustfile shipped with the package (run only by the locust subprocess).
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOOPBACK_HOSTS = ("127.0.0.1",)
#: Seconds a user may finish its request after the run ends (locust's --stop-timeout).
STOP_TIMEOUT_S = 5.0
#: Extra seconds over the scenario before the hard timeout kills locust: start-up (imports, pool) and stop.
TIMEOUT_MARGIN_S = 60.0


def check_loopback(url: str) -> str:
    """``url`` without a trailing slash, if its host is 127.0.0.1; a ValueError naming the fix otherwise.

    Load tests in this course only ever go to the learner's own machine: a mistyped host must not
    send thousands of requests to somebody else's server.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(
            f"target {url!r} is not on loopback: load tests here only go to http://127.0.0.1:<port> "
            "(start the service on 127.0.0.1 and pass its URL)"
        )
    return url.rstrip("/")


def _locust_script() -> Path:
    script = Path(sys.executable).with_name("locust")
    if not script.exists():
        raise FileNotFoundError(f"no locust command beside {sys.executable}: install the locked dependencies")
    return script


@dataclass(frozen=True)
class LocustRun:
    """Where one run's files are (all inside ``run_dir``)."""

    run_dir: Path

    @property
    def pool(self) -> Path:
        return self.run_dir / "requests.jsonl"

    @property
    def samples(self) -> Path:
        return self.run_dir / "samples.json"

    @property
    def json(self) -> Path:
        return self.run_dir / "locust.json"

    @property
    def log(self) -> Path:
        return self.run_dir / "locust.log"

    @property
    def output(self) -> Path:
        return self.run_dir / "locust.out"


def worker_command(
    scenario: Scenario,
    files: LocustRun,
    index: int,
    workers: int,
    master_port: int,
    *,
    max_requests: int = 0,
    locustfile: Path = LOCUSTFILE,
) -> list[str]:
    """The command line of distributed worker ``index`` of ``workers``, connecting to the master on loopback."""
    return [
        str(_locust_script()),
        "--locustfile",
        str(locustfile),
        "--worker",
        "--master-host",
        LOOPBACK_HOSTS[0],
        "--master-port",
        str(master_port),
        "--logfile",
        str(files.run_dir / f"worker-{index}.log"),
        "--loglevel",
        "INFO",
        "--mlsys-pool",
        str(files.pool),
        "--mlsys-slice",
        f"{index}/{workers}",
        "--mlsys-rate-per-user",
        f"{scenario.rate_per_user or 0:g}",
        "--mlsys-max-requests",
        str(max_requests),
        "--mlsys-samples",
        str(files.run_dir / f"samples-worker-{index}.json"),
    ]


def locust_command(
    target: str,
    scenario: Scenario,
    files: LocustRun,
    *,
    max_requests: int = 0,
    locustfile: Path = LOCUSTFILE,
    master: tuple[int, int] | None = None,
) -> list[str]:
    """The ``locust --headless`` command line for ``scenario`` against ``target``, writing into ``files.run_dir``.

    ``master=(port, workers)`` makes it the master of a distributed run: bound to 127.0.0.1 at
    ``port``, waiting for ``workers`` workers, sending no request itself.
    """
    stages = [[s.until_s, s.users, s.spawn_rate] for s in scenario.stages]
    distributed = (
        [
            "--master",
            "--master-bind-host",
            LOOPBACK_HOSTS[0],
            "--master-bind-port",
            str(master[0]),
            "--expect-workers",
            str(master[1]),
        ]
        if master is not None
        else []
    )
    return [
        str(_locust_script()),
        "--locustfile",
        str(locustfile),
        "--headless",
        *distributed,
        "--host",
        check_loopback(target),
        "--run-time",
        f"{math.ceil(scenario.duration_s) + 1}s",  # the shape ends the run; this is a second bound
        "--stop-timeout",
        f"{STOP_TIMEOUT_S:g}",
        "--exit-code-on-error",
        "0",
        "--only-summary",
        "--csv",
        str(files.run_dir / "locust"),
        "--csv-full-history",
        "--json-file",
        str(files.run_dir / "locust"),  # locust adds ".json"
        "--logfile",
        str(files.log),
        "--loglevel",
        "INFO",
        "--mlsys-pool",
        str(files.pool),
        "--mlsys-stages",
        json.dumps(stages),
        "--mlsys-rate-per-user",
        f"{scenario.rate_per_user or 0:g}",
        "--mlsys-max-requests",
        str(max_requests),
        "--mlsys-samples",
        "" if master is not None else str(files.samples),
    ]


def run_locust(
    target: str,
    scenario: Scenario,
    run_dir: Path,
    *,
    pool: Path | None = None,
    max_requests: int | None = None,
    timeout_s: float | None = None,
    workers: int = 0,
) -> LoadResult:
    """Run ``scenario`` with locust (FastHttpUser, headless, a subprocess) against ``target`` and read the result.

    Parameters
    ----------
    target
        The service's base URL; only ``http://127.0.0.1:<port>`` is accepted.
    scenario
        Stages, pacing and endpoint (:mod:`mlsys_lab.load.scenarios`).
    run_dir
        Folder for every file of the run (created; files of an earlier run there are replaced).
    pool
        A request pool written by :func:`~mlsys_lab.load.scenarios.write_request_pool`; copied into
        ``run_dir``. When None, one is built from the ``tiny`` preset's last days, sized for the scenario.
    max_requests
        Stop after this many requests (0 or None: the scenario's own bound, or unbounded when unpaced
        and a pool is given).
    timeout_s
        Hard limit: locust (and its process group) is killed after this many seconds.
        Default: the scenario's duration plus :data:`TIMEOUT_MARGIN_S`.
    workers
        0 (default): one locust process. N > 0: locust's distributed mode on loopback, one master
        and N worker processes, each sending its own share of the pool (``max_requests`` is split
        between them); the result is merged from the workers' samples.

    Raises
    ------
    ValueError
        ``target`` is not on loopback.
    RuntimeError
        Locust crashed, timed out, or wrote no results; the message ends with its log's last lines.
    """
    from mlsys_lab.load import scenarios

    target = check_loopback(target)
    run_dir.mkdir(parents=True, exist_ok=True)
    files = LocustRun(run_dir)
    for stale in (files.samples, files.json):
        stale.unlink(missing_ok=True)
    if pool is not None:
        files.pool.write_bytes(pool.read_bytes())
    else:
        n = max_requests or scenario.max_requests()
        scenarios.write_request_pool(
            files.pool,
            scenarios.simulated_transactions(),
            n,
            endpoint=scenario.endpoint,
            batch_size=scenario.batch_size,
        )
    if workers < 0:
        raise ValueError(f"workers must be 0 (one locust process) or a positive count, got {workers}")
    cap = max_requests or 0
    commands: list[tuple[list[str], Path]] = []
    if workers:
        port = _free_port()
        per_worker = math.ceil(cap / workers) if cap else 0
        command = locust_command(target, scenario, files, max_requests=per_worker, master=(port, workers))
        commands.append((command, files.output))
        for i in range(workers):
            worker = worker_command(scenario, files, i, workers, port, max_requests=per_worker)
            commands.append((worker, files.run_dir / f"worker-{i}.out"))
        for i in range(workers):
            (files.run_dir / f"samples-worker-{i}.json").unlink(missing_ok=True)
    else:
        command = locust_command(target, scenario, files, max_requests=cap)
        commands.append((command, files.output))
    (run_dir / "command.txt").write_text("".join(shlex.join(c) + "\n" for c, _ in commands))
    timeout = timeout_s if timeout_s is not None else scenario.duration_s + TIMEOUT_MARGIN_S
    log.info("locust: %s for %.0f s against %s, files in %s", scenario.name, scenario.duration_s, target, run_dir)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for argv, out_path in commands:
            with out_path.open("wb") as output:
                # A file, never a pipe (a full pipe blocks locust); its own session so a timeout kills all of it.
                processes.append(
                    subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    )
                )
        deadline = time.monotonic() + timeout
        codes = []
        for process in processes:
            try:
                codes.append(process.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                raise RuntimeError(
                    f"locust did not finish within {timeout:g} s and was killed: {_tail(files)}"
                ) from None
    finally:  # Ctrl-C, a kernel interrupt, a timeout: never leave locust loading the server
        for process in processes:
            if process.poll() is None:
                _kill(process)
    code = next((c for c in codes if c != 0), 0)
    samples = [files.run_dir / f"samples-worker-{i}.json" for i in range(workers)] if workers else [files.samples]
    if code != 0 or not all(path.exists() for path in samples) or not files.json.exists():
        raise RuntimeError(f"locust exited with {code} without its results: {_tail(files)}")
    if workers:
        _merge_samples(samples, files.samples)
    return _result(target, scenario, files)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK_HOSTS[0], 0))
        return int(probe.getsockname()[1])


def _merge_samples(paths: list[Path], into: Path) -> None:
    """The workers' per-second samples as one file: seconds realigned on the earliest worker's start."""
    parts = [json.loads(path.read_text()) for path in paths]
    start = min(float(p["start"]) for p in parts)
    seconds: dict[int, dict[str, Any]] = {}
    for part in parts:
        shift = float(part["start"]) - start
        for entry in part["seconds"]:
            second = math.floor(int(entry["second"]) + shift)
            merged = seconds.setdefault(
                second, {"requests": 0, "failures": Counter(), "users": 0, "latency": Counter()}
            )
            merged["requests"] += int(entry["requests"])
            merged["failures"].update({str(k): int(v) for k, v in entry["failures"].items()})
            merged["users"] += int(entry["users"])
            merged["latency"].update({float(b): int(c) for b, c in entry["latency_ms"]})
    payload = {
        "workers": len(parts),
        "start": start,
        "stop": max(float(p["stop"]) for p in parts),
        "pool_exhausted": all(p.get("pool_exhausted") for p in parts),
        "seconds": [
            {
                "second": s,
                "requests": m["requests"],
                "failures": dict(m["failures"]),
                "users": m["users"],
                "latency_ms": [[b, c] for b, c in sorted(m["latency"].items())],
            }
            for s, m in sorted(seconds.items())
        ],
    }
    into.write_text(json.dumps(payload))


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(files: LocustRun, chars: int = 2000) -> str:
    text = ""
    for path in (files.output, files.log):
        if path.exists():
            text += f"\n--- {path.name}:\n" + path.read_text(errors="replace")[-chars:]
    return text


def read_locust_json(path: Path) -> tuple[int, int, LatencyHistogram]:
    """Requests, failures and the response-time histogram summed over every entry of locust's ``--json-file``."""
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected locust's JSON list of stats entries, got {type(entries).__name__}")
    counts: Counter[float] = Counter()
    requests = failures = 0
    for entry in entries:
        requests += int(entry["num_requests"])
        failures += int(entry["num_failures"])
        for bucket, count in entry["response_times"].items():
            counts[float(bucket)] += int(count)
    return requests, failures, LatencyHistogram.from_counts(counts)


def _result(target: str, scenario: Scenario, files: LocustRun) -> LoadResult:
    samples = json.loads(files.samples.read_text())
    history = tuple(
        SecondStats(
            second=int(s["second"]),
            requests=int(s["requests"]),
            histogram=LatencyHistogram.from_counts((float(b), int(c)) for b, c in s["latency_ms"]),
            failures={str(k): int(v) for k, v in s["failures"].items()},
            users=int(s["users"]),
        )
        for s in samples["seconds"]
    )
    failures: Counter[str] = Counter()
    for second in history:
        failures.update(second.failures)
    histogram = sum((s.histogram for s in history), LatencyHistogram())
    locust_requests, locust_failures, locust_histogram = read_locust_json(files.json)
    notes = []
    recorded = sum(s.requests for s in history)
    if (recorded, sum(failures.values())) != (locust_requests, locust_failures):
        notes.append(
            f"locust's JSON counts {locust_requests} requests and {locust_failures} failures, "
            f"the per-second samples {recorded} and {sum(failures.values())}"
            + (
                " (distributed: locust's master waits only 0.5 s for the workers' last stats report at the "
                "end, so its JSON can miss their last seconds; the workers' own samples are complete)"
                if samples.get("workers") and locust_requests < recorded
                else ""
            )
        )
    if samples.get("pool_exhausted"):
        notes.append("the request pool ran out before the scenario ended: size it for the scenario")
    return LoadResult(
        generator="locust",
        target=target,
        # The shape ends the run at the scenario's duration; what follows is locust stopping, not load.
        duration_s=min(float(samples["stop"]) - float(samples["start"]), scenario.duration_s),
        requests=recorded,
        failures=dict(failures),
        histogram=histogram,
        history=history,
        offered_rate=scenario.offered_rate,
        run_dir=files.run_dir,
        locust_histogram=locust_histogram,
        notes=tuple(notes),
    )
