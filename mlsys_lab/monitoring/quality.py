"""Data quality per window: null rates, out-of-range values, unknown ids and the quarantine share.

Drift statistics compare distributions of values that are *there*; a pipeline bug often shows up
first as values that are not (nulls), impossible (an amount beyond anything the reference saw, a
feature stuck at zero), or unknown (a customer id the tables have never heard of). The validation
layer (:func:`mlsys_lab.data.validation.validate`) quarantines faulty raw rows and reports how many
broke each rule; this module turns one window's accepted rows, plus that report, into shares that
alert rules can watch, one number per check.

Examples
--------
>>> window = pd.DataFrame({"tx_amount": [10.0, None, 5_000.0, 20.0], "customer_id": [1, 2, 3, 99]})
>>> quality = data_quality(window, ranges={"tx_amount": (0.0, 1_000.0)}, known_ids={"customer_id": {1, 2, 3}})
>>> quality.null_rate["tx_amount"], quality.out_of_range["tx_amount"], quality.unknown_ids["customer_id"]
(0.25, 0.3333333333333333, 0.25)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlsys_lab.data.validation import ValidationResult

__all__ = ["DataQuality", "data_quality", "reference_ranges"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataQuality:
    """One window's data-quality shares (each in [0, 1]; NaN where it could not be computed).

    Attributes
    ----------
    n_rows : int
        Rows in the window (the accepted ones, when the window comes out of validation).
    null_rate : dict
        Per column, the share of missing values.
    out_of_range : dict
        Per column with a range, the share of its non-missing values outside ``[low, high]``.
    unknown_ids : dict
        Per id column with a table, the share of rows whose id is not in the table.
    quarantine_share : float
        Quarantined rows / rows received, from the validation result (NaN without one).
    quarantine_by_rule : dict
        Per checked validation rule, rows breaking it / rows received.
    """

    n_rows: int
    null_rate: dict[str, float] = field(default_factory=dict)
    out_of_range: dict[str, float] = field(default_factory=dict)
    unknown_ids: dict[str, float] = field(default_factory=dict)
    quarantine_share: float = math.nan
    quarantine_by_rule: dict[str, float] = field(default_factory=dict)

    def as_row(self) -> dict[str, float]:
        """Flat ``{"null_rate.tx_amount": ..., "quarantine_share": ...}``: one row of a metrics table."""
        row: dict[str, float] = {"n_rows": float(self.n_rows), "quarantine_share": self.quarantine_share}
        for prefix, values in (
            ("null_rate", self.null_rate),
            ("out_of_range", self.out_of_range),
            ("unknown_ids", self.unknown_ids),
            ("quarantine", self.quarantine_by_rule),
        ):
            row.update({f"{prefix}.{name}": value for name, value in values.items()})
        return row


def reference_ranges(
    reference: pd.DataFrame, columns: Sequence[str] | None = None, *, margin: float = 0.0
) -> dict[str, tuple[float, float]]:
    """The ``[min, max]`` of each numeric column over the reference, widened by ``margin`` of its span.

    Examples
    --------
    >>> reference_ranges(pd.DataFrame({"x": [0.0, 10.0]}), margin=0.1)
    {'x': (-1.0, 11.0)}
    """
    names = list(reference.select_dtypes("number").columns if columns is None else columns)
    if margin < 0:
        raise ValueError(f"margin must be >= 0 (a share of the reference span), got {margin}")
    ranges = {}
    for name in names:
        values = reference[name].dropna().to_numpy(dtype=np.float64)
        if values.size == 0:
            raise ValueError(f"reference column {name!r} has no values: a range needs at least one")
        low, high = float(values.min()), float(values.max())
        pad = margin * (high - low)
        ranges[name] = (low - pad, high + pad)
    return ranges


def data_quality(
    window: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    known_ids: Mapping[str, Collection[int]] | None = None,
    validation: ValidationResult | None = None,
) -> DataQuality:
    """Data-quality shares of one window.

    Parameters
    ----------
    window : pandas.DataFrame
        The window's rows.
    columns : sequence of str, optional
        Columns whose null rate to report; all by default.
    ranges : mapping of column to (low, high), optional
        Allowed ranges (e.g. :func:`reference_ranges` of the reference window).
    known_ids : mapping of id column to collection of ids, optional
        The entity tables, e.g. ``{"customer_id": set(sim.customers.customer_id)}``.
    validation : ValidationResult, optional
        The validation of the raw batch this window came from: its report's counts give the
        quarantine shares.
    """
    names = list(window.columns if columns is None else columns)
    for mapping, what in ((ranges or {}, "ranges"), (known_ids or {}, "known_ids")):
        missing = [c for c in list(names) + list(mapping) if c not in window.columns]
        if missing:
            raise ValueError(f"column(s) {sorted(set(missing))} ({what} or columns) are not in the window")
    n = len(window)
    null_rate = {name: float(window[name].isna().mean()) if n else math.nan for name in names}
    out_of_range = {}
    for name, (low, high) in (ranges or {}).items():
        if low > high:
            raise ValueError(f"range of {name!r} is ({low}, {high}): low must not exceed high")
        values = pd.to_numeric(window[name], errors="coerce").dropna().to_numpy(dtype=np.float64)
        out_of_range[name] = float(((values < low) | (values > high)).mean()) if values.size else math.nan
    unknown_ids = {}
    for name, ids in (known_ids or {}).items():
        column = window[name]
        unknown_ids[name] = float((~column.isin(list(ids))).mean()) if n else math.nan

    quarantine_share, by_rule = math.nan, {}
    if validation is not None:
        received = validation.n_in
        if received:
            quarantine_share = validation.n_quarantined / received
            report = validation.report
            for rule, checked, rows in zip(report["rule"], report["checked"], report["rows"], strict=True):
                if checked:
                    by_rule[str(rule)] = int(rows) / received
    return DataQuality(
        n_rows=n,
        null_rate=null_rate,
        out_of_range=out_of_range,
        unknown_ids=unknown_ids,
        quarantine_share=quarantine_share,
        quarantine_by_rule=by_rule,
    )
