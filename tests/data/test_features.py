"""Tests of the offline features: exact windows, no leakage, the transformer contract.

Each test is named after the bug it catches. Three kinds of evidence:

- hand-computed examples, with every window edge tested on both sides (off by one second either way
  is the classic bug);
- a brute-force reference written straight from the definitions in ``mlsys_lab.data.features``,
  compared with the vectorised code on random frames full of ties and exact edges;
- leakage properties: changing labels that are not yet known at ``t - 7 days``, or adding future
  transactions, must leave every feature at ``t`` unchanged; the same check must catch a transformer
  whose terminal window reaches the current day (``delay_days=0``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.features import (
    CUSTOMER_COLUMNS,
    FEATURE_COLUMNS,
    TERMINAL_COLUMNS,
    CustomerWindows,
    FeatureBuilder,
    TerminalWindows,
    TimeFlags,
    build_features,
)
from mlsys_lab.data.labels import labels_known_at

D = 86_400
DELAY = 7  # the system's label delay, in days: the leakage property is stated against it
COUNT_COLUMNS = [c for c in FEATURE_COLUMNS if "_nb_tx_" in c]
# Means are sums of floats taken in a different order than the reference's: equal to rounding error.
MEAN_COLUMNS = [c for c in FEATURE_COLUMNS if "_avg_amount_" in c]


def with_label_times(tx: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``tx`` with a ``tx_label_seconds`` column: the simulator's if it has one, else one made here.

    The fallback mimics the simulator's label delay: frauds known after 0-14 days (so some before and
    some after the 7-day delay), genuine transactions after 30 days.
    """
    tx = tx.copy()
    if "tx_label_seconds" in tx.columns and tx["tx_label_seconds"].dtype.kind in "iu":
        return tx
    rng = np.random.default_rng(seed)
    delay = np.where(tx["tx_fraud"].to_numpy() == 1, rng.integers(0, 14 * D, len(tx)), 30 * D)
    tx["tx_label_seconds"] = tx["tx_time_seconds"].to_numpy() + delay
    return tx


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    return with_label_times(simulate(preset("tiny")).transactions)


def frame(rows: list[dict], start: str = "2018-04-01") -> pd.DataFrame:
    """A transactions frame from a few rows; keys a row leaves out get harmless defaults.

    Ids default to the row's position; labels to 60 days after the transaction (not known in any
    window the tests look at).
    """
    defaults = {"customer_id": 0, "terminal_id": 0, "tx_amount": 10.0, "tx_fraud": 0, "tx_fraud_scenario": 0}
    full = [
        {"transaction_id": k, **defaults, "tx_label_seconds": row["tx_time_seconds"] + 60 * D, **row}
        for k, row in enumerate(rows)
    ]
    tx = pd.DataFrame(full)
    tx["tx_datetime"] = pd.Timestamp(start) + pd.to_timedelta(tx["tx_time_seconds"], unit="s")
    return tx


# -- the reference: the definitions, written as plainly as possible --------------------------------


def reference_features(tx: pd.DataFrame, delay_days: int = DELAY, windows=(1, 7, 30)) -> pd.DataFrame:
    """Per-row loops over all rows, straight from the module docstring's definitions. O(n^2): tiny frames."""
    records = tx.to_dict("records")
    out = []
    for i in records:
        t, order_i = i["tx_time_seconds"], (i["tx_time_seconds"], i["transaction_id"])
        seen = [j for j in records if (j["tx_time_seconds"], j["transaction_id"]) <= order_i]
        row = {
            "tx_amount": i["tx_amount"],
            "tx_during_weekend": float(i["tx_datetime"].day_of_week >= 5),
            "tx_during_night": float(i["tx_datetime"].hour <= 6),
        }
        for w in windows:
            mine = [j for j in seen if j["customer_id"] == i["customer_id"] and j["tx_time_seconds"] > t - w * D]
            row[f"customer_id_nb_tx_{w}day_window"] = float(len(mine))
            row[f"customer_id_avg_amount_{w}day_window"] = sum(j["tx_amount"] for j in mine) / len(mine)
        as_of = t - delay_days * D
        for w in windows:
            there = [
                j
                for j in seen
                if j["terminal_id"] == i["terminal_id"] and as_of - w * D < j["tx_time_seconds"] <= as_of
            ]
            known = [j for j in there if j["tx_fraud"] == 1 and j["tx_label_seconds"] <= as_of]
            row[f"terminal_id_nb_tx_{w}day_window"] = float(len(there))
            row[f"terminal_id_risk_{w}day_window"] = len(known) / len(there) if there else 0.0
        out.append(row)
    return pd.DataFrame(out, index=tx.index, columns=list(FEATURE_COLUMNS))


