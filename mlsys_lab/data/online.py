"""Online features: the offline values for one incoming transaction, from a small history state.

The API scores one transaction at a time and cannot recompute windows over the whole stream per
request. :class:`OnlineFeatureState` keeps, per customer and per terminal, only the recent
transactions the windows can still reach, and computes the features of
:mod:`mlsys_lab.data.features` for an incoming transaction with the same definitions (windows,
equal-timestamp rule, labels counted only once known at ``t - delay``). The tests replay days of
simulated traffic through it and compare with :func:`~mlsys_lab.data.features.build_features`.

The order of calls, per incoming transaction (arrivals in time order)::

    state.record_label(...)          # for every label that arrived since the last transaction
    x = state.features(transaction)  # the features, as if the transaction were the next one observed
    state.observe(transaction)       # then add it to the history (features_and_observe does both)

``features`` never changes the state, and calling it after ``observe`` of the same transaction
gives the same values (the transaction is not counted twice). A label may be recorded early: it is
stored with the time it became known and used only by transactions at least ``delay_days`` later.

Exactness
    Counts and risks are exact (integer counts, one division, as offline). Mean amounts agree with
    the offline path far within 1e-9 relative (under 1e-11 absolute on ``full``): they add the same
    amounts in a different order (the offline path takes differences of per-customer cumulative
    sums), and float addition is not associative.

Memory
    Customer history is pruned to ``max(customer_windows)`` days and terminal history to
    ``delay_days + max(terminal_windows)`` days behind the newest transaction of the same customer or
    terminal, when that entity is seen again. Call :meth:`OnlineFeatureState.prune` (e.g. once a
    day) to drop the history of entities that went quiet; right after it the state holds at most the
    transactions of the last 30 days (customers) and 37 days (terminals, with the label index),
    120 MB in CPython for the ``full`` preset (~10,000 transactions a day; measured by
    ``benchmarks/bench_features.py``). A call costs two bisections and a C-level sum per customer
    window, and a pass over the terminal's entries within its windows (feature and observe together:
    35 microseconds on ``small``, from 63 with a Python loop over the customer's entries too).

Examples
--------
>>> state = OnlineFeatureState(origin="2018-04-01")
>>> tx = {"transaction_id": 0, "customer_id": 1, "terminal_id": 2, "tx_amount": 10.0, "tx_time_seconds": 3600}
>>> state.features_and_observe(tx)["customer_id_nb_tx_1day_window"]
1.0
>>> nxt = dict(tx, transaction_id=1, tx_amount=30.0, tx_time_seconds=7200)
>>> state.features(nxt)["customer_id_avg_amount_1day_window"]
20.0
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlsys_lab.data.features import (
    DEFAULT_DELAY_DAYS,
    DEFAULT_WINDOWS,
    LABEL_TIME_COLUMN,
    NIGHT_LAST_HOUR,
    SECONDS_PER_DAY,
    _check_windows,
    _is_whole,
    _require_columns,
    customer_feature_names,
    terminal_feature_names,
)
from mlsys_lab.data.labels import LABEL_COLUMN, labels_known_at

__all__ = ["OnlineFeatureState"]

_UNIX_EPOCH = dt.datetime(1970, 1, 1)
# 1970-01-01 was a Thursday: weekday 3 with Monday = 0, as pandas counts.
_EPOCH_WEEKDAY = 3


def _epoch_seconds(value: object) -> int:
    """Whole seconds since 1970-01-01 of a naive timestamp (pandas, datetime, numpy or ISO string)."""
    if isinstance(value, pd.Timestamp):
        return int(value.value // 1_000_000_000)
    if isinstance(value, dt.datetime):
        return (value - _UNIX_EPOCH) // dt.timedelta(seconds=1)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[s]").astype(np.int64))
    if isinstance(value, str | dt.date):
        return int(pd.Timestamp(value).value // 1_000_000_000)
    raise TypeError(f"expected a timestamp (pandas, datetime, numpy or ISO string), got {type(value).__name__}")


class _TerminalEntry:
    """One transaction in a terminal's history; ``fraud_known_from`` is inf until a fraud label arrives."""

    __slots__ = ("fraud_known_from", "terminal", "time", "transaction_id")

    def __init__(self, time: int, transaction_id: int, terminal: int) -> None:
        self.time = time
        self.transaction_id = transaction_id
        self.terminal = terminal
        self.fraud_known_from = math.inf


