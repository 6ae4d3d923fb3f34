"""The throwaway PostgreSQL the tests start: a clear way out when it is missing, and a real server when not."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mlsys_lab.deployment import pgcluster


def test_missing_binaries_say_how_to_install_them(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(pgcluster.glob, "glob", lambda pattern: [])
    with pytest.raises(pgcluster.PostgresUnavailable, match=r"apt-get install postgresql"):
        pgcluster.find_binaries()


def test_each_test_gets_an_empty_database_on_loopback(postgres_url):
    assert "@127.0.0.1:" in postgres_url
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
            assert connection.exec_driver_sql("SHOW listen_addresses").scalar() == "127.0.0.1"
    finally:
        engine.dispose()
