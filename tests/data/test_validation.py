"""Tests of feed validation: every fault caught, no clean row lost, nothing dropped or silently fixed.

Each test is named after the bug it catches. Realistic batches come from the ``tiny`` preset with
faults (module-scoped fixtures); hand-written batches pin single rules; two hypothesis properties
check the invariant ``rows in == accepted + quarantined`` on random batches.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsys_lab.data import Simulation, preset, simulate
from mlsys_lab.data.faults import FAULT_KINDS, FeedFaults, RawFeed, raw_feed, score
from mlsys_lab.data.validation import (
    FEED_COLUMNS,
    FEED_DTYPES,
    FEED_SCHEMA,
    RULES,
    ValidationResult,
    _check_invariant,
    validate,
)

T0 = pd.Timestamp("2018-04-01 10:00")


@pytest.fixture(scope="module")
def tiny() -> Simulation:
    return simulate(preset("tiny"))


@pytest.fixture(scope="module")
def feed(tiny: Simulation) -> RawFeed:
    return raw_feed(tiny.transactions, FeedFaults(rate=0.06), random_state=0)


def _validate(batch: pd.DataFrame, sim: Simulation, **kwargs: object) -> ValidationResult:
    return validate(
        batch,
        known_customers=sim.customers["customer_id"],
        known_terminals=sim.terminals["terminal_id"],
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def result(tiny: Simulation, feed: RawFeed) -> ValidationResult:
    return _validate(feed.raw, tiny)


def _batch(**columns: list[object]) -> pd.DataFrame:
    """A small clean batch of ``n`` rows, one minute apart; keyword arguments replace columns."""
    n = len(next(iter(columns.values()))) if columns else 3
    base: dict[str, list[object]] = {
        "transaction_id": list(range(n)),
        "tx_datetime": [T0 + pd.Timedelta(minutes=i) for i in range(n)],
        "customer_id": [1] * n,
        "terminal_id": [2] * n,
        "tx_amount": [10.0] * n,
    }
    base.update(columns)
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in base.items()})
    if "tx_datetime" not in columns:
        frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"]).astype("datetime64[us]")
    return frame


def _rules(result: ValidationResult) -> dict[object, str]:
    return result.quarantined["rules"].to_dict()


# --- scored against the ground truth ------------------------------------------------------------------


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_injected_fault_is_quarantined(feed: RawFeed, result: ValidationResult, kind: str) -> None:
    table = score(feed.truth, result.quarantined).set_index("fault")
    assert table.loc[kind, "injected"] > 0
    assert table.loc[kind, "recall"] == 1.0, table
    assert table.loc[kind, "precision"] == 1.0, table


def test_no_clean_row_is_quarantined_not_even_a_duplicates_original_or_a_late_rows_neighbour(
    feed: RawFeed, result: ValidationResult
) -> None:
    clean = feed.truth.index[feed.truth["fault"] == ""]
    wrongly = result.quarantined.index.intersection(clean)
    assert wrongly.empty, result.quarantined.loc[wrongly, ["rules", "reason"]]
    # The originals of re-sent ids are among the clean rows above: check they are accepted.
    resent = feed.truth.loc[feed.truth["fault"] == "duplicate_id", "transaction_id"]
    assert resent.isin(result.accepted["transaction_id"]).all()


def test_clean_simulation_is_accepted_whole_with_the_simulators_dtypes(tiny: Simulation) -> None:
    result = _validate(tiny.transactions, tiny)
    assert result.n_quarantined == 0
    pd.testing.assert_frame_equal(result.accepted, tiny.transactions)
    assert result.report["rows"].sum() == 0


def test_accepted_rows_have_the_simulators_dtypes_and_values(
    tiny: Simulation, feed: RawFeed, result: ValidationResult
) -> None:
    assert result.accepted.dtypes[list(FEED_COLUMNS)].to_dict() == FEED_DTYPES
    assert dict(tiny.transactions.dtypes[list(FEED_COLUMNS)]) == FEED_DTYPES
    expected = tiny.transactions.set_index("transaction_id").loc[result.accepted["transaction_id"]]
    for column in FEED_COLUMNS[1:]:
        assert (result.accepted[column].to_numpy() == expected[column].to_numpy()).all(), column


def test_schema_accepts_the_simulators_frame(tiny: Simulation) -> None:
    FEED_SCHEMA.validate(tiny.transactions, lazy=True)


# --- nothing dropped, nothing fixed -------------------------------------------------------------------


def test_no_row_is_dropped_every_row_is_accepted_or_quarantined(feed: RawFeed, result: ValidationResult) -> None:
    assert result.n_accepted + result.n_quarantined == result.n_in == len(feed.raw)
    assert result.accepted.index.intersection(result.quarantined.index).empty
    assert result.accepted.index.union(result.quarantined.index).equals(feed.raw.index)


def test_string_number_is_quarantined_not_coerced() -> None:
    batch = _batch(tx_amount=[10.0, "42.10", "42,10", "USD 42.10"])
    result = validate(batch)
    assert result.accepted["tx_amount"].tolist() == [10.0]
    assert 42.1 not in result.accepted["tx_amount"].tolist()
    assert result.quarantined["tx_amount"].tolist() == ["42.10", "42,10", "USD 42.10"]  # raw, untouched
    assert set(result.quarantined["rules"]) == {"wrong_type"}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("customer_id", "7"),
        ("terminal_id", 2.5),
        ("transaction_id", True),
        ("tx_amount", float("inf")),
        ("tx_datetime", "2018-04-01 10:05"),
    ],
)
def test_wrong_type_in_any_column_is_quarantined(column: str, value: object) -> None:
    values = [_batch()[column].iloc[0]] * 3
    values[1] = value
    batch = _batch(**{column: values}) if column != "transaction_id" else _batch(transaction_id=[0, value, 2])
    result = validate(batch)
    assert _rules(result) == {1: "wrong_type"}
    assert column in result.quarantined.at[1, "reason"]


def test_whole_number_floats_in_an_id_column_are_accepted_as_ints() -> None:
    # What a single NaN does to an int column in pandas: lossless to convert, so not a fault.
    result = validate(_batch(customer_id=[1.0, 2.0, 3.0]))
    assert result.n_quarantined == 0
    assert result.accepted["customer_id"].tolist() == [1, 2, 3]


def test_quarantine_keeps_raw_values_and_the_batch_index() -> None:
    batch = _batch(tx_amount=[10.0, -5.0, None]).set_axis(["a", "b", "c"])
    result = validate(batch)
    assert list(result.quarantined.index) == ["b", "c"]
    assert list(result.accepted.index) == ["a"]
    assert result.quarantined.at["b", "tx_amount"] == -5.0
    assert result.quarantined.at["c", "tx_amount"] is None


def test_reason_names_the_field_the_value_and_the_fix() -> None:
    result = validate(_batch(tx_amount=[10.0, -5.0, "USD 3.00"]))
    negative, text = result.quarantined["reason"]
    assert "tx_amount" in negative and "-5.0" in negative and "must be >= 0" in negative
    assert "tx_amount" in text and "'USD 3.00'" in text and "not text" in text


def test_a_row_breaking_several_rules_is_quarantined_once_with_every_reason() -> None:
    batch = _batch(customer_id=[1, None, 1], tx_amount=[10.0, -1.0, 10.0], terminal_id=[2, "x", 2])
    result = validate(batch)
    assert result.n_quarantined == 1
    assert result.quarantined.at[1, "rules"] == "null|wrong_type|negative_amount"
    reason = result.quarantined.at[1, "reason"]
    assert all(field in reason for field in ("customer_id", "terminal_id", "tx_amount"))


def test_missing_feed_column_raises_naming_it_and_the_fix() -> None:
    for column in FEED_COLUMNS:
        with pytest.raises(ValueError, match=rf"missing_column.*{column}.*FEED_COLUMNS"):
            validate(_batch().drop(columns=column))


def test_invariant_violation_is_a_loud_bug_not_a_silent_loss() -> None:
    batch = _batch()
    result = validate(batch)
    dropped = result.accepted.iloc[1:]
    with pytest.raises(RuntimeError, match="lost or double-counted"):
        _check_invariant(batch, dropped, result.quarantined, np.zeros(len(batch), dtype=bool))


# --- stateful rules -----------------------------------------------------------------------------------


def test_duplicate_first_occurrence_accepted_later_resends_quarantined() -> None:
    result = validate(_batch(transaction_id=[5, 6, 5, 5]))
    assert list(result.accepted.index) == [0, 1]
    assert _rules(result) == {2: "duplicate_id", 3: "duplicate_id"}


def test_resend_of_a_quarantined_first_copy_is_still_a_duplicate() -> None:
    # Which version is right is a person's call: both copies go to quarantine, side by side.
    result = validate(_batch(transaction_id=[5, 5], tx_amount=[-1.0, 10.0]))
    assert _rules(result) == {0: "negative_amount", 1: "duplicate_id"}


def test_out_of_order_is_judged_against_accepted_rows_only() -> None:
    minutes = [0, 30, 10, 20, 5]
    times = [T0 + pd.Timedelta(minutes=m) for m in minutes]
    # Row 1 (10:30) is quarantined for its amount, so rows 2 and 3 are not behind any accepted row;
    # row 4 (10:05) is behind row 3 (10:20), which was accepted.
    batch = _batch(tx_datetime=times, tx_amount=[10.0, -1.0, 10.0, 10.0, 10.0])
    result = validate(batch)
    assert _rules(result) == {1: "negative_amount", 4: "out_of_order"}


def test_equal_timestamps_are_in_order() -> None:
    result = validate(_batch(tx_datetime=[T0, T0, T0]))
    assert result.n_quarantined == 0


def test_last_seen_carries_the_order_rule_across_batches(feed: RawFeed, tiny: Simulation) -> None:
    whole = _validate(feed.raw, tiny)
    half = len(feed.raw) // 2
    first = _validate(feed.raw.iloc[:half], tiny)
    second = _validate(feed.raw.iloc[half:], tiny, last_seen=first.last_seen)
    assert first.last_seen == whole.accepted["tx_datetime"].iloc[: first.n_accepted].max()
    split_rules = pd.concat([first.quarantined["rules"], second.quarantined["rules"]])
    pd.testing.assert_series_equal(split_rules, whole.quarantined["rules"])
    early = validate(_batch(), last_seen=T0 + pd.Timedelta(minutes=1, seconds=30))
    assert _rules(early) == {0: "out_of_order", 1: "out_of_order"}


def test_unknown_ids_are_checked_against_the_tables_only_when_given() -> None:
    batch = _batch(customer_id=[1, 99, 1], terminal_id=[2, 2, 99])
    assert validate(batch).n_quarantined == 0
    result = validate(batch, known_customers={1}, known_terminals=[2])
    assert _rules(result) == {1: "unknown_customer", 2: "unknown_terminal"}
    report = validate(batch).report.set_index("rule")
    assert not report.loc["unknown_customer", "checked"]


# --- report, extra columns, silence -------------------------------------------------------------------


def test_report_counts_rows_per_rule(feed: RawFeed, result: ValidationResult) -> None:
    report = result.report.set_index("rule")
    assert list(report.index) == list(RULES)
    for rule in RULES:
        expected = result.quarantined["rules"].str.split("|").map(lambda found, rule=rule: rule in found).sum()
        assert report.loc[rule, "rows"] == expected, rule
    assert report.loc["duplicate_id", "rows"] == (feed.truth["fault"] == "duplicate_id").sum()


def test_extra_columns_pass_through_unvalidated(tiny: Simulation) -> None:
    batch = tiny.transactions.iloc[:50].assign(tx_label_seconds=np.arange(50))
    result = _validate(batch, tiny)
    assert list(result.accepted.columns) == [*batch.columns]
    assert (result.accepted["tx_label_seconds"] == np.arange(50)).all()


def test_empty_batch_gives_empty_frames(tiny: Simulation) -> None:
    result = _validate(tiny.transactions.iloc[:0], tiny)
    assert (result.n_in, result.n_accepted, result.n_quarantined) == (0, 0, 0)
    assert result.last_seen is None


def test_validation_prints_and_warns_nothing(feed: RawFeed, capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate(feed.raw)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_the_batch_is_not_modified(feed: RawFeed, tiny: Simulation) -> None:
    before = feed.raw.copy(deep=True)
    _validate(feed.raw, tiny)
    pd.testing.assert_frame_equal(feed.raw, before)


# --- properties ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(0, 10_000),
    length=st.integers(0, 400),
    rate=st.floats(0.0, 1.0),
    kinds=st.sets(st.sampled_from(FAULT_KINDS), min_size=1),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_faults_are_all_caught_and_no_row_is_lost(
    tiny: Simulation, start: int, length: int, rate: float, kinds: set[str], seed: int
) -> None:
    clean = tiny.transactions.iloc[start : start + length]
    feed = raw_feed(clean, FeedFaults(rate=rate, kinds=tuple(sorted(kinds))), random_state=seed)
    result = _validate(feed.raw, tiny)
    assert result.n_accepted + result.n_quarantined == len(feed.raw)
    assert result.accepted.index.union(result.quarantined.index).equals(feed.raw.index)
    assert result.accepted.index.intersection(result.quarantined.index).empty
    faulted = feed.truth.index[feed.truth["fault"] != ""]
    assert set(result.quarantined.index) == set(faulted)


_cells = st.one_of(
    st.none(),
    st.integers(-5, 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=6),
    st.datetimes(min_value=dt.datetime(2018, 1, 1), max_value=dt.datetime(2018, 12, 31)).map(pd.Timestamp),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries(dict.fromkeys(FEED_COLUMNS, _cells)), max_size=30))
def test_property_any_mix_of_cells_splits_without_loss(rows: list[dict[str, object]]) -> None:
    batch = pd.DataFrame(
        {column: pd.Series([row[column] for row in rows], dtype=object) for column in FEED_COLUMNS},
        index=pd.Index(np.arange(len(rows)) * 7 + 3),
    )
    result = validate(batch, known_customers=range(100), known_terminals=range(100))
    assert result.n_in == len(batch)
    assert result.accepted.index.append(result.quarantined.index).sort_values().equals(batch.index)
    assert result.accepted.dtypes.to_dict() == FEED_DTYPES
    assert (result.quarantined["rules"] != "").all()
