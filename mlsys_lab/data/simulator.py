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

Labels arrive late (``LabelDelay``, beyond the handbook)
    ``tx_label_seconds`` is when the row's label becomes known. Frauds: a share is confirmed about a
    day later, the rest after days to weeks; genuine transactions are taken as genuine after about 30
    days. Read labels through ``mlsys_lab.data.labels``, never ``tx_fraud`` directly.
Drift (``SimulatorConfig.drift``, beyond the handbook)
    Events that change the world from their ``start_day`` on: ``AmountInflation``, ``NewTerminals``,
    ``CardTesting`` (fraud scenario 4) and ``ScenarioOff``. ``Simulation.drift_log`` lists them: the
    ground truth a drift monitor is scored against. ``default_drift_schedule`` is an example schedule.

``tx_fraud_scenario`` (0 = genuine, 1-3 as above, 4 = card testing) is ground truth for analysis only.
It is never known in production and must never be used as a feature.

Randomness: every component (customers, terminals, counts, times, amounts, terminal choice, S2, S3,
label delays, each drift event) draws from its own stream, seeded by ``(random_state, component key)``.
Switching a scenario off therefore leaves every row it did not touch byte-identical, and per-day draws
are laid out day by day, so a later change from day ``d`` on (a drift event, more days) cannot alter
rows before ``d``.

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
    "CARD_TESTING_SCENARIO",
    "COLUMNS",
    "PRESETS",
    "AmountInflation",
    "CardTesting",
    "DriftEvent",
    "FraudScenarios",
    "LabelDelay",
    "NewTerminals",
    "ScenarioOff",
    "Simulation",
    "SimulatorConfig",
    "default_drift_schedule",
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
    "tx_label_seconds",
)

#: ``tx_fraud_scenario`` of the rows added by a ``CardTesting`` drift event.
CARD_TESTING_SCENARIO = 4

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
    # Label delays: three uniforms per candidate transaction, in generation order (see LabelDelay).
    LABEL_DELAY = 10
    # Drift events: one stream per event, seeded by (random_state, key, start_day, ordinal); see _event_rng.
    NEW_TERMINALS = 11
    CARD_TESTING = 12


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


def _check_range(name: str, value: object, *, low: float, high: float = math.inf, integer: bool = False) -> None:
    """A ``(lo, hi)`` pair of numbers with ``low <= lo <= hi <= high``."""
    is_number = _is_int if integer else _is_real
    ok = isinstance(value, tuple) and len(value) == 2 and all(is_number(v) for v in value)
    if ok:
        lo, hi = (float(v) for v in value)  # type: ignore[attr-defined]
        ok = low <= lo <= hi <= high
    if not ok:
        kind = "integers" if integer else "finite numbers"
        high_text = "" if high == math.inf else f" <= {high}"
        raise ValueError(f"{name} must be a pair ({kind}) (lo, hi) with {low} <= lo <= hi{high_text}, got {value!r}")


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
class LabelDelay:
    """How long after a transaction its label (fraud or genuine) becomes known.

    Nobody knows a transaction is fraud when it happens. The simulator gives every transaction the
    time its label is known, ``tx_label_seconds = tx_time_seconds + delay``, with the delay drawn as:

    - fraud, with probability ``fraud_fast_share``: Exponential with mean ``fraud_fast_mean_days``. The
      fraud team's alerts are checked by an investigator, or the cardholder calls, within about a day.
    - fraud, otherwise: Uniform(``fraud_slow_min_days``, ``fraud_slow_max_days``). Frauds nobody
      alerted on are found when the cardholder reads a statement or disputes the charge.
    - genuine: ``genuine_days`` + Uniform(0, ``genuine_jitter_days``). No one reports a genuine
      transaction; it counts as genuine once the dispute window has passed without a complaint.

    With the defaults, about 38 % of frauds are known within one day, 52 % within two, 68 % within
    the handbook's 7-day delay and practically all by day 28 (the exponential's tail beyond is about
    e^-28), and no genuine label is known before day 30: a model trained on recent weeks sees only
    part of the truth, and unlabelled recent rows are not the same as genuine ones. Delays are
    rounded to whole seconds and never negative; ``tx_label_seconds`` may lie beyond the last
    simulated day, in which case the label is simply not known within the data.

    Randomness: three uniforms per transaction (whether the fast route applies, the fast delay, and one
    shared by the slow fraud delay and the genuine jitter, since a row is one or the other), drawn for
    every row whatever its label. Whether a row is fraud can change (a scenario switched off, a
    drift event) without moving any other row's delay.

    Parameters
    ----------
    fraud_fast_share : float
        Share of frauds labelled quickly, in [0, 1].
    fraud_fast_mean_days : float
        Mean delay of the quick frauds, in days (> 0).
    fraud_slow_min_days, fraud_slow_max_days : float
        Range of the uniform delay of the other frauds, in days (0 <= min <= max).
    genuine_days : float
        Minimum delay of genuine labels, in days (>= 0).
    genuine_jitter_days : float
        Width of the uniform jitter added to ``genuine_days``, in days (>= 0).

    Examples
    --------
    >>> LabelDelay().genuine_days
    30.0
    """

    fraud_fast_share: float = 0.6
    fraud_fast_mean_days: float = 1.0
    fraud_slow_min_days: float = 2.0
    fraud_slow_max_days: float = 28.0
    genuine_days: float = 30.0
    genuine_jitter_days: float = 1.0

    def __post_init__(self) -> None:
        _check_real("fraud_fast_share", self.fraud_fast_share, low=0.0, high=1.0)
        _check_real("fraud_fast_mean_days", self.fraud_fast_mean_days, low=0.0, low_open=True)
        _check_real("fraud_slow_min_days", self.fraud_slow_min_days, low=0.0)
        _check_real("fraud_slow_max_days", self.fraud_slow_max_days, low=float(self.fraud_slow_min_days))
        _check_real("genuine_days", self.genuine_days, low=0.0)
        _check_real("genuine_jitter_days", self.genuine_jitter_days, low=0.0)


