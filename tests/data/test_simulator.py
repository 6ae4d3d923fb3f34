"""Tests of the transaction simulator: its contract, the rules of the simulated world, and its randomness.

Each test is named after the bug it catches. Shared simulations are module-scoped fixtures on the
``tiny`` and ``small`` presets, so the whole file runs in a few seconds; the full-size reference
point is marked ``slow``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data import (
    COLUMNS,
    PRESETS,
    FraudScenarios,
    Simulation,
    SimulatorConfig,
    iter_days,
    preset,
    simulate,
)
from mlsys_lab.data.simulator import _s2_starts, _s3_events

EXPECTED_DTYPES = {
    "transaction_id": np.dtype("int64"),
    "tx_datetime": np.dtype("datetime64[us]"),
    "customer_id": np.dtype("int32"),
    "terminal_id": np.dtype("int32"),
    "tx_amount": np.dtype("float64"),
    "tx_time_seconds": np.dtype("int64"),
    "tx_time_days": np.dtype("int32"),
    "tx_fraud": np.dtype("int8"),
    "tx_fraud_scenario": np.dtype("int8"),
    "tx_label_seconds": np.dtype("int64"),
}
# Columns that no fraud scenario may change (S3 changes tx_amount, every scenario changes the labels,
# and with them tx_label_seconds: whether a row is fraud decides which label delay applies).
GENUINE_COLUMNS = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_time_seconds", "tx_time_days"]


def _only(**switches: bool) -> FraudScenarios:
    return FraudScenarios(**switches)


@pytest.fixture(scope="module")
def tiny() -> Simulation:
    return simulate(preset("tiny"))


@pytest.fixture(scope="module")
def small() -> Simulation:
    return simulate(preset("small"))


@pytest.fixture(scope="module")
def small_s2_only() -> Simulation:
    return simulate(preset("small", fraud=_only(s1=False, s3=False)))


# ---------------------------------------------------------------------------------------------------
# Reproducibility
# ---------------------------------------------------------------------------------------------------


def test_same_config_gives_byte_identical_output(tiny: Simulation) -> None:
    again = simulate(preset("tiny"))
    pd.testing.assert_frame_equal(again.transactions, tiny.transactions)
    pd.testing.assert_frame_equal(again.customers, tiny.customers)
    pd.testing.assert_frame_equal(again.terminals, tiny.terminals)
    for column in COLUMNS:
        assert again.transactions[column].to_numpy().tobytes() == tiny.transactions[column].to_numpy().tobytes(), (
            f"column {column!r} differs between two runs of the same config: some randomness is not seeded"
        )


def test_different_random_state_gives_different_output(tiny: Simulation) -> None:
    other = simulate(preset("tiny", random_state=1))
    assert not np.array_equal(other.customers["x"], tiny.customers["x"])
    assert not np.array_equal(other.terminals["x"], tiny.terminals["x"])
    assert len(other.transactions) != len(tiny.transactions) or not np.array_equal(
        other.transactions["tx_amount"], tiny.transactions["tx_amount"]
    ), "random_state=1 gave the same transactions as random_state=0: the seed is ignored"


def test_earlier_days_do_not_depend_on_later_days() -> None:
    # Guards the draw layout: a simulation's first days must not change when later days are added
    # (or, later, changed by drift). Genuine columns must match on every shared day; labels and
    # amounts too, except where an S3 window of the short run was cut off by its end.
    short = simulate(preset("tiny", n_days=20)).transactions
    long = simulate(preset("tiny", n_days=30)).transactions
    shared = long[long["tx_time_days"] < 20]
    pd.testing.assert_frame_equal(shared[GENUINE_COLUMNS], short[GENUINE_COLUMNS])
    settled = 20 - FraudScenarios().s3_duration_days
    pd.testing.assert_frame_equal(shared[shared["tx_time_days"] < settled], short[short["tx_time_days"] < settled])


# ---------------------------------------------------------------------------------------------------
# Output contract
# ---------------------------------------------------------------------------------------------------


def test_columns_and_dtypes(tiny: Simulation) -> None:
    tx = tiny.transactions
    assert tuple(tx.columns) == COLUMNS
    assert dict(tx.dtypes) == EXPECTED_DTYPES
    # New columns are appended, so positional readers of the first nine columns keep working.
    assert COLUMNS[-3:] == ("tx_fraud", "tx_fraud_scenario", "tx_label_seconds")
    assert list(tiny.customers.columns) == ["customer_id", "x", "y", "mean_amount", "std_amount", "mean_daily_tx"]
    assert list(tiny.terminals.columns) == ["terminal_id", "x", "y"]


def test_ids_contiguous_and_rows_time_sorted(tiny: Simulation) -> None:
    tx = tiny.transactions
    n = len(tx)
    assert np.array_equal(tx["transaction_id"].to_numpy(), np.arange(n))
    assert np.array_equal(tx.index.to_numpy(), np.arange(n))
    seconds = tx["tx_time_seconds"].to_numpy()
    customers = tx["customer_id"].to_numpy()
    assert np.all(np.diff(seconds) >= 0), "rows are not sorted by tx_time_seconds"
    same_second = np.diff(seconds) == 0
    assert np.all(np.diff(customers)[same_second] >= 0), "ties in time are not broken by customer_id"


def test_time_columns_agree(tiny: Simulation) -> None:
    tx = tiny.transactions
    seconds = tx["tx_time_seconds"].to_numpy()
    assert np.array_equal(tx["tx_time_days"].to_numpy(), seconds // 86_400)
    expected = pd.Timestamp(tiny.config.start_date) + pd.to_timedelta(seconds, unit="s")
    assert np.array_equal(tx["tx_datetime"].to_numpy(), expected.to_numpy().astype("datetime64[us]"))


def test_time_of_day_strictly_inside_the_day(small: Simulation) -> None:
    seconds = small.transactions["tx_time_seconds"].to_numpy()
    time_of_day = seconds % 86_400
    assert time_of_day.min() > 0 and time_of_day.max() < 86_400
    days = small.transactions["tx_time_days"]
    assert days.min() == 0 and days.max() == small.config.n_days - 1


def test_amounts_non_negative_and_whole_cents(small: Simulation) -> None:
    amount = small.transactions["tx_amount"].to_numpy()
    assert amount.min() >= 0
    assert np.array_equal(np.round(amount, 2), amount), "some amounts are not rounded to cents"


def test_every_terminal_is_within_the_customer_radius(small: Simulation) -> None:
    tx, customers, terminals = small.transactions, small.customers, small.terminals
    radius = 5 * np.sqrt(10_000 / small.config.n_terminals)
    c = tx["customer_id"].to_numpy()
    t = tx["terminal_id"].to_numpy()
    dx = customers["x"].to_numpy()[c] - terminals["x"].to_numpy()[t]
    dy = customers["y"].to_numpy()[c] - terminals["y"].to_numpy()[t]
    distance = np.hypot(dx, dy)
    assert distance.max() <= radius + 1e-9, f"a transaction used a terminal {distance.max():.2f} away (r={radius:.2f})"
    # A uniform choice among ~80 reachable terminals spreads a customer over many of them.
    per_customer = tx.groupby("customer_id")["terminal_id"].nunique()
    assert per_customer.median() > 10


def test_customers_without_reachable_terminal_make_no_transactions() -> None:
    sim = simulate(preset("tiny", radius=1e-9))
    assert len(sim.transactions) == 0
    assert dict(sim.transactions.dtypes) == EXPECTED_DTYPES


def test_customer_and_terminal_tables(tiny: Simulation) -> None:
    customers, terminals = tiny.customers, tiny.terminals
    assert len(customers) == tiny.config.n_customers and len(terminals) == tiny.config.n_terminals
    for frame in (customers, terminals):
        assert frame[["x", "y"]].to_numpy().min() >= 0 and frame[["x", "y"]].to_numpy().max() <= 100
    assert customers["mean_amount"].between(5, 100).all()
    assert np.allclose(customers["std_amount"], customers["mean_amount"] / 2)
    assert customers["mean_daily_tx"].between(0, 4).all()


# ---------------------------------------------------------------------------------------------------
# Fraud scenarios
# ---------------------------------------------------------------------------------------------------


def test_fraud_flag_matches_scenario(small: Simulation) -> None:
    tx = small.transactions
    assert np.array_equal(tx["tx_fraud"].to_numpy(), (tx["tx_fraud_scenario"] > 0).to_numpy())
    assert set(np.unique(tx["tx_fraud_scenario"])) <= {0, 1, 2, 3}


def test_fraud_share_and_every_scenario_present_at_small(small: Simulation) -> None:
    tx = small.transactions
    share = tx["tx_fraud"].mean()
    assert 0.005 < share < 0.013, f"fraud share {share:.4%} is outside 0.5%-1.3%"
    counts = tx["tx_fraud_scenario"].value_counts()
    for scenario in (1, 2, 3):
        assert counts.get(scenario, 0) > 0, f"no scenario-{scenario} fraud at small"


def test_s1_marks_amounts_above_threshold(small: Simulation) -> None:
    tx = small.transactions
    s1 = tx[tx["tx_fraud_scenario"] == 1]
    assert len(s1) > 0 and (s1["tx_amount"] > 220).all()
    # S3 multiplies amounts after S1 ran, so only rows S3 did not touch are held to the threshold.
    large = tx[(tx["tx_amount"] > 220) & (tx["tx_fraud_scenario"] != 3)]
    assert (large["tx_fraud"] == 1).all(), "a transaction above 220 is not fraud"


def test_s1_disabled_leaves_large_amounts_genuine() -> None:
    tx = simulate(preset("small", fraud=_only(s1=False))).transactions
    assert (tx["tx_fraud_scenario"] != 1).all()
    large = tx[(tx["tx_amount"] > 220) & (tx["tx_fraud_scenario"] == 0)]
    assert len(large) > 0, "with S1 off, some amounts above 220 should stay genuine"


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the runs of True in a boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def test_s2_compromises_whole_terminal_windows_of_28_days(small_s2_only: Simulation) -> None:
    # Observable check, no ground truth: with S1 and S3 off every fraud is S2. On each terminal, a run
    # of consecutive frauds must fit in one 28-day window (span <= 27 days), and the window must be able
    # to sit between the genuine transactions around the run (at least 28 free days), since every
    # transaction in it is fraud. (Two overlapping compromises of one terminal would merge into a longer
    # run; the fixed seed has none, and the next test checks the windows against the drawn events.)
    tx = small_s2_only.transactions
    duration = FraudScenarios().s2_duration_days
    assert set(np.unique(tx["tx_fraud_scenario"])) == {0, 2}
    hit = np.unique(tx.loc[tx["tx_fraud"] == 1, "terminal_id"])
    assert len(hit) > 5
    by_terminal = tx[tx["terminal_id"].isin(hit)].sort_values(["terminal_id", "tx_time_seconds"], kind="stable")
    for terminal, rows in by_terminal.groupby("terminal_id", sort=True):
        days = rows["tx_time_days"].to_numpy()
        fraud = rows["tx_fraud"].to_numpy() == 1
        for start, stop in _runs(fraud):
            first, last = days[start], days[stop - 1]
            assert last - first <= duration - 1, f"terminal {terminal}: frauds span days {first}..{last}"
            before = days[start - 1] if start > 0 else -1
            assert before < first, f"terminal {terminal}: a genuine transaction on compromised day {first}"
            if stop < len(days):
                after = days[stop]
                assert after > last, f"terminal {terminal}: a genuine transaction on compromised day {last}"
                assert after - before - 1 >= duration, (
                    f"terminal {terminal}: frauds on days {first}..{last} but genuine on days {before} and {after}, "
                    f"too close for a {duration}-day window"
                )


def test_s2_frauds_are_exactly_the_compromise_windows(small_s2_only: Simulation) -> None:
    # Checked against the drawn compromises (the private ground truth), window by window: a row is S2
    # fraud if and only if its terminal was compromised on one of the 28 days up to the row's day.
    tx = small_s2_only.transactions
    duration = small_s2_only.config.fraud.s2_duration_days
    terminal = tx["terminal_id"].to_numpy()
    day = tx["tx_time_days"].to_numpy()
    expected = np.zeros(len(tx), dtype=bool)
    events = np.argwhere(_s2_starts(small_s2_only.config))
    assert len(events) > 5
    for t, d in events:
        expected |= (terminal == t) & (day >= d) & (day < d + duration)
    assert np.array_equal(tx["tx_fraud"].to_numpy() == 1, expected)


def test_s3_multiplies_amounts_by_five() -> None:
    on = simulate(preset("small", fraud=_only(s1=False, s2=False))).transactions
    off = simulate(preset("small", fraud=_only(s1=False, s2=False, s3=False))).transactions
    s3 = on["tx_fraud_scenario"].to_numpy() == 3
    assert s3.sum() > 0
    expected = np.round(off["tx_amount"].to_numpy()[s3] * 5, 2)
    assert np.array_equal(on["tx_amount"].to_numpy()[s3], expected)
    assert np.array_equal(on["tx_amount"].to_numpy()[~s3], off["tx_amount"].to_numpy()[~s3])


def test_s3_picks_a_third_of_each_compromised_customer_window(small: Simulation) -> None:
    # Checked against the drawn compromises (the private ground truth): every S3 fraud lies in a
    # 14-day window of its customer, and an event whose window overlaps no other event of the same
    # customer picks exactly floor(n / 3) of the n transactions in it.
    tx = small.transactions
    duration = small.config.fraud.s3_duration_days
    event_customer, event_day, _ = _s3_events(small.config)
    customer = tx["customer_id"].to_numpy()
    day = tx["tx_time_days"].to_numpy()
    s3 = tx["tx_fraud_scenario"].to_numpy() == 3
    in_some_window = np.zeros(len(tx), dtype=bool)
    exact = 0
    for c, d in zip(event_customer, event_day, strict=True):
        window = (customer == c) & (day >= d) & (day < d + duration)
        in_some_window |= window
        same_customer = event_day[event_customer == c]
        if np.count_nonzero(np.abs(same_customer - d) < duration) == 1:
            assert np.count_nonzero(s3 & window) == np.count_nonzero(window) // 3, (
                f"customer {c} compromised on day {d}: {np.count_nonzero(s3 & window)} S3 frauds "
                f"among {np.count_nonzero(window)} transactions, expected a third rounded down"
            )
            exact += 1
    assert exact > 10
    assert not np.any(s3 & ~in_some_window), "an S3 fraud lies outside every compromise window"


@pytest.mark.parametrize("scenario", [1, 2, 3])
def test_switching_a_scenario_off_leaves_other_rows_byte_identical(small: Simulation, scenario: int) -> None:
    off = simulate(preset("small", fraud=_only(**{f"s{scenario}": False}))).transactions
    on = small.transactions
    assert len(off) == len(on)
    for column in GENUINE_COLUMNS:
        assert off[column].to_numpy().tobytes() == on[column].to_numpy().tobytes(), (
            f"switching S{scenario} off changed {column!r}: the scenario shares a random stream with it"
        )
    touched = on["tx_fraud_scenario"].to_numpy() == scenario
    assert touched.sum() > 0
    untouched_on, untouched_off = on[~touched], off[~touched]
    for column in COLUMNS:
        assert untouched_off[column].to_numpy().tobytes() == untouched_on[column].to_numpy().tobytes(), (
            f"switching S{scenario} off changed {column!r} on rows S{scenario} never touched"
        )
    assert (off.loc[touched, "tx_fraud_scenario"] != scenario).all()
    amount_on, amount_off = on.loc[touched, "tx_amount"].to_numpy(), off.loc[touched, "tx_amount"].to_numpy()
    if scenario == 3:
        assert np.array_equal(amount_on, np.round(amount_off * 5, 2)), "S3 off should restore the original amount"
    else:
        assert np.array_equal(amount_on, amount_off)


# ---------------------------------------------------------------------------------------------------
# Day-by-day stream
# ---------------------------------------------------------------------------------------------------


def test_days_yields_every_day_in_order_and_concatenates_to_transactions(tiny: Simulation) -> None:
    days = list(tiny.days())
    assert [day for day, _ in days] == list(range(tiny.config.n_days))
    for day, rows in days:
        assert (rows["tx_time_days"] == day).all()
    pd.testing.assert_frame_equal(pd.concat([rows for _, rows in days]), tiny.transactions)


def test_days_yields_empty_days_with_the_same_dtypes() -> None:
    sim = simulate(preset("tiny", radius=1e-9))
    days = list(sim.days())
    assert len(days) == sim.config.n_days
    assert all(len(rows) == 0 and dict(rows.dtypes) == EXPECTED_DTYPES for _, rows in days)


def test_iter_days_matches_simulate(tiny: Simulation) -> None:
    streamed = pd.concat([rows for _, rows in iter_days(preset("tiny"))])
    pd.testing.assert_frame_equal(streamed, tiny.transactions)


# ---------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: SimulatorConfig(n_customers=-5, n_terminals=10, n_days=3), "n_customers"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=2.5, n_days=3), "n_terminals"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=0), "n_days"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=True), "n_days"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=3, start_date="2018-13-01"), "start_date"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=3, start_date="yesterday"), "start_date"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=3, random_state=-1), "random_state"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=3, radius=0.0), "radius"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=3, fraud=None), "fraud"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=3, label_delay=30), "label_delay"),
        (lambda: SimulatorConfig(n_customers=10, n_terminals=10, n_days=3, drift=[]), "drift"),
        (lambda: FraudScenarios(s2_terminals_per_10k_per_day=-1.0), "s2_terminals_per_10k_per_day"),
        (lambda: FraudScenarios(s3_customers_per_5k_per_day=float("nan")), "s3_customers_per_5k_per_day"),
        (lambda: FraudScenarios(s2_duration_days=0), "s2_duration_days"),
        (lambda: FraudScenarios(s3_share=1.5), "s3_share"),
        (lambda: FraudScenarios(s1="yes"), "s1"),
        (lambda: preset("huge"), "tiny"),
        (lambda: preset("tiny", n_day=3), "n_day"),
        (lambda: preset("tiny", n_days=-1), "n_days"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_parameter(make, name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=name):
        make()


def test_presets_are_read_only_and_overridable() -> None:
    assert set(PRESETS) == {"tiny", "small", "medium", "full"}
    with pytest.raises(TypeError):
        PRESETS["tiny"] = PRESETS["small"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["tiny"].n_days = 3  # type: ignore[misc]
    config = preset("small", random_state=1)
    assert config.random_state == 1 and PRESETS["small"].random_state == 0
    assert dataclasses.replace(config, random_state=0) == PRESETS["small"]


def test_small_preset_fits_feature_windows_and_a_split(small: Simulation) -> None:
    # The notebooks compute 30-day windows and then a 7/7/7 train/delay/test split.
    assert small.config.n_days >= 30 + 21
    assert 100_000 <= len(small.transactions) <= 150_000


@pytest.mark.slow
def test_full_preset_matches_the_reference_point() -> None:
    tx = simulate(preset("full")).transactions
    assert 1_700_000 <= len(tx) <= 1_850_000, f"{len(tx)} rows, expected about 1.75-1.8M"
    share = tx["tx_fraud"].mean()
    assert 0.0075 <= share <= 0.0095, f"fraud share {share:.4%}, expected about 0.84%"
