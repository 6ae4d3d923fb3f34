"""Simulated credit-card transactions with labelled fraud, vectorised end to end.

Our own implementation of the transaction model described in the Fraud Detection Handbook
(Le Borgne et al.); only the model's facts are reused, not its code. The rules of the simulated world:

Customers
    Location uniform on a 100 x 100 square; mean amount U(5, 100); amount std = mean / 2;
    mean daily transaction count U(0, 4).
Terminals
    Location uniform on the same square. A customer uses only the terminals within Euclidean radius
    ``r = 5 * sqrt(10000 / n_terminals)`` of its location (about 80-100 whatever the size); a customer
    with no reachable terminal makes no transactions.
Transactions, per customer and day
    Count ~ Poisson(mean daily count). Time of day ~ N(43200 s, 20000 s) rounded to whole seconds;
    draws outside (0, 86400) are dropped, not redrawn. Amount ~ N(mean, std); a negative draw is
    replaced by U(0, 2 * mean); rounded to cents. Terminal uniform among the reachable ones.
Fraud, applied in this order (a later scenario overwrites the tag of an earlier one)
    S1: every transaction with amount > 220 is fraud.
    S2: each day, Binomial(n_terminals, 2 / 10000) terminals are compromised; all their transactions
    from that day for 28 days are fraud.
    S3: each day, Binomial(n_customers, 3 / 5000) customers are compromised; over that day and the next
    13, a third of their transactions (chosen at random) get their amount multiplied by 5 and are fraud.
    The rates are per entity, so the fraud share stays near 0.85 % at every size.

``tx_fraud_scenario`` (0 = genuine, 1-3 as above) is ground truth for analysis only. It is never
known in production and must never be used as a feature.

Randomness: every component (customers, terminals, counts, times, amounts, terminal choice, S2, S3)
draws from its own stream, seeded by ``(random_state, component key)``. Switching a scenario off
therefore leaves every row it did not touch byte-identical, and per-day draws are laid out day by
day, so a later change from day ``d`` on cannot alter rows before ``d``.

Examples
--------
>>> sim = simulate(preset("tiny"))
>>> list(sim.transactions.columns) == list(COLUMNS)
True
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import numbers
import time
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial import cKDTree

__all__ = [
    "COLUMNS",
    "PRESETS",
    "FraudScenarios",
    "Simulation",
    "SimulatorConfig",
    "iter_days",
    "preset",
    "simulate",
]

logger = logging.getLogger(__name__)

#: Output columns of ``Simulation.transactions``, in order.
COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_time_seconds",
    "tx_time_days",
    "tx_fraud",
    "tx_fraud_scenario",
)

_SECONDS_PER_DAY = 86_400
_SQUARE_SIDE = 100.0
_TIME_OF_DAY_MEAN = 43_200.0
_TIME_OF_DAY_STD = 20_000.0
# The datetime resolution of ``tx_datetime``; pandas 3 parses dates to microseconds, so we match it.
_DATETIME_DTYPE = "datetime64[us]"


class _Stream(IntEnum):
    """Keys of the independent random streams, one per component.

    The values are part of the data set's identity: changing one changes every simulated data set,
    so new components get new keys and existing keys never change.
    """

    CUSTOMERS = 1
    TERMINALS = 2
    COUNTS = 3
    TIMES = 4
    AMOUNTS = 5
    # Replacement draws for negative amounts live in their own stream: drawn from the AMOUNTS stream
    # after all the normals, their position would depend on the total row count, so adding rows late
    # in the simulation would change early amounts.
    AMOUNT_FALLBACK = 6
    TERMINAL_CHOICE = 7
    S2 = 8
    S3 = 9


def _rng(random_state: int, stream: _Stream) -> np.random.Generator:
    return np.random.default_rng([random_state, int(stream)])


def _is_int(value: object) -> bool:
    # bool is an int subclass, but n_days=True is a bug, not a request for one day.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _check_positive_int(name: str, value: object) -> None:
    if not _is_int(value) or int(value) < 1:  # type: ignore[call-overload]
        raise ValueError(f"{name} must be a positive integer, got {value!r}: pass {name} >= 1")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _check_real(name: str, value: object, *, low: float, high: float = math.inf, low_open: bool = False) -> None:
    bad = not _is_real(value) or float(value) > high  # type: ignore[arg-type]
    if not bad:
        bad = float(value) <= low if low_open else float(value) < low  # type: ignore[arg-type]
    if bad:
        low_text = f"> {low}" if low_open else f">= {low}"
        high_text = "" if high == math.inf else f" and <= {high}"
        raise ValueError(f"{name} must be a finite number {low_text}{high_text}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class FraudScenarios:
    """Which fraud scenarios run, and their per-entity rates.

    Parameters
    ----------
    s1_amount_threshold : float
        S1 marks every transaction with an amount strictly above this as fraud.
    s1, s2, s3 : bool
        Switch each scenario on or off. Switching one off leaves the rows it did not touch unchanged.
    s2_terminals_per_10k_per_day : float
        Expected number of terminals compromised per day, per 10,000 terminals.
    s2_duration_days : int
        Days (the compromise day included) during which a compromised terminal's transactions are fraud.
    s3_customers_per_5k_per_day : float
        Expected number of customers compromised per day, per 5,000 customers.
    s3_duration_days : int
        Days (the compromise day included) over which a compromised customer's transactions are picked.
    s3_amount_factor : float
        Multiplier applied to the amount of each picked transaction.
    s3_share : float
        Share of the customer's transactions in the window that are picked, rounded down.

    Examples
    --------
    >>> FraudScenarios(s2=False).s2
    False
    """

    s1_amount_threshold: float = 220.0
    s1: bool = True
    s2: bool = True
    s2_terminals_per_10k_per_day: float = 2.0
    s2_duration_days: int = 28
    s3: bool = True
    s3_customers_per_5k_per_day: float = 3.0
    s3_duration_days: int = 14
    s3_amount_factor: float = 5.0
    s3_share: float = 1 / 3

    def __post_init__(self) -> None:
        for name in ("s1", "s2", "s3"):
            _check_bool(name, getattr(self, name))
        _check_real("s1_amount_threshold", self.s1_amount_threshold, low=0.0)
        # The rate becomes a per-entity daily probability (rate / 10000), which cannot exceed 1.
        _check_real("s2_terminals_per_10k_per_day", self.s2_terminals_per_10k_per_day, low=0.0, high=10_000.0)
        _check_real("s3_customers_per_5k_per_day", self.s3_customers_per_5k_per_day, low=0.0, high=5_000.0)
        _check_positive_int("s2_duration_days", self.s2_duration_days)
        _check_positive_int("s3_duration_days", self.s3_duration_days)
        _check_real("s3_amount_factor", self.s3_amount_factor, low=0.0, low_open=True)
        _check_real("s3_share", self.s3_share, low=0.0, high=1.0)


@dataclass(frozen=True, kw_only=True)
class SimulatorConfig:
    """Everything that determines a simulated data set: the same config gives the same bytes.

    Parameters
    ----------
    n_customers, n_terminals, n_days : int
        Sizes of the simulated world.
    start_date : str
        Date of day 0, ISO format ``"YYYY-MM-DD"``.
    random_state : int
        Seed (>= 0) from which every component's random stream is derived.
    radius : float or None
        Radius within which a customer uses terminals; ``None`` means ``5 * sqrt(10000 / n_terminals)``.
    fraud : FraudScenarios
        Which fraud scenarios run and how often.

    Examples
    --------
    >>> SimulatorConfig(n_customers=10, n_terminals=20, n_days=3).start_date
    '2018-04-01'
    """

    n_customers: int
    n_terminals: int
    n_days: int
    start_date: str = "2018-04-01"
    random_state: int = 0
    radius: float | None = None
    fraud: FraudScenarios = field(default_factory=FraudScenarios)
    # Later issues add label_delay, drift (a tuple of events) and faults here. Every field is
    # keyword-only with a default, so new fields slot in without breaking existing callers; each new
    # random component gets a new _Stream key so existing data sets keep their bytes.

    def __post_init__(self) -> None:
        for name in ("n_customers", "n_terminals", "n_days"):
            _check_positive_int(name, getattr(self, name))
        if not isinstance(self.start_date, str):
            raise ValueError(f"start_date must be an ISO date string, got {self.start_date!r}: pass e.g. '2018-04-01'")
        try:
            dt.date.fromisoformat(self.start_date)
        except ValueError:
            raise ValueError(
                f"start_date must be an ISO date 'YYYY-MM-DD', got {self.start_date!r}: pass e.g. '2018-04-01'"
            ) from None
        if not _is_int(self.random_state) or int(self.random_state) < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {self.random_state!r}: pass e.g. 0")
        if self.radius is not None:
            _check_real("radius", self.radius, low=0.0, low_open=True)
        if not isinstance(self.fraud, FraudScenarios):
            raise ValueError(
                f"fraud must be a FraudScenarios, got {type(self.fraud).__name__}: pass FraudScenarios(...)"
            )


def _radius(config: SimulatorConfig) -> float:
    if config.radius is not None:
        return float(config.radius)
    # Scales with terminal density so that a customer reaches about 25 * pi ~ 80 terminals at any size.
    return 5.0 * math.sqrt(10_000 / config.n_terminals)


PRESETS: Mapping[str, SimulatorConfig] = types.MappingProxyType(
    {
        # Tests: ~11k rows in well under a second.
        "tiny": SimulatorConfig(n_customers=200, n_terminals=400, n_days=30),
        # Notebook default: ~135k rows; 70 days hold 30-day feature windows plus a 7/7/7 split.
        "small": SimulatorConfig(n_customers=1_000, n_terminals=2_000, n_days=70),
        "medium": SimulatorConfig(n_customers=2_500, n_terminals=5_000, n_days=120),
        # The handbook's reference point: ~1.77M rows, ~0.85 % fraud.
        "full": SimulatorConfig(n_customers=5_000, n_terminals=10_000, n_days=183),
    }
)


def preset(name: str, **overrides: object) -> SimulatorConfig:
    """Return the named preset config, optionally with some fields replaced.

    Parameters
    ----------
    name : str
        One of ``PRESETS`` (``"tiny"``, ``"small"``, ``"medium"``, ``"full"``).
    **overrides
        Fields to replace, e.g. ``random_state=1`` or ``fraud=FraudScenarios(s2=False)``.

    Examples
    --------
    >>> preset("small", random_state=1).random_state
    1
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: pass one of {sorted(PRESETS)}")
    valid = {f.name for f in fields(SimulatorConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"unknown SimulatorConfig field(s) {unknown}: valid fields are {sorted(valid)}")
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Simulation:
    """The output of ``simulate``: the config, the two entity tables and the transactions.

    Attributes
    ----------
    config : SimulatorConfig
        The config that produced this simulation.
    customers : pandas.DataFrame
        ``customer_id, x, y, mean_amount, std_amount, mean_daily_tx``.
    terminals : pandas.DataFrame
        ``terminal_id, x, y``.
    transactions : pandas.DataFrame
        Columns ``COLUMNS``, sorted by time; ``transaction_id`` is 0..n-1 and equals the index.
    """

    config: SimulatorConfig
    customers: pd.DataFrame
    terminals: pd.DataFrame
    transactions: pd.DataFrame

    def days(self) -> Iterator[tuple[int, pd.DataFrame]]:
        """Yield ``(day, that day's transactions)`` for every day in order, empty days included.

        Rows are slices of ``transactions`` (found by binary search on the sorted day column), so a
        replay of the stream costs no copy and no group-by.

        Examples
        --------
        >>> sim = simulate(preset("tiny"))
        >>> day, rows = next(sim.days())
        >>> day, bool((rows.tx_time_days == 0).all())
        (0, True)
        """
        day_column = self.transactions["tx_time_days"].to_numpy()
        bounds = np.searchsorted(day_column, np.arange(self.config.n_days + 1), side="left")
        for day in range(self.config.n_days):
            yield day, self.transactions.iloc[bounds[day] : bounds[day + 1]]


def iter_days(config: SimulatorConfig) -> Iterator[tuple[int, pd.DataFrame]]:
    """Simulate ``config`` and yield its transactions one day at a time (see ``Simulation.days``).

    Examples
    --------
    >>> sum(len(rows) for _, rows in iter_days(preset("tiny"))) == len(simulate(preset("tiny")).transactions)
    True
    """
    return simulate(config).days()


def simulate(config: SimulatorConfig) -> Simulation:
    """Simulate customers, terminals and a labelled transaction log.

    Parameters
    ----------
    config : SimulatorConfig
        Sizes, seed and fraud scenarios; see ``PRESETS`` and ``preset`` for ready-made ones.

    Returns
    -------
    Simulation
        Transactions sorted by ``(tx_time_seconds, customer_id)``, ties in generation order.

    Examples
    --------
    >>> sim = simulate(preset("tiny"))
    >>> sim.transactions.transaction_id.is_monotonic_increasing
    True
    >>> bool(0 < sim.transactions.tx_fraud.mean() < 0.05)
    True
    """
    started = time.perf_counter()
    customers = _simulate_customers(config)
    terminals = _simulate_terminals(config)
    offsets, reachable = _reachable_terminals(customers, terminals, _radius(config))
    tx = _simulate_genuine(config, customers, offsets, reachable)

    fraud = config.fraud
    scenario = np.zeros(tx["amount"].size, dtype=np.int8)
    if fraud.s1:
        scenario[tx["amount"] > fraud.s1_amount_threshold] = 1
    if fraud.s2:
        scenario[_s2_mask(config, tx["terminal"], tx["day"])] = 2
    if fraud.s3:
        picked = _s3_pick(config, tx["customer"], tx["day"])
        tx["amount"][picked] = np.round(tx["amount"][picked] * fraud.s3_amount_factor, 2)
        scenario[picked] = 3

    transactions = _transactions_frame(config, tx, scenario)
    logger.info(
        "simulated %d transactions over %d days (%.3f%% fraud) in %.2f s",
        len(transactions),
        config.n_days,
        100 * transactions["tx_fraud"].mean() if len(transactions) else 0.0,
        time.perf_counter() - started,
    )
    return Simulation(config=config, customers=customers, terminals=terminals, transactions=transactions)


def _simulate_customers(config: SimulatorConfig) -> pd.DataFrame:
    rng = _rng(config.random_state, _Stream.CUSTOMERS)
    n = config.n_customers
    xy = rng.uniform(0.0, _SQUARE_SIDE, size=(n, 2))
    mean_amount = rng.uniform(5.0, 100.0, size=n)
    mean_daily_tx = rng.uniform(0.0, 4.0, size=n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int32),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "mean_amount": mean_amount,
            "std_amount": mean_amount / 2,
            "mean_daily_tx": mean_daily_tx,
        }
    )


