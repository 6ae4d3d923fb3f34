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
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shlex
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mlsys_lab.load.result import LatencyHistogram, LoadResult, SecondStats
from mlsys_lab.load.scenarios import Scenario

__all__ = ["LOCUSTFILE", "LocustRun", "check_loopback", "locust_command", "read_locust_json", "run_locust"]

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


def locust_command(
    target: str,
    scenario: Scenario,
    files: LocustRun,
    *,
    max_requests: int = 0,
    locustfile: Path = LOCUSTFILE,
) -> list[str]:
    """The ``locust --headless`` command line for ``scenario`` against ``target``, writing into ``files.run_dir``."""
    stages = [[s.until_s, s.users, s.spawn_rate] for s in scenario.stages]
    return [
        str(_locust_script()),
        "--locustfile",
        str(locustfile),
        "--headless",
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
        str(files.samples),
    ]


def run_locust(
    target: str,
    scenario: Scenario,
    run_dir: Path,
    *,
    pool: Path | None = None,
    max_requests: int | None = None,
    timeout_s: float | None = None,
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
    command = locust_command(target, scenario, files, max_requests=max_requests or 0)
    (run_dir / "command.txt").write_text(shlex.join(command) + "\n")
    timeout = timeout_s if timeout_s is not None else scenario.duration_s + TIMEOUT_MARGIN_S
    log.info("locust: %s for %.0f s against %s, files in %s", scenario.name, scenario.duration_s, target, run_dir)
    with files.output.open("wb") as output:
        # A file, never a pipe (a full pipe blocks locust); its own session so a timeout kills all of it.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise RuntimeError(f"locust did not finish within {timeout:g} s and was killed: {_tail(files)}") from None
        except BaseException:  # Ctrl-C, a kernel interrupt: never leave locust loading the server
            _kill(process)
            raise
    if code != 0 or not files.samples.exists() or not files.json.exists():
        raise RuntimeError(f"locust exited with {code} without its results: {_tail(files)}")
    return _result(target, scenario, files)


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
