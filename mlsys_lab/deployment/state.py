"""What a running scoring service holds: the served model, swapped atomically, and the feature state.

Two objects, one per kind of shared mutable state, each with the one lock it needs.

:class:`ModelSlot` (the hot swap)
    The served :class:`~mlsys_lab.deployment.registry.LoadedModel` lives in one attribute. A request
    reads it once, at its start, and uses that reference to the end, so it finishes on the model it
    started with whatever happens meanwhile. :meth:`ModelSlot.reload` builds the new model completely
    (registry lookup, sha256 check, unpickling, a check that it can score a row) before the one
    assignment that publishes it: readers never wait for a reload and never see half a model. A
    reload that fails leaves the old model in place. (Rebinding an attribute is atomic in CPython;
    the lock only keeps two reloads from interleaving.)

:class:`ServingState` (the online features, shared by every worker)
    Each worker process keeps an in-memory :class:`~mlsys_lab.data.online.OnlineFeatureState`,
    rebuilt from the decision log at start. The log is the one source of truth: before computing a
    request's features, the worker applies the decisions and labels other workers committed since it
    last looked (``since_id`` tailing of two append-only tables). The request's own decisions are
    committed to the log before the response is sent. So a request's features reflect every
    transaction and label committed before it started, in any worker. The whole sequence (tail,
    features, score, commit, observe) runs under one lock per worker, for one request or one group
    of them (see "Group commit"), because the feature state is not thread-safe and because two
    requests for one card in the same worker must see each other.
    The state never reads the log's tables itself: it asks the log (:meth:`DecisionLog.tail`,
    :meth:`DecisionLog.scored`, :meth:`DecisionLog.snapshot`), whose methods hold the log's locks.

Commit before acknowledge, and a log outage
    A decision is committed before its answer exists. A one-transaction request changes the
    in-memory state only *after* its commit succeeded, so a refused commit (a full disk, a read-only
    file) leaves the state as the log is and costs nothing: a fast 503. A batch must change the
    state as it goes (each row sees the ones before it), so a refused batch commit marks the state
    *dirty*: scoring answers 503 at once, without waiting for a lock, while one background rebuild
    from the log runs; then scoring resumes. No request ever waits for a rebuild.

Group commit
    The async routes hand their requests to one decision thread. What queued while it was busy is
    decided as one group: one tail of the log, one model call per model, one insert and one commit
    for every decision of the group, then every answer. Commits per second stop growing with the
    request rate, and a commit's fixed cost (BEGIN IMMEDIATE, the WAL write, the fsync with FULL) is
    shared. Nothing waits for a group to fill, so a lone request is a group of one. The guarantees
    stay those of one request: a group holds only one-transaction requests for distinct cards,
    terminals and transaction ids (the next one that shares any of them starts the next group, after
    this commit, so it sees the decision it depends on, and a resent transaction gets the stored
    decision back); none of them is observed before the commit, so a refused commit fails exactly
    the group's requests with the log's reason and needs no rebuild; a transaction id decided by
    another worker in between fails the group's insert, and then each request is committed alone, so
    only the one that lost the race gets the stored decision or a 409. A batch is a group of its own.

The stream's clock, and transactions dated far ahead
    The features' windows end at each transaction's own time, and the state drops history that no
    window can reach any more. Both trust the transactions' times, so a single request dated a month
    ahead (a client's clock bug) would make every customer's history look stale. Two rules keep one
    bad time from doing harm (:attr:`ServingState.max_ahead_seconds`, ``MLSYS_LAB_MAX_AHEAD_SECONDS``,
    one day by default):

    - the *stream clock* is the median time of the last 101 transactions applied: a few outliers
      cannot move it. Pruning follows the stream clock, never the newest time, so it cannot wipe
      the state;
    - a transaction dated more than ``max_ahead_seconds`` after the stream clock is refused with a
      422 that says why, unless it is within ``max_ahead_seconds`` of the service's own clock (bank
      time): so a live service resumes after a pause in traffic, while a replay of 2018 refuses a
      request dated a month ahead. Anything more than ``max_ahead_seconds`` after the service's clock
      is refused: a card transaction cannot come from the future.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import queue
import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlsys_lab.data.features import SECONDS_PER_DAY
from mlsys_lab.data.online import OnlineFeatureState
from mlsys_lab.deployment.decision_log import Decision, DecisionLog, DuplicateTransaction, StoredDecision
from mlsys_lab.deployment.schemas import BANK_TIMEZONE, Transaction

if TYPE_CHECKING:
    from mlsys_lab.deployment.registry import LoadedModel

__all__ = [
    "DEFAULT_MAX_AHEAD_SECONDS",
    "MAX_GROUP",
    "ConflictingTransaction",
    "DuplicateTransaction",
    "ModelSlot",
    "ModelUnusable",
    "Scored",
    "ServingState",
    "StageTimes",
    "StateUnavailable",
    "TooFarAhead",
    "check_model",
]

logger = logging.getLogger(__name__)

_UNIX_EPOCH = dt.datetime(1970, 1, 1)


class ModelUnusable(RuntimeError):
    """A model that loaded but cannot serve: features the service cannot compute, or no valid score."""


class ConflictingTransaction(ValueError):
    """A transaction id that was already decided for different content, or twice in one request: a 409."""


class TooFarAhead(ValueError):
    """A transaction dated further ahead of the stream (and of the service's clock) than the tolerance: a 422.

    ``index`` is its position in the request (0 for a single transaction).
    """

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class StateUnavailable(RuntimeError):
    """The feature state is being rebuilt after a refused batch commit: a fast 503, retry shortly."""


#: Default tolerance for transactions dated ahead of the stream clock and of the service's clock.
DEFAULT_MAX_AHEAD_SECONDS = float(SECONDS_PER_DAY)
#: How many recent transaction times the stream clock takes the median of.
_CLOCK_SAMPLES = 101
#: Most single-transaction requests decided in one group commit.
MAX_GROUP = 64


def check_model(model: LoadedModel, feature_names: Sequence[str]) -> None:
    """Refuse a model the service cannot serve, before it is published: unknown features or bad scores."""
    missing = [name for name in model.info.features if name not in feature_names]
    if missing:
        raise ModelUnusable(
            f"model version {model.info.version} needs features the service does not compute: {missing}"
        )
    # Above 1 means "never alert", which training may choose on purpose; NaN or inf cannot go into JSON.
    if not (math.isfinite(float(model.info.threshold)) and float(model.info.threshold) >= 0.0):
        raise ModelUnusable(
            f"model version {model.info.version} has threshold {model.info.threshold}, not a number >= 0"
        )
    probe = model.score(np.zeros((1, len(model.info.features))))
    if np.shape(probe) != (1,) or not 0.0 <= float(probe[0]) <= 1.0:
        raise ModelUnusable(f"model version {model.info.version} returned {probe!r} for one row, not one probability")


class ModelSlot:
    """The served model, or the reason there is none. Read :attr:`current` once per request."""

    def __init__(self) -> None:
        self.current: LoadedModel | None = None
        self.unavailable_reason = "no model loaded yet"
        #: Why the newest reload was refused while a model kept serving ("" after a successful swap): for ``/ready``.
        self.refused_reason = ""
        self._reload_lock = threading.Lock()

    def reload(self, load: Callable[[], LoadedModel]) -> tuple[LoadedModel | None, LoadedModel]:
        """Build a model with ``load`` and publish it; returns ``(previous, new)``.

        Any exception from ``load`` propagates and the served model stays as it was. When there was
        none, :attr:`unavailable_reason` says why the attempt failed, for ``/ready``.
        """
        with self._reload_lock:
            previous = self.current
            try:
                model = load()  # checksum, unpickle and probe: all before the swap
            except Exception as exc:
                if previous is None:
                    self.unavailable_reason = f"{type(exc).__name__}: {exc}"
                else:
                    self.refused_reason = f"{type(exc).__name__}: {exc}"
                raise
            self.current = model  # the swap: one reference assignment
            self.unavailable_reason = ""
            self.refused_reason = ""
            return previous, model


@dataclass
class StageTimes:
    """Where one request's time went inside :meth:`ServingState.decide`, in seconds (wall clock).

    The API turns it into a ``Server-Timing`` header, so a learner reads it from curl or locust.
    ``state`` is waiting for the decision thread and the lock plus applying other workers' commits and
    the duplicate check; ``features`` the online features; ``model`` the model call and ``log`` the
    decision log's insert and commit, both for the request's whole group (they are shared).
    """

    state: float = 0.0
    features: float = 0.0
    model: float = 0.0
    log: float = 0.0


@dataclass(frozen=True)
class Scored:
    """One transaction's decision, as logged and returned."""

    request_id: str
    transaction: Transaction
    score: float
    decision: bool
    threshold: float
    model_version: int
    replayed: bool = False  # True: the stored decision of an earlier identical request (a retry)


class ServingState:
    """The worker's feature state, kept in step with the decision log every worker writes to.

    Parameters
    ----------
    log
        The decision log (one database shared by all workers).
    state
        The rebuilt feature state; :meth:`rebuild` makes one from the log.
    last_decision_id, last_label_id
        The log's ids that ``state`` already reflects: tailing starts after them.
    max_ahead_seconds
        Tolerance for transactions dated ahead (see the module docstring).
    clock
        The service's clock, bank-local naive time (a parameter so tests can move it).
    """

    def __init__(
        self,
        log: DecisionLog,
        state: OnlineFeatureState,
        *,
        last_decision_id: int = 0,
        last_label_id: int = 0,
        max_ahead_seconds: float = DEFAULT_MAX_AHEAD_SECONDS,
        clock: Callable[[], dt.datetime] | None = None,
        recent_times: Sequence[int] = (),
    ) -> None:
        self.log = log
        self._state = state
        if state.origin_epoch_seconds is None:  # empty history: any origin works, take the Unix epoch
            state.origin_epoch_seconds = 0
        self.max_ahead_seconds = float(max_ahead_seconds)
        self._clock = clock or _bank_now
        self._lock = threading.Lock()
        self._last_decision_id = last_decision_id
        self._last_label_id = last_label_id
        self._recent_times: deque[int] = deque(recent_times, maxlen=_CLOCK_SAMPLES)
        self._pruned_day = self._stream_day()
        # Set (to the reason) when the memory may hold what the log does not; cleared by one rebuild.
        self._dirty: str | None = None
        self._rebuilding: threading.Thread | None = None
        self._rebuild_lock = threading.Lock()
        self._consistent = threading.Event()
        self._consistent.set()
        self.lock_wait_seconds = 0.0  # total time requests waited for the lock: the price of one lock
        self.rebuilds = 0  # rebuilds after refused commits (not counting the one at start)
        # A rollout (mlsys_lab.maintenance.rollout) may attach these: a canary router (which model decides
        # a transaction; None = the served one) and a shadow scorer (called after the commit).
        self.route: Callable[[Transaction], LoadedModel | None] | None = None
        self.shadow: Callable[[Sequence[Scored], np.ndarray], None] | None = None
        # The one thread that decides for the async routes, and its inbox (made on first use, see decide_async).
        self._decider: tuple[threading.Thread, queue.SimpleQueue[_Request | None]] | None = None
        self._decider_lock = threading.Lock()
        #: Most requests one group commit holds (a bound on the group's latency, not a target to fill).
        self.max_group = MAX_GROUP
        self.commits = 0  # successful commits to the log, and the decisions they held: decisions per commit
        self.committed_decisions = 0
        #: Called with the number of decisions after each successful commit (the metrics' histogram).
        self.on_commit: Callable[[int], None] | None = None

    @classmethod
    def rebuild(
        cls,
        log: DecisionLog,
        *,
        max_ahead_seconds: float = DEFAULT_MAX_AHEAD_SECONDS,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> ServingState:
        """The state after a (re)start: the log's snapshot, then tail after the ids it reflects."""
        state, last_decision, last_label, recent = _state_from_log(log, max_ahead_seconds)
        return cls(
            log,
            state,
            last_decision_id=last_decision,
            last_label_id=last_label,
            max_ahead_seconds=max_ahead_seconds,
            clock=clock,
            recent_times=recent,
        )

    def __len__(self) -> int:
        return len(self._state)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._state.feature_names

    @property
    def dirty(self) -> str | None:
        """Why the state is being rebuilt, or None when it matches the log."""
        return self._dirty

    def wait_consistent(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until no rebuild is pending; True if the state matches the log."""
        return self._consistent.wait(timeout) and self._dirty is None

    def stream_clock(self) -> int | None:
        """The median time (seconds since the state's origin) of the last transactions applied; None if none."""
        if not self._recent_times:
            return None
        return int(statistics.median_low(self._recent_times))

    def _stream_day(self) -> int:
        clock = self.stream_clock()
        return -1 if clock is None else clock // SECONDS_PER_DAY

    def _seconds(self, when: Any) -> int:
        origin = self._state.origin_epoch_seconds or 0
        stamp = when.to_pydatetime() if hasattr(when, "to_pydatetime") else when
        return int((stamp - _UNIX_EPOCH) // dt.timedelta(seconds=1)) - origin

    def _observe(self, record: dict[str, Any]) -> None:
        if self._state.observe(record):
            self._recent_times.append(self._seconds(record["tx_datetime"]))

    def _catch_up(self) -> None:
        """Apply what any worker committed since the last look (labels are read first: see ``DecisionLog.tail``)."""
        tail = self.log.tail(after_decision_id=self._last_decision_id, after_label_id=self._last_label_id)
        for row in tail.decisions:
            self._observe(  # a no-op for this worker's own rows: already observed
                {
                    "transaction_id": row.transaction_id,
                    "customer_id": row.customer_id,
                    "terminal_id": row.terminal_id,
                    "tx_amount": row.tx_amount,
                    "tx_datetime": row.tx_datetime,
                }
            )
            self._last_decision_id = row.id
        for label in tail.labels:
            self._state.record_label(label.transaction_id, label.is_fraud, self._seconds(label.label_time))
            self._last_label_id = label.id

    def _check_time(self, transactions: Sequence[Transaction], recent: deque[int] | None = None) -> None:
        """Refuse a transaction dated further ahead than the tolerance (see the module docstring).

        In a batch, each row is compared with the stream clock as the rows before it move it, so a
        batch may span more than the tolerance when its rows follow each other. ``recent``, when
        given, is that moving clock's samples, shared by the requests of one group (and appended to).
        """
        tolerance = self.max_ahead_seconds
        now = self._seconds(self._clock())
        if recent is None:
            recent = deque(self._recent_times, maxlen=_CLOCK_SAMPLES)
        for index, tx in enumerate(transactions):
            when = self._seconds(tx.tx_datetime)
            stream = int(statistics.median_low(recent)) if recent else None
            if when > now + tolerance:
                reason = f"it is {_days(when - now)} after the service's clock ({self._clock():%Y-%m-%dT%H:%M:%S})"
            elif stream is not None and when > stream + tolerance and abs(when - now) > tolerance:
                reason = f"it is {_days(when - stream)} after the transactions the service is receiving"
            else:
                recent.append(when)
                continue
            raise TooFarAhead(
                f"tx_datetime {tx.tx_datetime:%Y-%m-%dT%H:%M:%S} refused: {reason}; at most "
                f"{_days(int(tolerance))} ahead is accepted (MLSYS_LAB_MAX_AHEAD_SECONDS), since a wrong clock "
                "would corrupt the features of later transactions. Check the client's clock and time zone",
                index,
            )

    def decide(
        self,
        transactions: Sequence[Transaction],
        model: LoadedModel,
        started: float,
        times: StageTimes | None = None,
    ) -> list[Scored]:
        """Features, scores and decisions for ``transactions`` (in order), each committed to the log.

        Runs in the caller's thread, as a group of one (:meth:`decide_async` groups concurrent
        requests). ``times``, when given, receives where the time went (see :class:`StageTimes`).

        Idempotent by transaction id: a transaction already decided with the same content (ids,
        time, amount) gets its stored decision back (``replayed=True``); different content is a
        :class:`ConflictingTransaction`. Within a batch each new transaction sees the ones before it,
        as offline.

        Raises
        ------
        StateUnavailable
            The state is being rebuilt after a refused batch commit (answered at once).
        ConflictingTransaction, TooFarAhead
            Refused requests; nothing is written.
        sqlalchemy.exc.SQLAlchemyError
            The log refused the commit: nothing was decided (and the state still matches the log).
        """
        request = _Request(transactions, model, started, times if times is not None else StageTimes())
        self._decide_group([request])
        return request.future.result()

    async def decide_async(
        self,
        transactions: Sequence[Transaction],
        model: LoadedModel,
        started: float,
        times: StageTimes | None = None,
    ) -> list[Scored]:
        """:meth:`decide` on this state's own decision thread, which commits concurrent requests together.

        Decisions are serialised by the lock anyway, so one thread does all of them: with
        Starlette's pool (up to 40 threads) every concurrent request woke a thread that only queued
        for the lock and the GIL, and that hand-off cost more CPU than the decision. The event loop
        keeps parsing and answering other requests while the thread commits, so a slow disk never
        stalls ``/health`` or ``/metrics``.

        Group commit: the requests that queued while the thread was busy are decided together, one
        model call per model and one transaction in the log for all of them, and each answer is
        released only after that commit. Nothing waits for a group to fill: under light load a group
        is one request. See :meth:`_decide_singles` for what a group may hold and how a failed
        commit is answered.
        """
        request = _Request(transactions, model, started, times if times is not None else StageTimes())
        self._decision_inbox().put(request)
        return await asyncio.wrap_future(request.future)

    def close(self) -> None:
        """Finish the decisions in flight and stop the decision thread (the log stays open)."""
        with self._decider_lock:
            decider, self._decider = self._decider, None
        if decider is not None:
            thread, inbox = decider
            inbox.put(None)  # after every request already queued: those are decided and committed first
            thread.join()

    # -- the decision thread and its groups ---------------------------------------------------------

    def _decision_inbox(self) -> queue.SimpleQueue[_Request | None]:
        decider = self._decider
        if decider is not None:
            return decider[1]
        with self._decider_lock:
            if self._decider is None:
                inbox: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
                thread = threading.Thread(
                    target=self._run_decisions, args=(inbox,), name="mlsys-lab-decide", daemon=True
                )
                thread.start()
                self._decider = (thread, inbox)
            return self._decider[1]

    def _run_decisions(self, inbox: queue.SimpleQueue[_Request | None]) -> None:
        """The decision thread: take what has queued, cut it into groups of independent requests, decide each."""
        carry: _Request | None = None
        stopping = False
        while True:
            if carry is not None:
                first, carry = carry, None
            elif stopping:
                return
            else:
                waiting = inbox.get()
                if waiting is None:
                    return
                first = waiting
            group = [first]
            if len(first.transactions) == 1:  # a batch is a group of its own: its rows depend on each other
                tx = first.transactions[0]
                customers, terminals, ids = {tx.customer_id}, {tx.terminal_id}, {tx.transaction_id}
                while len(group) < self.max_group:
                    try:
                        request = inbox.get_nowait()
                    except queue.Empty:
                        break
                    if request is None:
                        stopping = True  # close(): decide what came before, then stop
                        break
                    if len(request.transactions) != 1:
                        carry = request
                        break
                    tx = request.transactions[0]
                    # A request that shares a card, a terminal or a transaction id with an earlier one in the
                    # group must see that one's decision: it starts the next group, after this commit.
                    if tx.customer_id in customers or tx.terminal_id in terminals or tx.transaction_id in ids:
                        carry = request
                        break
                    customers.add(tx.customer_id)
                    terminals.add(tx.terminal_id)
                    ids.add(tx.transaction_id)
                    group.append(request)
            try:
                self._decide_group(group)
            except BaseException as exc:  # never leave a request waiting forever, whatever went wrong
                logger.exception("the decision thread failed on a group of %d requests", len(group))
                for request in group:
                    if not request.future.done():
                        request.future.set_exception(exc)
            for request in group:  # an outcome for every request, or it would wait forever: a bug here
                if not request.future.done():
                    request.future.set_exception(RuntimeError("the decision thread gave this request no answer"))

    def _decide_group(self, group: Sequence[_Request]) -> None:
        """Decide ``group`` under the lock: independent single transactions, or one request of any size."""
        group = [request for request in group if request.future.set_running_or_notify_cancel()]
        if not group:
            return
        try:
            self._refuse_if_dirty()
        except StateUnavailable as exc:
            for request in group:
                request.future.set_exception(exc)
            return
        waited = time.perf_counter()
        with self._lock:
            self.lock_wait_seconds += time.perf_counter() - waited
            try:
                self._refuse_if_dirty()
                self._catch_up()
            except BaseException as exc:  # a log that cannot be read fails every request of the group
                for request in group:
                    request.future.set_exception(exc)
                return
            caught_up = time.perf_counter()
            for request in group:
                # Waiting for the decision thread and the lock, and applying other workers' commits.
                request.times.state += caught_up - request.queued
            if len(group) == 1 and len(group[0].transactions) != 1:
                request = group[0]
                try:
                    request.future.set_result(
                        self._decide_request(request.transactions, request.model, request.started, request.times)
                    )
                except BaseException as exc:
                    request.future.set_exception(exc)
            else:
                self._decide_singles(group)
            self._prune()

    def _decide_singles(self, group: Sequence[_Request]) -> None:
        """Independent one-transaction requests: one model call per model, one commit, then every answer.

        The group holds no two requests for the same card, terminal or transaction id (the decision
        thread cuts it there), so no request's features depend on another one of the group, and none
        is observed in the state before the commit: a refused commit (a full disk, a read-only file)
        fails exactly the group's requests, each with the log's reason (a 503), and leaves the state
        as the log is, with no rebuild. A transaction id that another process decided a moment ago
        fails the group's insert; then each request is committed on its own, and only the one that
        lost the race gets the stored decision (or a 409).
        """
        recent = deque(self._recent_times, maxlen=_CLOCK_SAMPLES)  # the stream clock as the group moves it
        plans: list[_Plan] = []
        for request in group:
            clock = time.perf_counter()
            tx = request.transactions[0]
            try:
                # One new transaction needs no look-up: the log's unique index is the check. A transaction the
                # state does not hold (it holds every one committed before the catch-up, as far back as a window
                # reaches) is almost always new; one that is in the log after all (older than every window, or
                # committed by another worker a moment ago) fails the insert and gets the same answer.
                stored = self.log.scored([tx.transaction_id]) if tx.transaction_id in self._state else {}
                _refuse_conflicts([tx], stored)
                if stored:
                    request.times.state += time.perf_counter() - clock
                    request.future.set_result([_replayed(tx, stored[tx.transaction_id])])
                    continue
                self._check_time([tx], recent)
                features_clock = time.perf_counter()
                request.times.state += features_clock - clock
                record = _as_record(tx)
                values = self._state.features(record)
                request.times.features += time.perf_counter() - features_clock
            except BaseException as exc:
                request.future.set_exception(exc)
                continue
            plans.append(_Plan(request, tx, record, values))

        by_model: dict[int, list[_Plan]] = {}
        for plan in plans:
            by_model.setdefault(id(plan.request.model), []).append(plan)
        rows_of: dict[int, np.ndarray] = {}
        for key, same_model in by_model.items():
            model = same_model[0].request.model
            names = model.info.features
            rows = np.array([[plan.values[name] for name in names] for plan in same_model], dtype=float)
            clock = time.perf_counter()
            try:
                models, scores = self._score_routed([plan.tx for plan in same_model], rows, model)
            except BaseException as exc:  # nothing is observed yet: failing these requests costs nothing more
                for plan in same_model:
                    plan.request.future.set_exception(exc)
                continue
            elapsed = time.perf_counter() - clock
            rows_of[key] = rows
            for plan, chosen, score in zip(same_model, models, scores.tolist(), strict=True):
                plan.request.times.model += elapsed
                plan.scored = Scored(
                    request_id=str(uuid.uuid4()),
                    transaction=plan.tx,
                    score=float(score),
                    decision=bool(score >= float(chosen.info.threshold)),
                    threshold=float(chosen.info.threshold),
                    model_version=chosen.info.version,
                )
        ready = [plan for plan in plans if plan.scored is not None]
        if not ready:
            return
        decided_at = dt.datetime.now(dt.UTC)
        decisions = [plan.decision(decided_at) for plan in ready]
        clock = time.perf_counter()
        try:
            self.log.record_many(decisions)
            committed = ready
            self._count_commit(len(decisions))
        except DuplicateTransaction:
            committed = self._commit_each(ready, decisions)
        except BaseException as exc:  # the one commit failed: exactly its requests fail, with its reason
            for plan in ready:
                plan.request.future.set_exception(exc)
            return
        finally:
            elapsed = time.perf_counter() - clock
            for plan in ready:
                plan.request.times.log += elapsed
        for plan in committed:
            self._observe(plan.record)  # only now: the decision is in the log
        if self.shadow is not None:
            committed_ids = {id(plan) for plan in committed}
            for key, same_model in by_model.items():
                done = [i for i, plan in enumerate(same_model) if id(plan) in committed_ids]
                if done:
                    shadowed = [same_model[i].scored for i in done]
                    self._shadow_score([s for s in shadowed if s is not None], rows_of[key][done])
        for plan in committed:
            assert plan.scored is not None
            plan.request.future.set_result([plan.scored])

    def _commit_each(self, plans: Sequence[_Plan], decisions: Sequence[Decision]) -> list[_Plan]:
        """After a group's insert hit a transaction id decided elsewhere: commit each request alone."""
        committed: list[_Plan] = []
        for plan, decision in zip(plans, decisions, strict=True):
            try:
                self.log.record_many([decision])
            except DuplicateTransaction as exc:
                try:
                    plan.request.future.set_result(self._lost_race(plan.tx, exc))
                except BaseException as refused:
                    plan.request.future.set_exception(refused)
                continue
            except BaseException as exc:
                plan.request.future.set_exception(exc)
                continue
            self._count_commit(1)
            committed.append(plan)
        return committed

    def _lost_race(self, tx: Transaction, exc: DuplicateTransaction) -> list[Scored]:
        """The answer for a new transaction whose insert found it decided (by another worker, or long ago)."""
        winner = self.log.scored(exc.transaction_ids).get(tx.transaction_id)
        if winner is not None and _same(tx, winner):
            return [_replayed(tx, winner)]
        if winner is not None:  # decided before, for a different transaction: the usual 409
            _refuse_conflicts([tx], {winner.transaction_id: winner})
        raise ConflictingTransaction(
            f"{exc}; another worker decided it at the same moment. Send the same request again to get "
            "the stored decision"
        ) from None

    def _count_commit(self, decisions: int) -> None:
        self.commits += 1
        self.committed_decisions += decisions
        if self.on_commit is not None:
            self.on_commit(decisions)

    def _decide_request(
        self, transactions: Sequence[Transaction], model: LoadedModel, started: float, times: StageTimes
    ) -> list[Scored]:
        """One request of several transactions (a batch), decided alone; the lock is held and the log tailed."""
        clock = time.perf_counter()
        names = model.info.features
        ids = [tx.transaction_id for tx in transactions]
        if len(set(ids)) < len(ids):
            repeated = sorted({tx_id for tx_id in ids if ids.count(tx_id) > 1})
            raise ConflictingTransaction(f"transaction_id(s) {repeated[:5]} appear more than once in the request")
        # A batch changes the state as it goes, so it must know what is already decided before it starts.
        stored = self.log.scored(ids)
        _refuse_conflicts(transactions, stored)
        new = [tx for tx in transactions if tx.transaction_id not in stored]
        self._check_time(new)
        features_clock = time.perf_counter()
        times.state += features_clock - clock
        batch = len(new) > 1
        records = [_as_record(tx) for tx in new]
        rows = np.empty((len(new), len(names)))
        features: list[dict[str, float]] = []
        for i, record in enumerate(records):
            values = self._state.features(record)
            if batch:  # later rows of the batch must see this one: the state changes before the commit
                self._observe(record)
            features.append(values)
            rows[i] = [values[name] for name in names]
        times.features += time.perf_counter() - features_clock
        try:
            decided = self._score_and_commit(new, rows, features, model, started, times) if new else []
        except DuplicateTransaction as exc:
            # Another process decided one of these in between (the database's unique key said so).
            if batch:
                self._mark_dirty("a batch lost a race for a transaction id")
                raise ConflictingTransaction(
                    f"{exc}; another worker decided it at the same moment. Send the same request again to get "
                    "the stored decision"
                ) from None
            return [
                self._lost_race(tx, exc)[0]
                if tx.transaction_id == new[0].transaction_id
                else _replayed(tx, stored[tx.transaction_id])
                for tx in transactions
            ]
        except BaseException:
            if batch:
                self._mark_dirty("the decision log refused a batch's commit")
            raise
        if not batch:
            for record in records:
                self._observe(record)  # only now: the decision is in the log
        by_id = {s.transaction.transaction_id: s for s in decided}
        return [
            by_id[tx.transaction_id] if tx.transaction_id in by_id else _replayed(tx, stored[tx.transaction_id])
            for tx in transactions
        ]

    def _score_and_commit(
        self,
        transactions: Sequence[Transaction],
        rows: np.ndarray,
        features: Sequence[dict[str, float]],
        model: LoadedModel,
        started: float,
        times: StageTimes,
    ) -> list[Scored]:
        clock = time.perf_counter()
        models, scores = self._score_routed(transactions, rows, model)
        times.model += time.perf_counter() - clock
        decided = [
            Scored(
                request_id=str(uuid.uuid4()),
                transaction=tx,
                score=float(score),
                decision=bool(score >= float(chosen.info.threshold)),
                threshold=float(chosen.info.threshold),
                model_version=chosen.info.version,
            )
            for tx, chosen, score in zip(transactions, models, scores.tolist(), strict=True)
        ]
        latency_ms = (time.perf_counter() - started) * 1000
        decided_at = dt.datetime.now(dt.UTC)
        clock = time.perf_counter()
        # One transaction for a batch: all its decisions are logged, or none and the request fails.
        self.log.record_many(
            _logged(s, values, decided_at, latency_ms) for s, values in zip(decided, features, strict=True)
        )
        self._count_commit(len(decided))
        times.log += time.perf_counter() - clock
        self._shadow_score(decided, rows)
        return decided

    def _score_routed(
        self, transactions: Sequence[Transaction], rows: np.ndarray, model: LoadedModel
    ) -> tuple[list[LoadedModel], np.ndarray]:
        """Each row's deciding model (the canary router's choice, else ``model``) and score: one call per model."""
        if self.route is None:
            return [model] * len(transactions), model.score(rows)
        models = [self.route(tx) or model for tx in transactions]
        scores = np.empty(len(transactions))
        for chosen in {id(m): m for m in models}.values():
            picked = [i for i, m in enumerate(models) if m is chosen]
            scores[picked] = chosen.score(rows[picked])
        return models, scores

    def _shadow_score(self, decided: Sequence[Scored], rows: np.ndarray) -> None:
        """Give the shadow scorer the committed decisions; its failure never fails a decided request."""
        if self.shadow is None or not decided:
            return
        try:
            self.shadow(decided, rows)
        except Exception:
            logger.exception("shadow scoring failed; the decisions stand")

    def record_label(self, transaction_id: int, is_fraud: bool, label_time: dt.datetime) -> bool:
        """Store a label in the log (raises ``UnknownTransaction``), then apply it here.

        Returns whether a feature can still use it (False when the transaction is older than every window).
        """
        self.log.record_label(transaction_id, is_fraud, label_time)
        with self._lock:
            self._catch_up()
            return self._state.record_label(transaction_id, is_fraud, self._seconds(label_time))

    def record_labels(self, labels: Sequence[tuple[int, bool, dt.datetime]]) -> list[bool]:
        """:meth:`record_label` for several ``(transaction_id, is_fraud, label_time)``: one commit, all or none.

        Returns, for each label, whether a feature can still use it. Raises as
        :meth:`DecisionLog.record_labels` does, and then nothing is stored or applied.
        """
        self.log.record_labels(labels)
        with self._lock:
            self._catch_up()  # applies the labels just committed, with every other worker's rows
            return [
                self._state.record_label(tx_id, is_fraud, self._seconds(known)) for tx_id, is_fraud, known in labels
            ]

    # -- a refused commit: mark dirty, rebuild once in the background ---------------------------------

    def _refuse_if_dirty(self) -> None:
        reason = self._dirty
        if reason is None:
            return
        self._start_rebuild()  # in case the last attempt failed (e.g. the log was unreadable too)
        raise StateUnavailable(
            f"{reason}; the feature state is being rebuilt from the decision log, nothing was decided: retry shortly"
        )

    def _mark_dirty(self, reason: str) -> None:
        logger.error("%s: the feature state is rebuilt from the decision log in the background", reason)
        self._dirty = reason
        self._consistent.clear()
        self._start_rebuild()

    def _start_rebuild(self) -> None:
        with self._rebuild_lock:  # its own lock: this runs with the state's lock held, and without
            if self._rebuilding is not None and self._rebuilding.is_alive():
                return
            self._rebuilding = threading.Thread(target=self._rebuild_now, name="mlsys-lab-state-rebuild", daemon=True)
            self._rebuilding.start()

    def _rebuild_now(self) -> None:
        try:
            # Read without the lock (about a second on a big log); requests meanwhile get a fast 503.
            state, last_decision, last_label, recent = _state_from_log(self.log, self.max_ahead_seconds)
        except Exception:
            logger.exception("rebuilding the feature state failed; the next request tries again")
            self._consistent.set()  # nobody should wait for a rebuild that is not running
            return
        with self._lock:
            if state.origin_epoch_seconds is None:
                state.origin_epoch_seconds = self._state.origin_epoch_seconds
            self._state = state
            self._last_decision_id, self._last_label_id = last_decision, last_label
            self._recent_times = deque(recent, maxlen=_CLOCK_SAMPLES)
            self._pruned_day = self._stream_day()
            self._catch_up()
            self._dirty = None
            self.rebuilds += 1
        self._consistent.set()
        logger.info("feature state rebuilt from the decision log: %d transactions", len(state))

    def _prune(self) -> None:
        # Once per day of the stream clock (a median, so one far-dated request cannot move it), with a
        # day of margin: other workers' transactions may arrive a little out of time order.
        day = self._stream_day()
        if day > self._pruned_day:
            clock = self.stream_clock()
            assert clock is not None
            dropped = self._state.prune(clock - SECONDS_PER_DAY)
            logger.debug("pruned %d history entries on day %d", dropped, day)
            self._pruned_day = day


@dataclass(eq=False)
class _Request:
    """One request waiting for the decision thread; ``future`` receives its answer or its error."""

    transactions: Sequence[Transaction]
    model: LoadedModel
    started: float
    times: StageTimes
    queued: float = field(default_factory=time.perf_counter)
    future: Future[list[Scored]] = field(default_factory=Future)


@dataclass(eq=False)
class _Plan:
    """A new single transaction of a group, on its way to the commit."""

    request: _Request
    tx: Transaction
    record: dict[str, Any]
    values: dict[str, float]
    scored: Scored | None = None

    def decision(self, decided_at: dt.datetime) -> Decision:
        s = self.scored
        assert s is not None, "scored before it is logged"
        return _logged(s, self.values, decided_at, (time.perf_counter() - self.request.started) * 1000)


def _logged(s: Scored, values: dict[str, float], decided_at: dt.datetime, latency_ms: float) -> Decision:
    """The decision log's row for one scored transaction (the features the model was given, and how long it took)."""
    return Decision(
        request_id=s.request_id,
        decided_at=decided_at,
        transaction_id=s.transaction.transaction_id,
        customer_id=s.transaction.customer_id,
        terminal_id=s.transaction.terminal_id,
        tx_datetime=s.transaction.tx_datetime,
        tx_amount=s.transaction.tx_amount,
        model_version=s.model_version,
        features=values,
        score=s.score,
        decision=s.decision,
        threshold=s.threshold,
        latency_ms=latency_ms,
        schema_version=s.transaction.schema_version,
    )


def _bank_now() -> dt.datetime:
    return dt.datetime.now(BANK_TIMEZONE).replace(tzinfo=None)


def _days(seconds: int) -> str:
    return f"{seconds / SECONDS_PER_DAY:.1f} days" if seconds >= SECONDS_PER_DAY else f"{seconds / 3600:.1f} hours"


def _state_from_log(log: DecisionLog, max_ahead_seconds: float) -> tuple[OnlineFeatureState, int, int, list[int]]:
    """Rebuild from one snapshot of the log; rows dated far ahead of the rest are observed one by one.

    ``OnlineFeatureState.from_history`` keeps what the windows can reach from the *newest* row, so a
    far-dated row in the log would make it drop everything else: those rows (beyond the median of the
    newest times plus the tolerance) are left out of the bulk load and observed afterwards.
    """
    history, last_decision, last_label = log.snapshot()
    times = history["tx_time_seconds"].to_numpy()
    newest = np.sort(times)[-_CLOCK_SAMPLES:].tolist()
    if newest:
        limit = int(statistics.median_low(newest)) + max_ahead_seconds
        outlier = times > limit
        newest = [t for t in newest if t <= limit]
    else:
        outlier = np.zeros(0, dtype=bool)
    state = OnlineFeatureState.from_history(history[~outlier])
    if outlier.any():
        logger.warning("%d logged transactions are dated far ahead of the others", int(outlier.sum()))
        for row in history[outlier].to_dict("records"):
            state.observe(row)
            if not pd.isna(row["tx_fraud"]) and int(row["tx_fraud"]) == 1:
                state.record_label(int(row["transaction_id"]), True, float(row["tx_label_seconds"]))
    return state, last_decision, last_label, [int(t) for t in newest]


def _same(tx: Transaction, stored: StoredDecision) -> bool:
    """Whether a request's transaction is the one already decided: same ids, time and amount."""
    return (
        tx.customer_id == stored.customer_id
        and tx.terminal_id == stored.terminal_id
        and tx.tx_datetime.replace(tzinfo=None) == stored.tx_datetime
        and math.isclose(tx.tx_amount, stored.tx_amount, rel_tol=0, abs_tol=1e-9)
    )


def _refuse_conflicts(transactions: Sequence[Transaction], stored: dict[int, StoredDecision]) -> None:
    different = [
        tx.transaction_id
        for tx in transactions
        if tx.transaction_id in stored and not _same(tx, stored[tx.transaction_id])
    ]
    if different:
        raise ConflictingTransaction(
            f"transaction_id(s) {different[:5]} were already decided for a different transaction (other "
            "customer, terminal, time or amount): one decision per transaction id. Use a new id for a new "
            "transaction; resending the same transaction returns its stored decision"
        )


def _replayed(tx: Transaction, stored: StoredDecision) -> Scored:
    return Scored(
        request_id=stored.request_id,
        transaction=tx,
        score=stored.score,
        decision=stored.decision,
        threshold=stored.threshold,
        model_version=stored.model_version,
        replayed=True,
    )


def _as_record(tx: Transaction) -> dict[str, Any]:
    return {
        "transaction_id": tx.transaction_id,
        "customer_id": tx.customer_id,
        "terminal_id": tx.terminal_id,
        "tx_amount": tx.tx_amount,
        "tx_datetime": tx.tx_datetime,
    }
