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

Scopes, not single tests, are handed out to the workers. A new test needs no mark.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

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


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under ``--dist loadgroup``, hand out whole scopes (:func:`scope_of`) instead of xdist's groups."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        """xdist's scope scheduler with :func:`scope_of` as the scope of a test id."""

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return SharedFixtureScheduling(config, log)  # type: ignore[arg-type]
