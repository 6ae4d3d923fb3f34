"""Drift statistics: their no-drift calibration, the folklore rules' failures, and the edge cases.

Each test is named after the behaviour it guards. Every warning is an error here: these functions
run inside nbgrader-graded cells, where anything on stderr scores zero.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mlsys_lab.data import preset, simulate
from mlsys_lab.monitoring import drift
from mlsys_lab.monitoring.drift import (
    DriftRule,
    WindowTooSmall,
    calibrate_null,
    feature_drift,
    proportion_test,
    psi,
    psi_critical_value,
    quantile_edges,
    wasserstein_std,
)

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def amounts() -> np.ndarray:
    # The simulator's amounts: skewed, the feature the folklore rules get most wrong.
    return simulate(preset("small", random_state=0)).transactions["tx_amount"].to_numpy()


def test_analytic_critical_value_matches_the_measured_null_quantile() -> None:
    # The measurement: at n = m = 1,000 the no-drift 99th percentile of 10-bin PSI is 0.043.
    assert psi_critical_value(1_000, 1_000, bins=10, alpha=0.01) == pytest.approx(0.0433, abs=0.001)
    # ... and it shrinks with the window as 1/n + 1/m.
    assert psi_critical_value(10_000, 10_000, 10, 0.01) == pytest.approx(0.00433, abs=0.0001)


def test_psi_null_false_alarm_rate_is_near_the_stated_level_at_n_1000() -> None:
    rng = np.random.default_rng(0)
    rule = DriftRule(alpha=0.05, psi_size=0.0, wasserstein_size=0.0)  # evidence alone: the calibration
    trials = 400
    alarms = sum(rule.compare(rng.lognormal(size=1_000), rng.lognormal(size=1_000)).evidence for _ in range(trials))
    # Binomial(400, 0.05): mean 20, sd 4.4; [10, 32] holds for any seed with overwhelming probability.
    assert 10 <= alarms <= 32, f"expected about 5% of {trials} no-drift windows to pass the test, got {alarms}"


@pytest.mark.slow
def test_small_windows_folklore_fires_most_of_the_time_while_the_bootstrap_rule_stays_near_nominal() -> None:
    # n = m = 100: PSI's null is (2/100) * chi2(9), so "PSI > 0.1" means chi2 > 5: about 84 % of the time.
    rng = np.random.default_rng(1)
    rule = DriftRule(alpha=0.1, evidence="bootstrap")
    trials, folklore, ours = 120, 0, 0
    for trial in range(trials):
        reference, current = rng.lognormal(size=100), rng.lognormal(size=100)
        null = calibrate_null(reference, 100, alpha=0.1, n_resamples=100, random_state=trial)
        folklore += psi(reference, current) > 0.1
        ours += rule.compare(reference, current, calibration=null).alarm
    assert 0.70 * trials <= folklore <= 0.95 * trials, f"folklore PSI > 0.1 fired {folklore}/{trials} times"
    # Nominal 10 %: 12 of 120, sd 3.3.
    assert ours <= 0.2 * trials, f"the calibrated rule fired {ours}/{trials} times at a nominal 10 %"
    assert ours >= 0.03 * trials, f"the calibrated rule fired {ours}/{trials} times: far below nominal, miscalibrated"


def test_folklore_psi_never_fires_at_n_1000_and_the_rule_stays_below_nominal() -> None:
    rng = np.random.default_rng(2)
    rule = DriftRule(alpha=0.05)
    trials, folklore, ours = 300, 0, 0
    for _ in range(trials):
        reference, current = rng.lognormal(size=1_000), rng.lognormal(size=1_000)
        folklore += psi(reference, current) > 0.1
        ours += rule.compare(reference, current).alarm
    assert folklore == 0, f"PSI > 0.1 fired {folklore} times with no drift at n = 1,000 (null 99th pct 0.043)"
    assert ours <= 0.05 * trials + 10, f"the rule fired {ours}/{trials} times at a nominal 5 %"


def test_bootstrap_threshold_agrees_with_the_analytic_one_at_large_n() -> None:
    reference = np.random.default_rng(3).normal(size=1_000)
    null = calibrate_null(reference, 1_000, alpha=0.05, n_resamples=400, random_state=0)
    assert null.psi == pytest.approx(psi_critical_value(1_000, 1_000, 10, 0.05), rel=0.25)
    # Rescaling to another window size follows 1/n + 1/m.
    assert null.at(4_000).psi == pytest.approx(null.psi * (1 / 1_000 + 1 / 4_000) / (2 / 1_000))


def test_ks_flags_a_2_percent_shift_at_n_50000_while_evidence_and_size_does_not(amounts: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    rule = DriftRule()
    ks_flags = ours = 0
    for _ in range(5):
        reference, current = rng.choice(amounts, 50_000), rng.choice(amounts, 50_000) * 1.02
        result = rule.compare(reference, current)
        ks_flags += result.ks_pvalue < 0.05
        ours += result.alarm
        assert result.wasserstein_std < 0.05, "a 2% scale change moves mass far less than the size bound"
    assert ks_flags >= 4, f"KS p < 0.05 flagged only {ks_flags}/5 windows of a 2% shift at n = 50,000"
    assert ours == 0, f"the evidence+size rule alarmed on {ours}/5 windows of a 2% shift"


def test_quantile_psi_barely_sees_a_25_percent_scale_change_that_w_std_sees(amounts: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    reference, current = rng.choice(amounts, 20_000), rng.choice(amounts, 20_000) * 1.25
    result = DriftRule().compare(reference, current, feature="tx_amount")
    assert result.psi < 0.1, f"quantile-bin PSI of a pure x1.25 scale change was {result.psi:.3f}"
    assert result.wasserstein_std > 0.25, f"W/std of a x1.25 scale change was {result.wasserstein_std:.3f}"
    assert result.evidence and result.size and result.alarm


def test_bins_come_from_the_reference_not_the_current_window() -> None:
    rng = np.random.default_rng(6)
    reference, current = rng.uniform(0, 1, 2_000), rng.uniform(0.5, 1.5, 2_000)
    value = psi(reference, current)
    assert value == pytest.approx(psi(reference, current, edges=quantile_edges(reference)))
    assert value != pytest.approx(psi(reference, current, edges=quantile_edges(current)))
    assert value > 1.0, "half the current window sits beyond the reference's last edge"


def test_empty_bins_give_a_large_finite_psi() -> None:
    reference = np.arange(1_000, dtype=float)
    current = np.full(500, 10_000.0)  # every row in the last reference bin, the other nine empty
    value = psi(reference, current)
    assert math.isfinite(value) and value > 1.0
    with pytest.raises(ValueError, match="smoothing"):
        psi(reference, current, smoothing=0.0)


def test_tied_and_constant_references_still_get_two_bins() -> None:
    assert quantile_edges([0.0] * 95 + [0.3] * 5).tolist() == [0.3]
    constant = quantile_edges([2.0] * 100)
    assert constant.size == 2 and constant[0] == 2.0
    # A count feature: 1 for most rows. The critical value uses the effective bins, not the requested ten.
    counts = np.random.default_rng(7).poisson(0.5, size=5_000) + 1.0
    result = DriftRule().compare(counts, counts[:1_000], feature="count")
    bins = quantile_edges(counts).size + 1
    assert bins < 10
    assert result.critical == pytest.approx(psi_critical_value(5_000, 1_000, bins, 0.01))


def test_too_small_windows_are_refused_with_the_size_and_the_minimum() -> None:
    rng = np.random.default_rng(8)
    with pytest.raises(WindowTooSmall, match=r"199 rows.*minimum 200"):
        DriftRule().compare(rng.normal(size=1_000), rng.normal(size=199), feature="tx_amount")
    reference = rng.normal(size=1_000)
    null = calibrate_null(reference, 100, n_resamples=200)
    with pytest.raises(WindowTooSmall, match=r"'tx_amount' current window has 49 rows.*minimum 50"):
        DriftRule(evidence="bootstrap").compare(reference, rng.normal(size=49), feature="tx_amount", calibration=null)
    with pytest.raises(WindowTooSmall, match="constant"):
        DriftRule().compare_binary(np.zeros(500), np.ones(500), feature="flag")
    with pytest.raises(WindowTooSmall, match=r"has 400 rows.*minimum 500"):
        DriftRule().compare_binary(np.r_[np.ones(10), np.zeros(990)], np.zeros(400), feature="alert_rate")


def test_wasserstein_std_matches_scipy_and_handles_a_constant_reference() -> None:
    rng = np.random.default_rng(9)
    reference, current = rng.lognormal(size=3_000), rng.lognormal(size=1_000) * 1.1
    expected = stats.wasserstein_distance(reference, current) / reference.std()
    assert wasserstein_std(reference, current) == pytest.approx(expected, rel=1e-9)
    assert wasserstein_std(np.ones(10), np.ones(5)) == 0.0
    assert wasserstein_std(np.ones(10), np.zeros(5)) == math.inf


def test_proportion_test_detects_a_doubled_alert_rate_but_not_noise() -> None:
    rng = np.random.default_rng(10)
    reference = (rng.uniform(size=20_000) < 0.01).astype(float)
    same = (rng.uniform(size=2_000) < 0.01).astype(float)
    doubled = (rng.uniform(size=2_000) < 0.025).astype(float)
    rule = DriftRule()
    assert not rule.compare_binary(reference, same).alarm
    result = rule.compare_binary(reference, doubled)
    assert result.alarm and result.cohens_h > 0.1
    assert proportion_test([0, 1] * 50, [0, 1] * 50).pvalue == pytest.approx(1.0)


def test_feature_drift_splits_alpha_over_the_features_and_flags_only_the_drifted_one() -> None:
    rng = np.random.default_rng(11)
    import pandas as pd

    reference = pd.DataFrame(
        {"a": rng.normal(size=5_000), "b": rng.normal(size=5_000), "f": rng.uniform(size=5_000) < 0.3}
    )
    current = pd.DataFrame(
        {"a": rng.normal(size=2_000) + 0.5, "b": rng.normal(size=2_000), "f": rng.uniform(size=2_000) < 0.3}
    )
    table = feature_drift(reference.astype(float), current.astype(float), binary=["f"])
    assert table["alpha"].tolist() == pytest.approx([0.01 / 3] * 3)
    assert table["alarm"].tolist() == [True, False, False]
    assert table.loc["f", "kind"] == "binary"
    with pytest.raises(ValueError, match="missing"):
        feature_drift(reference, current.drop(columns="b"))


def test_the_drift_module_writes_nothing_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(12)
    reference, current = rng.normal(size=300), rng.normal(size=300)
    DriftRule().compare(reference, current)
    calibrate_null(reference, 300, n_resamples=200)
    drift.ks_test(reference[:10], current[:10])
    assert capsys.readouterr().err == ""
