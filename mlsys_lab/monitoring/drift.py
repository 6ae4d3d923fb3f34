"""Drift statistics against a reference window, with thresholds that know the sample size.

A drift monitor compares a *current* window (yesterday's transactions, say) with a *reference* window
(a stretch of traffic the model was known to be fine on) and must answer two questions at once:

Evidence
    Is the difference more than the sampling noise of two finite windows? Under no drift, PSI over
    ``B`` reference-quantile bins is a chi-square statistic in disguise: ``PSI ~ (1/n + 1/m) *
    chi2(B - 1)`` for current size ``n`` and reference size ``m`` (good from about 200 rows on). Its
    critical value therefore *shrinks* with the window: at ``n = m = 1,000`` the 99th percentile is
    0.043, at ``n = m = 100`` it is 0.43. The folklore rule "PSI > 0.1 means drift" ignores this, so
    it fires on most small windows with no drift and is beaten by noise at no size.
    :func:`psi_critical_value` gives the analytic value; :func:`calibrate_null` gives one calibrated
    by resampling the reference against itself (a bootstrap), for small windows, tied values and any
    statistic without a closed-form null.
Size
    Is the difference big enough to act on? On a large window every trivial change is "significant":
    a KS test at ``n = 50,000`` flags a shift of a few hundredths of a standard deviation. Size is a
    practical bound on an effect measure: PSI itself, the Wasserstein distance divided by the
    reference standard deviation (``W/std``: how far, in reference standard deviations, mass had to
    move), or Cohen's ``h`` between two shares for a binary feature. Quantile-bin PSI is blind to a
    pure change of scale in a skewed feature (amounts x1.25 move few rows across quantile edges),
    which ``W/std`` sees: hence both.

An alarm (:class:`DriftRule`) needs both. Windows too small to say anything are refused with
:class:`WindowTooSmall`, which names the window size and the minimum, rather than answered with noise.

Conventions
    Bins are reference quantiles ``1/B, ..., (B-1)/B``; repeated edges (tied values in count
    features) are merged, so the effective number of bins can be smaller than ``B``, and the chi-square
    degrees of freedom follow the effective number. Each bin is ``[edge_k, edge_{k+1})``. Empty bins
    are handled by additive smoothing: ``SMOOTHING`` (0.5) pseudo-counts are added to every bin of
    both windows before taking shares (the Jeffreys prior), so a bin empty in one window contributes a
    large but finite term instead of ``log(0)``.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> reference, current = rng.normal(size=5_000), rng.normal(size=2_000)
>>> result = DriftRule().compare(reference, current, feature="x")
>>> result.evidence, result.alarm
(False, False)
>>> result = DriftRule().compare(reference, current * 1.5 + 0.5, feature="x")
>>> result.evidence, result.size, result.alarm
(True, True, True)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

__all__ = [
    "ANALYTIC_MIN_WINDOW",
    "MIN_PER_BIN",
    "SMOOTHING",
    "DriftResult",
    "DriftRule",
    "KSResult",
    "NullCalibration",
    "ProportionResult",
    "WindowTooSmall",
    "alert_rate_drift",
    "calibrate_null",
    "feature_drift",
    "ks_test",
    "proportion_test",
    "psi",
    "psi_critical_value",
    "quantile_edges",
    "score_drift",
    "wasserstein_std",
]

logger = logging.getLogger(__name__)

#: Pseudo-count added to every bin of both windows before taking shares (the Jeffreys prior).
SMOOTHING = 0.5
#: Rows per bin a window needs before a binned statistic means anything (the chi-square rule of thumb).
MIN_PER_BIN = 5
#: Smallest window for which the chi-square approximation of PSI's null holds (measured; below, calibrate).
ANALYTIC_MIN_WINDOW = 200

FloatArray = npt.NDArray[np.float64]


class WindowTooSmall(ValueError):
    """A window holds too few rows for the statistic to tell drift from noise."""


def _values(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(array).any():
        raise ValueError(
            f"{name} holds {int(np.isnan(array).sum())} missing value(s): drift statistics compare "
            "observed values; report nulls with mlsys_lab.monitoring.quality and drop them first"
        )
    return array


def _require(n: int, minimum: int, name: str, why: str) -> None:
    if n < minimum:
        raise WindowTooSmall(f"the {name} window has {n} rows, fewer than the minimum {minimum} ({why})")


def quantile_edges(reference: npt.ArrayLike, bins: int = 10) -> FloatArray:
    """Inner bin edges at the reference quantiles ``1/bins, ..., (bins-1)/bins``, ties merged.

    Edges are reference values (the inverted-CDF quantile), so a tied value sits wholly in one bin.
    Edges equal to the reference minimum are dropped, so that no bin is empty in the reference: with
    tied values (a count that is 1 for 40 % of rows) several quantiles coincide and the effective
    number of bins, ``len(edges) + 1``, is smaller than ``bins``. When nearly all of the reference is
    its minimum, the bins are the minimum and above it (a constant reference: below, at, above it).

    Examples
    --------
    >>> quantile_edges([1, 1, 1, 1, 2, 2, 3, 4], bins=4).tolist()  # quartiles 1, 1, 2: one edge left
    [2.0]
    >>> quantile_edges(range(1, 9), bins=4).tolist()
    [2.0, 4.0, 6.0]
    >>> quantile_edges([0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5], bins=4).tolist()  # mostly 0: "0" against "above 0"
    [0.5]
    """
    ref = _values(reference, "reference")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    if ref.size == 0:
        raise WindowTooSmall("the reference window is empty: pass at least one row per bin")
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins, method="inverted_cdf"))
    edges = edges[edges > ref.min()]
    if edges.size == 0:
        # At least (bins-1)/bins of the reference sits on its minimum (a risk feature that is mostly 0):
        # split "the minimum" from "above it", or, for a constant reference, "below / at / above it".
        above = ref[ref > ref.min()]
        edges = np.array([above.min()]) if above.size else np.array([ref.min(), np.nextafter(ref.min(), np.inf)])
    return edges


def _bin_counts(values: FloatArray, edges: FloatArray) -> npt.NDArray[np.int64]:
    # side="right": a value equal to an edge goes to the bin that starts at that edge, [e_k, e_k+1).
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def _psi_from_counts(ref_counts: npt.NDArray[np.int64], cur_counts: npt.NDArray[np.int64], smoothing: float) -> float:
    ref = (ref_counts + smoothing) / (ref_counts.sum() + smoothing * ref_counts.size)
    cur = (cur_counts + smoothing) / (cur_counts.sum() + smoothing * cur_counts.size)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    bins: int = 10,
    edges: npt.ArrayLike | None = None,
    smoothing: float = SMOOTHING,
) -> float:
    """Population stability index of ``current`` against ``reference``, over reference-quantile bins.

    ``PSI = sum_k (c_k - r_k) * ln(c_k / r_k)`` where ``r_k`` and ``c_k`` are the smoothed shares of
    the reference and the current window in bin ``k``. Bins come from the reference only (never from
    the current window, which would hide the drift it is meant to measure).

    Parameters
    ----------
    reference, current : array-like of float
        The two windows; no missing values.
    bins : int
        Number of quantile bins before ties are merged.
    edges : array-like, optional
        Inner edges to use instead of the reference quantiles (e.g. the ones a profile stored).
    smoothing : float
        Pseudo-count per bin (``SMOOTHING``), > 0 so that an empty bin has a finite term.

    Examples
    --------
    >>> round(psi([1, 2, 3, 4] * 25, [1, 2, 3, 4] * 25, bins=4), 6)
    0.0
    >>> round(psi([1, 2, 3, 4] * 25, [4] * 100, bins=4), 3)
    2.276
    """
    ref, cur = _values(reference, "reference"), _values(current, "current")
    if ref.size == 0 or cur.size == 0:
        raise WindowTooSmall(f"PSI needs two non-empty windows, got {ref.size} and {cur.size} rows")
    inner = quantile_edges(ref, bins) if edges is None else np.asarray(edges, dtype=np.float64)
    if not smoothing > 0:
        raise ValueError(
            f"smoothing must be > 0 pseudo-counts per bin (0 gives log(0) on an empty bin), got {smoothing}"
        )
    return _psi_from_counts(_bin_counts(ref, inner), _bin_counts(cur, inner), smoothing)


def psi_critical_value(n_reference: int, n_current: int, bins: int, alpha: float = 0.01) -> float:
    """PSI's no-drift ``1 - alpha`` quantile: ``(1/n + 1/m) * chi2.ppf(1 - alpha, bins - 1)``.

    ``bins`` is the *effective* number of bins (after merging ties). The approximation holds from
    about ``ANALYTIC_MIN_WINDOW`` rows per window; for smaller ones use :func:`calibrate_null`.

    Examples
    --------
    >>> round(psi_critical_value(1_000, 1_000, bins=10, alpha=0.01), 3)
    0.043
    >>> round(psi_critical_value(100, 100, bins=10, alpha=0.01), 2)
    0.43
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be a false-alarm rate in (0, 1), got {alpha}")
    if bins < 2:
        raise ValueError(f"bins must be at least 2 (effective bins after merging ties), got {bins}")
    if min(n_reference, n_current) < 1:
        raise WindowTooSmall(f"windows of {n_reference} and {n_current} rows: both need at least one row")
    return float((1 / n_reference + 1 / n_current) * stats.chi2.ppf(1 - alpha, bins - 1))


