"""Tests of the drift schedule: each event's effect after its start, nothing before it, and its ground truth.

Each test is named after the bug it catches. Events start on day 40 of the ``small`` preset (70 days),
leaving 40 clean days to compare byte for byte and 30 drifted ones to measure the effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.data import (
    CARD_TESTING_SCENARIO,
    COLUMNS,
    PRESETS,
    AmountInflation,
    CardTesting,
    DriftEvent,
    FraudScenarios,
    NewTerminals,
    ScenarioOff,
    Simulation,
    SimulatorConfig,
    default_drift_schedule,
    preset,
    simulate,
)
from mlsys_lab.data.simulator import _s2_starts

START = 40
DAY = 86_400
EVENTS: list[DriftEvent] = [
    AmountInflation(start_day=START),
    NewTerminals(start_day=START),
    CardTesting(start_day=START),
    ScenarioOff(start_day=START, scenario=1),
    ScenarioOff(start_day=START, scenario=2),
    ScenarioOff(start_day=START, scenario=3),
]


def _name(event: DriftEvent) -> str:
    return type(event).__name__ + (f"{event.scenario}" if isinstance(event, ScenarioOff) else "")


@pytest.fixture(scope="module")
def base() -> Simulation:
    return simulate(preset("small"))


@pytest.fixture(scope="module")
def drifted() -> dict[str, Simulation]:
    return {_name(event): simulate(preset("small", drift=(event,))) for event in EVENTS}


def _assert_same_rows(with_event: pd.DataFrame, without: pd.DataFrame, before_day: int, what: str) -> None:
    a = with_event[with_event["tx_time_days"] < before_day]
    b = without[without["tx_time_days"] < before_day]
    assert len(a) == len(b), f"{what}: {len(a)} rows before day {before_day}, expected {len(b)}"
    for column in COLUMNS:
        assert a[column].to_numpy().tobytes() == b[column].to_numpy().tobytes(), (
            f"{what} changed {column!r} before day {before_day}: it shares a random stream or reorders rows"
        )


# ---------------------------------------------------------------------------------------------------
# Nothing before the start changes
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS, ids=_name)
def test_event_leaves_every_row_before_its_start_byte_identical(
    base: Simulation, drifted: dict[str, Simulation], event: DriftEvent
) -> None:
    sim = drifted[_name(event)]
    _assert_same_rows(sim.transactions, base.transactions, event.start_day, _name(event))
    pd.testing.assert_frame_equal(sim.customers, base.customers)
    pd.testing.assert_frame_equal(sim.terminals.iloc[: len(base.terminals)], base.terminals)
    # ... and it does change something from its start on.
    after = sim.transactions[sim.transactions["tx_time_days"] >= event.start_day]
    before = base.transactions[base.transactions["tx_time_days"] >= event.start_day]
    assert len(after) != len(before) or not after.reset_index(drop=True).equals(before.reset_index(drop=True))


def test_adding_each_event_of_a_schedule_leaves_earlier_rows_byte_identical() -> None:
    # Events stack: each one added to the ones before it must not disturb their rows before its start.
    schedule = (*default_drift_schedule(70), NewTerminals(start_day=66, n_terminals=50), CardTesting(start_day=66))
    previous = simulate(preset("small")).transactions
    for k, event in enumerate(schedule, start=1):
        current = simulate(preset("small", drift=schedule[:k])).transactions
        _assert_same_rows(current, previous, event.start_day, f"adding {event}")
        previous = current


def test_event_order_in_the_tuple_does_not_matter() -> None:
    # Including ties: two waves (and two card-testing events) on the same day.
    schedule = (
        *default_drift_schedule(70),
        CardTesting(start_day=52, n_small=(1, 2)),
        NewTerminals(start_day=43, n_terminals=9),
    )
    forward = simulate(preset("small", drift=schedule))
    backward = simulate(preset("small", drift=schedule[::-1]))
    pd.testing.assert_frame_equal(forward.transactions, backward.transactions)
    pd.testing.assert_frame_equal(forward.terminals, backward.terminals)


def test_drifted_output_keeps_the_transaction_contract() -> None:
    sim = simulate(preset("small", drift=default_drift_schedule(70)))
    tx = sim.transactions
    assert tuple(tx.columns) == COLUMNS
    assert np.array_equal(tx["transaction_id"].to_numpy(), np.arange(len(tx)))
    seconds = tx["tx_time_seconds"].to_numpy()
    assert np.all(np.diff(seconds) >= 0), "drift rows were not merged in time order"
    assert np.array_equal(tx["tx_time_days"].to_numpy(), seconds // DAY)
    assert np.array_equal(tx["tx_fraud"].to_numpy(), (tx["tx_fraud_scenario"] > 0).to_numpy())
    assert (tx["tx_label_seconds"] >= tx["tx_time_seconds"]).all()
    assert (seconds % DAY > 0).all()
    # Every transaction, drift rows included, uses a terminal within the customer's radius.
    c, t = tx["customer_id"].to_numpy(), tx["terminal_id"].to_numpy()
    distance = np.hypot(
        sim.customers["x"].to_numpy()[c] - sim.terminals["x"].to_numpy()[t],
        sim.customers["y"].to_numpy()[c] - sim.terminals["y"].to_numpy()[t],
    )
    assert distance.max() <= 5 * np.sqrt(10_000 / sim.config.n_terminals) + 1e-9


def test_drift_config_is_hashable_and_reproducible() -> None:
    config = preset("small", drift=default_drift_schedule(70))
    assert hash(config) == hash(preset("small", drift=default_drift_schedule(70)))
    pd.testing.assert_frame_equal(simulate(config).transactions, simulate(config).transactions)


# ---------------------------------------------------------------------------------------------------
# Each event's effect after its start
# ---------------------------------------------------------------------------------------------------


def test_amount_inflation_multiplies_amounts_from_its_start(base: Simulation, drifted: dict[str, Simulation]) -> None:
    on, off = drifted["AmountInflation"].transactions, base.transactions
    assert len(on) == len(off)
    late = on["tx_time_days"].to_numpy() >= START
    untouched_by_s3 = (on["tx_fraud_scenario"] != 3).to_numpy() & (off["tx_fraud_scenario"] != 3).to_numpy()
    rows = late & untouched_by_s3
    # Inflated before rounding to cents: off by at most half a cent from each rounding, the first one x1.25.
    assert np.abs(on["tx_amount"].to_numpy()[rows] - 1.25 * off["tx_amount"].to_numpy()[rows]).max() <= 0.01125 + 1e-9
    ratio = on.loc[late, "tx_amount"].mean() / off.loc[late, "tx_amount"].mean()
    assert abs(ratio - 1.25) < 0.02, f"mean amount ratio {ratio:.3f} after inflation x1.25"
    # Applied before S1: large amounts, hence S1 frauds, become more common.
    assert (on.loc[late, "tx_fraud_scenario"] == 1).sum() > 2 * (off.loc[late, "tx_fraud_scenario"] == 1).sum()


def test_amount_inflations_compound() -> None:
    one = simulate(preset("tiny")).transactions
    two = simulate(
        preset("tiny", fraud=FraudScenarios(s3=False), drift=(AmountInflation(start_day=10, factor=2.0),) * 2)
    ).transactions
    base = simulate(preset("tiny", fraud=FraudScenarios(s3=False))).transactions
    late = two["tx_time_days"].to_numpy() >= 10
    assert len(one) == len(two)
    assert np.abs(two["tx_amount"].to_numpy()[late] - 4 * base["tx_amount"].to_numpy()[late]).max() <= 0.025 + 1e-9


def test_new_terminals_open_on_their_start_day(base: Simulation, drifted: dict[str, Simulation]) -> None:
    sim = drifted["NewTerminals"]
    n_old = base.config.n_terminals
    n_new = round(0.2 * n_old)  # the default wave size
    assert np.array_equal(sim.terminals["terminal_id"].to_numpy(), np.arange(n_old + n_new))
    tx = sim.transactions
    on_new = tx["terminal_id"].to_numpy() >= n_old
    days = tx["tx_time_days"].to_numpy()
    assert not on_new[days < START].any(), "a new terminal was used before it opened"
    assert on_new[days == START].any(), "no customer used a new terminal on its opening day"
    # One uniform over old + new reachable terminals: about n_new / (n_old + n_new) of the traffic moves.
    share = on_new[days >= START].mean()
    assert abs(share - n_new / (n_old + n_new)) < 0.03, f"{share:.3f} of the traffic on new terminals"
    assert len(tx) == len(base.transactions), "new terminals must not change how many transactions customers make"
    # New terminals can be compromised (S2) from their opening day, never before.
    starts = _s2_starts(sim.config)
    assert starts.shape == (n_old + n_new, sim.config.n_days)
    assert not starts[n_old:, :START].any()


def test_new_terminal_waves_take_ids_in_opening_order() -> None:
    sim = simulate(
        preset("tiny", drift=(NewTerminals(start_day=20, n_terminals=5), NewTerminals(start_day=10, n_terminals=7)))
    )
    log = sim.drift_log
    assert log["start_day"].tolist() == [10, 20]
    assert "terminal_ids='400..406'" in log["params"].iloc[0] and "terminal_ids='407..411'" in log["params"].iloc[1]
    tx = sim.transactions
    second_wave = tx["terminal_id"].between(407, 411).to_numpy()
    assert not second_wave[tx["tx_time_days"].to_numpy() < 20].any()
    # The same event object twice is two waves of the same size and day, each with its own ids and places.
    twice = simulate(preset("tiny", drift=(NewTerminals(start_day=10, n_terminals=3),) * 2))
    assert [p.split("terminal_ids=")[1] for p in twice.drift_log["params"]] == ["'400..402'", "'403..405'"]
    assert not np.array_equal(twice.terminals["x"].to_numpy()[400:403], twice.terminals["x"].to_numpy()[403:406])


def test_card_testing_adds_scenario_4_rows_from_its_start(base: Simulation, drifted: dict[str, Simulation]) -> None:
    tx = drifted["CardTesting"].transactions
    ct = tx[tx["tx_fraud_scenario"] == CARD_TESTING_SCENARIO]
    assert len(ct) > 20
    assert ct["tx_time_days"].min() >= START
    assert (ct["tx_fraud"] == 1).all()
    # The genuine rows are those of the run without the event, in the same order.
    rest = tx[tx["tx_fraud_scenario"] != CARD_TESTING_SCENARIO].drop(columns="transaction_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, base.transactions.drop(columns="transaction_id"))
    # Expected cards: 3 per 5,000 customers per day over 30 days, 1,000 customers: 18.
    n_cards = ct.groupby(["customer_id", "tx_time_days"]).ngroups
    assert 5 <= n_cards <= 40, f"{n_cards} tested cards"


def test_card_testing_rows_look_like_the_pattern(drifted: dict[str, Simulation]) -> None:
    # Per tested card and day: 3-6 tiny charges between 00:00 and 05:00 at one terminal, then one large
    # charge later that day. (Two attacks on one card on one day would merge; the fixed seed has none.)
    tx = drifted["CardTesting"].transactions
    ct = tx[tx["tx_fraud_scenario"] == CARD_TESTING_SCENARIO]
    for (customer, day), rows in ct.groupby(["customer_id", "tx_time_days"]):
        rows = rows.sort_values("tx_time_seconds", kind="stable")
        small, large = rows.iloc[:-1], rows.iloc[-1]
        assert 3 <= len(small) <= 6, f"card {customer} day {day}: {len(small)} tiny charges"
        assert small["tx_amount"].between(0.5, 3.0).all()
        assert (small["tx_time_seconds"] % DAY < 5 * 3600).all(), "tiny charges outside the night window"
        assert small["terminal_id"].nunique() == 1
        assert 100 <= large["tx_amount"] <= 800
        assert large["tx_time_seconds"] > small["tx_time_seconds"].max()
    # Fraud labels, fraud delays: all known within four weeks.
    delay_days = (ct["tx_label_seconds"] - ct["tx_time_seconds"]) / DAY
    assert delay_days.max() < 30


@pytest.mark.parametrize("scenario", [1, 2, 3])
def test_scenario_off_leaves_no_fraud_of_that_scenario_from_its_start(
    base: Simulation, drifted: dict[str, Simulation], scenario: int
) -> None:
    on, off = base.transactions, drifted[f"ScenarioOff{scenario}"].transactions
    assert len(on) == len(off)
    late = off["tx_time_days"].to_numpy() >= START
    tagged_off = off["tx_fraud_scenario"].to_numpy() == scenario
    assert not tagged_off[late].any(), f"scenario {scenario} still produces fraud after it was switched off"
    tagged_on = on["tx_fraud_scenario"].to_numpy() == scenario
    assert tagged_on[late].sum() > 0, "the base run has no late fraud of this scenario: the test proves nothing"
    # Rows the scenario never touched are unchanged, whatever the day.
    for column in COLUMNS:
        assert off[column].to_numpy()[~tagged_on].tobytes() == on[column].to_numpy()[~tagged_on].tobytes()
    if scenario == 3:
        # S3 no longer multiplies the amounts of the rows it would have picked.
        rows = tagged_on & late
        assert np.array_equal(on["tx_amount"].to_numpy()[rows], np.round(off["tx_amount"].to_numpy()[rows] * 5, 2))


def test_scenario_off_ends_ongoing_compromises_at_its_start() -> None:
    # S2 only: a compromise that started before the switch-off stops on the switch-off day.
    only_s2 = FraudScenarios(s1=False, s3=False)
    on = simulate(preset("small", fraud=only_s2)).transactions
    off = simulate(preset("small", fraud=only_s2, drift=(ScenarioOff(start_day=START, scenario=2),))).transactions
    days = on["tx_time_days"].to_numpy()
    ongoing = (on["tx_fraud"].to_numpy() == 1) & (days >= START) & (days < START + 3)
    assert ongoing.any()
    assert (off["tx_fraud"].to_numpy()[days >= START] == 0).all()


# ---------------------------------------------------------------------------------------------------
# The ground truth and the example schedule
# ---------------------------------------------------------------------------------------------------


def test_drift_log_lists_every_event_with_its_start() -> None:
    schedule = default_drift_schedule(70)
    sim = simulate(preset("small", drift=schedule[::-1]))
    log = sim.drift_log
    assert list(log.columns) == ["event", "start_day", "start_datetime", "params"]
    assert log["event"].tolist() == ["AmountInflation", "NewTerminals", "CardTesting", "ScenarioOff"]
    assert log["start_day"].tolist() == [35, 43, 52, 61]
    expected = pd.Timestamp("2018-04-01") + pd.to_timedelta(log["start_day"], unit="D")
    assert log["start_datetime"].tolist() == expected.tolist()
    assert log["params"].tolist()[0] == "factor=1.25"
    assert "n_terminals=400" in log["params"].iloc[1] and "terminal_ids='2000..2399'" in log["params"].iloc[1]
    assert "tx_fraud_scenario=4" in log["params"].iloc[2]
    assert log["params"].iloc[3] == "scenario=2"
    # Card testing starts no earlier than the log says (a few days may pass before the first tested card).
    first_ct = sim.transactions.loc[sim.transactions["tx_fraud_scenario"] == 4, "tx_time_days"].min()
    assert 52 <= first_ct < 70


def test_drift_log_is_empty_without_drift(base: Simulation) -> None:
    log = base.drift_log
    assert len(log) == 0 and list(log.columns) == ["event", "start_day", "start_datetime", "params"]


@pytest.mark.parametrize("name", ["small", "medium", "full"])
def test_default_schedule_has_one_event_of_each_kind_in_the_second_half(name: str) -> None:
    n_days = PRESETS[name].n_days
    schedule = default_drift_schedule(n_days)
    assert [type(event) for event in schedule] == [AmountInflation, NewTerminals, CardTesting, ScenarioOff]
    days = [event.start_day for event in schedule]
    assert days == sorted(set(days)) and days[0] >= n_days // 2 and days[-1] < n_days
    preset(name, drift=schedule)  # valid for its preset


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: preset("tiny", drift=(AmountInflation(start_day=30),)), "start_day"),
        (lambda: preset("tiny", drift=(CardTesting(start_day=99),)), "CardTesting"),
        (lambda: AmountInflation(start_day=-1), "start_day"),
        (lambda: NewTerminals(start_day=2.5), "start_day"),
        (lambda: AmountInflation(start_day=3, factor=0), "factor"),
        (lambda: AmountInflation(start_day=3, factor=float("nan")), "factor"),
        (lambda: ScenarioOff(start_day=3, scenario=4), "scenario"),
        (lambda: ScenarioOff(start_day=3, scenario=0), "scenario"),
        (lambda: NewTerminals(start_day=3, n_terminals=0), "n_terminals"),
        (lambda: CardTesting(start_day=3, customers_per_5k_per_day=-1), "customers_per_5k_per_day"),
        (lambda: CardTesting(start_day=3, n_small=(5, 3)), "n_small"),
        (lambda: CardTesting(start_day=3, n_small=(0, 3)), "n_small"),
        (lambda: CardTesting(start_day=3, small_amount=(1.0,)), "small_amount"),
        (lambda: CardTesting(start_day=3, small_hours=(0, 24)), "small_hours"),
        (lambda: CardTesting(start_day=3, small_hours=(2, 2)), "small_hours"),
        (lambda: CardTesting(start_day=3, large_amount=(500.0, 100.0)), "large_amount"),
        (lambda: preset("tiny", drift=[AmountInflation(start_day=3)]), "tuple"),
        (lambda: preset("tiny", drift=(FraudScenarios(),)), r"drift\[0\]"),
        (lambda: preset("tiny", drift=(DriftEvent(start_day=3),)), "AmountInflation"),
        (lambda: default_drift_schedule(5), "n_days"),
    ],
)
def test_bad_events_raise_value_error_naming_the_field(make, name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=name):
        make()


def test_event_errors_name_the_event_position() -> None:
    with pytest.raises(ValueError, match=r"drift\[1\] NewTerminals: start_day=70"):
        SimulatorConfig(
            n_customers=10,
            n_terminals=10,
            n_days=70,
            drift=(ScenarioOff(start_day=1, scenario=1), NewTerminals(start_day=70)),
        )
