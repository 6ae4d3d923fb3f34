"""Features computed from transactions: the course's 15, as scikit-learn compatible transformers.

The handbook's feature set, made point-in-time correct under delayed labels and exact at the edges.
Below, ``t`` is a transaction's ``tx_time_seconds``, ``D = 86400`` seconds, ``d`` is ``delay_days``
(7 by default) and ``w`` a window length in days (1, 7 and 30 by default).

Order of transactions
    Transactions are ordered by ``(tx_time_seconds, transaction_id)``; the simulator's ids follow time,
    so this is the order in which they arrive. "Up to and including transaction i" means every
    transaction at or before i in that order: a same-second transaction with a smaller id is in, one
    with a larger id is out (it has not arrived when i is scored, so the online path cannot see it).
Customer windows (``CustomerWindows``)
    Over the same customer's transactions with time in ``(t - w*D, t]``, up to and including the
    current one: ``customer_id_nb_tx_{w}day_window`` is their count (at least 1: the current one) and
    ``customer_id_avg_amount_{w}day_window`` the mean of their ``tx_amount``. A transaction exactly
    ``w`` days before the current one is out; one a second later is in.
Terminal windows (``TerminalWindows``)
    Let ``as_of = t - d*D``: the terminal's history is used as it was known at ``as_of``. Over the same
    terminal's transactions with time in ``(as_of - w*D, as_of]`` (the customer window, moved back by
    the delay), ``terminal_id_nb_tx_{w}day_window`` is their count and
    ``terminal_id_risk_{w}day_window`` the number of them *known as fraud at* ``as_of``
    (``tx_fraud == 1`` and label time ``<= as_of``, the rule of
    :func:`mlsys_lab.data.labels.labels_known_at`), divided by the count, or 0.0 when the count is 0.
    A transaction is seen when it happens, so the count needs no label; a label not known yet counts
    as not fraud, as it must in production. Hence the leakage property the tests check: nothing that
    happens, and no label that becomes known, after ``as_of`` can change the features at ``t``. With
    ``d = 0`` the window ends at the current transaction and includes it, and its own label if known
    at once: that is the leak the delay exists to prevent, kept expressible so tests can show it.
Amount and flags
    ``tx_amount`` as is; ``tx_during_weekend`` (Saturday or Sunday) and ``tx_during_night`` (00:00 to
    06:59) from ``tx_datetime`` (``TimeFlags``).

``FEATURE_COLUMNS`` lists the 15 in their fixed order: amount, the two flags, the customer windows
(count, mean per window) and the terminal windows (count, risk per window). The output is float64.
Scenario tags (``tx_fraud_scenario``), labels and raw ids (``transaction_id``, ``customer_id``,
``terminal_id``) are inputs to the windows, never features.

Labels and their times
    The label time column (``tx_label_seconds`` by default) holds, in seconds since the simulation start
    like ``tx_time_seconds``, when each row's label becomes known; a missing value means "not known
    within the data". Labels known at transaction time (``tx_label_seconds = tx_time_seconds``)
    reproduce the handbook's features, which assume every label in the delayed window is known.

How to use them
    Window features need history, so ``transform`` computes on the frame it is given, which must hold
    the history the windows reach back to (30 days for customers, ``d`` + 30 for terminals); the first
    rows of a frame have truncated windows. The usual pattern: compute the features once on the whole
    stream (point-in-time correct by construction, so no row sees its future), then split by time
    (:func:`mlsys_lab.data.split.split_by_time`) and fit the model on the training rows' features.
    The transformers learn nothing in ``fit`` (it checks parameters and columns), so fitting them on
    training rows only, as a pipeline does, cannot leak. The online path
    (:class:`mlsys_lab.data.online.OnlineFeatureState`) computes the same values one transaction at a
    time for the API.

Implementation
    Vectorised with NumPy, no per-group Python: rows are sorted once by ``(entity, time, id)``, each
    window's first row is found with ``np.searchsorted`` on one int64 key ``entity * span + time``,
    counts are differences of positions and sums are differences of per-entity cumulative sums.
    The known-fraud count is exact too: a fraud at time ``s`` whose label is known at ``L`` counts for
    an ``as_of`` in ``[max(s, L), s + w*D)``, an interval, so the number of frauds counting at ``as_of``
    is (intervals started by ``as_of``) minus (intervals ended by ``as_of``), two more searches.

Examples
--------
>>> tx = pd.DataFrame(
...     {
...         "transaction_id": [0, 1, 2],
...         "tx_datetime": pd.to_datetime(["2018-04-01 10:00", "2018-04-09 10:00", "2018-04-10 09:00"]),
...         "customer_id": [0, 0, 0],
...         "terminal_id": [5, 5, 5],
...         "tx_amount": [10.0, 20.0, 60.0],
...         "tx_time_seconds": [36_000, 727_200, 810_000],
...         "tx_fraud": [1, 0, 0],
...         "tx_label_seconds": [36_000, 3_000_000, 3_000_000],
...     }
... )
>>> features = build_features(tx)
>>> features["customer_id_avg_amount_1day_window"].tolist()
[10.0, 20.0, 40.0]
>>> features["terminal_id_risk_7day_window"].tolist()  # the day-0 fraud is 8 and 9 days back
[0.0, 1.0, 1.0]
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "CUSTOMER_COLUMNS",
    "DEFAULT_DELAY_DAYS",
    "DEFAULT_WINDOWS",
    "FEATURE_COLUMNS",
    "LABEL_TIME_COLUMN",
    "NIGHT_LAST_HOUR",
    "SECONDS_PER_DAY",
    "TERMINAL_COLUMNS",
    "CustomerWindows",
    "FeatureBuilder",
    "TerminalWindows",
    "TimeFlags",
    "build_features",
    "customer_feature_names",
    "terminal_feature_names",
]

logger = logging.getLogger(__name__)

#: A transaction is at night when its hour of day is at most this (00:00 to 06:59), as in the handbook.
NIGHT_LAST_HOUR = 6
SECONDS_PER_DAY = 86_400
#: Window lengths in days, for customers and terminals alike.
DEFAULT_WINDOWS: tuple[int, ...] = (1, 7, 30)
#: Days between a transaction and the end of its terminal windows: the handbook's label delay.
DEFAULT_DELAY_DAYS = 7
#: Seconds since the simulation start at which a row's label is known (see ``mlsys_lab.data.labels``).
LABEL_TIME_COLUMN = "tx_label_seconds"

# Input columns, as the simulator names them.
_ID = "transaction_id"
_TIME = "tx_time_seconds"
_DATETIME = "tx_datetime"
_AMOUNT = "tx_amount"
_CUSTOMER = "customer_id"
_TERMINAL = "terminal_id"
_FRAUD = "tx_fraud"


def customer_feature_names(windows: Sequence[int] = DEFAULT_WINDOWS) -> tuple[str, ...]:
    """Names of the customer-window features, count then mean amount for each window, in order."""
    return tuple(
        name for w in windows for name in (f"customer_id_nb_tx_{w}day_window", f"customer_id_avg_amount_{w}day_window")
    )


def terminal_feature_names(windows: Sequence[int] = DEFAULT_WINDOWS) -> tuple[str, ...]:
    """Names of the terminal-window features, count then risk for each window, in order."""
    return tuple(
        name for w in windows for name in (f"terminal_id_nb_tx_{w}day_window", f"terminal_id_risk_{w}day_window")
    )


_FLAG_COLUMNS: tuple[str, ...] = ("tx_during_weekend", "tx_during_night")
CUSTOMER_COLUMNS: tuple[str, ...] = customer_feature_names()
TERMINAL_COLUMNS: tuple[str, ...] = terminal_feature_names()
#: The 15 features of the course, in the order models and the API use them.
FEATURE_COLUMNS: tuple[str, ...] = (_AMOUNT, *_FLAG_COLUMNS, *CUSTOMER_COLUMNS, *TERMINAL_COLUMNS)


def _require_columns(owner: str, X: pd.DataFrame, columns: Sequence[str], hint: str = "") -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{owner} needs a pandas DataFrame of transactions, got {type(X).__name__}")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(f"{owner} needs column(s) {missing}; got columns {list(X.columns)}{hint}")


def _is_whole(value: object, minimum: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= minimum


def _check_windows(owner: str, windows: object) -> tuple[int, ...]:
    if (
        not isinstance(windows, Sequence)
        or isinstance(windows, str)
        or len(windows) == 0
        or not all(_is_whole(w, 1) for w in windows)
    ):
        raise ValueError(f"{owner}: windows must be a non-empty sequence of whole days >= 1, got {windows!r}")
    return tuple(int(w) for w in windows)


def _check_delay(owner: str, delay_days: object) -> int:
    if not _is_whole(delay_days, 0):
        raise ValueError(f"{owner}: delay_days must be a whole number of days >= 0, got {delay_days!r}")
    return int(delay_days)  # type: ignore[call-overload]


def _as_seconds(values: pd.Series, name: str) -> npt.NDArray[np.int64]:
    """A time column as int64 seconds; refuses fractions and missing values rather than rounding them."""
    array = values.to_numpy()
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    as_float = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.floor(as_float)):
        raise ValueError(f"{name} must hold whole seconds with no missing values")
    return as_float.astype(np.int64)


def _label_seconds(values: pd.Series) -> npt.NDArray[np.float64]:
    """Label times as float seconds, ``inf`` where the label is not known within the data.

    A label known at a fractional second ``L`` is known at the whole second ``ceil(L)`` and not before,
    so rounding up keeps ``L <= as_of`` exact for whole-second ``as_of``.
    """
    as_float = np.ceil(np.asarray(pd.to_numeric(values), dtype=np.float64))
    return np.where(np.isnan(as_float), np.inf, as_float)


def _time_order(time: npt.NDArray[np.int64], tx_id: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Positions sorting rows by ``(time, id)``; the simulator's frames already are, which is cheap to check."""
    later = time[1:] > time[:-1]
    if np.all(later | ((time[1:] == time[:-1]) & (tx_id[1:] > tx_id[:-1]))):
        return np.arange(time.size)
    return np.lexsort((tx_id, time))


