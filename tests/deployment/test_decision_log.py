"""Is every acknowledged decision in the log? Durable commits, WAL, several writers, labels, tailing, replay."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zoneinfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlsys_lab.data.features import FEATURE_COLUMNS, build_features
from mlsys_lab.data.online import OnlineFeatureState
from mlsys_lab.deployment.decision_log import (
    Decision,
    DecisionLog,
    DuplicateRequestId,
    DuplicateTransaction,
    LabelBeforeTransaction,
    UnknownTransaction,
    _decisions,  # the test holds a write open on the log's own path: the one place a test reaches inside
    _row,
    _utc_naive,
)

T0 = dt.datetime(2018, 4, 1, 12, 0)


def make_decision(i: int, *, request_id: str | None = None, transaction_id: int | None = None, **changes) -> Decision:
    values = {
        "request_id": f"req-{i}" if request_id is None else request_id,
        "decided_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
        "transaction_id": i if transaction_id is None else transaction_id,
        "customer_id": i % 7,
        "terminal_id": i % 5,
        "tx_datetime": T0 + dt.timedelta(minutes=i),
        "tx_amount": 10.0 + i / 100,
        "model_version": 1,
        "features": {name: float(i) + k / 10 for k, name in enumerate(FEATURE_COLUMNS)},
        "score": 0.25,
        "decision": False,
        "threshold": 0.5,
        "latency_ms": 1.5,
    }
    return Decision(**{**values, **changes})


@pytest.fixture(params=["memory", "file", "postgres"])
def log(request, tmp_path):
    """The same tests on an in-memory SQLite, a SQLite file and a real PostgreSQL, each given as a URL."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = "sqlite://" if request.param == "memory" else f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(url)
    log.create()
    yield log
    log.close()


@pytest.fixture
def file_log(tmp_path):
    log = DecisionLog(f"sqlite:///{tmp_path / 'log' / 'decisions.db'}")
    yield log
    log.close()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request, tmp_path):
    """A log several processes share: a SQLite file, or a database on a real PostgreSQL server."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'shared.db'}"


def test_a_decision_round_trips(log):
    decision = make_decision(3, decision=True, score=0.875, schema_version="v2")
    log.record(decision)
    table = log.decisions(with_features=True)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["id"] == 1 and row["request_id"] == "req-3"
    assert row["decided_at"] == pd.Timestamp(decision.decided_at)
    assert (row["transaction_id"], row["customer_id"], row["terminal_id"]) == (3, 3, 3)
    assert row["tx_datetime"] == pd.Timestamp(decision.tx_datetime)
    assert row["tx_amount"] == decision.tx_amount and row["score"] == 0.875 and row["threshold"] == 0.5
    assert row["decision"] is np.True_ or row["decision"] is True
    assert row["model_version"] == 1 and row["latency_ms"] == 1.5 and row["schema_version"] == "v2"
    assert row["features"] == dict(decision.features), "features must round-trip exactly, in order"
    assert list(row["features"]) == list(FEATURE_COLUMNS)
    assert log.request_ids() == {"req-3"}


def test_an_aware_decision_time_is_stored_in_utc(log):
    paris = dt.timezone(dt.timedelta(hours=2))
    log.record(make_decision(1, decided_at=dt.datetime(2026, 6, 1, 14, 0, tzinfo=paris)))
    assert log.decisions()["decided_at"].iloc[0] == pd.Timestamp("2026-06-01 12:00", tz="UTC")


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2018, 4, 1, 3, 4, 5, 123456),
        dt.datetime(2026, 6, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2018, 10, 28, 2, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),  # the DST change
        pd.Timestamp("2026-06-01 14:00:00.000001", tz="Europe/Paris"),
        "2018-04-01T12:00:00+02:00",
    ],
    ids=["naive", "fixed offset", "zoneinfo at a DST change", "pandas", "text"],
)
def test_every_time_is_stored_as_naive_utc_the_way_pandas_converts_it(value):
    # The datetime fast path (the service's case, no pd.Timestamp per call) must agree with pandas.
    expected = pd.Timestamp(value)
    expected = expected.tz_convert("UTC").tz_localize(None) if expected.tzinfo is not None else expected
    got = _utc_naive(value)
    assert type(got) is dt.datetime and got.tzinfo is None and got == expected.to_pydatetime(), (value, got)


def test_a_duplicate_request_id_is_refused_and_writes_nothing(log):
    log.record(make_decision(1))
    with pytest.raises(DuplicateRequestId, match="req-1"):
        log.record(make_decision(2, request_id="req-1"))
    with pytest.raises(DuplicateRequestId):
        log.record_many([make_decision(5), make_decision(6, request_id="req-1")])
    assert log.request_ids() == {"req-1"}, "a batch with a duplicate must write none of its rows"


def test_bad_decisions_are_refused(log):
    with pytest.raises(ValueError, match="score"):
        log.record(make_decision(1, score=float("nan")))
    with pytest.raises(ValueError, match="finite"):
        log.record(make_decision(1, features={"tx_amount": float("inf")}))
    with pytest.raises(ValueError, match="request_id"):
        log.record(make_decision(1, request_id=""))
    assert log.decisions().empty


def test_record_is_committed_before_it_returns(shared_url):
    log = DecisionLog(shared_url)
    log.record(make_decision(1))
    # Another engine, as another process would open one, sees the row at once.
    other = sa.create_engine(shared_url)
    try:
        with other.connect() as connection:
            assert connection.exec_driver_sql("SELECT request_id FROM decisions").all() == [("req-1",)]
    finally:
        other.dispose()
        log.close()


def test_an_acknowledged_decision_survives_kill_9(shared_url):
    url = shared_url
    child = textwrap.dedent(
        f"""
        import datetime as dt, os, signal, sys
        from mlsys_lab.deployment.decision_log import Decision, DecisionLog
        log = DecisionLog({url!r})
        log.record(Decision("acked", dt.datetime.now(dt.UTC), 7, 1, 2, dt.datetime(2018, 4, 1), 9.5, 1,
                            {{"tx_amount": 9.5}}, 0.1, False, 0.5, 1.0))
        print("ack", flush=True)  # the response a client would get
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no atexit, no flush of anything
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9 and done.stdout == "ack\n", done.stderr
    assert DecisionLog(url).request_ids() == {"acked"}


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(file_log):
    file_log.create()
    with file_log.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() in (1, 2)  # NORMAL or FULL, never OFF
    with sqlite3.connect(file_log.url.database) as other:  # WAL is a property of the file, not the connection
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_synchronous_full_is_available_and_off_is_not(tmp_path):
    log = DecisionLog(f"sqlite:///{tmp_path / 'full.db'}", synchronous="FULL")
    with log.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    with pytest.raises(ValueError, match="never OFF"):
        DecisionLog(f"sqlite:///{tmp_path / 'off.db'}", synchronous="OFF").create()  # type: ignore[arg-type]


