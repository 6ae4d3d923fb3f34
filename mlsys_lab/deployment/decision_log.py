"""The decision log: one durable row per decision the API acknowledges, and the labels that arrive later.

Every scored transaction is written as one row of ``decisions``: request id, when it was decided
(UTC), the transaction (ids, time, amount), the model version, the features as JSON text, the
score, the threshold, the decision (True = block/alert), the latency and the request-schema version.
:meth:`DecisionLog.record` returns only after the row is committed, so a service that answers after
``record`` returns never acknowledges a decision the log does not hold. Labels (fraud or genuine, and
when that became known) go to their own table, ``labels``. The log is what monitoring, the online
feature state of a restarting or parallel worker, and retraining on matured labels all read.

Where it lives
    Any SQLAlchemy URL. The default, ``sqlite:///runs/decisions.db``, is resolved against the working
    directory when the :class:`DecisionLog` is created; nothing on disk is touched before the first
    call (that call creates the folder and the tables). Queries use SQLAlchemy Core only, no SQL
    dialect of SQLite's, so PostgreSQL works by changing the URL.

SQLite settings, and why
    - ``journal_mode=WAL``: readers (monitoring, workers tailing the log) do not block the writer and
      the writer does not block them; several worker processes can share one file.
    - ``synchronous=NORMAL`` (default; ``FULL`` by argument). The promise is that an acknowledged
      decision is never missing after the *process* dies (``kill -9``, an OOM kill, a crash). In
      WAL mode a commit has been written to the WAL file with ``write()`` before ``record``
      returns, under NORMAL as under FULL, so the bytes are in the operating system's page cache
      and survive the process. What NORMAL skips is the fsync at each commit, so a power cut or a
      kernel crash may lose the last commits (the database stays consistent). ``FULL`` fsyncs at
      every commit and survives that too, at a price: on the 2-core test machine a commit took
      0.14 ms median with NORMAL and 3 ms median (8 ms p99) with FULL, and SQLite commits one at a
      time across all worker processes, so FULL caps the whole service near 1/fsync, about 300
      decisions/s, which is the course's 1M requests/hour target. Choose FULL when the log must
      survive power loss and the disk's fsync is fast; PostgreSQL (any SQL URL) when it must do
      both.
    - ``busy_timeout=30000`` ms, and every write transaction starts with ``BEGIN IMMEDIATE``: a
      writer that finds another one mid-commit waits for it instead of failing with "database is
      locked" (Python's default, a deferred BEGIN, cannot wait when a read turns into a write).

Tailing
    ``decisions.id`` and ``labels.id`` are autoincrement ids in commit order, so a reader that
    remembers the largest id it has seen and asks for ``since_id=`` that id gets every new row
    exactly once. On SQLite this holds by itself: one writer at a time, ids never reused.

    On PostgreSQL it does not hold by itself: ids come from a sequence at insert time, so a
    transaction holding id 7 can still be open when the one holding id 8 commits; a tailer that read
    8 and moved on would never see 7. Two fixes were on the table. An overlap re-read (ask again for
    the last N ids or seconds and skip the ones already applied) is exact only while no transaction
    stays open longer than the overlap, and a stalled client connection, a lock wait or a long
    batch can exceed any window; every reader must also keep the set of ids it applied. A
    commit-ordered sequence is exact whatever the timing, so that is what this log does: every write
    transaction first takes one transaction-level advisory lock (``pg_advisory_xact_lock``), held
    until its commit is visible, so the next writer draws its ids only after the previous commit:
    the visible rows are always a prefix of the ids (gaps from rolled-back inserts are harmless).
    The price is the one SQLite already pays: commits to one log happen one at a time (a few
    hundred microseconds each on loopback with the WAL on a local disk), while reads never wait. A
    reader runs in one ``REPEATABLE READ`` transaction, so :meth:`DecisionLog.tail` and
    :meth:`DecisionLog.snapshot` see one consistent moment, as a SQLite read transaction does.
    ``tests/deployment/test_decision_log.py`` holds one transaction open while a later one commits
    and checks that a tailer sees both, once each.

One decision per transaction
    ``transaction_id`` is unique in ``decisions``: the database refuses a second decision for a
    transaction, whichever process tries (:class:`DuplicateTransaction`), so a retried or doubled
    request cannot be decided twice. :meth:`DecisionLog.scored` gives the stored decision back, which
    is how the service answers a retry.

The only door
    The tables are private to this module. Everything that reads or writes them (the service's
    feature state included: :meth:`DecisionLog.tail`, :meth:`DecisionLog.scored`,
    :meth:`DecisionLog.snapshot`) goes through a method that takes the log's own locks.

Labels
    A label is accepted only for a transaction that has a decision (else :class:`UnknownTransaction`)
    and not dated before the transaction. A second label for the same transaction is kept as a new
    row (the history of what was believed when), and the newest recorded row wins: a correction
    overrides the first report. :meth:`DecisionLog.labels` gives every row, or the current label per
    transaction with ``latest_only=True``; :meth:`DecisionLog.history_frame` uses the current one.

Clocks
    ``decided_at`` and ``recorded_at`` are the server's wall clock in UTC (returned tz-aware).
    ``tx_datetime`` and ``label_time`` are on the transactions' clock, naive like the simulator's
    ``tx_datetime`` (a tz-aware value is converted to UTC and stored naive).

Examples
--------
>>> log = DecisionLog("sqlite://")  # in memory
>>> log.create()
>>> log.decisions().shape[0]
0
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa

__all__ = [
    "DEFAULT_URL",
    "Decision",
    "DecisionLog",
    "DuplicateRequestId",
    "DuplicateTransaction",
    "LabelBeforeTransaction",
    "LogTail",
    "StoredDecision",
    "TailedDecision",
    "TailedLabel",
    "UnknownTransaction",
    "configure_sqlite",
    "write_transaction",
]

logger = logging.getLogger(__name__)

#: Where decisions go unless a URL is given: a SQLite file under ``./runs`` (git-ignored).
DEFAULT_URL = "sqlite:///runs/decisions.db"
#: Second 0 of ``tx_time_seconds`` in :meth:`DecisionLog.history_frame`: the simulator's default start date.
DEFAULT_ORIGIN = "2018-04-01"
_BEGIN_OPTION = "mlsys_lab_begin"
#: The PostgreSQL advisory lock every write to a decision log takes first (per database): commits in id order.
_PG_WRITE_LOCK = 0x6D6C_7379_735F_6C67  # "mlsys_lg" as a bigint

# The tables are private: every reader and writer goes through DecisionLog's methods, which hold the
# log's own locks (an in-memory log has one connection that two threads must not use at once).
_metadata = sa.MetaData()
_decisions = sa.Table(
    "decisions",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(128), nullable=False, unique=True),
    sa.Column("decided_at", sa.DateTime, nullable=False),  # UTC, stored naive
    sa.Column("transaction_id", sa.BigInteger, nullable=False),
    sa.Column("customer_id", sa.BigInteger, nullable=False),
    sa.Column("terminal_id", sa.BigInteger, nullable=False),
    sa.Column("tx_datetime", sa.DateTime, nullable=False, index=True),  # the transactions' clock
    sa.Column("tx_amount", sa.Double, nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("features", sa.Text, nullable=False),  # JSON object, feature name -> value
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("decision", sa.Boolean, nullable=False),
    sa.Column("threshold", sa.Double, nullable=False),
    sa.Column("latency_ms", sa.Double, nullable=False),
    sa.Column("schema_version", sa.String(32), nullable=False),
    # One decision per transaction, enforced by the database, so it holds across worker processes too
    # (a check in Python holds only inside one process). Named apart from the old non-unique index,
    # so that opening a log created before this constraint adds it.
    sa.Index("uq_decisions_transaction_id", "transaction_id", unique=True),
    sqlite_autoincrement=True,  # ids never reused, even after the newest row is deleted: tailing stays exact
)
_labels = sa.Table(
    "labels",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("transaction_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("is_fraud", sa.Boolean, nullable=False),
    sa.Column("label_time", sa.DateTime, nullable=False),  # the transactions' clock
    sa.Column("recorded_at", sa.DateTime, nullable=False),  # UTC, stored naive
    sqlite_autoincrement=True,
)
# The statements every request runs, built once: building one costs more CPU than SQLite takes to
# run it (operator overloading, coercions and a fresh cache key per call; 2x the tail's time).
# The tail is one statement, labels (kind 0) then decisions (kind 1), each in id order: one execution
# instead of two per request, and one consistent read on any database. The columns are shared: ``a``
# is a label's is_fraud (0/1) or a decision's customer_id, ``b`` and ``amount`` are NULL for a label,
# ``at`` is label_time or tx_datetime. NULLs are cast so that PostgreSQL can type the union.
_TAIL = sa.union_all(
    sa.select(
        sa.literal_column("0", sa.Integer).label("kind"),
        _labels.c.id.label("id"),
        _labels.c.transaction_id.label("transaction_id"),
        sa.case((_labels.c.is_fraud, 1), else_=0).label("a"),
        sa.cast(sa.null(), sa.BigInteger).label("b"),
        sa.cast(sa.null(), sa.Double).label("amount"),
        _labels.c.label_time.label("at"),
    ).where(_labels.c.id > sa.bindparam("after_label")),
    sa.select(
        sa.literal_column("1", sa.Integer),
        _decisions.c.id,
        _decisions.c.transaction_id,
        _decisions.c.customer_id,
        _decisions.c.terminal_id,
        _decisions.c.tx_amount,
        _decisions.c.tx_datetime,
    ).where(_decisions.c.id > sa.bindparam("after_decision")),
).order_by(sa.literal_column("kind"), sa.literal_column("id"))
_INSERT_DECISIONS = _decisions.insert()
#: Ids per ``IN (...)`` of one statement: well under SQLite's smallest parameter limit (999 before 3.32).
_IN_CHUNK = 900
_DECISION_COLUMNS = [c.name for c in _decisions.columns if c.name != "features"]
_LABEL_COLUMNS = [c.name for c in _labels.columns]
#: Columns of :meth:`DecisionLog.history_frame`, named as the simulator names them.
HISTORY_COLUMNS = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_time_seconds",
    "tx_fraud",
    "tx_label_seconds",
)


class UnknownTransaction(LookupError):
    """A label for a transaction id the log has no decision for."""


class LabelBeforeTransaction(ValueError):
    """A label dated before its transaction happened; ``transaction_id`` says which one."""

    def __init__(self, message: str, transaction_id: int) -> None:
        super().__init__(message)
        self.transaction_id = transaction_id


class DuplicateRequestId(ValueError):
    """A decision whose request id is already in the log: a retried request must not be logged twice."""


class DuplicateTransaction(ValueError):
    """A decision for a transaction id that already has one (possibly written by another process).

    ``transaction_ids`` lists the ids that already had a decision; nothing of the refused write is stored.
    """

    def __init__(self, message: str, transaction_ids: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.transaction_ids = tuple(int(i) for i in transaction_ids)


class TailedDecision(NamedTuple):
    """What a worker's feature state needs from a decision row, read by :meth:`DecisionLog.tail`."""

    id: int
    transaction_id: int
    customer_id: int
    terminal_id: int
    tx_amount: float
    tx_datetime: dt.datetime


