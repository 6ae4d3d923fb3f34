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
    features, score, commit, observe) runs under one lock per worker, because the feature state is
    not thread-safe and because two requests for one card in the same worker must see each other.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from mlsys_lab.data.features import SECONDS_PER_DAY
from mlsys_lab.data.online import OnlineFeatureState
from mlsys_lab.deployment.decision_log import Decision, decisions_table, labels_table
from mlsys_lab.deployment.schemas import Transaction

if TYPE_CHECKING:
    from mlsys_lab.deployment.decision_log import DecisionLog
    from mlsys_lab.deployment.registry import LoadedModel

__all__ = ["DuplicateTransaction", "ModelSlot", "ModelUnusable", "Scored", "ServingState", "check_model"]

logger = logging.getLogger(__name__)

_UNIX_EPOCH = dt.datetime(1970, 1, 1)


class ModelUnusable(RuntimeError):
    """A model that loaded but cannot serve: features the service cannot compute, or no valid score."""


class DuplicateTransaction(ValueError):
    """A transaction id that was already scored: each transaction gets one decision."""


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
                raise
            self.current = model  # the swap: one reference assignment
            self.unavailable_reason = ""
            return previous, model


@dataclass(frozen=True)
class Scored:
    """One transaction's decision, as logged and returned."""

    request_id: str
    transaction: Transaction
    score: float
    decision: bool
    threshold: float
    model_version: int