@dataclass(frozen=True, kw_only=True)
class DriftEvent:
    """Base of the drift events: something that changes in the simulated world from ``start_day`` on.

    Every event leaves the rows before its ``start_day`` byte-identical (all columns, ids included):
    its draws come from its own random stream, and it only touches rows on days >= ``start_day``.
    Use one of the subclasses (``AmountInflation``, ``NewTerminals``, ``CardTesting``, ``ScenarioOff``)
    in ``SimulatorConfig.drift``; ``Simulation.drift_log`` lists them with their start dates.

    Parameters
    ----------
    start_day : int
        First day (``tx_time_days``) the event is in force; ``0 <= start_day < n_days``.
    """

    start_day: int

    def __post_init__(self) -> None:
        if not _is_int(self.start_day) or int(self.start_day) < 0:
            raise ValueError(
                f"{type(self).__name__}.start_day must be a non-negative integer day, got {self.start_day!r}"
            )

    def _params(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "start_day"}


@dataclass(frozen=True, kw_only=True)
class AmountInflation(DriftEvent):
    """From ``start_day`` on, every genuine amount drawn is multiplied by ``factor`` (then rounded to cents).

    Applied to the drawn amount before the fraud scenarios, so S1 (amount > 220) fires more often:
    inflation alone raises the fraud share, and the amounts of S3 frauds (x5) grow too. Amounts of
    ``CardTesting`` rows are the fraudster's and are not inflated. The customers table keeps the
    pre-inflation profiles. Several events compound (their factors multiply).

    Examples
    --------
    >>> AmountInflation(start_day=30, factor=1.1).factor
    1.1
    """

    factor: float = 1.25

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real("AmountInflation.factor", self.factor, low=0.0, low_open=True)


@dataclass(frozen=True, kw_only=True)
class NewTerminals(DriftEvent):
    """A wave of new terminals opens on ``start_day`` at uniform random locations.

    The new terminals get the ids after all existing ones (waves in ``start_day`` order), appear in
    ``Simulation.terminals``, and from ``start_day`` on are reachable by every customer within the
    usual radius (the radius does not shrink, so customers reach more terminals). The terminal choice
    still uses one uniform per transaction, now over the larger set, so customers move part of
    their spending to the new terminals (about ``n_terminals / (n_terminals + existing)``), which have
    no history. New terminals can be compromised by S2 from their opening day, at the usual rate.

    Parameters
    ----------
    n_terminals : int or None
        Size of the wave; ``None`` means 20 % of ``SimulatorConfig.n_terminals`` (at least 1), which
        keeps the wave's weight the same at every preset size.

    Examples
    --------
    >>> NewTerminals(start_day=10, n_terminals=50).n_terminals
    50
    """

    n_terminals: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_terminals is not None:
            _check_positive_int("NewTerminals.n_terminals", self.n_terminals)