def assert_features_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Exact, except means: equal to float rounding (rtol 1e-9), since summation order differs."""
    assert list(actual.columns) == list(expected.columns)
    assert actual.index.equals(expected.index)
    exact = [c for c in actual.columns if c not in MEAN_COLUMNS]
    pd.testing.assert_frame_equal(actual[exact], expected[exact], check_exact=True)
    np.testing.assert_allclose(actual[MEAN_COLUMNS].to_numpy(), expected[MEAN_COLUMNS].to_numpy(), rtol=1e-9)


# -- random frames full of ties and exact window edges ---------------------------------------------

# Offsets that put transactions exactly on, and one second either side of, whole-day gaps.
_SECONDS = st.sampled_from([0, 1, 2, 3_600, 43_200, D - 1])
_LABEL_DELAYS = st.sampled_from([0, 1, D - 1, D, 3 * D, 7 * D - 1, 7 * D, 7 * D + 1, 20 * D, 400 * D])


@st.composite
def transaction_frames(draw: st.DrawFn, max_rows: int = 30) -> pd.DataFrame:
    """Few customers and terminals over ~45 days, ids in random order, rows shuffled, odd index."""
    n = draw(st.integers(1, max_rows))
    days = draw(st.lists(st.integers(0, 45), min_size=n, max_size=n))
    seconds = draw(st.lists(_SECONDS, min_size=n, max_size=n))
    time = np.array(days) * D + np.array(seconds)
    ids = draw(st.permutations(list(range(n))))
    rows = [
        {
            "transaction_id": ids[k],
            "tx_time_seconds": int(time[k]),
            "customer_id": draw(st.integers(0, 2)),
            "terminal_id": draw(st.integers(0, 1)),
            "tx_amount": draw(st.integers(1, 50_000)) / 100,
            "tx_fraud": draw(st.integers(0, 1)),
            "tx_label_seconds": int(time[k]) + draw(_LABEL_DELAYS),
        }
        for k in range(n)
    ]
    tx = frame(rows)
    tx.index = pd.Index(np.array(ids) * 10 + 3)
    return tx


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tx=transaction_frames())
def test_vectorised_features_match_the_definitions_on_random_frames(tx):
    assert_features_equal(build_features(tx), reference_features(tx))


@settings(max_examples=60, deadline=None)
@given(tx=transaction_frames(max_rows=15))
def test_delay_zero_windows_match_the_definitions_including_same_second_ties(tx):
    # With no delay the window ends at the current row: same-second rows with larger ids stay out.
    assert_features_equal(build_features(tx, delay_days=0), reference_features(tx, delay_days=0))


def test_vectorised_features_match_the_definitions_on_a_simulated_slice(tiny):
    # Real traffic (compromised terminals, bursts) on the few terminals of a slice, brute-forced.
    terminals = tiny["terminal_id"].drop_duplicates().iloc[:12]
    tx = tiny[tiny["terminal_id"].isin(terminals) | tiny["customer_id"].isin([0, 1, 2])]
    assert_features_equal(build_features(tx), reference_features(tx))


# -- hand-computed examples ------------------------------------------------------------------------


def test_customer_windows_hand_computed_with_edges_and_ties():
    a = 100_000
    tx = frame(
        [
            # customer 0: b is 1 s less than a day after a, c exactly a day after a
            {"transaction_id": 0, "customer_id": 0, "tx_time_seconds": a, "tx_amount": 10.0},
            {"transaction_id": 1, "customer_id": 0, "tx_time_seconds": a + D - 1, "tx_amount": 20.0},
            {"transaction_id": 2, "customer_id": 0, "tx_time_seconds": a + D, "tx_amount": 40.0},
            # customer 1: exactly 7 days, then exactly 30 days after the first
            {"transaction_id": 3, "customer_id": 1, "tx_time_seconds": a, "tx_amount": 5.0},
            {"transaction_id": 4, "customer_id": 1, "tx_time_seconds": a + 7 * D, "tx_amount": 15.0},
            {"transaction_id": 5, "customer_id": 1, "tx_time_seconds": a + 30 * D, "tx_amount": 25.0},
            # customer 2: two transactions in the same second; the smaller id comes first
            {"transaction_id": 7, "customer_id": 2, "tx_time_seconds": a, "tx_amount": 3.0},
            {"transaction_id": 6, "customer_id": 2, "tx_time_seconds": a, "tx_amount": 1.0},
        ]
    )
    got = CustomerWindows().fit_transform(tx)
    expected = {
        # id: (n1, mean1, n7, mean7, n30, mean30)
        0: (1, 10, 1, 10, 1, 10),
        1: (2, 15, 2, 15, 2, 15),
        2: (2, 30, 3, 70 / 3, 3, 70 / 3),
        3: (1, 5, 1, 5, 1, 5),
        4: (1, 15, 1, 15, 2, 10),
        5: (1, 25, 1, 25, 2, 20),
        6: (1, 1, 1, 1, 1, 1),
        7: (2, 2, 2, 2, 2, 2),
    }
    for position, tx_id in enumerate(tx["transaction_id"]):
        assert got.iloc[position].tolist() == pytest.approx(expected[tx_id], rel=1e-12), f"transaction {tx_id}"
    assert list(got.columns) == list(CUSTOMER_COLUMNS)


def test_terminal_windows_hand_computed_with_delay_window_and_label_edges():
    s = 1_000
    label = s + 2 * D  # the fraud at s becomes known two days later
    rows = [
        {"transaction_id": 0, "tx_time_seconds": s, "tx_fraud": 1, "tx_label_seconds": label},
        {"transaction_id": 1, "tx_time_seconds": s + 8 * D - 1},  # as_of = s + D - 1: 1-day window holds s
        {"transaction_id": 2, "tx_time_seconds": s + 8 * D},  # as_of = s + D: s just left the 1-day window
        {"transaction_id": 3, "tx_time_seconds": s + 9 * D - 1},  # as_of one second before the label
        {"transaction_id": 4, "tx_time_seconds": s + 9 * D},  # as_of = label time: known
        {"transaction_id": 5, "tx_time_seconds": s + 14 * D - 1},  # 7-day window still holds s
        {"transaction_id": 6, "tx_time_seconds": s + 14 * D},  # s just left the 7-day window
        {"transaction_id": 7, "tx_time_seconds": s + 37 * D - 1},  # 30-day window holds s and rows 1-6
        {"transaction_id": 8, "tx_time_seconds": s + 37 * D},  # s just left the 30-day window
        # terminal 1: the delay's end edge. As of row 10 (s + 7 days), row 9 is exactly at the end: in.
        {"transaction_id": 9, "terminal_id": 1, "tx_time_seconds": s, "tx_fraud": 1, "tx_label_seconds": s},
        {"transaction_id": 10, "terminal_id": 1, "tx_time_seconds": s + 7 * D},
        {"transaction_id": 11, "terminal_id": 1, "tx_time_seconds": s + 7 * D - 1},  # as_of one second early
    ]
    got = TerminalWindows().fit_transform(frame(rows)).set_axis(range(12))
    expected = {
        # id: (n1, risk1, n7, risk7, n30, risk30)
        0: (0, 0, 0, 0, 0, 0),
        1: (1, 0, 1, 0, 1, 0),
        2: (0, 0, 1, 0, 1, 0),
        3: (0, 0, 1, 0, 1, 0),
        4: (0, 0, 1, 1, 1, 1),
        5: (0, 0, 1, 1, 1, 1),
        6: (0, 0, 0, 0, 1, 1),
        7: (0, 0, 0, 0, 7, 1 / 7),
        8: (0, 0, 0, 0, 6, 0),
        9: (0, 0, 0, 0, 0, 0),
        10: (1, 1, 1, 1, 1, 1),
        11: (0, 0, 0, 0, 0, 0),
    }
    for tx_id, values in expected.items():
        assert got.loc[tx_id].tolist() == pytest.approx(values, rel=1e-12), f"transaction {tx_id}"
    assert list(got.columns) == list(TERMINAL_COLUMNS)


def test_terminal_windows_without_delay_count_the_current_row_but_not_later_same_second_ones():
    tx = frame(
        [
            {"transaction_id": 20, "tx_time_seconds": 500, "tx_fraud": 0, "tx_label_seconds": 500},
            {"transaction_id": 21, "tx_time_seconds": 500, "tx_fraud": 1, "tx_label_seconds": 500},
        ]
    )
    got = TerminalWindows(windows=(1,), delay_days=0).fit_transform(tx)
    assert got.to_numpy().tolist() == [[1.0, 0.0], [2.0, 0.5]]


@pytest.mark.parametrize("w", [1, 7, 30])
@pytest.mark.parametrize(("gap", "inside"), [(-1, True), (0, False)])
def test_window_start_is_open_exactly_w_days_back(w, gap, inside):
    # A transaction w days back (gap 0) is out of the w-day window; one a second later (gap -1) is in.
    before = w * D + gap
    customer = frame([{"tx_time_seconds": 0}, {"tx_time_seconds": before}])
    got = build_features(customer)
    assert got[f"customer_id_nb_tx_{w}day_window"].iloc[1] == (2 if inside else 1)
    terminal = frame(
        [{"tx_time_seconds": 0, "tx_fraud": 1, "tx_label_seconds": 0}, {"tx_time_seconds": DELAY * D + before}]
    )
    got = build_features(terminal)
    assert got[f"terminal_id_nb_tx_{w}day_window"].iloc[1] == (1 if inside else 0)
    assert got[f"terminal_id_risk_{w}day_window"].iloc[1] == (1.0 if inside else 0.0)


@pytest.mark.parametrize(("offset", "inside"), [(0, True), (-1, False)])
def test_delayed_window_ends_exactly_delay_days_back(offset, inside):
    # A transaction exactly 7 days before t is at the window's closed end: in. 7 days minus 1 s: out.
    tx = frame([{"tx_time_seconds": 0, "tx_fraud": 1, "tx_label_seconds": 0}, {"tx_time_seconds": DELAY * D + offset}])
    got = build_features(tx).iloc[1]
    for w in (1, 7, 30):
        assert got[f"terminal_id_nb_tx_{w}day_window"] == (1 if inside else 0)
        assert got[f"terminal_id_risk_{w}day_window"] == (1.0 if inside else 0.0)


@pytest.mark.parametrize(("label_offset", "known"), [(0, True), (1, False)])
def test_a_fraud_counts_only_once_its_label_is_known_at_t_minus_delay(label_offset, known):
    t = 20 * D
    as_of = t - DELAY * D
    tx = frame(
        [
            {"tx_time_seconds": as_of - D + 5, "tx_fraud": 1, "tx_label_seconds": as_of + label_offset},
            {"tx_time_seconds": t},
        ]
    )
    got = build_features(tx).iloc[1]
    for w in (1, 7, 30):
        assert got[f"terminal_id_nb_tx_{w}day_window"] == 1  # seen at once, known or not
        assert got[f"terminal_id_risk_{w}day_window"] == (1.0 if known else 0.0)


def test_labels_missing_or_fractional_are_handled_as_never_known_and_rounded_up():
    tx = frame(
        [
            {"tx_time_seconds": 0, "tx_fraud": 1, "tx_label_seconds": np.nan},
            {"tx_time_seconds": 10, "tx_fraud": 1, "tx_label_seconds": 99.5},
            {"tx_time_seconds": DELAY * D + 99},  # as_of 99: the label at 99.5 is not known yet
            {"tx_time_seconds": DELAY * D + 100},  # as_of 100: it is
        ]
    )
    got = build_features(tx)["terminal_id_risk_1day_window"].tolist()
    assert got[2:] == [0.0, 0.5]


# -- leakage ---------------------------------------------------------------------------------------


@st.composite
def label_perturbations(draw: st.DrawFn) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """A frame, a time T (one of its transactions), and a copy whose not-yet-known labels are redrawn.

    Every row whose label becomes known after ``T - 7 days`` may get its fraud flag flipped and its
    label time moved anywhere still after ``T - 7 days``.
    """
    tx = draw(transaction_frames())
    cutoff = int(tx["tx_time_seconds"].iloc[draw(st.integers(0, len(tx) - 1))])
    perturbed = tx.copy()
    for index in tx.index[tx["tx_label_seconds"] > cutoff - DELAY * D]:
        perturbed.loc[index, "tx_fraud"] = draw(st.integers(0, 1))
        perturbed.loc[index, "tx_label_seconds"] = cutoff - DELAY * D + draw(st.sampled_from([1, 2, D, 7 * D, 60 * D]))
    return tx, cutoff, perturbed


def features_up_to(tx: pd.DataFrame, cutoff: int, **params) -> pd.DataFrame:
    """Features of every transaction at or before ``cutoff``."""
    return build_features(tx, **params)[tx["tx_time_seconds"].to_numpy() <= cutoff]


def leaks(case: tuple[pd.DataFrame, int, pd.DataFrame], **params) -> bool:
    """Did redrawing labels unknown at ``T - 7 days`` change any feature at or before T?"""
    tx, cutoff, perturbed = case
    return not features_up_to(tx, cutoff, **params).equals(features_up_to(perturbed, cutoff, **params))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=label_perturbations())
def test_labels_unknown_at_t_minus_delay_never_change_features_at_t(case):
    tx, cutoff, perturbed = case
    pd.testing.assert_frame_equal(features_up_to(tx, cutoff), features_up_to(perturbed, cutoff), check_exact=True)


def test_the_leakage_check_catches_a_terminal_window_that_reaches_the_current_day():
    # The property is stated against the 7-day label delay; a transformer whose terminal window ends
    # at t (delay_days=0) uses labels from the last 7 days, and the property test must see it.
    case = find(
        label_perturbations(),
        lambda case: leaks(case, delay_days=0),
        settings=settings(max_examples=2000, derandomize=True, phases=[Phase.generate]),
    )
    assert leaks(case, delay_days=0) and not leaks(case)


def test_the_leakage_check_sees_labels_that_were_known_in_time():
    # The converse: a label known well before t - 7 days does move the risk, so "unchanged" above is
    # not vacuous.
    tx = frame(
        [
            {"tx_time_seconds": 0, "tx_fraud": 1, "tx_label_seconds": D},
            {"tx_time_seconds": 10 * D},
        ]
    )
    flipped = tx.assign(tx_fraud=[0, 0])
    assert build_features(tx)["terminal_id_risk_7day_window"].iloc[1] == 1.0
    assert build_features(flipped)["terminal_id_risk_7day_window"].iloc[1] == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_relabelling_the_future_of_a_simulated_day_changes_nothing_before_it(tiny, seed):
    # On simulated traffic: redraw every label still unknown at T - 7 days; features up to T stay.
    rng = np.random.default_rng(seed)
    cutoff = int(rng.integers(10 * D, 30 * D))
    unknown = ~labels_known_at(tiny, cutoff - DELAY * D)
    perturbed = tiny.copy()
    perturbed.loc[unknown, "tx_fraud"] = rng.integers(0, 2, unknown.sum()).astype(np.int8)
    perturbed.loc[unknown, "tx_label_seconds"] = cutoff - DELAY * D + rng.integers(1, 10 * D, unknown.sum())
    pd.testing.assert_frame_equal(features_up_to(tiny, cutoff), features_up_to(perturbed, cutoff), check_exact=True)
    # The same relabelling does reach a window that includes the current day.
    assert not features_up_to(tiny, cutoff, delay_days=0).equals(features_up_to(perturbed, cutoff, delay_days=0))


def test_future_transactions_do_not_change_earlier_features(tiny):
    cutoff = 20 * D
    past = tiny[tiny["tx_time_seconds"] <= cutoff]
    future = tiny[tiny["tx_time_seconds"] > cutoff]
    # Future rows with extreme values on the same customers and terminals, and labels known at once.
    future = future.assign(tx_amount=1e6, tx_fraud=1, tx_label_seconds=future["tx_time_seconds"])
    with_future = pd.concat([past, future])
    pd.testing.assert_frame_equal(build_features(past), build_features(with_future).loc[past.index], check_exact=True)


def test_ids_scenario_tags_and_labels_are_never_features(tiny):
    forbidden = {"transaction_id", "customer_id", "terminal_id", "tx_fraud", "tx_fraud_scenario", "tx_label_seconds"}
    assert forbidden.isdisjoint(FEATURE_COLUMNS)
    assert forbidden.isdisjoint(build_features(tiny).columns)
    # Renaming entities and scrambling the scenario tags changes no value.
    renamed = tiny.assign(
        customer_id=tiny["customer_id"] * 7 + 1_000,
        terminal_id=-tiny["terminal_id"],
        tx_fraud_scenario=np.random.default_rng(0).integers(0, 4, len(tiny)),
    )
    pd.testing.assert_frame_equal(build_features(tiny), build_features(renamed), check_exact=True)


# -- shapes, order and the scikit-learn contract ---------------------------------------------------


def test_build_features_gives_the_15_columns_aligned_to_any_row_order(tiny):
    features = build_features(tiny)
    assert tuple(features.columns) == FEATURE_COLUMNS
    assert len(FEATURE_COLUMNS) == 15
    assert (features.dtypes == np.float64).all()
    assert not features.isna().any().any()
    shuffled = tiny.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(build_features(shuffled).loc[tiny.index], features, check_exact=True)


def test_flags_and_amount_come_through_unchanged(tiny):
    features = build_features(tiny)
    flags = TimeFlags().fit_transform(tiny)
    np.testing.assert_array_equal(features[["tx_during_weekend", "tx_during_night"]], flags.astype(float))
    np.testing.assert_array_equal(features["tx_amount"], tiny["tx_amount"])


@pytest.mark.parametrize(
    "transformer",
    [
        TimeFlags(),
        CustomerWindows(windows=(2, 3)),
        TerminalWindows(windows=(5,), delay_days=3, label_time_column="tx_label_seconds"),
        FeatureBuilder(customer_windows=(1, 2), terminal_windows=(4,), delay_days=1),
    ],
    ids=lambda t: type(t).__name__,
)
def test_transformers_follow_the_estimator_contract(tiny, transformer):
    params = transformer.get_params()
    copy = clone(transformer)
    assert copy.get_params() == params
    assert copy.fit(tiny) is copy
    assert copy.n_features_in_ == tiny.shape[1]
    out = copy.transform(tiny)
    assert list(out.columns) == list(copy.get_feature_names_out())
    assert out.index.equals(tiny.index)
    assert transformer.get_params() == params  # fitting the clone left the original alone


def test_fitting_on_training_rows_only_learns_nothing(tiny):
    train = tiny[tiny["tx_time_days"] < 7]
    fitted_on_train = FeatureBuilder().fit(train)
    # fit saw only the first week, and transform on the whole stream is the same as fitting on it.
    pd.testing.assert_frame_equal(fitted_on_train.transform(tiny), build_features(tiny), check_exact=True)
    pipeline = make_pipeline(FeatureBuilder(), StandardScaler()).fit(train)
    assert pipeline.transform(tiny).shape == (len(tiny), 15)


def test_unknown_label_times_are_a_clear_error_not_a_silent_leak(tiny):
    with pytest.raises(ValueError, match="tx_label_seconds"):
        build_features(tiny.drop(columns="tx_label_seconds"))
    custom = tiny.rename(columns={"tx_label_seconds": "known_at"})
    pd.testing.assert_frame_equal(build_features(custom, label_time_column="known_at"), build_features(tiny))


@pytest.mark.parametrize(
    "params",
    [{"customer_windows": ()}, {"customer_windows": (0,)}, {"terminal_windows": (1.5,)}, {"delay_days": -1}],
)
def test_bad_parameters_are_refused_at_fit(tiny, params):
    with pytest.raises(ValueError, match=r"windows|delay_days"):
        FeatureBuilder(**params).fit(tiny)


def test_fractional_transaction_times_are_refused():
    tx = frame([{"tx_time_seconds": 0}]).astype({"tx_time_seconds": float})
    tx.loc[0, "tx_time_seconds"] = 0.5
    with pytest.raises(ValueError, match="whole seconds"):
        build_features(tx)
