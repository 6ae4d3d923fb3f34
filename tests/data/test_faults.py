"""Tests of the raw feed: faults injected at the requested rate, truthfully recorded, on a copy.

Each test is named after the bug it catches. Shared data are module-scoped fixtures on the ``tiny``
preset, so the file runs in about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data import COLUMNS, Simulation, preset, simulate
from mlsys_lab.data.faults import (
    FAULT_KINDS,
    FAULT_RULES,
    UNKNOWN_ID_FLOOR,
    FeedFaults,
    RawFeed,
    raw_feed,
    score,
)
from mlsys_lab.data.validation import FEED_COLUMNS, RULES

RATE = 0.06


@pytest.fixture(scope="module")
def tiny() -> Simulation:
    return simulate(preset("tiny"))


@pytest.fixture(scope="module")
def feed(tiny: Simulation) -> RawFeed:
    return raw_feed(tiny.transactions, FeedFaults(rate=RATE), random_state=0)


def _rows(feed: RawFeed, kind: str) -> pd.DataFrame:
    return feed.raw[feed.truth["fault"] == kind]


# --- configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": -0.1}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"rate": "0.02"}, "rate"),
        ({"rate": True}, "rate"),
        ({"kinds": ("null", "typo")}, "typo"),
        ({"kinds": ()}, "kinds"),
        ({"kinds": ("null", "null")}, "kinds"),
        ({"kinds": "null"}, "kinds"),
    ],
)
def test_bad_fault_config_is_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FeedFaults(**kwargs)  # type: ignore[arg-type]


def test_default_faults_cover_every_kind_at_a_small_rate() -> None:
    faults = FeedFaults()
    assert faults.kinds == FAULT_KINDS
    assert 0 < faults.rate <= 0.05


def test_every_fault_kind_maps_to_existing_validation_rules() -> None:
    assert set(FAULT_RULES) == set(FAULT_KINDS)
    for kind, rules in FAULT_RULES.items():
        assert rules <= set(RULES), f"{kind} maps to unknown rule(s) {rules - set(RULES)}"


def test_unsorted_or_incomplete_transactions_are_refused(tiny: Simulation) -> None:
    with pytest.raises(ValueError, match="sorted by tx_datetime"):
        raw_feed(tiny.transactions.iloc[::-1], FeedFaults(), random_state=0)
    with pytest.raises(ValueError, match="tx_amount"):
        raw_feed(tiny.transactions.drop(columns="tx_amount"), FeedFaults(), random_state=0)


# --- what reaches the feed ----------------------------------------------------------------------------


def test_feed_has_no_labels_and_no_derived_columns(tiny: Simulation) -> None:
    with_extra = tiny.transactions.assign(tx_label_seconds=tiny.transactions["tx_time_seconds"] + 86_400)
    feed = raw_feed(with_extra, FeedFaults(rate=RATE), random_state=0)
    assert list(feed.raw.columns) == list(FEED_COLUMNS)
    assert not {"tx_fraud", "tx_fraud_scenario", "tx_label_seconds"} & set(feed.raw.columns)


def test_clean_input_frame_is_not_modified(tiny: Simulation) -> None:
    before = tiny.transactions.copy(deep=True)
    raw_feed(tiny.transactions, FeedFaults(rate=0.5), random_state=3)
    pd.testing.assert_frame_equal(tiny.transactions, before)
    assert list(tiny.transactions.columns) == list(COLUMNS)


def test_same_seed_same_feed_other_seed_other_feed(tiny: Simulation, feed: RawFeed) -> None:
    again = raw_feed(tiny.transactions, FeedFaults(rate=RATE), random_state=0)
    pd.testing.assert_frame_equal(again.raw, feed.raw)
    pd.testing.assert_frame_equal(again.truth, feed.truth)
    other = raw_feed(tiny.transactions, FeedFaults(rate=RATE), random_state=1)
    assert not other.truth["fault"].equals(feed.truth["fault"])


def test_rate_zero_gives_the_clean_feed(tiny: Simulation) -> None:
    feed = raw_feed(tiny.transactions, FeedFaults(rate=0.0), random_state=0)
    expected = tiny.transactions[list(FEED_COLUMNS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(feed.raw, expected)
    assert feed.n_faulted == 0


# --- rate and truth -----------------------------------------------------------------------------------


def test_each_kind_is_injected_at_its_share_of_the_rate(tiny: Simulation, feed: RawFeed) -> None:
    n = len(tiny.transactions)
    per_kind = RATE * n / len(FAULT_KINDS)
    counts = feed.truth["fault"].value_counts()
    for kind in FAULT_KINDS:
        assert abs(counts.get(kind, 0) - per_kind) <= 1, f"{kind}: {counts.get(kind, 0)} rows, expected ~{per_kind}"
    assert feed.n_faulted == round(RATE * n)
    # A duplicate adds a row; every other fault damages a row in place.
    assert len(feed.raw) == n + counts["duplicate_id"]


def test_only_the_requested_kinds_are_injected(tiny: Simulation) -> None:
    feed = raw_feed(tiny.transactions, FeedFaults(rate=0.1, kinds=("null", "out_of_order")), random_state=0)
    assert set(feed.truth["fault"]) == {"", "null", "out_of_order"}


def test_clean_rows_are_byte_identical_to_their_transaction(tiny: Simulation, feed: RawFeed) -> None:
    clean = feed.truth["fault"] == ""
    expected = tiny.transactions.set_index("transaction_id").loc[feed.truth.loc[clean, "transaction_id"]]
    raw = feed.raw[clean]
    assert (raw["transaction_id"].to_numpy() == feed.truth.loc[clean, "transaction_id"].to_numpy()).all()
    for column in FEED_COLUMNS[1:]:
        assert (raw[column].to_numpy() == expected[column].to_numpy()).all(), column
    # Every clean transaction reaches the feed exactly once as a clean row or a damaged one.
    originals = feed.truth.loc[feed.truth["fault"] != "duplicate_id", "transaction_id"]
    assert sorted(originals) == tiny.transactions["transaction_id"].tolist()


def test_truth_matches_the_damage_in_each_row(feed: RawFeed) -> None:
    truth = feed.truth
    for row in _rows(feed, "null").itertuples():
        assert pd.isna(getattr(row, truth.at[row.Index, "column"]))
    assert (pd.to_numeric(_rows(feed, "negative_amount")["tx_amount"]) < 0).all()
    for row in _rows(feed, "string_number").itertuples():
        assert isinstance(getattr(row, truth.at[row.Index, "column"]), str)
    for row in _rows(feed, "unknown_id").itertuples():
        assert getattr(row, truth.at[row.Index, "column"]) >= UNKNOWN_ID_FLOOR
    amounts = _rows(feed, "string_number").loc[truth["column"] == "tx_amount", "tx_amount"]
    assert amounts.str.fullmatch(r"(USD )?\d+[.,]\d\d").all(), amounts.tolist()


def test_duplicate_resends_the_previous_row_unchanged(feed: RawFeed) -> None:
    positions = np.flatnonzero(feed.truth["fault"] == "duplicate_id")
    assert positions.size
    for position in positions:
        original, resend = feed.raw.iloc[position - 1], feed.raw.iloc[position]
        assert feed.truth["fault"].iat[position - 1] == "", "the original of a re-send stays clean"
        assert original.equals(resend)


def test_out_of_order_rows_are_earlier_than_a_clean_row_already_sent(feed: RawFeed) -> None:
    times = feed.raw["tx_datetime"]
    clean_times = times.where(feed.truth["fault"] == "")
    latest_clean_before = clean_times.cummax().ffill().shift(1)
    late = feed.truth["fault"] == "out_of_order"
    assert late.any()
    assert (times[late] < latest_clean_before[late]).all()
    # The late row itself is unchanged: it is the transaction, only delivered late.
    assert feed.raw.loc[late, "tx_amount"].map(lambda v: isinstance(v, float) and v >= 0).all()


def test_numbers_arrive_as_object_columns_not_coerced_types(feed: RawFeed) -> None:
    for column in ("customer_id", "terminal_id", "tx_amount"):
        assert feed.raw[column].dtype == object, column
    assert feed.raw["tx_datetime"].dtype == np.dtype("datetime64[us]")


def test_score_counts_caught_and_wrongly_quarantined_rows() -> None:
    truth = pd.DataFrame({"transaction_id": [0, 1, 2, 2], "fault": ["", "null", "", "duplicate_id"]})
    quarantine = pd.DataFrame({"rules": ["null", "duplicate_id|out_of_order"]}, index=[0, 3])
    table = score(truth, quarantine).set_index("fault")
    assert table.loc["duplicate_id", "recall"] == 1.0
    assert table.loc["null", "recall"] == 0.0
    assert table.loc["null", "precision"] == 0.0  # the one null flag hit a clean row
    assert table.loc["clean", "caught"] == 1
