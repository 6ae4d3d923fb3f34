"""A throwaway PostgreSQL for the tests that need a real one (the decision log, several service processes).

One cluster per pytest session, and so per xdist worker (each worker is its own session): its own
folder, its own free port on 127.0.0.1, removed at the end. Each test gets a database of its own
(``postgres_url``), dropped after it. Without PostgreSQL's binaries these tests skip, saying how to
install them; with ``CI=true`` a missing server fails them, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
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
