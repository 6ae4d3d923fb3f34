"""Validate a batch of the raw transaction feed: accept good rows, quarantine the rest with reasons.

The feed is what the payment system sends (``FEED_COLUMNS``): no labels, no scenario tags, no derived
columns. :func:`validate` splits a batch into ``accepted`` rows, typed exactly like the simulator's
output, and ``quarantined`` rows, kept with their original raw values plus the ``rules`` they broke and a
``reason`` a person can act on. Nothing is silently dropped and nothing is silently fixed: a string
``"42.10"`` in ``tx_amount`` is quarantined, not parsed, and ``rows in == accepted + quarantined`` is
checked on every call.

Rules (stable names, in ``RULES``)
    ``missing_column``
        A feed column is absent. No row can be judged, so the whole batch is refused with a
        ``ValueError`` that names the column (batch-level, hence not in ``RULES``).
    ``null``
        A feed cell is missing (``None``, ``NaN``, ``NaT``, ``pd.NA``).
    ``wrong_type``
        A cell holds a value of the wrong type: a string (even a numeric-looking one) in a numeric or
        datetime column, a fractional or non-finite number in an id column, a non-finite amount.
        Whole-number floats in an id column (``12.0``, what a single NaN does to an int column in
        pandas) are accepted: the conversion loses nothing.
    ``negative_amount``, ``negative_id``
        ``tx_amount < 0``; an id below 0. Checked by the pandera schema ``FEED_SCHEMA``.
    ``unknown_customer``, ``unknown_terminal``
        The id is not in the ``known_customers`` / ``known_terminals`` table (skipped if none is passed).
    ``duplicate_id``
        The ``transaction_id`` already appeared earlier in the batch. The first occurrence (in feed order)
        is judged on its own merits; every later row with that id is a re-send and is quarantined, even if
        the first one was quarantined for another reason: choosing between two versions of one
        transaction is a person's decision, so both sit side by side in the quarantine.
    ``out_of_order``
        ``tx_datetime`` is earlier than the latest timestamp *accepted* before it in the batch, or than
        ``last_seen`` (the latest timestamp accepted from earlier batches). Equal timestamps are in order.
        The comparison is with accepted rows only: a quarantined row never reached the feature store, so
        it cannot be overtaken, and one bad row cannot push its neighbours into quarantine. An
        out-of-order row is by definition earlier than that running maximum, so it never raises it: the
        running maximum over "rows passing every other rule" is exactly the running maximum of accepted
        rows, and one vectorised cumulative maximum computes it.

A row breaking several rules is quarantined once, with every rule in ``rules`` (``"|"``-joined, in
``RULES`` order) and every explanation in ``reason`` (``"; "``-joined).

How the work is split: a vectorised type pass (one ``type()`` call per cell of object columns, in C)
decides ``null`` and ``wrong_type`` and builds a typed frame; pandera then checks that frame against
``FEED_SCHEMA`` (dtypes, non-null, value ranges) lazily, and its ``failure_cases`` give the row positions;
pandas handles the stateful rules (duplicates, order, unknown ids). Letting pandera judge types on raw
object columns would need a per-element Python check, and coercing (``coerce=True``) would parse
``"42.10"`` into ``42.1``, silently fixing it.

Extra columns in a batch (labels, ``tx_label_seconds``, ...) are not validated and pass through
unchanged into ``accepted`` and ``quarantined``, after the feed columns.

Examples
--------
>>> batch = pd.DataFrame({
...     "transaction_id": [0, 1, 1],
...     "tx_datetime": pd.to_datetime(["2018-04-01 10:00", "2018-04-01 10:05", "2018-04-01 10:05"]),
...     "customer_id": [3, 4, 4],
...     "terminal_id": [7, 8, 8],
...     "tx_amount": [12.5, "42.10", 9.0],
... })
>>> result = validate(batch)
>>> result.n_in, result.n_accepted, result.n_quarantined
(3, 1, 2)
>>> result.quarantined["rules"].tolist()
['wrong_type', 'duplicate_id']
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pandera.pandas as pa

__all__ = [
    "FEED_COLUMNS",
    "FEED_DTYPES",
    "FEED_SCHEMA",
    "RULES",
    "ValidationResult",
    "validate",
]

logger = logging.getLogger(__name__)

#: The columns the payment system sends, in order: what a raw batch must contain.
FEED_COLUMNS: tuple[str, ...] = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")

#: The simulator's dtype for each feed column: accepted rows come out with exactly these.
FEED_DTYPES: dict[str, np.dtype] = {
    "transaction_id": np.dtype("int64"),
    "tx_datetime": np.dtype("datetime64[us]"),
    "customer_id": np.dtype("int32"),
    "terminal_id": np.dtype("int32"),
    "tx_amount": np.dtype("float64"),
}

#: Row-level rules, in the order they are reported. ``missing_column`` is batch-level and raises instead.
RULES: tuple[str, ...] = (
    "null",
    "wrong_type",
    "negative_amount",
    "negative_id",
    "unknown_customer",
    "unknown_terminal",
    "duplicate_id",
    "out_of_order",
)


def _range_check(rule: str, column: str) -> pa.Check:
    # pandera reports a built-in check by its ``error`` text: "rule: explanation" lets us map it back.
    return pa.Check.ge(0, error=f"{rule}: {column} must be >= 0")


#: The feed's contract as a pandera schema, usable on its own on a typed frame (e.g. the simulator's).
FEED_SCHEMA = pa.DataFrameSchema(
    {
        "transaction_id": pa.Column(FEED_DTYPES["transaction_id"], _range_check("negative_id", "transaction_id")),
        "tx_datetime": pa.Column(FEED_DTYPES["tx_datetime"]),
        "customer_id": pa.Column(FEED_DTYPES["customer_id"], _range_check("negative_id", "customer_id")),
        "terminal_id": pa.Column(FEED_DTYPES["terminal_id"], _range_check("negative_id", "terminal_id")),
        "tx_amount": pa.Column(FEED_DTYPES["tx_amount"], _range_check("negative_amount", "tx_amount")),
    },
    name="transaction_feed",
    strict=False,  # extra columns pass through; the feed contract says what must be there, not what must not
    coerce=False,  # coercion would silently fix "42.10"; types are judged before pandera sees the frame
)

# What to tell the sender, per (rule, column). The bad value is inserted before it.
_FIXES: dict[str, str | dict[str, str]] = {
    "null": "missing: send a value, a transaction cannot be judged without it",
    "wrong_type": {
        "transaction_id": "send an integer id, not text or a fraction",
        "customer_id": "send an integer id, not text or a fraction",
        "terminal_id": "send an integer id, not text or a fraction",
        "tx_datetime": "send a datetime value, not text",
        "tx_amount": "send a finite number, not text (no currency code, no decimal comma)",
    },
    "negative_amount": "send refunds through the refund feed; a payment amount must be >= 0",
    "negative_id": "send the id from the entity table; ids are >= 0",
    "unknown_customer": "register the customer before its transactions, or fix the id",
    "unknown_terminal": "register the terminal before its transactions, or fix the id",
    "duplicate_id": "this id was already sent earlier in the batch: drop the re-send, or resolve which copy is right",
    "out_of_order": "earlier than a transaction already accepted: route it to the late-data backfill",
}


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of :func:`validate`.

    Attributes
    ----------
    accepted : pandas.DataFrame
        Rows that passed every rule, feed columns with ``FEED_DTYPES``, extra columns unchanged, the
        batch's index kept.
    quarantined : pandas.DataFrame
        Rows that broke at least one rule, with their raw values untouched, plus ``rules`` (``"|"``-joined
        rule names) and ``reason`` (what is wrong, with which value, and the fix), the batch's index kept.
    report : pandas.DataFrame
        One row per rule in ``RULES``: ``rule``, ``checked`` (False for an unknown-id rule without a
        table) and ``rows`` (rows breaking it; a row breaking two rules counts under both).
    last_seen : pandas.Timestamp or None
        The latest accepted timestamp (or the ``last_seen`` passed in, if later): pass it to the next
        batch's :func:`validate` to keep the order rule across batches.
    """

    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    report: pd.DataFrame
    last_seen: pd.Timestamp | None

    @property
    def n_in(self) -> int:
        """Rows in the batch."""
        return self.n_accepted + self.n_quarantined

    @property
    def n_accepted(self) -> int:
        """Rows accepted."""
        return len(self.accepted)

    @property
    def n_quarantined(self) -> int:
        """Rows quarantined."""
        return len(self.quarantined)