class _SortedGroups:
    """Rows sorted by ``(entity, time, id)`` with a searchable int64 key per row.

    ``key(code, v) = code * span + clip(v, low, high) - low`` with ``low`` one second before the first
    transaction and ``high`` one after the last: every query and every row of one entity falls in that
    entity's own band of keys, so one ``searchsorted`` answers "first row of this entity after time v"
    for all rows at once. Clipping changes no answer: no row lies outside ``[low + 1, high - 1]``.
    """

    def __init__(self, entity: npt.NDArray[np.int64], time: npt.NDArray[np.int64], tx_id: npt.NDArray[np.int64]):
        n = time.size
        by_time = _time_order(time, tx_id)
        # A stable sort by entity keeps the (time, id) order within each entity.
        self.order = by_time[np.argsort(entity[by_time], kind="stable")]
        self.time = time[self.order]
        sorted_entity = entity[self.order]
        new_group = np.empty(n, dtype=bool)
        new_group[:1] = True
        np.not_equal(sorted_entity[1:], sorted_entity[:-1], out=new_group[1:])
        self.code = np.cumsum(new_group) - 1
        self.group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
        self.low = int(self.time.min()) - 1 if n else 0
        self.high = int(self.time.max()) + 1 if n else 0
        self.span = self.high - self.low + 1
        self.keys = self.key(self.code, self.time)
        self.position = np.arange(n)

    def key(self, code: npt.NDArray[np.int64], value: npt.NDArray[np.int64 | np.float64]) -> npt.NDArray[np.int64]:
        clipped = np.clip(value, self.low, self.high).astype(np.int64)
        return code.astype(np.int64) * self.span + (clipped - self.low)

    def rows_up_to(self, value: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """For each row, the end (exclusive) of its entity's rows with time <= ``value`` of that row."""
        return np.searchsorted(self.keys, self.key(self.code, value), side="right")

    def scatter(self, sorted_values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Put values computed in sorted order back in the input's row order."""
        out = np.empty_like(sorted_values)
        out[self.order] = sorted_values
        return out


def _customer_windows(X: pd.DataFrame, windows: tuple[int, ...]) -> dict[str, npt.NDArray[np.float64]]:
    groups = _SortedGroups(
        X[_CUSTOMER].to_numpy().astype(np.int64),
        _as_seconds(X[_TIME], _TIME),
        X[_ID].to_numpy().astype(np.int64),
    )
    amount = X[_AMOUNT].to_numpy(dtype=np.float64)[groups.order]
    # Cumulative sums restart at each customer: over the whole frame they would grow to ~1e8 and lose
    # the cents of a one-day window to rounding.
    cumulative = pd.Series(amount).groupby(groups.code, sort=False).cumsum().to_numpy()
    end = groups.position + 1  # the window ends at the current row, ties with larger ids excluded
    out: dict[str, npt.NDArray[np.float64]] = {}
    for w in windows:
        start = groups.rows_up_to(groups.time - w * SECONDS_PER_DAY)
        count = end - start
        before = np.where(start > groups.group_start, cumulative[start - 1], 0.0)
        out[f"customer_id_nb_tx_{w}day_window"] = groups.scatter(count.astype(np.float64))
        out[f"customer_id_avg_amount_{w}day_window"] = groups.scatter((cumulative[end - 1] - before) / count)
    return out


def _terminal_windows(
    X: pd.DataFrame, windows: tuple[int, ...], delay_days: int, label_time_column: str
) -> dict[str, npt.NDArray[np.float64]]:
    groups = _SortedGroups(
        X[_TERMINAL].to_numpy().astype(np.int64),
        _as_seconds(X[_TIME], _TIME),
        X[_ID].to_numpy().astype(np.int64),
    )
    time = groups.time
    fraud = X[_FRAUD].to_numpy()[groups.order] != 0
    label = _label_seconds(X[label_time_column])[groups.order]
    as_of = time - delay_days * SECONDS_PER_DAY

    # Rows with time <= as_of; with d = 0 that would take same-second rows with larger ids too, which
    # have not arrived yet: the window stops at the current row.
    end_by_time = groups.rows_up_to(as_of)
    end = np.minimum(end_by_time, groups.position + 1)
    # Those excluded same-second rows (d = 0 only) are at time == as_of: known fraud iff label <= time.
    known_at_once = np.concatenate(([0], np.cumsum(fraud & (label <= time))))
    excluded_known = known_at_once[end_by_time] - known_at_once[end]

    # Each fraud counts for as_of in [known_from, time + w*D): known, and still inside the window.
    known_from = np.maximum(time, label)
    query = groups.key(groups.code, as_of)
    out: dict[str, npt.NDArray[np.float64]] = {}
    for w in windows:
        start = groups.rows_up_to(as_of - w * SECONDS_PER_DAY)
        count = end - start
        counted = fraud & (known_from < time + w * SECONDS_PER_DAY)  # else the interval is empty
        code = groups.code[counted]
        started = np.sort(groups.key(code, known_from[counted]))
        ended = np.sort(groups.key(code, time[counted] + w * SECONDS_PER_DAY))
        known = (
            np.searchsorted(started, query, side="right") - np.searchsorted(ended, query, side="right") - excluded_known
        )
        risk = np.divide(known, count, out=np.zeros(count.size), where=count > 0)
        out[f"terminal_id_nb_tx_{w}day_window"] = groups.scatter(count.astype(np.float64))
        out[f"terminal_id_risk_{w}day_window"] = groups.scatter(risk)
    return out


class _Stateless(TransformerMixin, BaseEstimator):
    """Shared ``fit``: check parameters and columns, learn nothing from the rows."""

    def _required_columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _check_params(self) -> None:
        """Raise ``ValueError`` on a bad hyperparameter (checked in ``fit``, as scikit-learn does)."""

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike | None = None) -> _Stateless:
        """Check parameters and columns and return ``self``: nothing is learned from ``X`` or ``y``."""
        self._check_params()
        _require_columns(type(self).__name__, X, self._required_columns(), self._missing_hint())
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _missing_hint(self) -> str:
        return ""

    def _ready(self, X: pd.DataFrame) -> None:
        check_is_fitted(self)
        _require_columns(type(self).__name__, X, self._required_columns(), self._missing_hint())


class TimeFlags(_Stateless):
    """Weekend and night flags from ``tx_datetime``.

    Stateless: ``fit`` learns nothing, so the flags cannot leak anything from training rows.

    Examples
    --------
    >>> X = pd.DataFrame({"tx_datetime": pd.to_datetime(["2018-04-07 03:00", "2018-04-09 12:00"])})
    >>> TimeFlags().fit_transform(X)
       tx_during_weekend  tx_during_night
    0                  1                1
    1                  0                0
    """

    datetime_column: str

    def __init__(self, datetime_column: str = _DATETIME) -> None:
        self.datetime_column = datetime_column

    def _required_columns(self) -> tuple[str, ...]:
        return (self.datetime_column,)

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike | None = None) -> TimeFlags:
        """Check that ``X`` has the datetime column and return ``self``."""
        super().fit(X, y)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the two int8 flags, indexed like ``X``."""
        stamps = pd.DatetimeIndex(X[self.datetime_column])
        return pd.DataFrame(
            {
                "tx_during_weekend": (stamps.day_of_week >= 5).astype(np.int8),
                "tx_during_night": (stamps.hour <= NIGHT_LAST_HOUR).astype(np.int8),
            },
            index=X.index,
        )

    def get_feature_names_out(self, input_features: npt.ArrayLike | None = None) -> npt.NDArray[np.object_]:
        """The two flag names."""
        return np.array(_FLAG_COLUMNS, dtype=object)


class CustomerWindows(_Stateless):
    """Count and mean amount of the customer's transactions over trailing windows, current one included.

    See the module docstring for the exact window ``(t - w*D, t]`` and the rule for equal timestamps.
    ``transform`` computes on the rows it is given, which must include the history the windows need.

    Parameters
    ----------
    windows : tuple of int
        Window lengths in days.

    Examples
    --------
    >>> X = pd.DataFrame(
    ...     {"transaction_id": [0, 1], "customer_id": [3, 3], "tx_time_seconds": [0, 86_400], "tx_amount": [10.0, 30.0]}
    ... )
    >>> CustomerWindows(windows=(1, 2)).fit_transform(X)
       customer_id_nb_tx_1day_window  ...  customer_id_avg_amount_2day_window
    0                            1.0  ...                                10.0
    1                            1.0  ...                                20.0
    <BLANKLINE>
    [2 rows x 4 columns]
    """

    windows: tuple[int, ...]

    def __init__(self, windows: tuple[int, ...] = DEFAULT_WINDOWS) -> None:
        self.windows = windows

    def _check_params(self) -> None:
        _check_windows(type(self).__name__, self.windows)

    def _required_columns(self) -> tuple[str, ...]:
        return (_ID, _CUSTOMER, _TIME, _AMOUNT)

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike | None = None) -> CustomerWindows:
        """Check parameters and columns and return ``self``; nothing is learned."""
        super().fit(X, y)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the customer-window features of every row of ``X``, indexed like ``X``."""
        self._ready(X)
        columns = _customer_windows(X, _check_windows(type(self).__name__, self.windows))
        return pd.DataFrame(columns, index=X.index)

    def get_feature_names_out(self, input_features: npt.ArrayLike | None = None) -> npt.NDArray[np.object_]:
        """Count then mean amount for each window."""
        return np.array(customer_feature_names(self.windows), dtype=object)