def _simulate_terminals(config: SimulatorConfig) -> pd.DataFrame:
    rng = _rng(config.random_state, _Stream.TERMINALS)
    xy = rng.uniform(0.0, _SQUARE_SIDE, size=(config.n_terminals, 2))
    return pd.DataFrame({"terminal_id": np.arange(config.n_terminals, dtype=np.int32), "x": xy[:, 0], "y": xy[:, 1]})


def _reachable_terminals(
    customers: pd.DataFrame, terminals: pd.DataFrame, radius: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Terminals within ``radius`` of each customer, CSR-style.

    Returns ``offsets`` (n_customers + 1) and a flat ``reachable`` array: customer ``c`` reaches
    ``reachable[offsets[c]:offsets[c + 1]]``, sorted by terminal id so that the terminal drawn for a
    given uniform number is reproducible.
    """
    tree = cKDTree(terminals[["x", "y"]].to_numpy())
    lists = tree.query_ball_point(customers[["x", "y"]].to_numpy(), r=radius, return_sorted=True)
    counts = np.fromiter((len(ids) for ids in lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    reachable = np.fromiter((t for ids in lists for t in ids), dtype=np.int32, count=int(offsets[-1]))
    return offsets, reachable


def _simulate_genuine(
    config: SimulatorConfig,
    customers: pd.DataFrame,
    offsets: npt.NDArray[np.int64],
    reachable: npt.NDArray[np.int32],
) -> dict[str, npt.NDArray[Any]]:
    """Draw the genuine transactions and return them sorted by time, as column arrays.

    Every draw is laid out in generation order (day, then customer, then the customer's k-th
    transaction of the day), so rows of day ``d`` use only a prefix of each stream: anything a later
    change does from day ``d`` on cannot move the draws of earlier days.
    """
    n_days, n_customers = config.n_days, config.n_customers
    mean_amount = customers["mean_amount"].to_numpy()
    std_amount = customers["std_amount"].to_numpy()
    n_reachable = np.diff(offsets)

    # Shape (days, customers) whatever the terminals: counts are drawn even for customers with no
    # reachable terminal, then zeroed, so the terminal layout cannot shift the count stream.
    counts = _rng(config.random_state, _Stream.COUNTS).poisson(
        customers["mean_daily_tx"].to_numpy(), size=(n_days, n_customers)
    )
    counts[:, n_reachable == 0] = 0
    n_candidates = int(counts.sum())

    customer = np.repeat(np.tile(np.arange(n_customers, dtype=np.int32), n_days), counts.ravel())
    day = np.repeat(np.arange(n_days, dtype=np.int32), counts.sum(axis=1))

    seed = config.random_state
    seconds = np.rint(_rng(seed, _Stream.TIMES).normal(_TIME_OF_DAY_MEAN, _TIME_OF_DAY_STD, n_candidates))
    amount = mean_amount[customer] + std_amount[customer] * _rng(seed, _Stream.AMOUNTS).standard_normal(n_candidates)
    fallback = 2 * mean_amount[customer] * _rng(seed, _Stream.AMOUNT_FALLBACK).random(n_candidates)
    amount = np.round(np.where(amount < 0, fallback, amount), 2)
    # floor(u * count) keeps one uniform per transaction whatever the number of reachable terminals.
    # The clip guards the float edge case u * count rounding up to count.
    u = _rng(seed, _Stream.TERMINAL_CHOICE).random(n_candidates)
    slot = np.minimum(np.floor(u * n_reachable[customer]).astype(np.int64), n_reachable[customer] - 1)
    terminal = reachable[offsets[customer] + slot]

    # Dropped, not redrawn: every candidate consumed its draws above, so the streams stay aligned.
    keep = (seconds > 0) & (seconds < _SECONDS_PER_DAY)
    customer, day, amount, terminal = customer[keep], day[keep], amount[keep], terminal[keep]
    time_seconds = day.astype(np.int64) * _SECONDS_PER_DAY + seconds[keep].astype(np.int64)

    # Stable sort on (time, customer): equal keys (same customer, same second) keep generation order.
    order = np.argsort(time_seconds * n_customers + customer, kind="stable")
    return {
        "customer": customer[order],
        "day": day[order],
        "amount": amount[order],
        "terminal": terminal[order],
        "time_seconds": time_seconds[order],
    }


def _s2_starts(config: SimulatorConfig) -> npt.NDArray[np.int32]:
    """Scenario-2 compromises: a (terminals x days) matrix, 1 where a compromise starts."""
    rng = _rng(config.random_state, _Stream.S2)
    started = np.zeros((config.n_terminals, config.n_days), dtype=np.int32)
    p = config.fraud.s2_terminals_per_10k_per_day / 10_000
    # One draw pair per day, in day order, so a change from day d on cannot alter earlier compromises.
    for d in range(config.n_days):
        k = rng.binomial(config.n_terminals, p)
        started[rng.choice(config.n_terminals, size=k, replace=False), d] = 1
    return started


def _s2_mask(
    config: SimulatorConfig, terminal: npt.NDArray[np.int32], day: npt.NDArray[np.int32]
) -> npt.NDArray[np.bool_]:
    """Rows on a terminal that is compromised on the row's day (scenario 2)."""
    # A terminal is compromised on day d if a compromise started in days d-duration+1..d: a rolling
    # sum over the day axis, via cumulative sums.
    cumulative = np.cumsum(_s2_starts(config), axis=1)
    active = cumulative.copy()
    duration = config.fraud.s2_duration_days
    active[:, duration:] -= cumulative[:, :-duration]
    return active[terminal, day] > 0


def _s3_events(config: SimulatorConfig) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """Scenario-3 compromises as ``(customer, day, seed)`` arrays, in day order.

    ``seed`` seeds the event's own pick of transactions: drawn here, one per event, because the pick
    consumes a number of draws that depends on how many transactions the customer made, which must
    not shift later days' events.
    """
    rng = _rng(config.random_state, _Stream.S3)
    p = config.fraud.s3_customers_per_5k_per_day / 5_000
    customers: list[npt.NDArray[np.int64]] = []
    days: list[npt.NDArray[np.int64]] = []
    seeds: list[npt.NDArray[np.uint64]] = []
    # One draw group per day, in day order, so a change from day d on cannot alter earlier compromises.
    for d in range(config.n_days):
        k = rng.binomial(config.n_customers, p)
        customers.append(rng.choice(config.n_customers, size=k, replace=False))
        days.append(np.full(k, d, dtype=np.int64))
        seeds.append(rng.integers(0, 2**63, size=k, dtype=np.uint64))
    return np.concatenate(customers), np.concatenate(days), np.concatenate(seeds)


def _s3_pick(
    config: SimulatorConfig, customer: npt.NDArray[np.int32], day: npt.NDArray[np.int32]
) -> npt.NDArray[np.bool_]:
    """Rows picked by scenario 3; the caller multiplies their amount and tags them."""
    fraud = config.fraud
    n_days = config.n_days
    customers_hit, days_hit, seeds = _s3_events(config)

    # Rows sorted by (customer, day), time order kept within: a customer's window is one contiguous run.
    by_customer = np.argsort(customer, kind="stable")
    key = customer[by_customer].astype(np.int64) * n_days + day[by_customer]
    window_start = customers_hit * n_days + days_hit
    window_end = customers_hit * n_days + np.minimum(days_hit + fraud.s3_duration_days, n_days)
    lo = np.searchsorted(key, window_start, side="left")
    hi = np.searchsorted(key, window_end, side="left")

    picked = np.zeros(customer.size, dtype=bool)
    # A loop over events (hundreds at full size), not rows. A row picked by two overlapping events of
    # the same customer is multiplied once: the mask records "picked", not how often.
    for start, stop, seed in zip(lo, hi, seeds, strict=True):
        n_window = int(stop - start)
        n_pick = math.floor(n_window * fraud.s3_share + 1e-9)  # 1e-9: 3 * (1/3) must give 1, not 0.99...
        if n_pick:
            rows = np.random.default_rng(int(seed)).choice(n_window, size=n_pick, replace=False)
            picked[by_customer[start + rows]] = True
    return picked


def _transactions_frame(
    config: SimulatorConfig, tx: dict[str, npt.NDArray[Any]], scenario: npt.NDArray[np.int8]
) -> pd.DataFrame:
    n = tx["amount"].size
    start = np.datetime64(config.start_date, "s")
    return pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype=np.int64),
            "tx_datetime": (start + tx["time_seconds"].astype("timedelta64[s]")).astype(_DATETIME_DTYPE),
            "customer_id": tx["customer"].astype(np.int32, copy=False),
            "terminal_id": tx["terminal"].astype(np.int32, copy=False),
            "tx_amount": tx["amount"],
            "tx_time_seconds": tx["time_seconds"],
            "tx_time_days": tx["day"].astype(np.int32, copy=False),
            "tx_fraud": (scenario > 0).astype(np.int8),
            "tx_fraud_scenario": scenario,
        },
        columns=list(COLUMNS),
    )