def _entry_time(entry: _TerminalEntry) -> int:
    return entry.time


class _CustomerHistory:
    """One customer's transactions in ``(time, transaction_id)`` order, as two parallel lists.

    A window is then two bisections and a sum over a slice (both in C), not a Python loop over every
    entry: the loop was two thirds of the service's CPU per transaction (0.13 ms of 0.29 ms on
    ``small``, where a card has about 60 transactions in 30 days).
    """

    __slots__ = ("amounts", "keys")

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []
        self.amounts: list[float] = []

    def drop_until(self, cut: int) -> int:
        """Drop the entries at or before second ``cut``; return how many went."""
        drop = bisect.bisect_right(self.keys, (cut, math.inf))
        if drop:
            del self.keys[:drop]
            del self.amounts[:drop]
        return drop


class OnlineFeatureState:
    """Per-customer and per-terminal history, enough to compute one transaction's features.

    Parameters
    ----------
    customer_windows, terminal_windows : tuple of int
        Window lengths in days, as in :class:`~mlsys_lab.data.features.FeatureBuilder`.
    delay_days : int
        Delay of the terminal windows, in days; at least 1 here, since a 0-day delay would need the
        incoming transaction's own label, which cannot exist yet.
    origin : str, timestamp or None
        The datetime of second 0 of ``tx_time_seconds`` (the simulation's ``start_date``). Needed only
        for transactions that carry just one of ``tx_time_seconds`` and ``tx_datetime``;
        :meth:`from_history` infers it from its frame.

    Attributes
    ----------
    feature_names : tuple of str
        The keys of :meth:`features`, in order (``FEATURE_COLUMNS`` with the default windows).
    """

    def __init__(
        self,
        *,
        customer_windows: tuple[int, ...] = DEFAULT_WINDOWS,
        terminal_windows: tuple[int, ...] = DEFAULT_WINDOWS,
        delay_days: int = DEFAULT_DELAY_DAYS,
        origin: str | dt.datetime | np.datetime64 | None = None,
    ) -> None:
        self.customer_windows = _check_windows("OnlineFeatureState", customer_windows)
        self.terminal_windows = _check_windows("OnlineFeatureState", terminal_windows)
        if not _is_whole(delay_days, 1):
            raise ValueError(
                f"OnlineFeatureState: delay_days must be a whole number of days >= 1, got {delay_days!r}: "
                "with no delay a transaction's terminal risk would need its own label"
            )
        self.delay_days = int(delay_days)
        self.origin_epoch_seconds = None if origin is None else _epoch_seconds(origin)
        self.feature_names: tuple[str, ...] = (
            "tx_amount",
            "tx_during_weekend",
            "tx_during_night",
            *customer_feature_names(self.customer_windows),
            *terminal_feature_names(self.terminal_windows),
        )
        # Windows narrowest first, in seconds, with their feature names; features() writes them in
        # that order, so out-of-order windows are put back in feature_names order at the end.
        customer_order = sorted(set(self.customer_windows))
        self._customer_spans = [w * SECONDS_PER_DAY for w in customer_order]
        self._customer_ring_names = [customer_feature_names((w,)) for w in customer_order]
        terminal_order = sorted(set(self.terminal_windows))
        self._terminal_spans = [w * SECONDS_PER_DAY for w in terminal_order]
        self._terminal_ring_names = [terminal_feature_names((w,)) for w in terminal_order]
        self._windows_sorted = (
            list(self.customer_windows) == customer_order and list(self.terminal_windows) == terminal_order
        )
        self._customer_horizon = max(self.customer_windows) * SECONDS_PER_DAY
        self._terminal_horizon = (delay_days + max(self.terminal_windows)) * SECONDS_PER_DAY
        self._customers: dict[int, _CustomerHistory] = {}
        self._terminals: dict[int, deque[_TerminalEntry]] = {}
        # transaction_id -> its terminal entry, for labels; holds exactly the entries in _terminals.
        self._by_id: dict[int, _TerminalEntry] = {}
        # terminal -> its entries with a fraud label (about 1% of them): the risk counts only these, so a
        # window is two bisections of the terminal's entries and a look at its few labelled ones.
        self._labelled: dict[int, set[_TerminalEntry]] = {}

    # -- reading transactions ---------------------------------------------------------------------

    def _times(self, transaction: Mapping[str, Any]) -> tuple[int, int | None]:
        """``(tx_time_seconds, epoch seconds of tx_datetime or None if it cannot be known)``."""
        seconds = transaction.get("tx_time_seconds")
        stamp = transaction.get("tx_datetime")
        epoch = None if stamp is None else _epoch_seconds(stamp)
        origin = self.origin_epoch_seconds
        if seconds is not None:
            seconds = int(seconds)
            if epoch is None and origin is not None:
                epoch = origin + seconds
            return seconds, epoch
        if epoch is not None and origin is not None:
            return epoch - origin, epoch
        raise ValueError(
            "a transaction needs tx_time_seconds, or tx_datetime and an origin (OnlineFeatureState(origin=...))"
        )

    # -- the three operations -----------------------------------------------------------------------

    def features(self, transaction: Mapping[str, Any]) -> dict[str, float]:
        """The features of ``transaction`` as if it were the next transaction observed; no state change.

        Parameters
        ----------
        transaction : mapping
            ``customer_id``, ``terminal_id``, ``tx_amount``, ``tx_time_seconds`` and/or ``tx_datetime``,
            and ``transaction_id`` (optional here: without it the transaction counts as the newest).

        Returns
        -------
        dict of str to float
            The keys of ``feature_names``, in that order.
        """
        time, epoch = self._times(transaction)
        if epoch is None:
            raise ValueError("the flags need tx_datetime, or tx_time_seconds and an origin")
        tx_id = transaction.get("transaction_id")
        amount = float(transaction["tx_amount"])
        out = {
            "tx_amount": amount,
            "tx_during_weekend": 1.0 if (epoch // SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7 >= 5 else 0.0,
            "tx_during_night": 1.0 if (epoch % SECONDS_PER_DAY) // 3600 <= NIGHT_LAST_HOUR else 0.0,
        }
        self._customer_features(
            out, int(transaction["customer_id"]), time, None if tx_id is None else int(tx_id), amount
        )
        self._terminal_features(out, int(transaction["terminal_id"]), time)
        if not self._windows_sorted:
            return {name: out[name] for name in self.feature_names}
        return out

    def observe(self, transaction: Mapping[str, Any]) -> bool:
        """Add ``transaction`` (which needs a ``transaction_id``) to the history; False if already there."""
        tx_id = transaction.get("transaction_id")
        if tx_id is None:
            raise ValueError("observe needs the transaction's transaction_id, to attach its label later")
        time, _ = self._times(transaction)
        return self._observe(
            time, int(tx_id), int(transaction["customer_id"]), int(transaction["terminal_id"]), transaction["tx_amount"]
        )

    def features_and_observe(self, transaction: Mapping[str, Any]) -> dict[str, float]:
        """:meth:`features`, then :meth:`observe`: the API's call for each incoming transaction."""
        out = self.features(transaction)
        self.observe(transaction)
        return out

    def record_label(self, transaction_id: int, is_fraud: bool, label_time_seconds: float) -> bool:
        """Record that ``transaction_id``'s label became known at ``label_time_seconds``.

        Only fraud labels change features (risk counts known frauds), and only for transactions at
        least ``delay_days`` after ``label_time_seconds``. A later call for the same transaction
        replaces the earlier one. Returns False (and records nothing) for a transaction not in the
        history: pruned because no window can reach it any more, or not observed yet. A label is not
        kept for a transaction observed later, so a feed must deliver labels after their transactions
        (a label can only be known after its transaction anyway; at the same second, observe first).
        """
        entry = self._by_id.get(int(transaction_id))
        if entry is None:
            return False
        known = float(label_time_seconds)
        entry.fraud_known_from = known if is_fraud and not math.isnan(known) else math.inf
        if entry.fraud_known_from < math.inf:
            self._labelled.setdefault(entry.terminal, set()).add(entry)
        else:
            self._unlabel(entry)
        return True

    def prune(self, now_seconds: int) -> int:
        """Drop history no transaction at or after ``now_seconds`` can use; return how many entries went."""
        dropped = 0
        customer_cut = now_seconds - self._customer_horizon
        for customer in list(self._customers):
            history = self._customers[customer]
            dropped += history.drop_until(customer_cut)
            if not history.keys:
                del self._customers[customer]
        terminal_cut = now_seconds - self._terminal_horizon
        for terminal in list(self._terminals):
            entries = self._terminals[terminal]
            while entries and entries[0].time <= terminal_cut:
                self._forget(entries.popleft())
                dropped += 1
            if not entries:
                del self._terminals[terminal]
        return dropped

    def __len__(self) -> int:
        """Number of transactions held (terminal history, which reaches furthest back)."""
        return len(self._by_id)

    def __contains__(self, transaction_id: object) -> bool:
        """Whether ``transaction_id`` is in the history (observed, and not pruned since)."""
        return transaction_id in self._by_id

    # -- rebuilding --------------------------------------------------------------------------------

    @classmethod
    def from_history(
        cls,
        transactions: pd.DataFrame,
        *,
        labels_as_of: int | None = None,
        label_time_column: str = LABEL_TIME_COLUMN,
        customer_windows: tuple[int, ...] = DEFAULT_WINDOWS,
        terminal_windows: tuple[int, ...] = DEFAULT_WINDOWS,
        delay_days: int = DEFAULT_DELAY_DAYS,
        origin: str | dt.datetime | np.datetime64 | None = None,
    ) -> OnlineFeatureState:
        """Rebuild the state from stored transactions, e.g. when the API restarts.

        Only the rows the windows can still reach from the newest one are loaded (a Python loop over
        them, under a second for the ``full`` preset's last 37 days).

        Parameters
        ----------
        transactions : pandas.DataFrame
            Simulator columns and the label time column, any order.
        labels_as_of : int or None
            Record only the labels known at this time (``mlsys_lab.data.labels.labels_known_at``),
            as a store at that moment would hold. None records every label with its time, which is
            equally correct for features (a label is used only once known) but not what a live
            store holds.
        label_time_column, customer_windows, terminal_windows, delay_days, origin
            As in the constructor and :class:`~mlsys_lab.data.features.TerminalWindows`.
        """
        needed = ["transaction_id", "customer_id", "terminal_id", "tx_amount", "tx_time_seconds", "tx_fraud"]
        _require_columns("OnlineFeatureState.from_history", transactions, [*needed, label_time_column])
        if origin is None and "tx_datetime" in transactions.columns and len(transactions):
            first = transactions.iloc[0]
            origin = np.datetime64(_epoch_seconds(first["tx_datetime"]) - int(first["tx_time_seconds"]), "s")
        state = cls(
            customer_windows=customer_windows, terminal_windows=terminal_windows, delay_days=delay_days, origin=origin
        )
        if not len(transactions):
            return state
        time = transactions["tx_time_seconds"].to_numpy().astype(np.int64)
        newest = int(time.max())
        horizon = max(state._customer_horizon, state._terminal_horizon)
        recent = transactions[time > newest - horizon].sort_values(["tx_time_seconds", "transaction_id"])
        recent = recent.drop_duplicates("transaction_id")
        recent_time = recent["tx_time_seconds"].to_numpy()
        # Built directly, rows being in time order already: observe() one by one is 5x slower.
        rows = recent[recent_time > newest - state._customer_horizon]
        customers = state._customers
        for customer, time_, tx_id, amount in zip(
            *(rows[c].to_numpy().tolist() for c in ("customer_id", "tx_time_seconds", "transaction_id", "tx_amount")),
            strict=True,
        ):
            history = customers.get(customer)
            if history is None:
                history = customers[customer] = _CustomerHistory()
            history.keys.append((time_, tx_id))
            history.amounts.append(float(amount))
        rows = recent[recent_time > newest - state._terminal_horizon]
        terminals, by_id = state._terminals, state._by_id
        for terminal, time_, tx_id in zip(
            *(rows[c].to_numpy().tolist() for c in ("terminal_id", "tx_time_seconds", "transaction_id")), strict=True
        ):
            entry = by_id[tx_id] = _TerminalEntry(time_, tx_id, terminal)
            entries = terminals.get(terminal)
            if entries is None:
                entries = terminals[terminal] = deque()
            entries.append(entry)

        frauds = recent[recent["tx_fraud"].to_numpy() != 0]
        label_time = frauds[label_time_column]
        if labels_as_of is not None:
            frauds = frauds[labels_known_at(pd.DataFrame({LABEL_COLUMN: label_time}), labels_as_of)]
        for tx_id, known in zip(frauds["transaction_id"].tolist(), frauds[label_time_column].tolist(), strict=True):
            state.record_label(tx_id, True, known)
        return state

    def replay(self, transactions: Iterable[Mapping[str, Any]]) -> list[dict[str, float]]:
        """:meth:`features_and_observe` for each transaction in turn (labels are the caller's job)."""
        return [self.features_and_observe(tx) for tx in transactions]

    # -- internals ---------------------------------------------------------------------------------

    def _observe(self, time: int, tx_id: int, customer: int, terminal: int, amount: float) -> bool:
        if tx_id in self._by_id:
            return False
        history = self._customers.get(customer)
        if history is None:
            history = self._customers[customer] = _CustomerHistory()
        key = (time, tx_id)
        if not history.keys or history.keys[-1] <= key:
            history.keys.append(key)
            history.amounts.append(float(amount))
        else:  # arrived late (rare): after every entry with a key up to its own, as _insert_in_order does
            position = bisect.bisect_right(history.keys, key)
            history.keys.insert(position, key)
            history.amounts.insert(position, float(amount))
        history.drop_until(history.keys[-1][0] - self._customer_horizon)

        entry = _TerminalEntry(time, tx_id, terminal)
        entries = self._terminals.setdefault(terminal, deque())
        _insert_in_order(entries, entry, lambda e: (e.time, e.transaction_id))
        self._by_id[tx_id] = entry
        cut = entries[-1].time - self._terminal_horizon
        while entries[0].time <= cut:
            self._forget(entries.popleft())
        return True

    def _forget(self, entry: _TerminalEntry) -> None:
        """An entry dropped from its terminal's history leaves the label index and the labelled set too."""
        del self._by_id[entry.transaction_id]
        self._unlabel(entry)

    def _unlabel(self, entry: _TerminalEntry) -> None:
        labelled = self._labelled.get(entry.terminal)
        if labelled is not None:
            labelled.discard(entry)
            if not labelled:
                del self._labelled[entry.terminal]

    def _customer_features(
        self, out: dict[str, float], customer: int, time: int, tx_id: int | None, amount: float
    ) -> None:
        # Only transactions before this one in (time, id) order, and never itself twice: without an
        # id, every transaction up to this second counts as earlier.
        history = self._customers.get(customer)
        keys = history.keys if history is not None else []
        amounts = history.amounts if history is not None else []
        end = bisect.bisect_right(keys, (time, math.inf)) if tx_id is None else bisect.bisect_left(keys, (time, tx_id))
        # Windows are nested, narrowest first: each adds its ring (the entries it holds beyond the
        # narrower one), summed newest first, then the rings outwards, as the entry-by-entry loop did.
        count, total = 1, amount  # the current transaction
        inner = end
        for span, (count_name, mean_name) in zip(self._customer_spans, self._customer_ring_names, strict=True):
            start = min(inner, bisect.bisect_right(keys, (time - span, math.inf)))
            count += inner - start
            total += sum(amounts[start:inner][::-1])
            inner = start
            out[count_name] = float(count)
            out[mean_name] = total / count

    def _terminal_features(self, out: dict[str, float], terminal: int, time: int) -> None:
        as_of = time - self.delay_days * SECONDS_PER_DAY
        entries = self._terminals.get(terminal) or deque()
        # With delay_days >= 1 every entry with time <= as_of precedes this transaction: no tie rule.
        end = bisect.bisect_right(entries, as_of, key=_entry_time)
        known_times = [e.time for e in self._labelled.get(terminal, ()) if e.fraud_known_from <= as_of >= e.time]
        for span, (count_name, risk_name) in zip(self._terminal_spans, self._terminal_ring_names, strict=True):
            lower = as_of - span  # a window holds the entries after lower, up to as_of
            count = end - min(end, bisect.bisect_right(entries, lower, key=_entry_time))
            known = sum(1 for t in known_times if t > lower)
            out[count_name] = float(count)
            out[risk_name] = known / count if count else 0.0


def _insert_in_order(history: deque[Any], item: Any, key: Any) -> None:
    """Append ``item``, or insert it in ``key`` order if it arrived late (rare: O(distance) then)."""
    position = len(history)
    item_key = key(item)
    while position and key(history[position - 1]) > item_key:
        position -= 1
    history.insert(position, item)