def _wasserstein(ref: FloatArray, cur: FloatArray) -> float:
    # W1 = integral of |F_ref - F_cur|, exact for empirical CDFs; the same value as
    # scipy.stats.wasserstein_distance (a test checks), several times faster on daily windows.
    u, v = np.sort(ref), np.sort(cur)
    grid = np.sort(np.concatenate([u, v]))
    cdf_u = np.searchsorted(u, grid[:-1], side="right") / u.size
    cdf_v = np.searchsorted(v, grid[:-1], side="right") / v.size
    return float(np.sum(np.abs(cdf_u - cdf_v) * np.diff(grid)))


def wasserstein_std(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Wasserstein-1 distance between the windows, in reference standard deviations.

    ``W/std = 0.25`` means mass moved a quarter of a reference standard deviation on average: unlike
    quantile-bin PSI, it grows with a pure change of scale. A constant reference (std 0) gives 0 for
    an identical current window and ``inf`` for any other.

    Examples
    --------
    >>> round(wasserstein_std([0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]), 3)
    0.894
    """
    ref, cur = _values(reference, "reference"), _values(current, "current")
    if ref.size == 0 or cur.size == 0:
        raise WindowTooSmall(f"Wasserstein needs two non-empty windows, got {ref.size} and {cur.size} rows")
    distance = _wasserstein(ref, cur)
    std = float(ref.std())
    if std == 0.0:
        return 0.0 if distance == 0.0 else math.inf
    return distance / std


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the CDFs) and its p-value."""

    statistic: float
    pvalue: float


def ks_test(reference: npt.ArrayLike, current: npt.ArrayLike) -> KSResult:
    """Two-sample KS statistic with its asymptotic p-value: a diagnostic, not an alarm.

    The p-value answers "could these be the same distribution?", which on 50,000 rows is "no" for a
    change nobody should act on. Read the statistic as the size, the p-value as evidence only.
    The asymptotic method is used at every size: it is fast and never warns (the exact one can).

    Examples
    --------
    >>> ks_test([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]).statistic
    0.0
    """
    ref, cur = _values(reference, "reference"), _values(current, "current")
    if ref.size == 0 or cur.size == 0:
        raise WindowTooSmall(f"KS needs two non-empty windows, got {ref.size} and {cur.size} rows")
    result = stats.ks_2samp(ref, cur, method="asymp")
    return KSResult(statistic=float(result.statistic), pvalue=float(result.pvalue))


@dataclass(frozen=True)
class ProportionResult:
    """Two-proportion z-test between the share of ones in two windows, with Cohen's h as the size."""

    share_reference: float
    share_current: float
    z: float
    pvalue: float
    cohens_h: float


def _cohens_h(p: float, q: float) -> float:
    return float(2 * math.asin(math.sqrt(q)) - 2 * math.asin(math.sqrt(p)))


def proportion_test(reference: npt.ArrayLike, current: npt.ArrayLike) -> ProportionResult:
    """Test a binary feature (or an alert flag): did the share of ones change?

    Pooled two-sided z-test (equivalent to the chi-square test on the 2x2 table). Size is Cohen's
    ``h = 2 asin(sqrt(q)) - 2 asin(sqrt(p))``, which treats a move from 1 % to 2 % as larger than one
    from 50 % to 51 %, as it should for an alert rate.

    Examples
    --------
    >>> result = proportion_test([0, 1] * 500, [1] * 600 + [0] * 400)
    >>> result.share_reference, result.share_current, result.pvalue < 0.001
    (0.5, 0.6, True)
    """
    ref, cur = _values(reference, "reference"), _values(current, "current")
    for name, array in (("reference", ref), ("current", cur)):
        if array.size and not np.isin(array, (0.0, 1.0)).all():
            raise ValueError(f"{name} must hold only 0 and 1 for a proportion test; use DriftRule for numbers")
        if array.size == 0:
            raise WindowTooSmall(f"the {name} window is empty: a proportion needs rows")
    p, q = float(ref.mean()), float(cur.mean())
    pooled = (ref.sum() + cur.sum()) / (ref.size + cur.size)
    se = math.sqrt(pooled * (1 - pooled) * (1 / ref.size + 1 / cur.size))
    z = 0.0 if se == 0.0 else (q - p) / se
    return ProportionResult(
        share_reference=p,
        share_current=q,
        z=float(z),
        pvalue=float(2 * stats.norm.sf(abs(z))),
        cohens_h=_cohens_h(p, q),
    )


@dataclass(frozen=True)
class NullCalibration:
    """No-drift thresholds measured by resampling the reference against itself.

    Each resample draws a pseudo-reference of ``n_reference`` rows and a pseudo-current window of
    ``n_current`` rows, both with replacement from the reference, recomputes the quantile bins on the
    pseudo-reference, and computes the statistics; the thresholds are their ``1 - alpha`` quantiles.
    :meth:`at` rescales them to another current-window size with the statistics' known rates (PSI
    as ``1/n + 1/m``, ``W/std`` and KS as its square root), so one calibration serves windows of
    varying size.
    """

    n_reference: int
    n_current: int
    alpha: float
    n_resamples: int
    psi: float
    wasserstein_std: float
    ks_statistic: float

    def at(self, n_current: int) -> NullCalibration:
        """The same calibration rescaled to a current window of ``n_current`` rows."""
        if n_current < 1:
            raise WindowTooSmall(f"the current window has {n_current} rows: rescaling needs at least one")
        ratio = (1 / self.n_reference + 1 / n_current) / (1 / self.n_reference + 1 / self.n_current)
        root = math.sqrt(ratio)
        return NullCalibration(
            n_reference=self.n_reference,
            n_current=n_current,
            alpha=self.alpha,
            n_resamples=self.n_resamples,
            psi=self.psi * ratio,
            wasserstein_std=self.wasserstein_std * root,
            ks_statistic=self.ks_statistic * root,
        )


def calibrate_null(
    reference: npt.ArrayLike,
    n_current: int,
    *,
    bins: int = 10,
    alpha: float = 0.01,
    n_resamples: int = 500,
    random_state: int = 0,
) -> NullCalibration:
    """Thresholds at false-alarm rate ``alpha`` from reference-against-reference resampling.

    Parameters
    ----------
    reference : array-like of float
        The reference window; its size is the pseudo-reference size.
    n_current : int
        Size of the current windows the thresholds are for (rescale with :meth:`NullCalibration.at`).
    bins, alpha
        As in :class:`DriftRule`.
    n_resamples : int
        Resamples; the ``1 - alpha`` quantile needs several times ``1 / alpha`` of them.
    random_state : int
        Seed of the resampling.

    Examples
    --------
    >>> reference = np.random.default_rng(0).normal(size=1_000)
    >>> null = calibrate_null(reference, 1_000, alpha=0.01, n_resamples=400)
    >>> 0.03 < null.psi < 0.06  # the analytic value is 0.043
    True
    """
    ref = _values(reference, "reference")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be a false-alarm rate in (0, 1), got {alpha}")
    if n_resamples * alpha < 2:
        raise ValueError(
            f"n_resamples={n_resamples} leaves fewer than 2 resamples beyond the {1 - alpha:.3g} quantile: "
            f"pass n_resamples >= {math.ceil(2 / alpha)}"
        )
    minimum = MIN_PER_BIN * bins
    _require(ref.size, minimum, "reference", f"{MIN_PER_BIN} rows per bin for {bins} bins")
    _require(n_current, minimum, "current", f"{MIN_PER_BIN} rows per bin for {bins} bins")
    rng = np.random.default_rng(random_state)
    values = np.empty((n_resamples, 3))
    for i in range(n_resamples):
        pseudo_ref = rng.choice(ref, size=ref.size, replace=True)
        pseudo_cur = rng.choice(ref, size=n_current, replace=True)
        edges = quantile_edges(pseudo_ref, bins)
        values[i, 0] = _psi_from_counts(_bin_counts(pseudo_ref, edges), _bin_counts(pseudo_cur, edges), SMOOTHING)
        values[i, 1] = wasserstein_std(pseudo_ref, pseudo_cur)
        values[i, 2] = ks_test(pseudo_ref, pseudo_cur).statistic
    psi_q, w_q, ks_q = np.quantile(values, 1 - alpha, axis=0)
    return NullCalibration(
        n_reference=int(ref.size),
        n_current=int(n_current),
        alpha=alpha,
        n_resamples=n_resamples,
        psi=float(psi_q),
        wasserstein_std=float(w_q),
        ks_statistic=float(ks_q),
    )


@dataclass(frozen=True)
class DriftResult:
    """One feature's comparison of a current window with the reference, and the rule's verdict.

    ``kind`` is ``"continuous"`` (PSI, W/std and KS filled; the proportion fields NaN) or
    ``"binary"`` (shares, z-test and Cohen's h filled, PSI over the two values; W/std and KS NaN).
    ``critical`` is the evidence threshold the statistic had to beat (PSI's critical value, or the
    p-value bound ``alpha`` for a binary feature); ``evidence``, ``size`` and ``alarm = evidence and
    size`` are the verdict.
    """

    feature: str
    kind: Literal["continuous", "binary"]
    n_reference: int
    n_current: int
    alpha: float
    psi: float
    critical: float
    wasserstein_std: float = math.nan
    ks_statistic: float = math.nan
    ks_pvalue: float = math.nan
    share_reference: float = math.nan
    share_current: float = math.nan
    pvalue: float = math.nan
    cohens_h: float = math.nan
    evidence: bool = False
    size: bool = False
    alarm: bool = False

    def as_dict(self) -> dict[str, object]:
        """The fields as a plain dict (one row of :func:`feature_drift`'s table)."""
        return asdict(self)


@dataclass(frozen=True)
class DriftRule:
    """When a drift statistic is an alarm: evidence beyond noise *and* a size worth acting on.

    Parameters
    ----------
    alpha : float
        False-alarm rate of the evidence test per comparison, under no drift.
    psi_size : float
        Practical bound on PSI (the folklore 0.1, used as a size, not as a test).
    wasserstein_size : float
        Practical bound on ``W/std``: mass moved a fifth of a reference standard deviation. Rows of
        one day are not independent draws (a customer's or a terminal's transactions share their
        window features), so days differ by more than row sampling explains: on drift-free daily
        windows of ``small`` the evidence test passes on some day every week or two, with ``W/std``
        up to about 0.14. The size bound, not the test, keeps such days quiet.
    proportion_size : float
        Practical bound on ``|Cohen's h|`` for a binary feature (0.1: an alert rate from 1 % to 2 %
        gives 0.08, from 1 % to 2.5 % gives 0.12).
    bins : int
        Quantile bins before merging ties.
    evidence : {"analytic", "bootstrap"}
        PSI's critical value from the chi-square approximation (windows of ``ANALYTIC_MIN_WINDOW``
        rows or more), or from :func:`calibrate_null`, passed to :meth:`compare`.

    Examples
    --------
    >>> DriftRule().minimum_window
    50
    """

    alpha: float = 0.01
    psi_size: float = 0.1
    wasserstein_size: float = 0.2
    proportion_size: float = 0.1
    bins: int = 10
    evidence: Literal["analytic", "bootstrap"] = "analytic"

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"DriftRule.alpha must be a false-alarm rate in (0, 1), got {self.alpha}")
        for name in ("psi_size", "wasserstein_size", "proportion_size"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"DriftRule.{name} must be a non-negative bound, got {getattr(self, name)}")
        if self.bins < 2:
            raise ValueError(f"DriftRule.bins must be at least 2, got {self.bins}")
        if self.evidence not in ("analytic", "bootstrap"):
            raise ValueError(f"DriftRule.evidence must be 'analytic' or 'bootstrap', got {self.evidence!r}")

    @property
    def minimum_window(self) -> int:
        """Fewest rows a window needs for binned statistics: ``MIN_PER_BIN`` per bin."""
        return MIN_PER_BIN * self.bins

    def compare(
        self,
        reference: npt.ArrayLike,
        current: npt.ArrayLike,
        *,
        feature: str = "value",
        calibration: NullCalibration | None = None,
        alpha: float | None = None,
    ) -> DriftResult:
        """Compare a continuous feature's current window with its reference.

        Parameters
        ----------
        reference, current : array-like of float
            The two windows.
        feature : str
            Name carried into the result and into error messages.
        calibration : NullCalibration, optional
            Required when ``evidence="bootstrap"``; rescaled to the current window's size.
        alpha : float, optional
            Override ``self.alpha`` (e.g. a Bonferroni share when many features are tested at once).

        Raises
        ------
        WindowTooSmall
            Either window below :attr:`minimum_window`, or below ``ANALYTIC_MIN_WINDOW`` with
            ``evidence="analytic"``.
        """
        ref, cur = _values(reference, f"{feature} (reference)"), _values(current, f"{feature} (current)")
        level = self.alpha if alpha is None else alpha
        why = f"{MIN_PER_BIN} rows per bin for {self.bins} bins"
        _require(ref.size, self.minimum_window, f"{feature!r} reference", why)
        _require(cur.size, self.minimum_window, f"{feature!r} current", why)
        edges = quantile_edges(ref, self.bins)
        value = _psi_from_counts(_bin_counts(ref, edges), _bin_counts(cur, edges), SMOOTHING)
        if self.evidence == "analytic":
            why = "the chi-square approximation of PSI needs it; use evidence='bootstrap' for smaller windows"
            _require(min(ref.size, cur.size), ANALYTIC_MIN_WINDOW, f"{feature!r} smaller", why)
            critical = psi_critical_value(ref.size, cur.size, edges.size + 1, level)
        else:
            if calibration is None:
                raise ValueError(
                    f"evidence='bootstrap' needs a calibration for {feature!r}: pass "
                    "calibration=calibrate_null(reference, n_current, alpha=...)"
                )
            critical = calibration.at(cur.size).psi
        w = wasserstein_std(ref, cur)
        ks = ks_test(ref, cur)
        evidence = value > critical
        size = value >= self.psi_size or w >= self.wasserstein_size
        return DriftResult(
            feature=feature,
            kind="continuous",
            n_reference=int(ref.size),
            n_current=int(cur.size),
            alpha=level,
            psi=value,
            critical=critical,
            wasserstein_std=w,
            ks_statistic=ks.statistic,
            ks_pvalue=ks.pvalue,
            evidence=bool(evidence),
            size=bool(size),
            alarm=bool(evidence and size),
        )

    def compare_binary(
        self, reference: npt.ArrayLike, current: npt.ArrayLike, *, feature: str = "value", alpha: float | None = None
    ) -> DriftResult:
        """Compare a 0/1 feature (or an alert flag): z-test p-value as evidence, Cohen's h as size.

        Raises
        ------
        WindowTooSmall
            When a window expects fewer than ``MIN_PER_BIN`` rows of the rarer value (at the reference
            share), or the reference holds only one value (no share to test against).
        """
        ref, cur = _values(reference, f"{feature} (reference)"), _values(current, f"{feature} (current)")
        level = self.alpha if alpha is None else alpha
        if ref.size == 0:
            raise WindowTooSmall(f"the {feature!r} reference window is empty")
        share = float(ref.mean())
        rarer = min(share, 1 - share)
        if rarer == 0.0:
            raise WindowTooSmall(
                f"the {feature!r} reference is constant (share of ones {share:g}): no window size can test a "
                "change of share against it; monitor it with a data-quality range check instead"
            )
        minimum = math.ceil(MIN_PER_BIN / rarer)
        why = f"{MIN_PER_BIN} expected rows of the rarer value at the reference share {share:.4g}"
        _require(ref.size, minimum, f"{feature!r} reference", why)
        _require(cur.size, minimum, f"{feature!r} current", why)
        test = proportion_test(ref, cur)
        value = psi(ref, cur, edges=np.array([0.5]))
        evidence = test.pvalue < level
        size = abs(test.cohens_h) >= self.proportion_size
        return DriftResult(
            feature=feature,
            kind="binary",
            n_reference=int(ref.size),
            n_current=int(cur.size),
            alpha=level,
            psi=value,
            critical=level,
            share_reference=test.share_reference,
            share_current=test.share_current,
            pvalue=test.pvalue,
            cohens_h=test.cohens_h,
            evidence=bool(evidence),
            size=bool(size),
            alarm=bool(evidence and size),
        )


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    binary: Sequence[str] = (),
    rule: DriftRule | None = None,
    calibrations: Mapping[str, NullCalibration] | None = None,
    family_alpha: bool = True,
) -> pd.DataFrame:
    """Per-feature drift of a current window against a reference window: one row per feature.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        The two windows, with the columns to compare.
    columns : sequence of str, optional
        Features to compare; all columns of ``reference`` by default.
    binary : sequence of str
        Those of ``columns`` that are 0/1 flags (tested with :meth:`DriftRule.compare_binary`).
    rule : DriftRule, optional
        The alarm rule; ``DriftRule()`` by default.
    calibrations : mapping of str to NullCalibration, optional
        Per continuous feature, for ``rule.evidence == "bootstrap"``.
    family_alpha : bool
        Split ``rule.alpha`` over the features (Bonferroni), so the chance that *any* feature alarms
        under no drift stays at most ``rule.alpha``; otherwise each feature is tested at ``rule.alpha``.

    Returns
    -------
    pandas.DataFrame
        The fields of :class:`DriftResult`, indexed by ``feature``.
    """
    rule = rule or DriftRule()
    names = list(reference.columns if columns is None else columns)
    missing = [c for c in names if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"column(s) {missing} are missing from the reference or the current window")
    unknown = [c for c in binary if c not in names]
    if unknown:
        raise ValueError(f"binary column(s) {unknown} are not among the compared columns {names}")
    level = rule.alpha / len(names) if family_alpha and names else rule.alpha
    calibrations = calibrations or {}
    rows = []
    for name in names:
        if name in binary:
            result = rule.compare_binary(reference[name], current[name], feature=name, alpha=level)
        else:
            null = calibrations.get(name)
            if null is not None and null.alpha != level:
                raise ValueError(
                    f"the calibration of {name!r} is at alpha={null.alpha:g} but the test runs at {level:g}: "
                    "calibrate at the per-feature level (rule.alpha / number of features) or pass family_alpha=False"
                )
            result = rule.compare(reference[name], current[name], feature=name, calibration=null, alpha=level)
        rows.append(result.as_dict())
    return pd.DataFrame(rows).set_index("feature")


