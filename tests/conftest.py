"""Suite-wide test set-up: a throwaway PostgreSQL, and how the tests share both cores under pytest-xdist.

**PostgreSQL.** A throwaway PostgreSQL for the tests that need a real one (the decision log, several service processes).

One cluster per pytest session, and so per xdist worker (each worker is its own session): its own
folder, its own free port on 127.0.0.1, removed at the end. Each test gets a database of its own
(``postgres_url``), dropped after it. Without PostgreSQL's binaries these tests skip, saying how to
install them; with ``CI=true`` a missing server fails them, so CI cannot pass by skipping.

**Both cores.** ``make test`` runs ``pytest -n 2 --dist loadgroup``. Expensive fixtures (an nbgrader
course and its round trip, an executed solution, a trained model in a module-scoped fixture) are built
once per worker that needs them, so the tests that share one must run on the same worker. xdist 3.8's
own ``loadgroup`` does this by appending ``@group`` to a test's id, which has no effect under pytest 9
(a node's id is no longer the ``_nodeid`` attribute xdist rewrites), so this file installs its own
scheduler (:class:`SharedFixtureScheduling`) under the same option. A test's scope is:

1. ``course-NN_slug`` when its parameters name a course module (``[04_load_and_latency]``,
   ``[02_training_layer-train_forest]``): every per-module session fixture stays on one worker;
2. otherwise its file, so a module-scoped fixture is built once.

Scopes, not single tests, are handed out to the workers, longest first (:func:`work_order`), so that
neither worker is left running a long scope alone at the end. A new test needs no mark. After a run
under xdist, the terminal summary shows each worker's busy time and when it finished, and each
scope's measured seconds are kept in pytest's cache (``.pytest_cache/``) for the next run's order.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping

import pytest

from mlsys_lab.deployment.pgcluster import PostgresUnavailable, ThrowawayCluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[ThrowawayCluster]:
    """A PostgreSQL server of this session's own on loopback; skipped (failed under CI=true) when not installed."""
    try:
        cluster = ThrowawayCluster()
    except PostgresUnavailable as missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and no PostgreSQL server: {missing}", pytrace=False)
        pytest.skip(f"needs a PostgreSQL server: {missing}")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: ThrowawayCluster) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = postgres_cluster.create_database(name)
    yield url
    postgres_cluster.drop_database(name)


#: A course module's folder name inside a test id's parameters, e.g. ``[01_data_layer-leaky_answer]``.
_MODULE_IN_PARAMS = re.compile(r"\[(?:.*[^0-9A-Za-z])?(\d\d_[a-z][a-z0-9_]*)")


def scope_of(nodeid: str) -> str:
    """The scope that keeps the tests sharing an expensive fixture on one worker (see the module docstring).

    >>> scope_of("tests/course/test_grading.py::test_round_trip[03_deployment_layer]")
    'course-03_deployment_layer'
    >>> scope_of("tests/course/test_variants.py::test_variant[01_data_layer-leaky_answer-wrong 2]")
    'course-01_data_layer'
    >>> scope_of("tests/load/test_slo.py::test_share_within[0.05]")
    'tests/load/test_slo.py'
    """
    params = nodeid.split("::")[-1]
    found = _MODULE_IN_PARAMS.search(params)
    if found is not None:
        return f"course-{found.group(1)}"
    return nodeid.split("::", 1)[0]


#: pytest's cache key for each scope's measured ``[seconds, tests]`` in the last run that ran all of it.
SCOPE_SECONDS = "mlsys-lab/scope-seconds"
_COURSE_SCOPE = re.compile(r"course-(\d\d)_")


def work_order(tests: Mapping[str, int], measured: Mapping[str, float]) -> list[str]:
    """The order in which the scheduler hands scopes out: longest first.

    Each idle worker takes the next scope, so the ones handed out last decide how long one worker runs
    alone at the end: they should be the short ones. ``tests`` maps each scope to its number of tests,
    ``measured`` to its seconds in an earlier run (pytest's cache). A scope without a measurement is
    assumed long and goes first: too early costs nothing, too late leaves a worker alone with it.
    Without measurements (a fresh clone), the course modules go first, the latest first (each builds on
    more of the system: module 07's chain of notebook runs is the longest, 00's the shortest), then the
    other scopes by their number of tests, as xdist orders them.

    >>> work_order({"tests/a.py": 9, "course-00_x": 3, "course-07_y": 2, "tests/b.py": 20}, {})
    ['course-07_y', 'course-00_x', 'tests/b.py', 'tests/a.py']
    >>> work_order({"tests/a.py": 9, "course-00_x": 3, "tests/new.py": 1}, {"tests/a.py": 300.0, "course-00_x": 60.0})
    ['tests/new.py', 'tests/a.py', 'course-00_x']
    """

    def fallback(scope: str) -> tuple[int, int]:
        course = _COURSE_SCOPE.match(scope)
        return (0, -int(course.group(1))) if course else (1, -tests[scope])

    return sorted(tests, key=lambda scope: (-measured.get(scope, math.inf), fallback(scope)))