# ---------------------------------------------------------------------------------------------------------
# The type pass: null and wrong_type per cell, and a typed column in the simulator's dtype.
# ---------------------------------------------------------------------------------------------------------

_BoolArray = npt.NDArray[np.bool_]
_NUMBER_TYPES = (int, float, np.integer, np.floating)
_NOT_NUMBER_TYPES = (bool, np.bool_)
_DATETIME_TYPES = (dt.datetime, np.datetime64)
# infer_dtype answers for an object column holding only numbers (and nulls): no per-cell check needed.
_PLAIN_NUMBERS = ("integer", "floating", "mixed-integer-float", "empty")


def _cell_types_ok(values: npt.NDArray[np.object_], allowed: tuple[type, ...], refused: tuple[type, ...]) -> _BoolArray:
    """Cells of an object array whose Python type is one of ``allowed`` (and not one of ``refused``)."""
    # One type() call per cell, run by numpy's C loop (~25 ns a cell), then one dict look-up per cell:
    # the whole cost of the type pass on an object column.
    types = pd.Series(np.frompyfunc(type, 1, 1)(values), dtype=object)
    verdict = {t: issubclass(t, allowed) and not issubclass(t, refused) for t in pd.unique(types)}
    return types.map(verdict).to_numpy(dtype=bool)