class TailedLabel(NamedTuple):
    """A label row, read by :meth:`DecisionLog.tail`."""

    id: int
    transaction_id: int
    is_fraud: bool
    label_time: dt.datetime


class LogTail(NamedTuple):
    """Rows committed after given ids: labels (read first) and decisions, each in id order."""

    labels: list[TailedLabel]
    decisions: list[TailedDecision]


class StoredDecision(NamedTuple):
    """A logged decision as :meth:`DecisionLog.scored` returns it: enough to answer a retried request."""

    request_id: str
    transaction_id: int
    customer_id: int
    terminal_id: int
    tx_datetime: dt.datetime
    tx_amount: float
    model_version: int
    score: float
    decision: bool
    threshold: float
    schema_version: str


@dataclass(frozen=True)
class Decision:
    """One decision as the API made it: what came in, which model scored it, what it said, how fast.

    ``decided_at`` is UTC (tz-aware; a naive value is taken as UTC). ``tx_datetime`` is on the
    transactions' clock, as in the request. ``decision`` is True when the transaction is blocked
    (an alert), i.e. ``score >= threshold``. ``features`` maps each feature name to the value the
    model was given.
    """

    request_id: str
    decided_at: dt.datetime
    transaction_id: int
    customer_id: int
    terminal_id: int
    tx_datetime: dt.datetime
    tx_amount: float
    model_version: int
    features: Mapping[str, float]
    score: float
    decision: bool
    threshold: float
    latency_ms: float
    schema_version: str = "v1"


