"""Data quality per window: null rates, out-of-range values, unknown ids, and the quarantine share."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.faults import FeedFaults, raw_feed
from mlsys_lab.data.validation import validate
from mlsys_lab.monitoring.quality import data_quality, reference_ranges

pytestmark = pytest.mark.filterwarnings("error")


def test_null_rate_out_of_range_and_unknown_ids() -> None:
    window = pd.DataFrame(
        {"tx_amount": [10.0, np.nan, 5_000.0, 20.0, -1.0], "customer_id": [1, 2, 3, 99, 98], "flag": [0, 0, 0, 0, 0]}
    )
    quality = data_quality(
        window, ranges={"tx_amount": (0.0, 1_000.0), "flag": (0, 1)}, known_ids={"customer_id": {1, 2, 3}}
    )
    assert quality.null_rate == {"tx_amount": 0.2, "customer_id": 0.0, "flag": 0.0}
    assert quality.out_of_range == {"tx_amount": 0.5, "flag": 0.0}  # 2 of the 4 non-null amounts
    assert quality.unknown_ids == {"customer_id": 0.4}
    assert math.isnan(quality.quarantine_share), "no validation result, no quarantine share"
    row = quality.as_row()
    assert row["null_rate.tx_amount"] == 0.2 and row["unknown_ids.customer_id"] == 0.4


def test_reference_ranges_catch_a_feature_stuck_far_from_the_reference() -> None:
    reference = pd.DataFrame({"x": np.linspace(0, 10, 101)})
    ranges = reference_ranges(reference, margin=0.1)
    assert ranges == {"x": (-1.0, 11.0)}
    cents = pd.DataFrame({"x": reference["x"] * 100})  # amounts in cents instead of euros
    assert data_quality(cents, ranges=ranges).out_of_range["x"] > 0.85


def test_quarantine_share_comes_from_the_validation_report() -> None:
    sim = simulate(preset("tiny", random_state=0))
    feed = raw_feed(sim.transactions, FeedFaults(rate=0.05), random_state=0)
    result = validate(
        feed.raw,
        known_customers=set(sim.customers["customer_id"]),
        known_terminals=set(sim.terminals["terminal_id"]),
    )
    quality = data_quality(result.accepted, validation=result)
    assert quality.quarantine_share == pytest.approx(result.n_quarantined / result.n_in)
    assert 0.03 < quality.quarantine_share < 0.07
    report = result.report.set_index("rule")
    assert quality.quarantine_by_rule["null"] == pytest.approx(report.loc["null", "rows"] / result.n_in)
    assert set(quality.quarantine_by_rule) == set(report.index[report["checked"]])
    assert quality.n_rows == result.n_accepted


def test_unknown_columns_are_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="terminal_id"):
        data_quality(pd.DataFrame({"x": [1]}), known_ids={"terminal_id": {1}})