def _type_column(column: str, raw: pd.Series) -> tuple[_BoolArray, _BoolArray, np.ndarray]:
    """Return ``(null, wrong_type, typed)`` for one feed column of a raw batch.

    ``typed`` has the simulator's dtype. Cells that are null or of the wrong type hold a placeholder that
    passes every schema check (0, or the epoch), so pandera reports only real range failures.
    """
    null = pd.isna(raw).to_numpy(dtype=bool)
    if column == "tx_datetime":
        return _type_datetimes(raw, null)
    return _type_numbers(column, raw, null)


def _type_numbers(column: str, raw: pd.Series, null: _BoolArray) -> tuple[_BoolArray, _BoolArray, np.ndarray]:
    target = FEED_DTYPES[column]
    typed = np.zeros(len(raw), dtype=target)
    if pd.api.types.is_object_dtype(raw.dtype):
        values = raw.to_numpy(dtype=object)
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        plain = inferred in _PLAIN_NUMBERS  # only numbers and nulls: no per-cell type check needed
        ok = ~null if plain else ~null & _cell_types_ok(values, _NUMBER_TYPES, _NOT_NUMBER_TYPES)
        # Only numbers are left in values[ok]. Ids through float64 would be exact only up to 2**53, so
        # a column of plain ints converts directly; casting a float to int would truncate 4.5 silently.
        numbers = _as_numbers(values[ok], exact_ints=target.kind == "i" and inferred == "integer")
    elif pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        ok = ~null
        numbers = pd.to_numeric(raw[ok]).to_numpy()
    else:
        # pandas' str dtype, booleans, datetimes: no cell of this column holds a number.
        return null, ~null, typed
    if target.kind == "f":
        fits = np.isfinite(numbers.astype(np.float64))
    else:
        info = np.iinfo(target)
        fits = (numbers >= info.min) & (numbers <= info.max)
        if numbers.dtype.kind == "f":
            # A whole-number float is an id that went through a NaN column: lossless, so accepted.
            fits &= np.isfinite(numbers) & (numbers == np.round(numbers))
    wrong = ~null & ~ok
    positions = np.flatnonzero(ok)
    wrong[positions[~fits]] = True
    typed[positions[fits]] = numbers[fits]
    return null, wrong, typed


