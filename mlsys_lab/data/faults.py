"""The raw feed: clean transactions as they arrive from a payment system, with faults and their ground truth.

Real feeds are not the clean table a notebook starts from. :func:`raw_feed` takes simulated
transactions (the ground truth, never modified) and returns the feed as it would arrive, with a set
share of rows faulted, plus a ``truth`` table saying which raw row carries which fault. A validator
can then be scored exactly (:func:`score`): which faults it caught, and which clean rows it wrongly
quarantined.

Fault kinds (``FAULT_KINDS``), each a row of ``truth``
    ``null``
        One feed cell (column chosen uniformly) is missing: ``None``, or ``NaT`` in ``tx_datetime``.
    ``negative_amount``
        ``tx_amount`` is negated (a zero amount becomes ``-0.01``, so it is strictly negative).
    ``duplicate_id``
        An extra row re-sends an earlier row, ``transaction_id`` and all, right after it (an
        at-least-once delivery retry). The original row stays clean; only the re-send is the fault.
    ``out_of_order``
        A row arrives late: it is moved, unchanged, to just after a later clean row (a lag of 1 minute
        to 6 hours), so its timestamp is earlier than rows already sent. Anchoring on a clean row keeps
        the fault detectable whatever the other faults nearby.
    ``unknown_id``
        ``customer_id`` or ``terminal_id`` (half each) is replaced by an id absent from any simulated
        table: ``UNKNOWN_ID_FLOOR`` and above (``raw_feed`` sees only transactions, not the tables, so
        it picks ids no table can reach).
    ``string_number``
        A number arrives as text: ``tx_amount`` (half of these) as ``"42.10"``, ``"42,10"`` or
        ``"USD 42.10"``; ``customer_id`` or ``terminal_id`` (a quarter each) as ``"1234"``.

Each clean row gets at most one fault, so every fault is attributable. A numeric column that receives a
``None`` or a string becomes ``object`` dtype (as it would be when parsed from JSON); a null
``tx_datetime`` is ``NaT``, the datetime column's own null; other columns keep the simulator's dtypes.

Examples
--------
>>> from mlsys_lab.data import preset, simulate
>>> sim = simulate(preset("tiny"))
>>> feed = raw_feed(sim.transactions, FeedFaults(rate=0.06), random_state=0)
>>> len(feed.raw) == len(feed.truth) > len(sim.transactions)
True
>>> sorted(feed.truth.loc[feed.truth.fault != "", "fault"].unique()) == sorted(FAULT_KINDS)
True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlsys_lab.data.validation import FEED_COLUMNS

__all__ = [
    "FAULT_KINDS",
    "FAULT_RULES",
    "UNKNOWN_ID_FLOOR",
    "FeedFaults",
    "RawFeed",
    "raw_feed",
    "score",
]

logger = logging.getLogger(__name__)

#: The kinds of fault ``raw_feed`` can inject.
FAULT_KINDS: tuple[str, ...] = (
    "null",
    "negative_amount",
    "duplicate_id",
    "out_of_order",
    "unknown_id",
    "string_number",
)

#: The validation rules that catch each fault kind (see ``mlsys_lab.data.validation.RULES``).
FAULT_RULES: dict[str, frozenset[str]] = {
    "null": frozenset({"null"}),
    "negative_amount": frozenset({"negative_amount"}),
    "duplicate_id": frozenset({"duplicate_id"}),
    "out_of_order": frozenset({"out_of_order"}),
    "unknown_id": frozenset({"unknown_customer", "unknown_terminal"}),
    "string_number": frozenset({"wrong_type"}),
}

#: Unknown ids start here: far above any simulated table, and within int32 like the simulator's ids.
UNKNOWN_ID_FLOOR = 1_000_000_000

# Values of truth.column: "" for faults that damage no single column (duplicates, late rows).
_DAMAGED = ("", *FEED_COLUMNS)
_MIN_LAG_SECONDS = 60
_MAX_LAG_SECONDS = 6 * 3600


def _amount_text(amount: float, style: int) -> str:
    """A number as a sender might write it: ``"42.10"``, ``"42,10"`` (decimal comma) or ``"USD 42.10"``."""
    text = f"{amount:.2f}"
    return (text, text.replace(".", ","), f"USD {text}")[style]


@dataclass(frozen=True, kw_only=True)
class FeedFaults:
    """How the raw feed is damaged.

    Parameters
    ----------
    rate : float
        Share of clean transactions that get a fault, in [0, 1], split evenly across ``kinds``.
        A duplicate adds a row, so the raw feed has ``rate / len(kinds)`` more rows than the clean one.
    kinds : tuple of str
        Fault kinds to inject, a non-empty subset of ``FAULT_KINDS`` without repeats.

    Examples
    --------
    >>> FeedFaults(rate=0.05, kinds=("null", "duplicate_id")).rate
    0.05
    """

    rate: float = 0.02
    kinds: tuple[str, ...] = FAULT_KINDS

    def __post_init__(self) -> None:
        rate = self.rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not (math.isfinite(rate) and 0 <= rate <= 1):
            raise ValueError(f"rate must be a share of rows in [0, 1], got {rate!r}: pass e.g. rate=0.02")
        if isinstance(self.kinds, str) or not isinstance(self.kinds, Collection):
            raise ValueError(f"kinds must be a tuple of fault kinds, got {self.kinds!r}: pass e.g. kinds=('null',)")
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}: choose from {list(FAULT_KINDS)}")
        if not self.kinds or len(set(self.kinds)) != len(self.kinds):
            raise ValueError(
                f"kinds must be non-empty and without repeats, got {self.kinds!r}: "
                "set rate=0 for a clean feed, or list each kind once"
            )
        object.__setattr__(self, "kinds", tuple(self.kinds))


@dataclass(frozen=True)
class RawFeed:
    """The output of :func:`raw_feed`.

    Attributes
    ----------
    raw : pandas.DataFrame
        The feed as it arrives: ``FEED_COLUMNS`` only, in arrival order, index ``0..len - 1``.
    truth : pandas.DataFrame
        One row per raw row, same index: ``transaction_id`` (the clean transaction it came from),
        ``fault`` (a kind from ``FAULT_KINDS``, or ``""`` for a clean row) and ``column`` (the column the
        fault damaged, ``""`` for clean rows, duplicates and late rows).
    faults : FeedFaults
        The fault configuration that produced it.
    """

    raw: pd.DataFrame
    truth: pd.DataFrame
    faults: FeedFaults

    @property
    def n_faulted(self) -> int:
        """Raw rows that carry a fault."""
        return int((self.truth["fault"] != "").sum())


def _kind_counts(n_faults: int, kinds: tuple[str, ...], rng: np.random.Generator) -> dict[str, int]:
    """Split ``n_faults`` evenly across kinds; the remainder goes to randomly chosen kinds."""
    counts = np.full(len(kinds), n_faults // len(kinds))
    counts[rng.permutation(len(kinds))[: n_faults % len(kinds)]] += 1
    return dict(zip(kinds, counts.tolist(), strict=True))


def _check_transactions(transactions: pd.DataFrame) -> None:
    missing = [c for c in FEED_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lacks feed column(s) {missing}: pass simulate(...).transactions")
    if not transactions["tx_datetime"].is_monotonic_increasing:
        raise ValueError(
            "transactions must be sorted by tx_datetime (the clean feed is in time order): "
            "pass transactions.sort_values('tx_datetime', kind='stable')"
        )
    if not transactions["transaction_id"].is_unique or transactions[list(FEED_COLUMNS)].isna().any().any():
        raise ValueError(
            "transactions must be clean (unique transaction_id, no nulls): pass simulate(...).transactions"
        )


def raw_feed(transactions: pd.DataFrame, faults: FeedFaults, random_state: int) -> RawFeed:
    """Return the feed as a payment system would send it, with faults injected and their ground truth.

    Parameters
    ----------
    transactions
        Clean transactions in time order, e.g. ``simulate(config).transactions``; only
        ``FEED_COLUMNS`` are used (labels and other columns never reach the feed). Not modified.
    faults
        The share of faulted rows and the kinds of fault.
    random_state
        Seed for the fault draws; the same inputs and seed give the same feed.

    Returns
    -------
    RawFeed
        ``raw`` (the damaged feed) and ``truth`` (which row carries which fault).

    Examples
    --------
    >>> from mlsys_lab.data import preset, simulate
    >>> tx = simulate(preset("tiny")).transactions
    >>> feed = raw_feed(tx, FeedFaults(rate=0.02), random_state=0)
    >>> list(feed.raw.columns) == list(FEED_COLUMNS)
    True
    >>> feed.n_faulted == round(0.02 * len(tx))
    True
    """
    if not isinstance(faults, FeedFaults):
        raise ValueError(f"faults must be a FeedFaults, got {type(faults).__name__}: pass FeedFaults(rate=0.02)")
    _check_transactions(transactions)
    rng = np.random.default_rng(random_state)
    clean = transactions.loc[:, list(FEED_COLUMNS)].reset_index(drop=True)
    n = len(clean)
    counts = _kind_counts(round(faults.rate * n), faults.kinds, rng)

    # Kinds are coded as small integers while building (0 = clean, i + 1 = FAULT_KINDS[i]): comparing
    # millions of strings would cost more than all the rest.
    code = {kind: np.int8(i + 1) for i, kind in enumerate(FAULT_KINDS)}

    # 1. Which clean rows are faulted. Late rows are picked last, among rows older than the newest
    #    clean row, so each has a clean row to arrive after.
    times = clean["tx_datetime"].to_numpy().view(np.int64)
    in_place_kinds = [k for k in faults.kinds if k != "out_of_order"]
    picked = rng.permutation(n)[: sum(counts[k] for k in in_place_kinds)]
    source_kind = np.zeros(n, dtype=np.int8)
    source_kind[picked] = np.repeat([code[k] for k in in_place_kinds], [counts[k] for k in in_place_kinds])
    late: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    # Rows that stay clean in place: untouched rows and the originals of duplicates.
    anchors = np.flatnonzero((source_kind == 0) | (source_kind == code["duplicate_id"]))
    if counts.get("out_of_order", 0) and anchors.size:
        # Fewer late rows than asked only if nearly every row is already faulted (rate close to 1).
        candidates = np.flatnonzero((source_kind == 0) & (times < times[anchors[-1]]))
        late = np.sort(rng.choice(candidates, size=min(counts["out_of_order"], candidates.size), replace=False))
        source_kind[late] = code["out_of_order"]
        anchors = anchors[source_kind[anchors] != code["out_of_order"]]

    # 2. Arrival order, sorted by (the clean row a row arrives after, rank): a re-send right after its
    #    original, a late row right after its anchor, a clean row after itself.
    duplicates = np.flatnonzero(source_kind == code["duplicate_id"])
    after = np.arange(n, dtype=np.int64)
    if late.size:
        lag = rng.integers(_MIN_LAG_SECONDS, _MAX_LAG_SECONDS, size=late.size, endpoint=True) * 1_000_000
        anchor_times = times[anchors]
        target = np.searchsorted(anchor_times, times[late] + lag, side="right") - 1
        first_later = np.searchsorted(anchor_times, times[late], side="right")  # strictly later: truly late
        after[late] = anchors[np.maximum(target, first_later)]
    rank = np.where(source_kind == code["out_of_order"], 2, 0)
    order = np.lexsort(
        (np.concatenate([rank, np.ones(duplicates.size, np.int64)]), np.concatenate([after, duplicates]))
    )
    source = np.concatenate([np.arange(n), duplicates])[order]
    # The original of a duplicate stays clean; the fault is the re-send.
    in_place = np.where(source_kind == code["duplicate_id"], 0, source_kind)
    fault = np.concatenate([in_place, np.full(duplicates.size, code["duplicate_id"])])[order]

    raw = clean.iloc[source].reset_index(drop=True)
    column = np.zeros(len(raw), dtype=np.int8)  # index into _DAMAGED: which column a fault hit

    # 3. Damage values (raw is a fresh frame: the clean transactions are never touched). A null datetime
    #    is NaT, the datetime column's own null; a None or a string elsewhere turns the column to object.
    rows = {kind: np.flatnonzero(fault == code[kind]) for kind in FAULT_KINDS}
    to_object: dict[str, dict[int, object]] = {}

    null_columns = rng.choice(len(FEED_COLUMNS), size=rows["null"].size)
    for i, name in enumerate(FEED_COLUMNS):
        hit = rows["null"][null_columns == i]
        if name == "tx_datetime":
            stamps = raw[name].to_numpy(copy=True)
            stamps[hit] = np.datetime64("NaT")
            raw[name] = stamps
        else:
            to_object.setdefault(name, {}).update(dict.fromkeys(hit.tolist()))
        column[hit] = _DAMAGED.index(name)

    negative = rows["negative_amount"]
    amounts = raw["tx_amount"].to_numpy(copy=True)
    amounts[negative] = -np.maximum(amounts[negative], 0.01)
    raw["tx_amount"] = amounts
    column[negative] = _DAMAGED.index("tx_amount")

    unknown = rows["unknown_id"]
    unknown_in_customer = rng.random(unknown.size) < 0.5
    unknown_ids = UNKNOWN_ID_FLOOR + rng.integers(0, 1_000_000, size=unknown.size)
    for name, hit in (("customer_id", unknown_in_customer), ("terminal_id", ~unknown_in_customer)):
        ids = raw[name].to_numpy(copy=True)
        ids[unknown[hit]] = unknown_ids[hit]
        raw[name] = ids
        column[unknown[hit]] = _DAMAGED.index(name)

    strings = rows["string_number"]
    # Half of the strings in tx_amount, a quarter in each id column.
    string_columns = np.array(["tx_amount", "tx_amount", "customer_id", "terminal_id"])[
        rng.integers(0, 4, strings.size)
    ]
    amount_styles = rng.integers(0, 3, size=strings.size)
    for name in ("tx_amount", "customer_id", "terminal_id"):
        hit = strings[string_columns == name]
        values = raw[name].to_numpy()[hit].tolist()
        if name == "tx_amount":
            styles = amount_styles[string_columns == name].tolist()
            text = [_amount_text(v, style) for v, style in zip(values, styles, strict=True)]
        else:
            text = [str(v) for v in values]
        to_object.setdefault(name, {}).update(zip(hit.tolist(), text, strict=True))
        column[hit] = _DAMAGED.index(name)

    for name, cells in to_object.items():
        if cells:
            values_object = raw[name].to_numpy(dtype=object)  # a copy, holding Python scalars
            values_object[list(cells)] = list(cells.values())
            raw[name] = pd.Series(values_object, dtype=object)

    truth = pd.DataFrame(
        {
            "transaction_id": clean["transaction_id"].to_numpy()[source],
            "fault": pd.Series(np.array(("", *FAULT_KINDS), dtype=object)[fault], dtype=object),
            "column": pd.Series(np.array(_DAMAGED, dtype=object)[column], dtype=object),
        }
    )
    logger.debug("raw feed: %d rows, %d faulted", len(raw), int((fault != 0).sum()))
    return RawFeed(raw=raw, truth=truth, faults=faults)


def score(truth: pd.DataFrame, quarantined: pd.DataFrame) -> pd.DataFrame:
    """Score a validator's quarantine against the ground truth, per fault kind.

    Parameters
    ----------
    truth
        ``RawFeed.truth``.
    quarantined
        The quarantined rows, indexed like the raw feed, with a ``rules`` column of ``"|"``-joined
        rule names (``ValidationResult.quarantined``, or a hand-written validator's).

    Returns
    -------
    pandas.DataFrame
        One row per fault kind plus ``clean``: ``injected`` (rows of that kind), ``caught`` (of those,
        quarantined by a rule of ``FAULT_RULES[kind]``), ``flagged`` (rows the kind's rules quarantined),
        ``recall = caught / injected`` and ``precision = caught / flagged``. For ``clean``, ``caught``
        counts clean rows quarantined: it should be 0.

    Examples
    --------
    >>> truth = pd.DataFrame({"transaction_id": [0, 1, 1], "fault": ["", "", "duplicate_id"]})
    >>> quarantine = pd.DataFrame({"rules": ["duplicate_id"]}, index=[2])
    >>> score(truth, quarantine).set_index("fault").loc["duplicate_id", ["recall", "precision"]].tolist()
    [1.0, 1.0]
    """
    rules = pd.Series("", index=truth.index, dtype=object)
    rules.loc[quarantined.index] = quarantined["rules"].astype(str).to_numpy()
    split = rules.str.split("|")
    rows = []
    for kind in FAULT_KINDS:
        expected = FAULT_RULES[kind]
        flagged = split.map(lambda found, expected=expected: not expected.isdisjoint(found)).to_numpy(dtype=bool)
        injected = (truth["fault"] == kind).to_numpy()
        caught = int((flagged & injected).sum())
        rows.append(
            {
                "fault": kind,
                "injected": int(injected.sum()),
                "caught": caught,
                "flagged": int(flagged.sum()),
                "recall": caught / injected.sum() if injected.any() else math.nan,
                "precision": caught / flagged.sum() if flagged.any() else math.nan,
            }
        )
    clean = (truth["fault"] == "").to_numpy()
    wrongly = int((clean & (rules != "").to_numpy()).sum())
    rows.append(
        {"fault": "clean", "injected": int(clean.sum()), "caught": wrongly, "flagged": wrongly, "recall": math.nan}
    )
    return pd.DataFrame(rows)