def _utc_naive(value: dt.datetime | pd.Timestamp | str) -> dt.datetime:
    """A datetime in UTC without tzinfo (naive values are taken as already UTC)."""
    if type(value) is dt.datetime:
        # The service's and the backfill's case, twice per logged decision: without building a
        # pd.Timestamp (5.5 us a call, 0.4 s of writing 39k decisions), with the same result.
        return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    result: dt.datetime = stamp.to_pydatetime()
    return result


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _row(decision: Decision) -> dict[str, Any]:
    if not isinstance(decision.request_id, str) or not decision.request_id:
        raise ValueError(f"a decision needs a non-empty request_id, got {decision.request_id!r}")
    score = float(decision.score)
    if not 0.0 <= score <= 1.0:  # also refuses NaN
        raise ValueError(f"request {decision.request_id}: score must be a probability in [0, 1], got {score!r}")
    try:
        features = json.dumps({str(k): float(v) for k, v in decision.features.items()}, allow_nan=False)
    except ValueError as error:
        raise ValueError(
            f"request {decision.request_id}: features must be finite numbers, got {dict(decision.features)}"
        ) from error
    return {
        "request_id": decision.request_id,
        "decided_at": _utc_naive(decision.decided_at),
        "transaction_id": int(decision.transaction_id),
        "customer_id": int(decision.customer_id),
        "terminal_id": int(decision.terminal_id),
        "tx_datetime": _utc_naive(decision.tx_datetime),
        "tx_amount": float(decision.tx_amount),
        "model_version": int(decision.model_version),
        "features": features,
        "score": score,
        "decision": bool(decision.decision),
        "threshold": float(decision.threshold),
        "latency_ms": float(decision.latency_ms),
        "schema_version": str(decision.schema_version),
    }