@dataclass(frozen=True, kw_only=True)
class CardTesting(DriftEvent):
    """New fraud scenario 4 from ``start_day`` on: card testing.

    Each day from ``start_day``, Binomial(n_customers, ``customers_per_5k_per_day`` / 5000) cards are
    tested by a fraudster. A tested card gets, that day, ``n_small`` tiny charges (count uniform on
    the inclusive range, amounts Uniform(``small_amount``), times uniform in ``small_hours``, all at
    one terminal the customer can reach), then one large charge (Uniform(``large_amount``)) later the
    same day, after the last small one and before midnight, at another uniformly chosen reachable
    terminal (possibly the same one). These are new rows, added to the customer's own transactions, all
    ``tx_fraud == 1`` and ``tx_fraud_scenario == 4``; no other scenario relabels them, and amount
    inflation does not touch them. A card whose customer reaches no terminal that day is not tested.

    Parameters
    ----------
    customers_per_5k_per_day : float
        Expected number of tested cards per day, per 5,000 customers.
    n_small : tuple of int
        Inclusive range of the number of tiny charges (1 <= lo <= hi).
    small_amount : tuple of float
        Range of the tiny amounts (rounded to cents).
    small_hours : tuple of int
        Hours of the day between which the tiny charges fall, ``[lo:00, hi:00)``; ``hi <= 23`` so
        there is room for the large charge.
    large_amount : tuple of float
        Range of the large amount (rounded to cents).

    Examples
    --------
    >>> CardTesting(start_day=20).n_small
    (3, 6)
    """

    customers_per_5k_per_day: float = 3.0
    n_small: tuple[int, int] = (3, 6)
    small_amount: tuple[float, float] = (0.5, 3.0)
    small_hours: tuple[int, int] = (0, 5)
    large_amount: tuple[float, float] = (100.0, 800.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real("CardTesting.customers_per_5k_per_day", self.customers_per_5k_per_day, low=0.0, high=5_000.0)
        _check_range("CardTesting.n_small", self.n_small, low=1, integer=True)
        _check_range("CardTesting.small_amount", self.small_amount, low=0.01)
        _check_range("CardTesting.small_hours", self.small_hours, low=0, high=23, integer=True)
        if self.small_hours[0] == self.small_hours[1]:
            raise ValueError(f"CardTesting.small_hours must be a non-empty range (lo < hi), got {self.small_hours!r}")
        _check_range("CardTesting.large_amount", self.large_amount, low=0.01)


@dataclass(frozen=True, kw_only=True)
class ScenarioOff(DriftEvent):
    """Fraud scenario ``scenario`` (1, 2 or 3) produces no fraud on days >= ``start_day``.

    Precisely: S1 marks no row of day >= ``start_day``; S2 and S3 compromises keep being drawn (so
    every other stream stays put) but none of their rows on days >= ``start_day`` is fraud, and S3 no
    longer multiplies those rows' amounts. Compromises under way on ``start_day`` therefore end that
    day; their earlier rows stay fraud. A row the switched-off scenario would have tagged keeps the
    tag of an earlier scenario that also hit it (S1 under S3, say), or becomes genuine.

    Examples
    --------
    >>> ScenarioOff(start_day=40, scenario=2).scenario
    2
    """

    scenario: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _is_int(self.scenario) or int(self.scenario) not in (1, 2, 3):
            raise ValueError(f"ScenarioOff.scenario must be 1, 2 or 3 (a handbook scenario), got {self.scenario!r}")


_DRIFT_EVENT_TYPES: tuple[type[DriftEvent], ...] = (AmountInflation, NewTerminals, CardTesting, ScenarioOff)
#: Size of a ``NewTerminals`` wave of unspecified size, as a share of ``SimulatorConfig.n_terminals``.
_NEW_TERMINALS_DEFAULT_SHARE = 0.2


def default_drift_schedule(n_days: int) -> tuple[DriftEvent, ...]:
    """An example drift schedule: one event of each kind, spread over the second half of ``n_days``.

    Days ``n_days // 2``: amounts x1.25; ``5/8``: a wave of new terminals (20 % more); ``6/8``: card
    testing starts (scenario 4, 3 cards per 5,000 customers per day); ``7/8``: scenario 2 (compromised
    terminals) stops. The first half stays drift-free, as a reference period for the monitors of
    later modules; events are at least a week apart from ``n_days = 56`` on (``small``: days 35, 43,
    52, 61; ``full``: 91, 114, 137, 160).

    Parameters
    ----------
    n_days : int
        Length of the simulation the schedule is for (>= 8, so that the four days differ).

    Examples
    --------
    >>> [event.start_day for event in default_drift_schedule(183)]
    [91, 114, 137, 160]
    """
    _check_positive_int("n_days", n_days)
    if n_days < 8:
        raise ValueError(f"n_days must be at least 8 for four distinct event days, got {n_days}")
    return (
        AmountInflation(start_day=n_days // 2, factor=1.25),
        NewTerminals(start_day=n_days * 5 // 8),
        CardTesting(start_day=n_days * 6 // 8),
        ScenarioOff(start_day=n_days * 7 // 8, scenario=2),
    )


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
    label_delay : LabelDelay or None
        When labels become known (``tx_label_seconds``); ``None`` means at transaction time, the
        handbook's implicit assumption, used to reproduce its numbers.
    drift : tuple of DriftEvent
        Drift events (``AmountInflation``, ``NewTerminals``, ``CardTesting``, ``ScenarioOff``), in
        any order; a tuple so the config stays hashable. See ``default_drift_schedule``.

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
    label_delay: LabelDelay | None = field(default_factory=LabelDelay)
    drift: tuple[DriftEvent, ...] = ()
    # Later issues add faults here. Every field is keyword-only with a default, so new fields slot in
    # without breaking existing callers; each new random component gets a new _Stream key so existing
    # data sets keep their bytes.

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
        if self.label_delay is not None and not isinstance(self.label_delay, LabelDelay):
            raise ValueError(
                f"label_delay must be a LabelDelay or None, got {type(self.label_delay).__name__}: "
                "pass LabelDelay(...), or None for labels known at transaction time"
            )
        if not isinstance(self.drift, tuple):
            raise ValueError(
                f"drift must be a tuple of drift events, got {type(self.drift).__name__}: pass tuple(events)"
            )
        for i, event in enumerate(self.drift):
            if type(event) not in _DRIFT_EVENT_TYPES:
                names = ", ".join(t.__name__ for t in _DRIFT_EVENT_TYPES)
                raise ValueError(f"drift[{i}] must be one of {names}, got {type(event).__name__}")
            if event.start_day >= self.n_days:
                raise ValueError(
                    f"drift[{i}] {type(event).__name__}: start_day={event.start_day} is beyond the simulation "
                    f"(days 0..{self.n_days - 1}): pass start_day < n_days={self.n_days}"
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
        ``customer_id, x, y, mean_amount, std_amount, mean_daily_tx`` (profiles before any drift).
    terminals : pandas.DataFrame
        ``terminal_id, x, y``; terminals of ``NewTerminals`` waves follow the original ones.
    transactions : pandas.DataFrame
        Columns ``COLUMNS``, sorted by time; ``transaction_id`` is 0..n-1 and equals the index.
    drift_log : pandas.DataFrame
        The config's drift events with their start days (a property; see below).
    """

    config: SimulatorConfig
    customers: pd.DataFrame
    terminals: pd.DataFrame
    transactions: pd.DataFrame

    @property
    def drift_log(self) -> pd.DataFrame:
        """The drift events of the config, one row each, by start day: the ground truth for monitors.

        Columns ``event`` (class name), ``start_day``, ``start_datetime`` (midnight starting that day)
        and ``params`` (the event's parameters as readable text; for ``NewTerminals`` also the ids
        of the wave, for ``CardTesting`` its ``tx_fraud_scenario``). Events on the same day keep
        their order in ``config.drift``.

        Examples
        --------
        >>> sim = simulate(preset("tiny", drift=(ScenarioOff(start_day=20, scenario=3),)))
        >>> sim.drift_log[["event", "start_day", "params"]].to_dict("records")
        [{'event': 'ScenarioOff', 'start_day': 20, 'params': 'scenario=3'}]
        """
        drift = self.config.drift
        ordinals = _ordinals(drift)
        order = sorted(range(len(drift)), key=lambda i: drift[i].start_day)
        waves = {(wave.start_day, wave.ordinal): wave for wave in _terminal_waves(self.config)}
        events, params = [], []
        for i in order:
            event = drift[i]
            values = event._params()
            if isinstance(event, NewTerminals):
                wave = waves[(event.start_day, ordinals[i])]
                values["n_terminals"] = wave.n_terminals
                values["terminal_ids"] = f"{wave.first_id}..{wave.first_id + wave.n_terminals - 1}"
            elif isinstance(event, CardTesting):
                values["tx_fraud_scenario"] = CARD_TESTING_SCENARIO
            events.append(event)
            params.append(", ".join(f"{name}={value!r}" for name, value in values.items()))
        start_day = np.array([event.start_day for event in events], dtype=np.int64)
        start = np.datetime64(self.config.start_date, "D")
        return pd.DataFrame(
            {
                "event": pd.Series([type(event).__name__ for event in events], dtype=object),
                "start_day": start_day,
                "start_datetime": (start + start_day.astype("timedelta64[D]")).astype(_DATETIME_DTYPE),
                "params": pd.Series(params, dtype=object),
            }
        )

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
        Sizes, seed, fraud scenarios, label delay and drift; see ``PRESETS`` and ``preset`` for ready-made ones.

    Returns
    -------
    Simulation
        Transactions sorted by ``(tx_time_seconds, customer_id)``, ties in generation order (rows
        added by drift events after the others).

    Examples
    --------
    >>> sim = simulate(preset("tiny"))
    >>> sim.transactions.transaction_id.is_monotonic_increasing
    True
    >>> bool(0 < sim.transactions.tx_fraud.mean() < 0.05)
    True
    """
    started = time.perf_counter()
    waves = _terminal_waves(config)
    customers = _simulate_customers(config)
    terminals = _simulate_terminals(config, waves)
    network = _network(config, customers, terminals, waves)
    tx = _simulate_genuine(config, customers, network)

    # Fraud scenarios run on the genuine rows only, before any drift rows are added: S3 picks among
    # a customer's genuine transactions, so card-testing rows cannot change which earlier rows it picks.
    fraud = config.fraud
    day = tx["day"]
    off = _scenario_off_days(config)
    scenario = np.zeros(tx["amount"].size, dtype=np.int8)
    if fraud.s1:
        scenario[(tx["amount"] > fraud.s1_amount_threshold) & (day < off[1])] = 1
    if fraud.s2:
        scenario[_s2_mask(config, tx["terminal"], day) & (day < off[2])] = 2
    if fraud.s3:
        picked = _s3_pick(config, tx["customer"], day) & (day < off[3])
        tx["amount"][picked] = np.round(tx["amount"][picked] * fraud.s3_amount_factor, 2)
        scenario[picked] = 3
    tx["scenario"] = scenario

    tx = _add_card_testing(config, network, tx)
    transactions = _transactions_frame(config, tx)
    logger.info(
        "simulated %d transactions over %d days (%.3f%% fraud) in %.2f s",
        len(transactions),
        config.n_days,
        100 * transactions["tx_fraud"].mean() if len(transactions) else 0.0,
        time.perf_counter() - started,
    )
    return Simulation(config=config, customers=customers, terminals=terminals, transactions=transactions)


# ---------------------------------------------------------------------------------------------------
# Drift bookkeeping
# ---------------------------------------------------------------------------------------------------


def _ordinals(events: tuple[DriftEvent, ...]) -> list[int]:
    """For each event, its rank among the events of the same type and start day, ordered by their ``repr``.

    ``(start_day, ordinal)`` names an event's random stream (and a wave's id range). Ranking by content
    rather than by position in the tuple makes the output independent of the tuple's order; identical
    events are interchangeable, so their tie order does not matter, yet each still gets its own stream.
    Adding an event can only re-rank events of its own type and start day, whose rows start that day too.
    """
    groups: dict[tuple[type[DriftEvent], int], list[int]] = {}
    for i, event in enumerate(events):
        groups.setdefault((type(event), event.start_day), []).append(i)
    ordinals = [0] * len(events)
    for members in groups.values():
        for rank, i in enumerate(sorted(members, key=lambda i: repr(events[i]))):
            ordinals[i] = rank
    return ordinals


def _event_rng(config: SimulatorConfig, stream: _Stream, start_day: int, ordinal: int) -> np.random.Generator:
    return np.random.default_rng([config.random_state, int(stream), start_day, ordinal])


@dataclass(frozen=True)
class _Wave:
    """A resolved ``NewTerminals`` event: its terminals have ids ``first_id .. first_id + n_terminals - 1``."""

    start_day: int
    ordinal: int
    first_id: int
    n_terminals: int


def _terminal_waves(config: SimulatorConfig) -> list[_Wave]:
    """The ``NewTerminals`` waves in ``(start_day, ordinal)`` order, with their id ranges.

    Ids follow that order, not the tuple's, so a wave added later in time never renumbers an earlier one.
    """
    events = [
        (event.start_day, ordinal, event)
        for event, ordinal in zip(config.drift, _ordinals(config.drift), strict=True)
        if isinstance(event, NewTerminals)
    ]
    waves = []
    first_id = config.n_terminals
    for start_day, ordinal, event in sorted(events, key=lambda item: item[:2]):
        n = event.n_terminals
        if n is None:
            n = max(1, round(_NEW_TERMINALS_DEFAULT_SHARE * config.n_terminals))
        waves.append(_Wave(start_day=start_day, ordinal=ordinal, first_id=first_id, n_terminals=n))
        first_id += n
    return waves


def _scenario_off_days(config: SimulatorConfig) -> dict[int, int]:
    """First day each handbook scenario is switched off by a ``ScenarioOff`` event (``n_days`` if never)."""
    off = dict.fromkeys((1, 2, 3), config.n_days)
    for event in config.drift:
        if isinstance(event, ScenarioOff):
            off[event.scenario] = min(off[event.scenario], event.start_day)
    return off


def _amount_factor_by_day(config: SimulatorConfig) -> npt.NDArray[np.float64] | None:
    """The product of the ``AmountInflation`` factors in force on each day, or ``None`` without inflation."""
    events = [event for event in config.drift if isinstance(event, AmountInflation)]
    if not events:
        return None
    factor = np.ones(config.n_days)
    for event in events:
        factor[event.start_day :] *= event.factor
    return factor


# ---------------------------------------------------------------------------------------------------
# Entities and the customer-terminal network
# ---------------------------------------------------------------------------------------------------


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


def _simulate_terminals(config: SimulatorConfig, waves: list[_Wave]) -> pd.DataFrame:
    rng = _rng(config.random_state, _Stream.TERMINALS)
    blocks = [rng.uniform(0.0, _SQUARE_SIDE, size=(config.n_terminals, 2))]
    # Each wave draws its locations from its own stream, so waves are independent of each other.
    for wave in waves:
        wave_rng = _event_rng(config, _Stream.NEW_TERMINALS, wave.start_day, wave.ordinal)
        blocks.append(wave_rng.uniform(0.0, _SQUARE_SIDE, size=(wave.n_terminals, 2)))
    xy = np.concatenate(blocks)
    return pd.DataFrame({"terminal_id": np.arange(len(xy), dtype=np.int32), "x": xy[:, 0], "y": xy[:, 1]})


@dataclass(frozen=True)
class _Network:
    """Which terminals each customer reaches on each day.

    ``reachable[offsets[c]:offsets[c + 1]]`` are the terminals customer ``c`` ever reaches, sorted by
    id. Since waves take ids in opening order, the terminals open on day ``d`` are a prefix of that
    list, of length ``n_reachable[epoch_of_day[d], c]``: epoch ``e`` is the period after the first
    ``e`` waves opened.
    """

    offsets: npt.NDArray[np.int64]
    reachable: npt.NDArray[np.int32]
    n_reachable: npt.NDArray[np.int64]
    epoch_of_day: npt.NDArray[np.intp]

    def n_reachable_on(self, day: npt.NDArray[Any], customer: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        if len(self.n_reachable) == 1:  # no waves: skip the per-row day lookup
            return self.n_reachable[0][customer]
        return self.n_reachable[self.epoch_of_day[day], customer]


def _reachable_terminals(
    customers: pd.DataFrame, terminals: pd.DataFrame, radius: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Terminals within ``radius`` of each customer, CSR-style.

    Returns ``offsets`` (n_customers + 1) and a flat ``reachable`` array: customer ``c`` reaches
    ``reachable[offsets[c]:offsets[c + 1]]``, sorted by terminal id so that the terminal drawn for a
    given uniform number is reproducible. Ids are row positions in ``terminals``.
    """
    tree = cKDTree(terminals[["x", "y"]].to_numpy())
    lists = tree.query_ball_point(customers[["x", "y"]].to_numpy(), r=radius, return_sorted=True)
    counts = np.fromiter((len(ids) for ids in lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    reachable = np.fromiter((t for ids in lists for t in ids), dtype=np.int32, count=int(offsets[-1]))
    return offsets, reachable


def _network(config: SimulatorConfig, customers: pd.DataFrame, terminals: pd.DataFrame, waves: list[_Wave]) -> _Network:
    radius = _radius(config)
    offsets, reachable = _reachable_terminals(customers, terminals.iloc[: config.n_terminals], radius)
    if waves:
        # The original terminals are searched exactly as without waves (a tree over more points could
        # decide a boundary case differently), the new ones in a tree of their own; the lists are then
        # joined per customer. New ids are all larger, so each joined list stays sorted.
        new_offsets, new_reachable = _reachable_terminals(customers, terminals.iloc[config.n_terminals :], radius)
        offsets, reachable = _join_csr(offsets, reachable, new_offsets, new_reachable + np.int32(config.n_terminals))
    # Terminals open in epoch e: ids below bounds[e]; the count per customer is a difference of cumulative sums.
    bounds = np.cumsum([config.n_terminals] + [wave.n_terminals for wave in waves])
    n_reachable = np.empty((len(bounds), config.n_customers), dtype=np.int64)
    for e, bound in enumerate(bounds):
        below = np.zeros(reachable.size + 1, dtype=np.int64)
        np.cumsum(reachable < bound, out=below[1:])
        n_reachable[e] = below[offsets[1:]] - below[offsets[:-1]]
    starts = np.array([wave.start_day for wave in waves], dtype=np.int64)
    epoch_of_day = np.searchsorted(starts, np.arange(config.n_days), side="right")
    return _Network(offsets=offsets, reachable=reachable, n_reachable=n_reachable, epoch_of_day=epoch_of_day)


def _join_csr(
    offsets_a: npt.NDArray[np.int64],
    values_a: npt.NDArray[np.int32],
    offsets_b: npt.NDArray[np.int64],
    values_b: npt.NDArray[np.int32],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Row-wise concatenation of two CSR lists with the same rows: row ``c`` is ``a[c]`` then ``b[c]``."""
    counts_a, counts_b = np.diff(offsets_a), np.diff(offsets_b)
    offsets = np.zeros_like(offsets_a)
    np.cumsum(counts_a + counts_b, out=offsets[1:])
    values = np.empty(values_a.size + values_b.size, dtype=np.int32)
    rows = np.arange(counts_a.size)
    row_a, row_b = np.repeat(rows, counts_a), np.repeat(rows, counts_b)
    values[np.arange(values_a.size) - offsets_a[row_a] + offsets[row_a]] = values_a
    values[np.arange(values_b.size) - offsets_b[row_b] + offsets[row_b] + counts_a[row_b]] = values_b
    return offsets, values


def _pick_terminal(
    network: _Network, u: npt.NDArray[np.float64], day: npt.NDArray[Any], customer: npt.NDArray[Any]
) -> npt.NDArray[np.int32]:
    """The terminal a uniform ``u`` selects among those ``customer`` reaches on ``day`` (at least one)."""
    n_reachable = network.n_reachable_on(day, customer)
    # floor(u * count) keeps one uniform per transaction whatever the number of reachable terminals.
    # The clip guards the float edge case u * count rounding up to count.
    slot = np.minimum(np.floor(u * n_reachable).astype(np.int64), n_reachable - 1)
    return network.reachable[network.offsets[customer] + slot]


# ---------------------------------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------------------------------


def _label_delay_seconds(
    delay: LabelDelay, u: npt.NDArray[np.float64], fraud: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Each row's label delay in whole seconds, from its three uniforms (``u`` has shape (n, 3)) and its label."""
    days = delay.genuine_days + delay.genuine_jitter_days * u[:, 2]
    rows = np.flatnonzero(fraud)  # about 1 % of rows: the exponential is computed for those only
    fast = -delay.fraud_fast_mean_days * np.log1p(-u[rows, 1])  # inversion; u < 1 keeps it finite
    slow = delay.fraud_slow_min_days + (delay.fraud_slow_max_days - delay.fraud_slow_min_days) * u[rows, 2]
    days[rows] = np.where(u[rows, 0] < delay.fraud_fast_share, fast, slow)
    return np.rint(days * _SECONDS_PER_DAY).astype(np.int64)


def _simulate_genuine(
    config: SimulatorConfig, customers: pd.DataFrame, network: _Network
) -> dict[str, npt.NDArray[Any]]:
    """Draw the genuine transactions and return them sorted by time, as column arrays.

    Every draw is laid out in generation order (day, then customer, then the customer's k-th
    transaction of the day), so rows of day ``d`` use only a prefix of each stream: anything a later
    change does from day ``d`` on cannot move the draws of earlier days. Drift enters per day (the
    amount factor, the terminals open that day), never through the number of draws.
    """
    n_days, n_customers = config.n_days, config.n_customers
    mean_amount = customers["mean_amount"].to_numpy()
    std_amount = customers["std_amount"].to_numpy()

    # Shape (days, customers) whatever the terminals: counts are drawn even for customers with no
    # reachable terminal, then zeroed, so the terminal layout cannot shift the count stream.
    counts = _rng(config.random_state, _Stream.COUNTS).poisson(
        customers["mean_daily_tx"].to_numpy(), size=(n_days, n_customers)
    )
    counts[network.n_reachable[network.epoch_of_day] == 0] = 0
    n_candidates = int(counts.sum())

    customer = np.repeat(np.tile(np.arange(n_customers, dtype=np.int32), n_days), counts.ravel())
    day = np.repeat(np.arange(n_days, dtype=np.int32), counts.sum(axis=1))

    seed = config.random_state
    seconds = np.rint(_rng(seed, _Stream.TIMES).normal(_TIME_OF_DAY_MEAN, _TIME_OF_DAY_STD, n_candidates))
    amount = mean_amount[customer] + std_amount[customer] * _rng(seed, _Stream.AMOUNTS).standard_normal(n_candidates)
    fallback = 2 * mean_amount[customer] * _rng(seed, _Stream.AMOUNT_FALLBACK).random(n_candidates)
    amount = np.where(amount < 0, fallback, amount)
    factor = _amount_factor_by_day(config)
    if factor is not None:
        amount *= factor[day]  # x1.0 before the first inflation leaves those amounts bit for bit
    amount = np.round(amount, 2)
    u = _rng(seed, _Stream.TERMINAL_CHOICE).random(n_candidates)
    terminal = _pick_terminal(network, u, day, customer)
    delay_u = None if config.label_delay is None else _rng(seed, _Stream.LABEL_DELAY).random((n_candidates, 3))

    # Dropped, not redrawn: every candidate consumed its draws above, so the streams stay aligned.
    keep = (seconds > 0) & (seconds < _SECONDS_PER_DAY)
    customer, day, amount, terminal = customer[keep], day[keep], amount[keep], terminal[keep]
    time_seconds = day.astype(np.int64) * _SECONDS_PER_DAY + seconds[keep].astype(np.int64)

    # Stable sort on (time, customer): equal keys (same customer, same second) keep generation order.
    order = np.argsort(time_seconds * n_customers + customer, kind="stable")
    tx = {
        "customer": customer[order],
        "day": day[order],
        "amount": amount[order],
        "terminal": terminal[order],
        "time_seconds": time_seconds[order],
    }
    if delay_u is not None:
        tx["delay_u"] = delay_u[np.flatnonzero(keep)[order]]
    return tx


def _s2_starts(config: SimulatorConfig) -> npt.NDArray[np.int32]:
    """Scenario-2 compromises: a (terminals x days) matrix, 1 where a compromise starts.

    Terminals of ``NewTerminals`` waves are rows too, and can be compromised from their opening day.
    """
    rng = _rng(config.random_state, _Stream.S2)
    waves = _terminal_waves(config)
    n_total = config.n_terminals + sum(wave.n_terminals for wave in waves)
    open_by_day = np.full(config.n_days, config.n_terminals, dtype=np.int64)
    for wave in waves:
        open_by_day[wave.start_day :] += wave.n_terminals
    started = np.zeros((n_total, config.n_days), dtype=np.int32)
    p = config.fraud.s2_terminals_per_10k_per_day / 10_000
    # One draw pair per day, in day order, so a change from day d on cannot alter earlier compromises.
    for d in range(config.n_days):
        n_open = int(open_by_day[d])
        k = rng.binomial(n_open, p)
        started[rng.choice(n_open, size=k, replace=False), d] = 1
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
    """Rows picked by scenario 3; the caller multiplies their amount and tags them.

    The pick depends only on which rows exist (customer and day), not on amounts or terminals, so
    amount inflation and new terminals cannot change it; drift rows are added after it ran.
    """
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


def _card_testing_rows(
    config: SimulatorConfig, network: _Network, event: CardTesting, ordinal: int
) -> dict[str, npt.NDArray[Any]]:
    """The rows of one ``CardTesting`` event, as column arrays (unsorted).

    The event's stream is laid out day by day from its start; each day's draws have fixed shapes
    given the day's own draws (victims, then their numbers of small charges), so rows of day ``d``
    depend on nothing after ``d``. Everything is drawn before victims without a reachable terminal
    are dropped, and label-delay uniforms are drawn whether or not the config uses them.
    """
    rng = _event_rng(config, _Stream.CARD_TESTING, event.start_day, ordinal)
    p = event.customers_per_5k_per_day / 5_000
    lo_hour, hi_hour = event.small_hours
    first_second, end_second = max(1, lo_hour * 3600), hi_hour * 3600
    victims, days, n_small, small_amount, small_time = [], [], [], [], []
    large_amount, large_u, terminal_u, small_delay_u, large_delay_u = [], [], [], [], []
    for d in range(event.start_day, config.n_days):
        k = rng.binomial(config.n_customers, p)
        victims.append(rng.choice(config.n_customers, size=k, replace=False))
        days.append(np.full(k, d, dtype=np.int32))
        n = rng.integers(event.n_small[0], event.n_small[1] + 1, size=k)
        n_small.append(n)
        total = int(n.sum())
        small_amount.append(rng.uniform(*event.small_amount, size=total))
        small_time.append(rng.integers(first_second, end_second, size=total))
        large_amount.append(rng.uniform(*event.large_amount, size=k))
        large_u.append(rng.random(k))
        terminal_u.append(rng.random((k, 2)))
        delay_u = rng.random((total + k, 3))
        small_delay_u.append(delay_u[:total])
        large_delay_u.append(delay_u[total:])

    # One entry per victim (v_*), then one per small charge (s_*), kept in day order.
    v_customer = np.concatenate(victims).astype(np.int32)
    v_day = np.concatenate(days)
    v_n = np.concatenate(n_small)
    s_owner = np.repeat(np.arange(v_customer.size), v_n)
    s_time = np.concatenate(small_time).astype(np.int64)
    # The large charge comes after the victim's last small one, uniformly up to 23:59:59.
    v_last = np.full(v_customer.size, -1, dtype=np.int64)
    np.maximum.at(v_last, s_owner, s_time)
    v_time = v_last + 1 + np.floor(np.concatenate(large_u) * (_SECONDS_PER_DAY - 1 - v_last)).astype(np.int64)
    v_terminal_u = np.concatenate(terminal_u).reshape(-1, 2)
    reachable = network.n_reachable_on(v_day, v_customer) > 0
    small_terminal = np.zeros(v_customer.size, dtype=np.int32)
    large_terminal = np.zeros(v_customer.size, dtype=np.int32)
    if reachable.any():
        small_terminal[reachable] = _pick_terminal(
            network, v_terminal_u[reachable, 0], v_day[reachable], v_customer[reachable]
        )
        large_terminal[reachable] = _pick_terminal(
            network, v_terminal_u[reachable, 1], v_day[reachable], v_customer[reachable]
        )
    rows = {
        "customer": np.concatenate([v_customer[s_owner], v_customer]),
        "day": np.concatenate([v_day[s_owner], v_day]),
        "amount": np.round(np.concatenate([*small_amount, *large_amount]), 2),
        "terminal": np.concatenate([small_terminal[s_owner], large_terminal]),
        "time_seconds": np.concatenate(
            [
                v_day[s_owner].astype(np.int64) * _SECONDS_PER_DAY + s_time,
                v_day.astype(np.int64) * _SECONDS_PER_DAY + v_time,
            ]
        ),
        "scenario": np.full(s_owner.size + v_customer.size, CARD_TESTING_SCENARIO, dtype=np.int8),
    }
    keep = np.concatenate([reachable[s_owner], reachable])
    rows = {name: values[keep] for name, values in rows.items()}
    if config.label_delay is not None:
        rows["delay_u"] = np.concatenate([*small_delay_u, *large_delay_u])[keep]
    return rows


def _add_card_testing(
    config: SimulatorConfig, network: _Network, tx: dict[str, npt.NDArray[Any]]
) -> dict[str, npt.NDArray[Any]]:
    """Append the rows of every ``CardTesting`` event to ``tx`` and restore the time order.

    The added rows all lie on or after their event's start day and go after the existing rows in a
    stable sort, so every earlier row keeps its position, hence its ``transaction_id``.
    """
    events = [
        (event, ordinal)
        for event, ordinal in zip(config.drift, _ordinals(config.drift), strict=True)
        if isinstance(event, CardTesting)
    ]
    if not events:
        return tx
    parts = [tx] + [_card_testing_rows(config, network, event, ordinal) for event, ordinal in events]
    merged = {name: np.concatenate([part[name] for part in parts]) for name in tx}
    order = np.argsort(merged["time_seconds"] * config.n_customers + merged["customer"], kind="stable")
    return {name: values[order] for name, values in merged.items()}


def _transactions_frame(config: SimulatorConfig, tx: dict[str, npt.NDArray[Any]]) -> pd.DataFrame:
    n = tx["amount"].size
    scenario = tx["scenario"]
    fraud = scenario > 0
    if config.label_delay is None:
        label_seconds = tx["time_seconds"].copy()
    else:
        label_seconds = tx["time_seconds"] + _label_delay_seconds(config.label_delay, tx["delay_u"], fraud)
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
            "tx_fraud": fraud.astype(np.int8),
            "tx_fraud_scenario": scenario,
            "tx_label_seconds": label_seconds.astype(np.int64, copy=False),
        },
        columns=list(COLUMNS),
    )