class ServingState:
    """The worker's feature state, kept in step with the decision log every worker writes to.

    Parameters
    ----------
    log
        The decision log (one database shared by all workers).
    state
        The rebuilt feature state; :meth:`rebuild` makes one from the log.
    """

    def __init__(self, log: DecisionLog, state: OnlineFeatureState) -> None:
        self.log = log
        self._state = state
        if state.origin_epoch_seconds is None:  # empty history: any origin works, take the Unix epoch
            state.origin_epoch_seconds = 0
        self._lock = threading.Lock()
        self._last_decision_id = 0
        self._last_label_id = 0
        self._newest_day = -1
        self.lock_wait_seconds = 0.0  # total time requests waited for the lock: the price of one lock

    @classmethod
    def rebuild(cls, log: DecisionLog) -> ServingState:
        """The state after a (re)start: every decision and label in the log, then tail from there."""
        history = log.history_frame()
        serving = cls(log, OnlineFeatureState.from_history(history))
        with serving._lock:
            serving._catch_up()  # marks everything already loaded as seen (observe skips duplicates)
        return serving

    def __len__(self) -> int:
        return len(self._state)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._state.feature_names

    def _seconds(self, when: Any) -> int:
        origin = self._state.origin_epoch_seconds or 0
        stamp = when.to_pydatetime() if hasattr(when, "to_pydatetime") else when
        return int((stamp - _UNIX_EPOCH) // dt.timedelta(seconds=1)) - origin

    def _catch_up(self) -> None:
        """Apply what any worker committed since the last look.

        Labels are read first: a label is only accepted for a committed decision, so every label read
        has its decision in the read that follows. The reads are two indexed range queries in SQL
        Core, not :meth:`DecisionLog.decisions`: building two DataFrames per request cost about 5 ms,
        twenty times the model's 0.25 ms.
        """
        with self.log.engine.connect() as connection:
            labels = connection.execute(
                sa.select(
                    labels_table.c.id, labels_table.c.transaction_id, labels_table.c.is_fraud, labels_table.c.label_time
                )
                .where(labels_table.c.id > self._last_label_id)
                .order_by(labels_table.c.id)
            ).all()
            decisions = connection.execute(
                sa.select(
                    decisions_table.c.id,
                    decisions_table.c.transaction_id,
                    decisions_table.c.customer_id,
                    decisions_table.c.terminal_id,
                    decisions_table.c.tx_amount,
                    decisions_table.c.tx_datetime,
                )
                .where(decisions_table.c.id > self._last_decision_id)
                .order_by(decisions_table.c.id)
            ).all()
        for row_id, tx_id, customer, terminal, amount, when in decisions:
            self._state.observe(  # False for this worker's own rows: already observed
                {
                    "transaction_id": tx_id,
                    "customer_id": customer,
                    "terminal_id": terminal,
                    "tx_amount": amount,
                    "tx_datetime": when,
                }
            )
            self._last_decision_id = row_id
        for row_id, tx_id, is_fraud, label_time in labels:
            self._state.record_label(tx_id, bool(is_fraud), self._seconds(label_time))
            self._last_label_id = row_id

    def _already_scored(self, transaction_ids: list[int]) -> list[int]:
        """Which of ``transaction_ids`` have a decision in the log (one indexed query for a whole batch)."""
        with self.log.engine.connect() as connection:
            found = connection.execute(
                sa.select(decisions_table.c.transaction_id)
                .where(decisions_table.c.transaction_id.in_(transaction_ids))
                .distinct()
            ).scalars()
            return sorted(int(tx_id) for tx_id in found)

    def decide(self, transactions: Sequence[Transaction], model: LoadedModel, started: float) -> list[Scored]:
        """Features, scores and decisions for ``transactions`` (in order), each committed to the log.

        Within a batch each transaction sees the ones before it, as offline. When a commit fails the
        in-memory state may hold transactions the log does not, so it is rebuilt from the log before
        the error propagates.
        """
        names = model.info.features
        waited = time.perf_counter()
        with self._lock:
            self.lock_wait_seconds += time.perf_counter() - waited
            self._catch_up()
            ids = [tx.transaction_id for tx in transactions]
            repeated = sorted({tx_id for tx_id in ids if ids.count(tx_id) > 1}) if len(set(ids)) < len(ids) else []
            if repeated:
                raise DuplicateTransaction(f"transaction_id(s) {repeated[:5]} appear more than once in the request")
            logged = self._already_scored(ids)
            if logged:
                raise DuplicateTransaction(f"transaction_id(s) {logged[:5]} were already scored: one decision each")
            rows = np.empty((len(transactions), len(names)))
            features: list[dict[str, float]] = []
            for i, tx in enumerate(transactions):
                record = _as_record(tx)
                values = self._state.features(record)
                self._state.observe(record)
                features.append(values)
                rows[i] = [values[name] for name in names]
            try:
                scores = model.score(rows)
                threshold = float(model.info.threshold)
                decided = [
                    Scored(
                        request_id=str(uuid.uuid4()),
                        transaction=tx,
                        score=float(score),
                        decision=bool(score >= threshold),
                        threshold=threshold,
                        model_version=model.info.version,
                    )
                    for tx, score in zip(transactions, scores.tolist(), strict=True)
                ]
                latency_ms = (time.perf_counter() - started) * 1000
                decided_at = dt.datetime.now(dt.UTC)
                # One transaction for a batch: all its decisions are logged, or none and the request fails.
                self.log.record_many(
                    Decision(
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
                        threshold=threshold,
                        latency_ms=latency_ms,
                        schema_version=s.transaction.schema_version,
                    )
                    for s, values in zip(decided, features, strict=True)
                )
            except BaseException:
                logger.exception("scoring failed after the state changed: rebuilding it from the decision log")
                self._reset()
                raise
            self._prune(rows_time=max(self._seconds(tx.tx_datetime) for tx in transactions))
        return decided

    def record_label(self, transaction_id: int, is_fraud: bool, label_time: dt.datetime) -> bool:
        """Store a label in the log (raises ``UnknownTransaction``), then apply it here.

        Returns whether a feature can still use it (False when the transaction is older than every window).
        """
        self.log.record_label(transaction_id, is_fraud, label_time)
        with self._lock:
            self._catch_up()
            return self._state.record_label(transaction_id, is_fraud, self._seconds(label_time))

    def _reset(self) -> None:
        fresh = ServingState.rebuild(self.log)
        self._state = fresh._state
        self._last_decision_id, self._last_label_id = fresh._last_decision_id, fresh._last_label_id

    def _prune(self, rows_time: int) -> None:
        # Once per simulated day: drop history of customers and terminals that went quiet.
        # A day of margin: other workers' transactions may arrive a little out of time order.
        day = rows_time // SECONDS_PER_DAY
        if day > self._newest_day:
            if self._newest_day >= 0:
                dropped = self._state.prune(rows_time - SECONDS_PER_DAY)
                logger.debug("pruned %d history entries on day %d", dropped, day)
            self._newest_day = day


def _as_record(tx: Transaction) -> dict[str, Any]:
    return {
        "transaction_id": tx.transaction_id,
        "customer_id": tx.customer_id,
        "terminal_id": tx.terminal_id,
        "tx_amount": tx.tx_amount,
        "tx_datetime": tx.tx_datetime,
    }