def _set_journal_mode(cursor: Any, journal_mode: str, busy_timeout_ms: int) -> None:
    """Switch the database file to ``journal_mode`` unless it is already in it.

    WAL is a property of the file, so only the first connection ever has to switch. That switch needs
    an exclusive lock, and SQLite can answer "database is locked" at once instead of waiting
    ``busy_timeout`` when several processes open a new file together (seen with three workers
    starting at the same moment). So read the mode first, and retry the switch with a short backoff
    within the busy timeout.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    delay = 0.01
    while True:
        try:
            current = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(current).lower() != journal_mode.lower():
                cursor.execute(f"PRAGMA journal_mode = {journal_mode}")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def configure_sqlite(
    engine: sa.Engine,
    *,
    journal_mode: str = "WAL",
    synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "NORMAL",
    busy_timeout_ms: int = 30_000,
) -> None:
    """Set a SQLite engine's pragmas on every connection and let write transactions take the lock at BEGIN.

    Python's sqlite3 begins transactions lazily, in DEFERRED mode: a transaction that reads and then
    writes can fail at once with "database is locked" when another process wrote in between, instead
    of waiting ``busy_timeout``. Following SQLAlchemy's documented recipe, the driver begins nothing
    itself and SQLAlchemy's "begin" event emits ``BEGIN``; connections opened by :func:`write_transaction`
    emit ``BEGIN IMMEDIATE``, which takes the write lock (waiting for it) before anything is read.
    """
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA (never OFF for a log), got {synchronous!r}")

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit at the driver: SQLAlchemy's begin event decides
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if journal_mode:
            _set_journal_mode(cursor, journal_mode, busy_timeout_ms)
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that commits on exit; on SQLite it holds the write lock from the start."""
    with engine.connect() as connection:
        connection.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with connection.begin():
            yield connection


