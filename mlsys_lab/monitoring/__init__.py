"""The monitoring layer (module 05): is the data drifting, is the model still good, and who gets paged?

A plain re-export: importing it defines names and does nothing else. The modules, pure functions on
numpy and pandas (data in, values out):

- :mod:`~mlsys_lab.monitoring.drift`: drift statistics of a current window against a reference
  (PSI over reference-quantile bins, Wasserstein over the reference std, KS as a diagnostic, a
  two-proportion test for 0/1 features), sample-size-aware critical values, analytic and from
  reference-against-reference resampling, and :class:`DriftRule`, which alarms only on evidence
  *and* size; per feature (:func:`feature_drift`), on the score and on the alert rate.
- :mod:`~mlsys_lab.monitoring.quality`: data quality per window (null rates, out-of-range values,
  unknown ids, the quarantine share from the validation layer).
- :mod:`~mlsys_lab.monitoring.performance`: performance under label delay (realised from the
  labels known at report time, with label completeness beside it, the truth when known) and the
  label-free estimate from calibrated scores, which cannot see concept drift.
- :mod:`~mlsys_lab.monitoring.alerts`: alert rules as frozen objects (threshold rules with
  consecutive windows and hysteresis, SLO burn-rate rules) and the alert log they produce.
- :mod:`~mlsys_lab.monitoring.evaluation`: the known-answer evaluation of detectors against the
  simulator's drift events (detection rate, delay, false alarms per 100 days).
"""

from mlsys_lab.monitoring.alerts import (
    AlertEvaluation,
    BurnRateRule,
    ThresholdRule,
    burn_rate_rules,
    evaluate_rules,
)
from mlsys_lab.monitoring.drift import (
    DriftResult,
    DriftRule,
    KSResult,
    NullCalibration,
    ProportionResult,
    WindowTooSmall,
    alert_rate_drift,
    calibrate_null,
    feature_drift,
    ks_test,
    proportion_test,
    psi,
    psi_critical_value,
    quantile_edges,
    score_drift,
    wasserstein_std,
)
from mlsys_lab.monitoring.evaluation import CONTROL, DETECTORS, daily_alarms, evaluate_detectors
from mlsys_lab.monitoring.performance import (
    WindowPerformance,
    expected_average_precision,
    performance_timeline,
    window_performance,
)
from mlsys_lab.monitoring.quality import DataQuality, data_quality, reference_ranges

__all__ = [
    "CONTROL",
    "DETECTORS",
    "AlertEvaluation",
    "BurnRateRule",
    "DataQuality",
    "DriftResult",
    "DriftRule",
    "KSResult",
    "NullCalibration",
    "ProportionResult",
    "ThresholdRule",
    "WindowPerformance",
    "WindowTooSmall",
    "alert_rate_drift",
    "burn_rate_rules",
    "calibrate_null",
    "daily_alarms",
    "data_quality",
    "evaluate_detectors",
    "evaluate_rules",
    "expected_average_precision",
    "feature_drift",
    "ks_test",
    "performance_timeline",
    "proportion_test",
    "psi",
    "psi_critical_value",
    "quantile_edges",
    "reference_ranges",
    "score_drift",
    "wasserstein_std",
    "window_performance",
]