def _as_numbers(values: npt.NDArray[np.object_], *, exact_ints: bool) -> np.ndarray:
    if exact_ints:
        try:
            return values.astype(np.int64)
        except OverflowError:  # an int beyond int64: its float is out of range too, hence wrong_type
            pass
    return values.astype(np.float64)


def _type_datetimes(raw: pd.Series, null: _BoolArray) -> tuple[_BoolArray, _BoolArray, np.ndarray]:
    target = FEED_DTYPES["tx_datetime"]
    typed = np.full(len(raw), np.datetime64(0, "us"))
    if pd.api.types.is_datetime64_dtype(raw.dtype):  # naive datetimes, any unit
        ok = ~null
        typed[ok] = raw.to_numpy()[ok].astype(target)
        return null, np.zeros(len(raw), dtype=bool), typed
    if not pd.api.types.is_object_dtype(raw.dtype):
        # Text, numbers, timezone-aware datetimes: the feed sends naive local datetimes.
        return null, ~null, typed
    values = raw.to_numpy(dtype=object)
    ok = ~null & _cell_types_ok(values, _DATETIME_TYPES, ())
    wrong = ~null & ~ok
    if ok.any():
        try:
            parsed = pd.to_datetime(pd.Series(values[ok], dtype=object))
        except (TypeError, ValueError):  # naive and timezone-aware datetimes mixed
            parsed = None
        if parsed is None or isinstance(parsed.dtype, pd.DatetimeTZDtype):
            wrong |= ok
        else:
            typed[ok] = parsed.to_numpy(dtype=target)
    return null, wrong, typed


# ---------------------------------------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------------------------------------


def _check_batch(batch: pd.DataFrame) -> None:
    if not isinstance(batch, pd.DataFrame):
        raise TypeError(f"batch must be a pandas DataFrame, got {type(batch).__name__}: pass the raw feed frame")
    missing = [c for c in FEED_COLUMNS if c not in batch.columns]
    if missing:
        raise ValueError(
            f"missing_column: the batch lacks feed column(s) {missing}, so no row can be judged: "
            f"the sender must include every column of FEED_COLUMNS {list(FEED_COLUMNS)}"
        )
    for name in ("rules", "reason"):
        if name in batch.columns:
            raise ValueError(f"the batch has a column {name!r}, which the quarantine adds: rename it before validating")