def test_nothing_is_created_before_first_use_and_relative_paths_resolve_at_construction(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = DecisionLog()  # the default, sqlite:///runs/decisions.db
    assert not (tmp_path / "runs").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    log.record(make_decision(1))
    assert (tmp_path / "runs" / "decisions.db").is_file(), "the path is fixed when the log is created"
    assert not (elsewhere / "runs").exists()
    log.close()


def _write_many(url: str, worker: int, n: int, start: multiprocessing.synchronize.Barrier) -> None:
    log = DecisionLog(url)
    start.wait()  # every process creates the tables and writes at the same moment
    log.create()
    for i in range(n):
        log.record(make_decision(worker * 10_000 + i))
        if i % 10 == 0:
            log.record_label(worker * 10_000 + i, True, T0 + dt.timedelta(days=30))
    log.close()


@pytest.mark.slow  # about 3-5 s: three spawned interpreters import the package
def test_several_processes_write_at_once_and_lose_nothing(shared_url):
    url = shared_url
    context = multiprocessing.get_context("spawn")
    workers, n = 3, 150
    start = context.Barrier(workers)
    processes = [context.Process(target=_write_many, args=(url, w, n, start)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * workers
    log = DecisionLog(url)
    assert log.request_ids() == {f"req-{w * 10_000 + i}" for w in range(workers) for i in range(n)}
    table = log.decisions()
    assert table["id"].tolist() == list(range(1, workers * n + 1)), "ids must be dense and in commit order"
    assert len(log.labels()) == workers * n // 10


def test_threads_sharing_one_log_lose_nothing(log):
    def write(worker: int) -> None:
        for i in range(40):
            log.record(make_decision(worker * 1000 + i))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(log.request_ids()) == 160


def test_a_label_needs_a_known_transaction(log):
    with pytest.raises(UnknownTransaction, match="transaction 42"):
        log.record_label(42, True, T0)
    log.record(make_decision(42))
    with pytest.raises(ValueError, match="cannot be known"):
        log.record_label(42, True, T0)  # before the transaction happened (T0 + 42 minutes)
    assert log.labels().empty


def test_labels_keep_their_history_and_the_newest_wins(log):
    log.record(make_decision(1))
    log.record(make_decision(2))
    log.record_label(1, True, T0 + dt.timedelta(days=1))
    log.record_label(2, False, T0 + dt.timedelta(days=30))
    log.record_label(1, False, T0 + dt.timedelta(days=3))  # the investigators corrected it
    labels = log.labels()
    assert labels["id"].tolist() == [1, 2, 3]
    assert labels["transaction_id"].tolist() == [1, 2, 1]
    assert labels["is_fraud"].tolist() == [True, False, False]
    assert labels["label_time"].iloc[0] == pd.Timestamp(T0 + dt.timedelta(days=1))
    assert str(labels["recorded_at"].dt.tz) == "UTC"
    current = log.labels(latest_only=True).set_index("transaction_id")["is_fraud"]
    assert current.to_dict() == {2: False, 1: False}
    assert log.labels(since_id=2)["id"].tolist() == [3]
    history = log.history_frame().set_index("transaction_id")
    assert history.loc[1, "tx_fraud"] == 0 and history.loc[1, "tx_label_seconds"] == 3 * 86400 + 12 * 3600


def test_a_batch_of_labels_is_recorded_in_order_in_one_go_or_not_at_all(log):
    for i in (1, 2, 3):
        log.record(make_decision(i))
    day = dt.timedelta(days=1)
    with pytest.raises(UnknownTransaction, match=r"\[99\]"):
        log.record_labels([(1, True, T0 + day), (99, True, T0 + day)])
    with pytest.raises(LabelBeforeTransaction, match="transaction 3 happened") as refused:
        log.record_labels([(1, True, T0 + day), (3, True, T0)])  # 3 happened at T0 + 3 minutes
    assert refused.value.transaction_id == 3 and isinstance(refused.value, ValueError)
    assert log.labels().empty, "a refused batch writes none of its labels"
    assert log.record_labels([]) == 0
    # The same rows as three record_label calls: in the order given, and the newest wins.
    assert log.record_labels([(2, True, T0 + 2 * day), (1, True, T0 + day), (2, False, T0 + 5 * day)]) == 3
    labels = log.labels()
    assert labels["transaction_id"].tolist() == [2, 1, 2] and labels["is_fraud"].tolist() == [True, True, False]
    assert labels["label_time"].tolist() == [pd.Timestamp(T0 + d * day) for d in (2, 1, 5)]
    assert log.labels(latest_only=True).set_index("transaction_id")["is_fraud"].to_dict() == {1: True, 2: False}


def test_a_batch_of_labels_looks_up_more_transactions_than_one_statement_may_name(file_log):
    file_log.record_many(make_decision(i) for i in range(1, 2_001))
    assert file_log.record_labels([(i, True, T0 + dt.timedelta(days=2)) for i in range(1, 2_001)]) == 2_000
    assert file_log.labels()["transaction_id"].tolist() == list(range(1, 2_001))


def test_decision_for_names_the_model_version(log):
    assert log.decision_for(5) is None
    log.record(make_decision(5, model_version=3))
    found = log.decision_for(5)
    assert found is not None
    assert found["model_version"] == 3 and found["request_id"] == "req-5" and found["n_decisions"] == 1
    assert found["features"]["tx_amount"] == 5.0
    assert found["decided_at"].tzinfo is not None


def test_the_database_refuses_a_second_decision_for_a_transaction_from_another_connection(shared_url):
    # Two DecisionLog objects on one database are two connections, as two worker processes would hold.
    url = shared_url
    first, second = DecisionLog(url), DecisionLog(url)
    try:
        first.record(make_decision(5))
        with pytest.raises(DuplicateTransaction, match=r"\[5\] already have a decision") as caught:
            second.record(make_decision(6, request_id="retry-of-5", transaction_id=5))
        assert caught.value.transaction_ids == (5,)
        assert second.decisions()["request_id"].tolist() == ["req-5"], "nothing of the refused write is stored"
        assert set(second.scored([5, 6])) == {5}
    finally:
        first.close()
        second.close()


def test_tail_gives_rows_after_the_ids_and_snapshot_the_ids_it_reflects(log):
    log.record_many([make_decision(i) for i in range(3)])
    log.record_label(1, True, T0 + dt.timedelta(days=1))
    frame, last_decision, last_label = log.snapshot()
    assert (len(frame), last_decision, last_label) == (3, 3, 1)
    assert log.tail(after_decision_id=last_decision, after_label_id=last_label) == ([], [])
    log.record(make_decision(7))
    tail = log.tail(after_decision_id=last_decision, after_label_id=last_label)
    assert [row.transaction_id for row in tail.decisions] == [7] and tail.labels == []


def test_the_tail_is_one_statement_with_labels_first_and_every_field_typed(log):
    # One read per tail instead of two (it runs before every group of decisions). Breaking it back into
    # two selects makes two statements; a union that loses a column's type returns strings or ints.
    log.record_many([make_decision(i) for i in range(1, 4)])
    log.record_label(2, True, T0 + dt.timedelta(days=1))
    log.record_label(3, False, T0 + dt.timedelta(days=2))
    statements: list[str] = []
    sa.event.listen(log.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    tail = log.tail(after_decision_id=1, after_label_id=0)
    selects = [text for text in statements if text.lstrip().upper().startswith("SELECT")]  # not BEGIN
    assert len(selects) == 1, f"the tail ran {len(selects)} queries: {selects}"
    assert [(row.transaction_id, row.is_fraud) for row in tail.labels] == [(2, True), (3, False)]
    assert all(type(row.is_fraud) is bool for row in tail.labels)
    assert [row.label_time for row in tail.labels] == [T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)]
    expected = [make_decision(i) for i in (2, 3)]
    assert [(r.transaction_id, r.customer_id, r.terminal_id, r.tx_amount, r.tx_datetime) for r in tail.decisions] == [
        (d.transaction_id, d.customer_id, d.terminal_id, d.tx_amount, d.tx_datetime) for d in expected
    ]
    assert all(isinstance(r.tx_datetime, dt.datetime) and isinstance(r.tx_amount, float) for r in tail.decisions)
    assert [r.id for r in tail.decisions] == [2, 3] and [r.id for r in tail.labels] == [1, 2]
    assert log.tail(after_decision_id=3, after_label_id=2) == ([], [])


def test_tailing_with_since_id_sees_every_row_once_in_order(log):
    log.record_many([make_decision(i) for i in range(5)])
    seen: list[str] = []
    last = 0
    while True:
        page = log.decisions(since_id=last, limit=2)
        if page.empty:
            break
        seen += page["request_id"].tolist()
        last = int(page["id"].max())
    assert seen == [f"req-{i}" for i in range(5)]
    log.record(make_decision(9))
    assert log.decisions(since_id=last)["request_id"].tolist() == ["req-9"]


def test_history_frame_has_the_simulator_columns_and_unknown_labels_are_missing(log):
    log.record_many([make_decision(i) for i in range(3)])
    log.record_label(1, True, T0 + dt.timedelta(days=2))
    frame = log.history_frame()
    assert list(frame.columns) == [
        "transaction_id",
        "tx_datetime",
        "customer_id",
        "terminal_id",
        "tx_amount",
        "tx_time_seconds",
        "tx_fraud",
        "tx_label_seconds",
    ]
    assert frame["tx_time_seconds"].tolist() == [12 * 3600 + 60 * i for i in range(3)], "seconds since 2018-04-01"
    assert frame["tx_fraud"].dtype == "Int8" and frame["tx_fraud"].isna().tolist() == [True, False, True]
    assert np.isnan(frame["tx_label_seconds"].iloc[0]) and frame["tx_label_seconds"].iloc[1] == 2 * 86400 + 12 * 3600
    assert log.history_frame(since=T0 + dt.timedelta(minutes=1))["transaction_id"].tolist() == [1, 2]


def test_the_log_rebuilds_the_online_features_the_offline_path_computes(tiny_simulation):
    """A restart: the state rebuilt from the log scores the next transactions as build_features does offline."""
    transactions = tiny_simulation.transactions
    offline = build_features(transactions)
    cutoff = 21 * 86400  # the service restarts at the start of day 21
    seen = transactions[transactions["tx_time_seconds"] < cutoff]
    log = DecisionLog("sqlite://")
    log.record_many(
        Decision(
            request_id=f"r{tx.transaction_id}",
            decided_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            transaction_id=tx.transaction_id,
            customer_id=tx.customer_id,
            terminal_id=tx.terminal_id,
            tx_datetime=tx.tx_datetime,
            tx_amount=tx.tx_amount,
            model_version=1,
            features={},
            score=0.0,
            decision=False,
            threshold=0.5,
            latency_ms=0.0,
        )
        for tx in seen.itertuples()
    )
    start = pd.Timestamp(tiny_simulation.config.start_date)
    known = seen[seen["tx_label_seconds"] < cutoff]
    assert known["tx_fraud"].sum() > 5, "the check needs some fraud labels to matter"
    for tx in known.itertuples():
        log.record_label(tx.transaction_id, bool(tx.tx_fraud), start + pd.Timedelta(seconds=tx.tx_label_seconds))

    state = OnlineFeatureState.from_history(log.history_frame(), labels_as_of=cutoff)
    upcoming = transactions[transactions["tx_time_seconds"] >= cutoff].head(30)
    for tx in upcoming.itertuples():
        online = state.features_and_observe(
            {
                "transaction_id": tx.transaction_id,
                "customer_id": tx.customer_id,
                "terminal_id": tx.terminal_id,
                "tx_amount": tx.tx_amount,
                "tx_datetime": tx.tx_datetime,
            }
        )
        np.testing.assert_allclose(
            list(online.values()),
            offline.loc[tx.Index, list(FEATURE_COLUMNS)].to_numpy(dtype=float),
            rtol=1e-9,
            err_msg=f"transaction {tx.transaction_id}",
        )
    assert (offline.loc[upcoming.index, "terminal_id_risk_30day_window"] > 0).any(), "no risk feature was tested"


def test_a_decision_log_on_another_url_than_the_default_works_by_setting(tmp_path):
    # "Any SQL URL": nothing SQLite-specific is needed beyond the URL; here a second SQLite file by URL.
    url = f"sqlite:///{tmp_path / 'other' / 'log.sqlite'}"
    log = DecisionLog(url)
    log.record(make_decision(1))
    assert os.path.exists(tmp_path / "other" / "log.sqlite")
    assert DecisionLog(url).decision_for(1)["request_id"] == "req-1"


def test_tailing_is_exact_on_postgresql_when_a_later_id_commits_first(postgres_url):
    """Writer A holds id 1 in an open transaction while writer B inserts id 2: a tailer must still see both.

    Without the log's commit-ordered writes, B commits id 2 first, a tailer reads it and moves past
    id 1, and A's decision is never tailed (another worker's features would miss it for good).
    """
    log = DecisionLog(postgres_url)
    log.create()
    inserted, release = threading.Event(), threading.Event()

    def writer_a() -> None:
        # The log's own write path, held open after the insert: a slow commit, a stalled client.
        with log._writing() as connection:
            connection.execute(_decisions.insert().values(_row(make_decision(1))))
            inserted.set()
            assert release.wait(60)

    a = threading.Thread(target=writer_a)
    a.start()
    assert inserted.wait(60)
    b = threading.Thread(target=log.record, args=(make_decision(2),))
    b.start()
    # Wait until B has either committed or is waiting for a lock: no sleep decides what happens.
    watcher = sa.create_engine(postgres_url)
    try:
        deadline = time.monotonic() + 60
        while b.is_alive() and time.monotonic() < deadline:
            with watcher.connect() as connection:
                if connection.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE NOT granted").scalar():
                    break
            time.sleep(0.01)
    finally:
        watcher.dispose()
    seen: list[int] = []
    last = 0
    for _ in range(2):  # one look while A is open, one after both have committed
        tail = log.tail(after_decision_id=last, after_label_id=0)
        seen += [row.transaction_id for row in tail.decisions]
        last = max([last, *(row.id for row in tail.decisions)])
        release.set()
        a.join(60)
        b.join(60)
    assert sorted(seen) == [1, 2] and len(seen) == 2, f"a tailer saw {seen}: a decision was skipped or repeated"
    assert set(log.request_ids()) == {"req-1", "req-2"}
    log.close()


def test_newest_id_is_the_largest_committed_decision_id(log):
    assert log.newest_id() == 0, "an empty log has no decision id yet"
    log.record_many([make_decision(i) for i in range(1, 4)])
    log.record(make_decision(7))
    assert log.newest_id() == int(log.decisions()["id"].max()) == 4