class TerminalWindows(_Stateless):
    """Count and known-fraud risk of the terminal's transactions over windows ending ``delay_days`` back.

    See the module docstring for the exact window ``(t - (d+w)*D, t - d*D]`` and the label rule: a
    fraud counts only once its label is known at ``t - d*D``.

    Parameters
    ----------
    windows : tuple of int
        Window lengths in days.
    delay_days : int
        Days between the transaction and the end of its windows. 0 puts the current day in the window
        (and leaks instant labels into the risk): valid, for showing why the delay exists.
    label_time_column : str
        Column with the seconds (since simulation start) at which each label becomes known.

    Examples
    --------
    >>> X = pd.DataFrame(
    ...     {
    ...         "transaction_id": [0, 1],
    ...         "terminal_id": [3, 3],
    ...         "tx_time_seconds": [0, 8 * 86_400],
    ...         "tx_fraud": [1, 0],
    ...         "tx_label_seconds": [86_400, 40 * 86_400],
    ...     }
    ... )
    >>> TerminalWindows(windows=(1, 7)).fit_transform(X)["terminal_id_risk_7day_window"].tolist()
    [0.0, 1.0]
    """

    windows: tuple[int, ...]
    delay_days: int
    label_time_column: str

    def __init__(
        self,
        windows: tuple[int, ...] = DEFAULT_WINDOWS,
        delay_days: int = DEFAULT_DELAY_DAYS,
        label_time_column: str = LABEL_TIME_COLUMN,
    ) -> None:
        self.windows = windows
        self.delay_days = delay_days
        self.label_time_column = label_time_column

    def _check_params(self) -> None:
        _check_windows(type(self).__name__, self.windows)
        _check_delay(type(self).__name__, self.delay_days)

    def _required_columns(self) -> tuple[str, ...]:
        return (_ID, _TERMINAL, _TIME, _FRAUD, self.label_time_column)

    def _missing_hint(self) -> str:
        return (
            f": {self.label_time_column!r} says when each label becomes known; for labels known at once, "
            f"set it to {_TIME!r}"
        )

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike | None = None) -> TerminalWindows:
        """Check parameters and columns and return ``self``; nothing is learned, labels included."""
        super().fit(X, y)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the terminal-window features of every row of ``X``, indexed like ``X``."""
        self._ready(X)
        owner = type(self).__name__
        windows, delay = _check_windows(owner, self.windows), _check_delay(owner, self.delay_days)
        return pd.DataFrame(_terminal_windows(X, windows, delay, self.label_time_column), index=X.index)

    def get_feature_names_out(self, input_features: npt.ArrayLike | None = None) -> npt.NDArray[np.object_]:
        """Count then risk for each window."""
        return np.array(terminal_feature_names(self.windows), dtype=object)


class FeatureBuilder(_Stateless):
    """All the features (15 with the defaults) from raw transactions, as one pipeline step.

    The first step of a model ``Pipeline`` that takes raw transactions: ``fit`` learns nothing, and
    ``transform`` computes every row's features from the rows it is given, so pass it frames that hold
    the history (see the module docstring). For training on a time split, computing the features once
    with :func:`build_features` and fitting the model on ``FEATURE_COLUMNS`` is simpler and equivalent.

    Parameters
    ----------
    customer_windows, terminal_windows : tuple of int
        Window lengths in days.
    delay_days : int
        Delay of the terminal windows, in days.
    label_time_column : str
        Column with the time each label becomes known.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> pipeline = make_pipeline(FeatureBuilder(), StandardScaler())
    >>> len(pipeline[0].get_feature_names_out())
    15
    """

    customer_windows: tuple[int, ...]
    terminal_windows: tuple[int, ...]
    delay_days: int
    label_time_column: str

    def __init__(
        self,
        customer_windows: tuple[int, ...] = DEFAULT_WINDOWS,
        terminal_windows: tuple[int, ...] = DEFAULT_WINDOWS,
        delay_days: int = DEFAULT_DELAY_DAYS,
        label_time_column: str = LABEL_TIME_COLUMN,
    ) -> None:
        self.customer_windows = customer_windows
        self.terminal_windows = terminal_windows
        self.delay_days = delay_days
        self.label_time_column = label_time_column

    def _parts(self) -> tuple[TimeFlags, CustomerWindows, TerminalWindows]:
        return (
            TimeFlags(),
            CustomerWindows(windows=self.customer_windows),
            TerminalWindows(
                windows=self.terminal_windows, delay_days=self.delay_days, label_time_column=self.label_time_column
            ),
        )

    def _check_params(self) -> None:
        for part in self._parts():
            part._check_params()

    def _required_columns(self) -> tuple[str, ...]:
        columns = [_AMOUNT]
        for part in self._parts():
            columns += [c for c in part._required_columns() if c not in columns]
        return tuple(columns)

    def _missing_hint(self) -> str:
        return self._parts()[2]._missing_hint()

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike | None = None) -> FeatureBuilder:
        """Check parameters and columns and return ``self``; nothing is learned."""
        super().fit(X, y)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the features of every row of ``X`` as float64, in ``get_feature_names_out`` order."""
        self._ready(X)
        flags, customers, terminals = self._parts()
        columns: dict[str, npt.NDArray[np.float64]] = {_AMOUNT: X[_AMOUNT].to_numpy(dtype=np.float64)}
        for name, values in flags.fit(X).transform(X).items():
            columns[str(name)] = values.to_numpy(dtype=np.float64)
        owner = type(self).__name__
        columns.update(_customer_windows(X, _check_windows(owner, customers.windows)))
        columns.update(
            _terminal_windows(
                X,
                _check_windows(owner, terminals.windows),
                _check_delay(owner, terminals.delay_days),
                terminals.label_time_column,
            )
        )
        return pd.DataFrame(columns, index=X.index)

    def get_feature_names_out(self, input_features: npt.ArrayLike | None = None) -> npt.NDArray[np.object_]:
        """``tx_amount``, the flags, the customer then the terminal window names (``FEATURE_COLUMNS``)."""
        names = (_AMOUNT, *_FLAG_COLUMNS)
        names += customer_feature_names(self.customer_windows) + terminal_feature_names(self.terminal_windows)
        return np.array(names, dtype=object)