def _schema_failures(typed: pd.DataFrame) -> dict[tuple[str, str], _BoolArray]:
    """Run ``FEED_SCHEMA`` lazily on the typed frame; return a mask per (rule, column) from failure_cases."""
    failures: dict[tuple[str, str], _BoolArray] = {}
    try:
        FEED_SCHEMA.validate(typed, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        for (column, check), rows in cases.groupby(["column", "check"], sort=False)["index"]:
            rule = "null" if check == "not_nullable" else str(check).split(":", 1)[0]
            if rule not in RULES or rows.isna().any():
                # A dtype or column-level failure on a frame this module typed itself is a bug here.
                raise RuntimeError(f"unexpected schema failure on {column!r}: {check!r}") from errors
            mask = failures.setdefault((rule, str(column)), np.zeros(len(typed), dtype=bool))
            mask[rows.to_numpy(dtype=np.int64)] = True
    return failures


def _unknown(ids: np.ndarray, usable: _BoolArray, known: Collection[int]) -> _BoolArray:
    """Usable ids that are not in the entity table ``known``."""
    table = np.asarray(known if isinstance(known, np.ndarray | pd.Series | pd.Index) else list(known), dtype=np.int64)
    return usable & ~np.isin(ids, table)


def validate(
    batch: pd.DataFrame,
    *,
    known_customers: Collection[int] | None = None,
    known_terminals: Collection[int] | None = None,
    last_seen: pd.Timestamp | None = None,
) -> ValidationResult:
    """Split a raw feed batch into accepted rows and quarantined rows with reasons.

    Parameters
    ----------
    batch
        Rows of the raw feed in the order they arrived, with at least ``FEED_COLUMNS`` (any dtypes:
        object columns may mix numbers, strings and ``None``). Not modified.
    known_customers, known_terminals
        The ids in the customer and terminal tables (e.g. ``sim.customers.customer_id``). ``None``
        skips the unknown-id rule (reported as not checked).
    last_seen
        The latest timestamp accepted from earlier batches (``ValidationResult.last_seen``); rows
        before it are out of order.

    Returns
    -------
    ValidationResult
        ``accepted`` (typed, simulator dtypes), ``quarantined`` (raw values, ``rules``, ``reason``),
        ``report`` (rows per rule) and the new ``last_seen``. ``n_in == n_accepted + n_quarantined``.

    Raises
    ------
    ValueError
        If a feed column is missing (rule ``missing_column``): no row of the batch can be judged.

    Examples
    --------
    >>> from mlsys_lab.data import preset, simulate
    >>> sim = simulate(preset("tiny"))
    >>> result = validate(sim.transactions, known_customers=sim.customers.customer_id)
    >>> result.n_quarantined, result.n_in == len(sim.transactions)
    (0, True)
    """
    _check_batch(batch)
    n = len(batch)
    # Work by position: the batch's index may repeat labels; it is reattached at the end.
    nulls: dict[str, _BoolArray] = {}
    wrongs: dict[str, _BoolArray] = {}
    typed_columns: dict[str, np.ndarray] = {}
    for column in FEED_COLUMNS:
        nulls[column], wrongs[column], typed_columns[column] = _type_column(column, batch[column])
    typed = pd.DataFrame(typed_columns, columns=list(FEED_COLUMNS))

    masks: dict[tuple[str, str], _BoolArray] = {}
    for column in FEED_COLUMNS:
        masks[("null", column)] = nulls[column]
        masks[("wrong_type", column)] = wrongs[column]
    masks.update(_schema_failures(typed))
    usable = {column: ~(nulls[column] | wrongs[column]) for column in FEED_COLUMNS}

    checked = dict.fromkeys(RULES, True)
    for rule, column, known in (
        ("unknown_customer", "customer_id", known_customers),
        ("unknown_terminal", "terminal_id", known_terminals),
    ):
        if known is None:
            checked[rule] = False
        else:
            masks[(rule, column)] = _unknown(typed_columns[column], usable[column], known)

    # duplicate_id: every occurrence after the first of a usable id, whatever happened to the first.
    id_positions = np.flatnonzero(usable["transaction_id"])
    duplicate = np.zeros(n, dtype=bool)
    duplicate[id_positions] = pd.Series(typed_columns["transaction_id"][id_positions]).duplicated(keep="first")
    masks[("duplicate_id", "transaction_id")] = duplicate

    # out_of_order: earlier than the running maximum of the rows accepted before it (see module docstring).
    passes_others = np.ones(n, dtype=bool)
    for mask in masks.values():
        passes_others &= ~mask
    times = typed_columns["tx_datetime"].view(np.int64)
    floor = np.iinfo(np.int64).min
    start = floor if last_seen is None else int(pd.Timestamp(last_seen).as_unit("us").asm8.view(np.int64))
    running = np.maximum.accumulate(np.where(passes_others, times, floor))
    before = np.maximum(np.concatenate(([floor], running))[:n], start)  # the maximum *before* each row
    out_of_order = usable["tx_datetime"] & (times < before)
    masks[("out_of_order", "tx_datetime")] = out_of_order

    broken = {rule: np.zeros(n, dtype=bool) for rule in RULES}
    for (rule, _), mask in masks.items():
        broken[rule] |= mask
    quarantine = ~(passes_others & ~out_of_order)
    accepted = _accepted_frame(batch, typed, ~quarantine)
    quarantined = _quarantine_frame(batch, masks, broken, quarantine)
    _check_invariant(batch, accepted, quarantined, quarantine)

    report = pd.DataFrame(
        {
            "rule": list(RULES),
            "checked": [checked[rule] for rule in RULES],
            "rows": [int(broken[rule].sum()) for rule in RULES],
        }
    )
    accepted_times = times[~quarantine]
    latest = accepted_times.max() if accepted_times.size else floor
    new_last_seen = None if max(latest, start) == floor else pd.Timestamp(max(latest, start), unit="us")
    logger.debug("validated %d rows: %d accepted, %d quarantined", n, len(accepted), len(quarantined))
    return ValidationResult(accepted=accepted, quarantined=quarantined, report=report, last_seen=new_last_seen)


def _accepted_frame(batch: pd.DataFrame, typed: pd.DataFrame, keep: _BoolArray) -> pd.DataFrame:
    positions = np.flatnonzero(keep)
    accepted = typed.iloc[positions].set_axis(batch.index[positions])
    extra = [c for c in batch.columns if c not in FEED_COLUMNS]
    if extra:
        accepted = pd.concat([accepted, batch.iloc[positions][extra]], axis=1)
    return accepted


def _quarantine_frame(
    batch: pd.DataFrame,
    masks: dict[tuple[str, str], _BoolArray],
    broken: dict[str, _BoolArray],
    quarantine: _BoolArray,
) -> pd.DataFrame:
    """Raw rows with ``rules`` and ``reason``; the strings are built for quarantined rows only."""
    positions = np.flatnonzero(quarantine)
    rules = np.full(positions.size, "", dtype=object)
    for rule in RULES:
        rules[broken[rule][positions]] += "|" + rule
    reasons = np.full(positions.size, "", dtype=object)
    rank = {rule: i for i, rule in enumerate(RULES)}
    for rule, column in sorted(masks, key=lambda key: (rank[key[0]], FEED_COLUMNS.index(key[1]))):
        hit: npt.NDArray[np.intp] = np.flatnonzero(masks[(rule, column)][positions])
        if not hit.size:
            continue
        fix = _FIXES[rule]
        fix_text = fix[column] if isinstance(fix, dict) else fix
        if rule in ("null", "duplicate_id", "out_of_order"):
            # The value is not the problem (or there is none): the field and the fix say it all.
            reasons[hit] += f"; {rule}: {column}: {fix_text}"
        else:
            # repr shows the type: '42.10' (text) reads differently from 42.1 (a number).
            values = batch[column].iloc[positions[hit]].tolist()  # Python scalars: plain reprs
            messages = [f"; {rule}: {column} is {v!r} ({type(v).__name__}): {fix_text}" for v in values]
            reasons[hit] += np.array(messages, dtype=object)
    quarantined = batch.iloc[positions].copy()
    # Strip the leading separator each row's first entry brought.
    quarantined["rules"] = pd.Series(rules, dtype=object).str.slice(1).to_numpy(dtype=object)
    quarantined["reason"] = pd.Series(reasons, dtype=object).str.slice(2).to_numpy(dtype=object)
    return quarantined


def _check_invariant(
    batch: pd.DataFrame, accepted: pd.DataFrame, quarantined: pd.DataFrame, quarantine: _BoolArray
) -> None:
    """rows in == accepted + quarantined, every row in exactly one of them, each under its own label."""
    problems = []
    if len(accepted) + len(quarantined) != len(batch):
        problems.append(f"{len(batch)} rows in, {len(accepted)} accepted + {len(quarantined)} quarantined")
    elif not (accepted.index.equals(batch.index[~quarantine]) and quarantined.index.equals(batch.index[quarantine])):
        problems.append("accepted and quarantined rows do not partition the batch's index")
    if quarantined["rules"].eq("").any() or quarantined["rules"].isna().any():
        problems.append("a quarantined row has no rule")
    if problems:
        raise RuntimeError("validation lost or double-counted rows (a bug in mlsys_lab): " + "; ".join(problems))