def score_drift(
    reference_scores: npt.ArrayLike,
    current_scores: npt.ArrayLike,
    *,
    rule: DriftRule | None = None,
    calibration: NullCalibration | None = None,
) -> DriftResult:
    """Prediction drift: the model's score distribution against the reference's, no labels needed.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> score_drift(rng.beta(1, 30, 5_000), rng.beta(1, 30, 2_000)).alarm
    False
    """
    return (rule or DriftRule()).compare(reference_scores, current_scores, feature="score", calibration=calibration)


def alert_rate_drift(
    reference_scores: npt.ArrayLike, current_scores: npt.ArrayLike, threshold: float, *, rule: DriftRule | None = None
) -> DriftResult:
    """Did the share of transactions alerted (score >= ``threshold``) change?

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> reference, current = rng.uniform(size=5_000), rng.uniform(size=2_000) ** 0.5
    >>> result = alert_rate_drift(reference, current, threshold=0.9)
    >>> round(result.share_reference, 2), round(result.share_current, 2), result.alarm
    (0.1, 0.19, True)
    """
    ref = np.asarray(reference_scores, dtype=np.float64) >= threshold
    cur = np.asarray(current_scores, dtype=np.float64) >= threshold
    return (rule or DriftRule()).compare_binary(ref.astype(np.float64), cur.astype(np.float64), feature="alert_rate")