def build_features(
    transactions: pd.DataFrame,
    *,
    customer_windows: tuple[int, ...] = DEFAULT_WINDOWS,
    terminal_windows: tuple[int, ...] = DEFAULT_WINDOWS,
    delay_days: int = DEFAULT_DELAY_DAYS,
    label_time_column: str = LABEL_TIME_COLUMN,
) -> pd.DataFrame:
    """The features of every transaction, computed from the whole frame (its history included).

    Parameters
    ----------
    transactions : pandas.DataFrame
        Simulator columns plus the label time column; any row order and index.
    customer_windows, terminal_windows, delay_days, label_time_column
        As in :class:`FeatureBuilder`.

    Returns
    -------
    pandas.DataFrame
        ``FEATURE_COLUMNS`` (with the defaults) as float64, indexed like ``transactions``.

    Examples
    --------
    >>> tx = pd.DataFrame(
    ...     {
    ...         "transaction_id": [7],
    ...         "tx_datetime": pd.to_datetime(["2018-04-01 10:00"]),
    ...         "customer_id": [0],
    ...         "terminal_id": [0],
    ...         "tx_amount": [12.5],
    ...         "tx_time_seconds": [36_000],
    ...         "tx_fraud": [0],
    ...         "tx_label_seconds": [36_000],
    ...     },
    ...     index=[7],
    ... )
    >>> features = build_features(tx)
    >>> tuple(features.columns) == FEATURE_COLUMNS, features.index.tolist()
    (True, [7])
    """
    builder = FeatureBuilder(
        customer_windows=customer_windows,
        terminal_windows=terminal_windows,
        delay_days=delay_days,
        label_time_column=label_time_column,
    )
    return builder.fit(transactions).transform(transactions)
