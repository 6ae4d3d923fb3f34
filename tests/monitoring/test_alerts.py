"""Alert rules: consecutive windows before firing, hysteresis before clearing, and SLO burn rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlsys_lab.monitoring.alerts import BurnRateRule, ThresholdRule, burn_rate_rules, evaluate_rules

pytestmark = pytest.mark.filterwarnings("error")


def _daily(values: list[float], name: str = "psi") -> pd.DataFrame:
    return pd.DataFrame({name: values}, index=pd.date_range("2018-05-01", periods=len(values), freq="D"))


def test_one_noisy_window_does_not_fire() -> None:
    metrics = _daily([0.0, 0.0, 0.9, 0.0, 0.0, 0.0])
    rule = ThresholdRule(name="drift", metric="psi", comparison=">", threshold=0.2, for_windows=2)
    result = evaluate_rules([rule], metrics)
    assert result.log.empty, f"a single breaching window fired: {result.log}"
    assert not result.states["drift"].any()


def test_n_consecutive_windows_fire_at_the_nth() -> None:
    metrics = _daily([0.0, 0.5, 0.5, 0.5, 0.5, 0.0])
    rule = ThresholdRule(name="drift", metric="psi", comparison=">", threshold=0.2, for_windows=3)
    log = evaluate_rules([rule], metrics).log
    assert len(log) == 1
    assert log.loc[0, "fired_at"] == metrics.index[3], "three breaches on days 1-3 fire on day 3, not before"
    assert log.loc[0, "cleared_at"] == metrics.index[5]


def test_a_run_broken_by_a_safe_window_starts_counting_again() -> None:
    metrics = _daily([0.5, 0.5, 0.0, 0.5, 0.5, 0.0])
    rule = ThresholdRule(name="drift", metric="psi", comparison=">", threshold=0.2, for_windows=3)
    assert evaluate_rules([rule], metrics).log.empty


def test_hysteresis_suppresses_flapping_around_the_threshold() -> None:
    values = [0.0, 0.25, 0.15, 0.25, 0.15, 0.25, 0.15, 0.25, 0.05, 0.05]
    flapping = ThresholdRule(name="flap", metric="psi", comparison=">", threshold=0.2)
    steady = ThresholdRule(name="steady", metric="psi", comparison=">", threshold=0.2, clear_threshold=0.1)
    log = evaluate_rules([flapping, steady], _daily(values)).log
    assert (log["rule"] == "flap").sum() == 4, "without hysteresis every crossing fires again"
    steady_log = log[log["rule"] == "steady"].reset_index(drop=True)
    assert len(steady_log) == 1, f"with a clear threshold of 0.1 it fires once, got {steady_log}"
    assert steady_log.loc[0, "cleared_at"] == _daily(values).index[8]


def test_clear_windows_wait_for_consecutive_safe_windows() -> None:
    metrics = _daily([0.5, 0.0, 0.5, 0.0, 0.0, 0.0])
    rule = ThresholdRule(name="drift", metric="psi", comparison=">", threshold=0.2, clear_windows=2)
    log = evaluate_rules([rule], metrics).log
    assert len(log) == 1 and log.loc[0, "cleared_at"] == metrics.index[4]


def test_a_too_low_rule_and_a_rolling_window() -> None:
    metrics = _daily([0.5, 0.5, 0.1, 0.5, 0.1, 0.1], name="recall")
    single = ThresholdRule(name="low", metric="recall", comparison="<", threshold=0.3)
    averaged = ThresholdRule(name="low avg", metric="recall", comparison="<", threshold=0.3, window=2)
    states = evaluate_rules([single, averaged], metrics).states
    assert states["low"].tolist() == [False, False, True, False, True, True]
    assert states["low avg"].tolist() == [False, False, False, False, False, True]


def test_missing_values_neither_fire_nor_clear() -> None:
    metrics = _daily([0.5, np.nan, 0.5, 0.0])
    rule = ThresholdRule(name="drift", metric="psi", comparison=">", threshold=0.2, for_windows=2)
    assert evaluate_rules([rule], metrics).log.empty, "a NaN window breaks the run of breaches"


def test_rules_refuse_inconsistent_settings() -> None:
    with pytest.raises(ValueError, match="breach side"):
        ThresholdRule(name="x", metric="psi", comparison=">", threshold=0.2, clear_threshold=0.3)
    with pytest.raises(ValueError, match="for_windows"):
        ThresholdRule(name="x", metric="psi", comparison=">", threshold=0.2, for_windows=0)
    with pytest.raises(ValueError, match="not a column"):
        evaluate_rules([ThresholdRule(name="x", metric="nope", comparison=">", threshold=0.2)], _daily([0.0]))


def _traffic(error_share: pd.Series) -> pd.DataFrame:
    # One row a minute, 100 requests each.
    return pd.DataFrame({"requests": 100, "errors": (100 * error_share).round()}, index=error_share.index)


def test_burn_rate_fires_on_a_fast_burn_and_clears_soon_after() -> None:
    index = pd.date_range("2018-05-01", periods=6 * 60, freq="min")
    share = pd.Series(0.001, index=index)
    share.iloc[120:180] = 0.2  # an hour at 20 % errors: 20x the 1 % budget
    rules = burn_rate_rules("errors", bad="errors", total="requests", slo=0.99)
    result = evaluate_rules(rules, _traffic(share))
    fast = result.log[result.log["rule"] == rules[0].name].reset_index(drop=True)
    assert len(fast) == 1, f"the 14.4x rule should fire once, got {fast}"
    assert index[150] <= fast.loc[0, "fired_at"] <= index[180]
    assert fast.loc[0, "cleared_at"] <= index[180 + 5], "the 5-minute short window clears it within 5 minutes"


def test_burn_rate_stays_quiet_on_a_slow_benign_error_rate() -> None:
    index = pd.date_range("2018-05-01", periods=12 * 60, freq="min")
    share = pd.Series(0.005, index=index)  # half the budget: it would last 60 days
    share.iloc[300:360] = 0.03  # an hour at 3x: annoying, not an emergency
    rules = burn_rate_rules("errors", bad="errors", total="requests", slo=0.99)
    log = evaluate_rules(rules, _traffic(share)).log
    assert log.empty, f"no rule should fire on a slow burn, got {log}"


def test_burn_rate_windows_scale_with_the_slo_period() -> None:
    rules = burn_rate_rules("latency", bad="slow", total="requests", slo=0.99, period=pd.Timedelta(days=3))
    assert [r.long_window for r in rules] == [pd.Timedelta("6min"), pd.Timedelta("36min"), pd.Timedelta("7h12min")]
    assert [r.burn_rate for r in rules] == [14.4, 6.0, 1.0]
    with pytest.raises(ValueError, match="DatetimeIndex"):
        rules[0].burn(pd.DataFrame({"slow": [1], "requests": [2]}), rules[0].long_window)
    with pytest.raises(ValueError, match="swap"):
        BurnRateRule(
            name="x",
            bad="b",
            total="t",
            slo=0.99,
            long_window=pd.Timedelta("5min"),
            short_window=pd.Timedelta("1h"),
            burn_rate=1.0,
        )