@contextmanager
def _postgres_write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A PostgreSQL write transaction that holds the log's write lock until it has committed.

    The lock makes ids visible in id order (see "Tailing" in the module docstring): the next writer
    draws its ids only once this commit is visible. A transaction-level lock is released by the
    server at commit or rollback, also when the client dies, so a killed writer never blocks the others.
    """
    with engine.connect() as connection:
        connection.execution_options(isolation_level="READ COMMITTED")
        with connection.begin():
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_WRITE_LOCK)))
            yield connection


def _is_memory_sqlite(url: sa.URL) -> bool:
    if url.get_backend_name() != "sqlite":
        return False
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _frame(rows: Sequence[Sequence[Any]], columns: list[str]) -> pd.DataFrame:
    # Plain tuples: pandas probes every SQLAlchemy Row for attributes first (a failed key lookup per row
    # and column), which cost 0.27 s against 0.10 s for the same 39k decisions; the frame is the same.
    return pd.DataFrame([tuple(row) for row in rows], columns=columns)


class DecisionLog:
    """Decisions and labels in a SQL database (SQLite in WAL mode by default), written durably, read as frames.

    Parameters
    ----------
    url
        A SQLAlchemy URL. A relative SQLite path is resolved against the working directory now;
        ``"sqlite://"`` is an in-memory database (one per ``DecisionLog``, shared by its threads);
        ``"postgresql+psycopg://user@host:port/db"`` is a PostgreSQL database (see "Tailing").
    synchronous
        SQLite only: ``"NORMAL"`` (default) survives a killed process but maybe not a power cut;
        ``"FULL"`` survives both and costs an fsync per decision (see the module docstring).

    Thread-safe: one ``DecisionLog`` may be shared by a server's threads.
    """

    def __init__(self, url: str = DEFAULT_URL, *, synchronous: Literal["FULL", "NORMAL"] = "NORMAL") -> None:
        parsed = sa.make_url(url)
        self._memory = _is_memory_sqlite(parsed)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._postgres = parsed.get_backend_name() == "postgresql"
        if self._sqlite and not self._memory and parsed.database:
            # ``sqlite:///file:path?mode=ro&uri=true`` opens the file read-only (SQLite's URI form).
            prefix, path = (
                ("file:", parsed.database[5:]) if parsed.database.startswith("file:") else ("", parsed.database)
            )
            parsed = parsed.set(database=prefix + str(Path(path).expanduser().resolve()))
        self.url = parsed
        self.synchronous = synchronous
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        # One in-memory database means one connection, which two threads must not use at once.
        self._memory_lock: threading.Lock | None = threading.Lock() if self._memory else None

    def __repr__(self) -> str:
        return f"DecisionLog({self.url.render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine; the first access creates the database's folder and the tables."""
        with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
                self._create_tables(self._engine)
            return self._engine

    def _create_engine(self) -> sa.Engine:
        if self._memory:
            from sqlalchemy.pool import StaticPool

            engine = sa.create_engine(self.url, poolclass=StaticPool, connect_args={"check_same_thread": False})
            configure_sqlite(engine, journal_mode="", synchronous=self.synchronous)
            return engine
        if self._sqlite and self.url.database:
            Path(self.url.database.removeprefix("file:")).parent.mkdir(parents=True, exist_ok=True)
        if self._postgres:
            # Reads see one snapshot per transaction, as on SQLite (READ COMMITTED would take a new one
            # per statement, and snapshot()'s ids could then disagree with its rows); writes run in
            # READ COMMITTED under the write lock (see _writing).
            return sa.create_engine(self.url, pool_pre_ping=True, isolation_level="REPEATABLE READ")
        engine = sa.create_engine(self.url, pool_pre_ping=not self._sqlite)
        if self._sqlite:
            configure_sqlite(engine, journal_mode="WAL", synchronous=self.synchronous)
        return engine

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        if self._postgres:
            with _postgres_write_transaction(self.engine) as connection:
                yield connection
            return
        with self._memory_lock or nullcontext(), write_transaction(self.engine) as connection:
            yield connection

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        with self._memory_lock or nullcontext(), self.engine.connect() as connection:
            yield connection

    def create(self) -> None:
        """Create the tables if missing. Idempotent, and safe when several processes start at once."""
        _ = self.engine  # creating the engine creates the tables

    @staticmethod
    def _create_tables(engine: sa.Engine) -> None:
        # CREATE ... IF NOT EXISTS inside one write transaction: on SQLite the second process waits
        # for the first and finds the tables; elsewhere IF NOT EXISTS covers most races, and a lost
        # race on the catalogue (PostgreSQL) is retried once.
        begin = _postgres_write_transaction if engine.dialect.name == "postgresql" else write_transaction
        for attempt in (1, 2):
            try:
                with begin(engine) as connection:
                    for table in _metadata.sorted_tables:
                        connection.execute(sa.schema.CreateTable(table, if_not_exists=True))
                        for index in table.indexes:
                            connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))
                return
            except sa.exc.DBAPIError:
                if attempt == 2 or not set(_metadata.tables) <= set(sa.inspect(engine).get_table_names()):
                    raise

    # -- writing ------------------------------------------------------------------------------------

    def record(self, decision: Decision) -> None:
        """Insert one decision and commit it before returning: once this returns, the decision is on disk.

        Raises
        ------
        DuplicateRequestId
            The request id is already logged (nothing is written).
        ValueError
            An empty request id, a score outside [0, 1] or a non-finite feature.
        """
        self.record_many([decision])

    def record_many(self, decisions: Iterable[Decision]) -> int:
        """Insert several decisions in one transaction (all or none), e.g. to backfill a replay; returns the count.

        Raises
        ------
        DuplicateTransaction
            A transaction id already has a decision, or appears twice (nothing is written).
        DuplicateRequestId
            A request id is already logged (nothing is written).
        """
        rows = [_row(d) for d in decisions]
        if not rows:
            return 0
        try:
            with self._writing() as connection:
                connection.execute(_INSERT_DECISIONS, rows)
        except sa.exc.IntegrityError as error:
            self._raise_duplicate(rows, error)
        return len(rows)

    def _raise_duplicate(self, rows: list[dict[str, Any]], error: sa.exc.IntegrityError) -> None:
        """Say which unique key the refused insert broke: a transaction already decided, or a request id reused."""
        tx_ids = [r["transaction_id"] for r in rows]
        ids = [r["request_id"] for r in rows]
        with self._reading() as connection:
            decided = set(
                connection.execute(
                    sa.select(_decisions.c.transaction_id).where(_decisions.c.transaction_id.in_(tx_ids))
                ).scalars()
            )
            taken = set(
                connection.execute(sa.select(_decisions.c.request_id).where(_decisions.c.request_id.in_(ids))).scalars()
            )
        decided |= {i for i in tx_ids if tx_ids.count(i) > 1}
        if decided:
            raise DuplicateTransaction(
                f"transaction_id(s) {sorted(decided)[:5]} already have a decision: one decision per transaction",
                sorted(decided),
            ) from error
        logged = sorted(taken) or sorted({i for i in ids if ids.count(i) > 1})
        raise DuplicateRequestId(
            f"request id(s) {logged[:5]} already logged: each decision needs its own request_id; "
            "a retried request should get the decision already logged for it, not a second row"
        ) from error

    def record_label(self, transaction_id: int, is_fraud: bool, label_time: dt.datetime) -> None:
        """Record that ``transaction_id`` is fraud (or genuine), known since ``label_time``; committed on return.

        A second label for the same transaction adds a row, and the newest row wins.

        Raises
        ------
        UnknownTransaction
            No decision in the log has this transaction id.
        ValueError
            ``label_time`` is before the transaction's own time.
        """
        tx_id = int(transaction_id)
        known_at = _utc_naive(label_time)
        with self._writing() as connection:
            tx_time = connection.execute(
                sa.select(_decisions.c.tx_datetime)
                .where(_decisions.c.transaction_id == tx_id)
                .order_by(_decisions.c.id)
                .limit(1)
            ).scalar_one_or_none()
            if tx_time is None:
                raise UnknownTransaction(
                    f"no decision for transaction {tx_id} in the log: a label can only be recorded for a "
                    "transaction the service has scored (check the id)"
                )
            if known_at < tx_time:
                raise ValueError(
                    f"transaction {tx_id} happened at {tx_time}, so its label cannot be known at {known_at}: "
                    "send the time the label became known, on the transactions' clock"
                )
            connection.execute(
                _labels.insert().values(
                    transaction_id=tx_id, is_fraud=bool(is_fraud), label_time=known_at, recorded_at=_utcnow()
                )
            )

    def record_labels(self, labels: Iterable[tuple[int, bool, dt.datetime]]) -> int:
        """:meth:`record_label` for several ``(transaction_id, is_fraud, label_time)`` in one transaction: all or none.

        The rows are kept in the given order (the newest row wins for a transaction labelled twice).
        One look-up for all the transactions and one insert: a batch of labels (a day of chargebacks,
        a backfill) costs one commit, not one per label. Returns the number of rows written.

        Raises
        ------
        UnknownTransaction
            A transaction id has no decision in the log (nothing is written; the message names the first ids).
        LabelBeforeTransaction
            A ``label_time`` is before its transaction's own time (a ``ValueError``; nothing is written).
        """
        rows = [(int(tx_id), bool(is_fraud), _utc_naive(known)) for tx_id, is_fraud, known in labels]
        if not rows:
            return 0
        wanted = sorted({tx_id for tx_id, _, _ in rows})
        d = _decisions.c
        with self._writing() as connection:
            happened: dict[int, dt.datetime] = {}
            for start in range(0, len(wanted), _IN_CHUNK):  # SQLite caps the parameters of one statement
                chunk = wanted[start : start + _IN_CHUNK]
                query = sa.select(d.transaction_id, sa.func.min(d.tx_datetime)).where(d.transaction_id.in_(chunk))
                for tx_id, tx_time in connection.execute(query.group_by(d.transaction_id)).all():
                    happened[int(tx_id)] = tx_time
            unknown = [tx_id for tx_id in wanted if tx_id not in happened]
            if unknown:
                raise UnknownTransaction(
                    f"no decision for transaction(s) {unknown[:5]} in the log: a label can only be recorded for a "
                    "transaction the service has scored (check the ids); none of the labels was recorded"
                )
            for tx_id, _, known_at in rows:
                if known_at < happened[tx_id]:
                    raise LabelBeforeTransaction(
                        f"transaction {tx_id} happened at {happened[tx_id]}, so its label cannot be known at "
                        f"{known_at}: send the time the label became known, on the transactions' clock; none of "
                        "the labels was recorded",
                        tx_id,
                    )
            recorded_at = _utcnow()
            connection.execute(
                _labels.insert(),
                [
                    {"transaction_id": tx_id, "is_fraud": is_fraud, "label_time": known_at, "recorded_at": recorded_at}
                    for tx_id, is_fraud, known_at in rows
                ],
            )
        return len(rows)

    # -- reading ------------------------------------------------------------------------------------

    def decisions(
        self,
        *,
        since_id: int = 0,
        limit: int | None = None,
        with_features: bool = False,
        since: dt.datetime | str | None = None,
    ) -> pd.DataFrame:
        """Decisions with ``id > since_id``, in id (commit) order, at most ``limit`` of them.

        Columns: ``id``, ``request_id``, ``decided_at`` (UTC), ``transaction_id``, ``customer_id``,
        ``terminal_id``, ``tx_datetime``, ``tx_amount``, ``model_version``, ``score``, ``decision``,
        ``threshold``, ``latency_ms``, ``schema_version``; and ``features`` (dicts) with
        ``with_features=True``. To tail the log, pass the largest ``id`` seen so far. ``since`` keeps
        only transactions at or after that time (the transactions' clock, as in :meth:`history_frame`):
        a job that looks at recent days reads them through the ``tx_datetime`` index, not the whole log.
        """
        columns = [_decisions.c[name] for name in _DECISION_COLUMNS]
        if with_features:
            columns.append(_decisions.c.features)
        query = sa.select(*columns).where(_decisions.c.id > int(since_id)).order_by(_decisions.c.id)
        if since is not None:
            query = query.where(_decisions.c.tx_datetime >= _utc_naive(since))
        if limit is not None:
            query = query.limit(int(limit))
        with self._reading() as connection:
            rows = connection.execute(query).all()
        frame = _frame(rows, [c.name for c in columns])
        frame = frame.astype(
            {
                "id": "int64",
                "transaction_id": "int64",
                "customer_id": "int64",
                "terminal_id": "int64",
                "model_version": "int64",
                "tx_amount": "float64",
                "score": "float64",
                "threshold": "float64",
                "latency_ms": "float64",
                "decision": "bool",
                "request_id": "str",
                "schema_version": "str",
            }
        )
        frame["decided_at"] = pd.to_datetime(frame["decided_at"]).dt.tz_localize("UTC")
        frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"])
        if with_features:
            # One parse of one JSON array instead of a parse per row: the same dicts, 3x faster on a big log.
            frame["features"] = json.loads(f"[{','.join(frame['features'])}]") if len(frame) else []
        return frame

    def labels(self, *, since_id: int = 0, latest_only: bool = False) -> pd.DataFrame:
        """Label rows with ``id > since_id`` in id order: ``id``, ``transaction_id``, ``is_fraud``, ``label_time``,
        ``recorded_at`` (UTC). ``latest_only`` keeps the newest row per transaction (the current label)."""
        query = sa.select(*_labels.c).where(_labels.c.id > int(since_id)).order_by(_labels.c.id)
        with self._reading() as connection:
            rows = connection.execute(query).all()
        frame = _frame(rows, _LABEL_COLUMNS).astype({"id": "int64", "transaction_id": "int64", "is_fraud": "bool"})
        frame["label_time"] = pd.to_datetime(frame["label_time"])
        frame["recorded_at"] = pd.to_datetime(frame["recorded_at"]).dt.tz_localize("UTC")
        if latest_only:
            frame = frame.drop_duplicates("transaction_id", keep="last").reset_index(drop=True)
        return frame

    def decision_for(self, transaction_id: int) -> dict[str, Any] | None:
        """The newest decision logged for a transaction (which model version decided it, the score, ...), or None.

        The dict holds the columns of :meth:`decisions`, ``features`` as a dict, and ``n_decisions``
        (always 1 in a log made by this version, which allows one decision per transaction; older
        logs may hold more).
        """
        with self._reading() as connection:
            rows = connection.execute(
                sa.select(*_decisions.c)
                .where(_decisions.c.transaction_id == int(transaction_id))
                .order_by(_decisions.c.id.desc())
            ).all()
        if not rows:
            return None
        newest = rows[0]._asdict()
        newest["features"] = json.loads(newest["features"])
        newest["decided_at"] = newest["decided_at"].replace(tzinfo=dt.UTC)
        newest["decision"] = bool(newest["decision"])
        newest["n_decisions"] = len(rows)
        return newest

    def newest_id(self) -> int:
        """The largest decision id committed so far (0 for an empty log): where a reader that tails the log starts.

        One indexed query, not a frame of the decisions since some id.
        """
        with self._reading() as connection:
            return int(connection.execute(sa.select(sa.func.max(_decisions.c.id))).scalar_one_or_none() or 0)

    def tail(self, *, after_decision_id: int, after_label_id: int) -> LogTail:
        """The labels and decisions committed after the given ids, for a worker that keeps its state in step.

        One statement, so one consistent read: a label is accepted only for a committed decision, so
        every label returned has its decision either in this tail or before it. Plain tuples, not
        frames: this runs before every decision, and two DataFrames cost about 5 ms.
        """
        params = {"after_label": int(after_label_id), "after_decision": int(after_decision_id)}
        with self._reading() as connection:
            rows = connection.execute(_TAIL, params).all()
        labels: list[TailedLabel] = []
        decisions: list[TailedDecision] = []
        for kind, row_id, tx_id, a, b, amount, when in rows:
            if kind == 0:
                labels.append(TailedLabel(int(row_id), int(tx_id), bool(a), when))
            else:
                decisions.append(TailedDecision(int(row_id), int(tx_id), int(a), int(b), float(amount), when))
        return LogTail(labels=labels, decisions=decisions)

    def scored(self, transaction_ids: Iterable[int]) -> dict[int, StoredDecision]:
        """The logged decision of each of ``transaction_ids`` that has one (one indexed query for a batch)."""
        wanted = sorted({int(i) for i in transaction_ids})
        if not wanted:
            return {}
        d = _decisions.c
        with self._reading() as connection:
            rows = connection.execute(
                sa.select(*(d[name] for name in StoredDecision._fields)).where(d.transaction_id.in_(wanted))
            ).all()
        return {
            int(row.transaction_id): StoredDecision(
                request_id=str(row.request_id),
                transaction_id=int(row.transaction_id),
                customer_id=int(row.customer_id),
                terminal_id=int(row.terminal_id),
                tx_datetime=row.tx_datetime,
                tx_amount=float(row.tx_amount),
                model_version=int(row.model_version),
                score=float(row.score),
                decision=bool(row.decision),
                threshold=float(row.threshold),
                schema_version=str(row.schema_version),
            )
            for row in rows
        }

    def request_ids(self) -> set[str]:
        """Every request id in the log (e.g. to check that every acknowledged request was logged)."""
        with self._reading() as connection:
            return set(connection.execute(sa.select(_decisions.c.request_id)).scalars())

    def history_frame(
        self, *, origin: str | dt.datetime = DEFAULT_ORIGIN, since: dt.datetime | str | None = None
    ) -> pd.DataFrame:
        """The transactions seen, in the simulator's columns, for ``OnlineFeatureState.from_history``.

        One row per transaction id (its first decision), sorted by ``(tx_time_seconds, transaction_id)``.
        Columns: ``transaction_id``, ``tx_datetime``, ``customer_id``, ``terminal_id``, ``tx_amount``;
        ``tx_time_seconds``, whole seconds since ``origin``; ``tx_fraud`` (``Int8``: the current label,
        ``<NA>`` where none arrived yet) and ``tx_label_seconds`` (float seconds since ``origin`` at
        which that label became known, NaN where none), the columns the features read labels from.

        Parameters
        ----------
        origin
            Second 0 of the time columns. The default, the simulator's default ``start_date``, makes
            ``tx_time_seconds`` equal the simulator's for simulated traffic. ``from_history`` infers
            the origin back from ``tx_datetime - tx_time_seconds``, so any origin gives the same
            features; only the numbers in the time columns change.
        since
            Only transactions at or after this time (the transactions' clock): a restarting service
            needs the last ``delay + 30`` days, not the whole log.

        Examples
        --------
        >>> from mlsys_lab.data.online import OnlineFeatureState
        >>> state = OnlineFeatureState.from_history(log.history_frame())  # doctest: +SKIP
        """
        return self.snapshot(origin=origin, since=since)[0]

    def snapshot(
        self, *, origin: str | dt.datetime = DEFAULT_ORIGIN, since: dt.datetime | str | None = None
    ) -> tuple[pd.DataFrame, int, int]:
        """:meth:`history_frame`, and the largest decision and label ids it reflects, read in one transaction.

        What a (re)starting worker needs: rebuild from the frame, then :meth:`tail` after those ids,
        with no row read twice and none missed in between.
        """
        d, labels = _decisions.c, _labels.c
        query = sa.select(d.id, d.transaction_id, d.tx_datetime, d.customer_id, d.terminal_id, d.tx_amount)
        if since is not None:
            query = query.where(d.tx_datetime >= _utc_naive(since))
        with self._reading() as connection:
            # One read transaction (SQLAlchemy begins one on first execute): the ids match the rows.
            last_decision = connection.execute(sa.select(sa.func.max(d.id))).scalar_one_or_none() or 0
            last_label = connection.execute(sa.select(sa.func.max(labels.id))).scalar_one_or_none() or 0
            rows = connection.execute(query.where(d.id <= last_decision).order_by(d.id)).all()
            label_rows = connection.execute(
                sa.select(labels.transaction_id, labels.is_fraud, labels.label_time)
                .where(labels.id <= last_label)
                .order_by(labels.id)
            ).all()
        frame = _frame(rows, ["id", *HISTORY_COLUMNS[:5]])
        frame = frame.drop_duplicates("transaction_id", keep="first").drop(columns="id")
        frame = frame.astype({"transaction_id": "int64", "customer_id": "int64", "terminal_id": "int64"})
        frame["tx_amount"] = frame["tx_amount"].astype("float64")
        frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"]).astype("datetime64[s]")
        start = pd.Timestamp(_utc_naive(origin))
        frame["tx_time_seconds"] = ((frame["tx_datetime"] - start) // pd.Timedelta(seconds=1)).astype("int64")

        current = _frame(label_rows, ["transaction_id", "is_fraud", "label_time"])
        current = current.drop_duplicates("transaction_id", keep="last").set_index("transaction_id")
        matched = current.reindex(frame["transaction_id"].to_numpy())
        fraud = matched["is_fraud"].to_numpy(dtype=object)
        known = ~pd.isna(fraud)
        frame["tx_fraud"] = pd.arrays.IntegerArray(np.where(known, fraud, False).astype(np.int8), ~known.astype(bool))
        label_time = pd.to_datetime(matched["label_time"]).to_numpy()
        frame["tx_label_seconds"] = (label_time - np.datetime64(start.to_datetime64(), "ns")) / np.timedelta64(1, "s")
        frame = frame.sort_values(["tx_time_seconds", "transaction_id"], kind="stable", ignore_index=True)
        return frame[list(HISTORY_COLUMNS)], int(last_decision), int(last_label)

    def close(self) -> None:
        """Close the database connections. A later call reopens them."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