def usable_measurements(cached: Mapping[str, list[float]], tests: Mapping[str, int]) -> dict[str, float]:
    """The cached ``[seconds, tests]`` of each scope that measured at least the tests scheduled now.

    A measurement of fewer tests (a ``-k`` or ``-m`` run) would make a long scope look short and send
    it last; such a scope counts as unmeasured instead.

    >>> usable_measurements({"course-07_c": [1.0, 12], "tests/a.py": [30.0, 5]}, {"course-07_c": 41, "tests/a.py": 5})
    {'tests/a.py': 30.0}
    """
    return {scope: float(cached[scope][0]) for scope in tests if scope in cached and cached[scope][1] >= tests[scope]}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under ``--dist loadgroup``, hand out whole scopes (:func:`scope_of`) instead of xdist's groups."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    cached = config.cache.get(SCOPE_SECONDS, {}) if config.cache is not None else {}

    class SharedFixtureScheduling(LoadScopeScheduling):
        """xdist's scope scheduler with :func:`scope_of` as the scope of a test id, longest scope first."""

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _assign_work_unit(self, node: object) -> None:
            # xdist fills its queue once, from the whole collection, before handing out the first unit.
            if not getattr(self, "_ordered", False):
                tests = {scope: len(unit) for scope, unit in self.workqueue.items()}
                measured = usable_measurements(cached, tests)
                for scope in work_order(tests, measured):
                    self.workqueue.move_to_end(scope)
                self._ordered = True
            super()._assign_work_unit(node)  # type: ignore[arg-type]

    return SharedFixtureScheduling(config, log)  # type: ignore[arg-type]


class WorkerBalance:
    """On the xdist controller: each worker's busy seconds and when it finished, and each scope's seconds.

    The summary shows whether one worker ran alone at the end; the seconds go to pytest's cache, where
    the next run's :func:`work_order` reads them. A scope's entry is replaced only by a run that ran at
    least as many of its tests, so ``-k`` runs do not make a long scope look short.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.start = time.monotonic()
        self.busy: dict[str, float] = defaultdict(float)
        self.finished: dict[str, float] = {}
        self.scopes: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        node = getattr(report, "node", None)  # set by xdist on the reports it relays from a worker
        if node is None:
            return
        worker = str(node.gateway.id)
        self.busy[worker] += report.duration
        self.finished[worker] = time.monotonic() - self.start
        scope = self.scopes[scope_of(report.nodeid)]
        scope[0] += report.duration
        scope[1] += report.when == "teardown"

    def pytest_sessionfinish(self) -> None:
        if not self.scopes or self.config.cache is None:
            return
        kept = dict(self.config.cache.get(SCOPE_SECONDS, {}))
        for scope, (seconds, tests) in self.scopes.items():
            if tests >= kept.get(scope, (0.0, 0))[1]:
                kept[scope] = [round(seconds, 1), int(tests)]
        self.config.cache.set(SCOPE_SECONDS, kept)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.busy:
            return
        terminalreporter.section("worker balance")
        end = max(self.finished.values())
        for worker in sorted(self.busy):
            terminalreporter.write_line(
                f"{worker}: busy {self.busy[worker]:6.0f} s, last test done {self.finished[worker]:6.0f} s after the "
                f"start, then idle {end - self.finished[worker]:5.0f} s"
            )
        longest = sorted(self.scopes.items(), key=lambda item: -item[1][0])[:10]
        terminalreporter.write_line("longest scopes: " + ", ".join(f"{scope} {s:.0f} s" for scope, (s, _) in longest))


def pytest_configure(config: pytest.Config) -> None:
    """Measure the workers' balance on the controller of a ``--dist loadgroup`` run."""
    if not hasattr(config, "workerinput") and config.getvalue("dist") == "loadgroup":
        config.pluginmanager.register(WorkerBalance(config), "mlsys-lab-worker-balance")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print the wall time of each course notebook run (``course_timings.json``), whatever the capture mode.

    This hook lives here, not in ``tests/course/conftest.py``: under pytest-xdist the controller
    never collects, so it never loads that file, and the notebooks ran in the workers, whose
    temporary roots sit inside the controller's.
    """
    if hasattr(config, "workerinput"):
        return
    root = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    timings: dict[str, float] = {}
    for path in [root / "course_timings.json", *sorted(root.glob("*/course_timings.json"))]:
        if path.is_file():
            where = "" if path.parent == root else f" [{path.parent.name}]"
            timings |= {f"{label}{where}": s for label, s in json.loads(path.read_text()).items()}
    if timings:
        terminalreporter.section("course notebook timings")
        for label, seconds in timings.items():
            terminalreporter.write_line(f"{seconds:8.2f} s  {label}")
