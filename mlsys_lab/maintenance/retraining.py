"""Retraining from production data: the decision log as of a time ``T``, labels known at ``T``, mature days only.

The notebook habit retrains on "everything up to yesterday". In fraud that is wrong in a precise way:
labels arrive late (about 38 % of frauds are reported within a day, 68 % within a week, practically
all within 28 days; see :class:`~mlsys_lab.data.simulator.LabelDelay`), so yesterday's unreported
frauds are counted as genuine, and a model trained on them learns that fraud looks legitimate.

What a retraining as of ``T`` does (:func:`retrain`), in order:

1. **The data the service saw** (:func:`training_frame`): every decision logged for a transaction
   dated before ``T``, with the features the model was given at the time (the log stores them, so
   offline and online features cannot disagree), and each transaction's label *as known at T*: the
   newest label row whose ``label_time`` is at or before ``T``. A label recorded later does not exist
   for this retraining; a transaction without a known label has ``tx_label_seconds = NaN``.
2. **Validation** with the data layer's :func:`~mlsys_lab.data.validation.validate`: rows it
   quarantines are left out and counted in the record.
3. **The window, chosen for label maturity** (:func:`choose_maturity`). A day is *mature* at ``T``
   when at least ``coverage`` of its frauds have been reported by then. The delay distribution is
   estimated from the log itself: the reporting delays of the frauds whose transactions are at least
   ``horizon_days`` old at ``T`` (for those, every delay up to the horizon has had time to be seen).
   The maturity ``M`` is the smallest whole number of days by which ``coverage`` of those frauds were
   reported. The last ``M`` days before ``T`` are **left out**, not weighted: an unreported fraud
   counted as genuine is a wrong label, and no weight makes a wrong label right. With the
   simulator's default delays and ``coverage=0.85`` this is about 19 days. With fewer than
   ``min_frauds`` frauds to estimate from, ``fallback_days`` (28, the longest delay the simulator
   draws) is used and the record says so.
4. **Training** through :func:`~mlsys_lab.training.run.train`, the training layer's one entry point,
   on the mature days only, with the handbook's train / delay / test split placed so that its test
   period is the newest ``test_days`` mature days (:func:`retraining_split`). The model knows labels
   up to the start of that test period (``labels_known_at_day``), so the test period and the
   ``delay_days`` before it are days the new model has never seen: the gate compares champion and
   challenger there.
5. **The record** (:class:`Retraining`): which trigger started it, ``T``, the maturity choice and
   its evidence, the days used and left out, rows quarantined, the run id; tracked with the run
   (tags ``retrain.*`` and metrics ``retrain_*``).

Triggers
    :class:`Trigger` says why a retraining started: ``schedule`` (:func:`schedule_trigger`), a
    ``drift`` or ``quality`` alert sustained for N windows, or a matured-``performance`` alert from
    module 05 (:func:`sustained_trigger` over the per-window breach flags), or ``manual``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlsys_lab.data.features import FEATURE_COLUMNS, SECONDS_PER_DAY
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.data.validation import FEED_COLUMNS, validate
from mlsys_lab.deployment.decision_log import DEFAULT_ORIGIN, DecisionLog
from mlsys_lab.training.config import TrainingConfig
from mlsys_lab.training.run import RunLogger, TrainedRun, train

__all__ = [
    "TRIGGER_KINDS",
    "Maturity",
    "Retraining",
    "Trigger",
    "choose_maturity",
    "retrain",
    "retraining_split",
    "schedule_trigger",
    "sustained_trigger",
    "training_frame",
]

logger = logging.getLogger(__name__)

TriggerKind = Literal["schedule", "drift", "quality", "performance", "manual"]
#: What may start a retraining.
TRIGGER_KINDS: tuple[str, ...] = ("schedule", "drift", "quality", "performance", "manual")


@dataclass(frozen=True)
class Trigger:
    """Why a retraining started: ``kind`` (one of ``TRIGGER_KINDS``), a sentence, and the windows it lasted."""

    kind: str
    reason: str
    windows: int = 0

    def __post_init__(self) -> None:
        if self.kind not in TRIGGER_KINDS:
            raise ValueError(f"trigger kind must be one of {list(TRIGGER_KINDS)}, got {self.kind!r}")
        if not self.reason:
            raise ValueError("a trigger needs a reason: the record is read by people later")


def schedule_trigger(last_trained_day: int, today: int, every_days: int) -> Trigger | None:
    """A ``schedule`` trigger when ``every_days`` or more have passed since the last training, else None.

    Examples
    --------
    >>> schedule_trigger(40, 47, 7).kind, schedule_trigger(40, 46, 7)
    ('schedule', None)
    """
    if every_days < 1:
        raise ValueError(f"every_days must be at least 1, got {every_days}")
    if today - last_trained_day < every_days:
        return None
    return Trigger("schedule", f"{today - last_trained_day} days since the last training (every {every_days})")


def sustained_trigger(kind: str, breaches: Sequence[bool], windows: int, what: str) -> Trigger | None:
    """A trigger when the newest ``windows`` entries of ``breaches`` are all True (one noisy window is not enough).

    ``breaches`` is one flag per monitoring window, oldest first: a drift rule's or a data-quality
    rule's verdict, or a matured-performance alert (module 05's rules give such columns).

    Examples
    --------
    >>> sustained_trigger("drift", [False, True, True, True], 3, "amount PSI").windows
    3
    >>> sustained_trigger("drift", [True, False, True], 2, "amount PSI") is None
    True
    """
    if kind not in ("drift", "quality", "performance"):
        raise ValueError(f"a sustained trigger is a drift, quality or performance alert, got {kind!r}")
    if windows < 1:
        raise ValueError(f"windows must be at least 1, got {windows}")
    recent = [bool(b) for b in breaches][-windows:]
    if len(recent) < windows or not all(recent):
        return None
    return Trigger(kind, f"{what} breached for {windows} consecutive windows", windows)


def training_frame(log: DecisionLog, as_of: dt.datetime, *, origin: str = DEFAULT_ORIGIN) -> pd.DataFrame:
    """The transactions the service decided before ``as_of``, their logged features, and labels known at ``as_of``.

    Columns: the feed columns, ``tx_time_seconds`` and ``tx_time_days`` (since ``origin``, the
    simulator's start date by default), ``tx_fraud`` (1 for a fraud reported by ``as_of``, else 0),
    ``tx_label_seconds`` (when that label became known; NaN when no label was known at ``as_of``), the
    15 features as served, ``model_version`` and ``score`` (who decided, and what it said). Sorted by
    time. Every value in it was known at ``as_of``: a label recorded later, or a correction of one,
    is not used.
    """
    as_of = pd.Timestamp(as_of).to_pydatetime()
    decisions = log.decisions(with_features=True)
    decisions = decisions[decisions["tx_datetime"] < pd.Timestamp(as_of)]
    labels = log.labels()
    labels = labels[labels["label_time"] <= pd.Timestamp(as_of)]
    current = labels.drop_duplicates("transaction_id", keep="last").set_index("transaction_id")
    start = pd.Timestamp(origin)
    frame = decisions[["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]].copy()
    frame["tx_time_seconds"] = ((frame["tx_datetime"] - start) // pd.Timedelta(seconds=1)).astype("int64")
    frame["tx_time_days"] = (frame["tx_time_seconds"] // SECONDS_PER_DAY).astype("int64")
    matched = current.reindex(frame["transaction_id"].to_numpy())
    known = matched["is_fraud"].notna().to_numpy()
    fraud = np.where(known, matched["is_fraud"].fillna(False).to_numpy(dtype=bool), False)
    frame["tx_fraud"] = fraud.astype(np.int8)
    label_time = pd.to_datetime(matched["label_time"]).to_numpy()
    frame["tx_label_seconds"] = (label_time - start.to_datetime64()) / np.timedelta64(1, "s")
    served = pd.DataFrame(list(decisions["features"]), index=frame.index)
    for name in FEATURE_COLUMNS:
        if name not in frame:  # tx_amount is a feed column and a feature: the feed's value, which validation checks
            frame[name] = served[name].astype("float64") if name in served else np.nan
    frame["model_version"] = decisions["model_version"].to_numpy()
    frame["score"] = decisions["score"].to_numpy()
    return frame.sort_values(["tx_time_seconds", "transaction_id"], kind="stable", ignore_index=True)


@dataclass(frozen=True)
class Maturity:
    """How many recent days are too young to trust at ``as_of_day``, and the evidence for it.

    Attributes
    ----------
    days
        ``M``: days before ``as_of_day`` left out (days ``>= as_of_day - M`` are immature).
    coverage_target
        The share of a day's frauds that must be reported for it to count as mature.
    coverage_observed
        The share of the estimating frauds reported within ``days`` (``nan`` for the fallback).
    frauds_used
        Frauds the delay distribution was estimated from.
    source
        ``"estimated"`` from the log, or ``"fallback"`` (too few frauds to estimate from).
    reporting_by_day
        Share of the estimating frauds reported within 1, 2, 7, 14, 21 and 28 days.
    explanation
        One paragraph, for the record and the CLI.
    """

    days: int
    coverage_target: float
    coverage_observed: float
    frauds_used: int
    source: str
    reporting_by_day: dict[int, float] = field(default_factory=dict)
    explanation: str = ""


def choose_maturity(
    frame: pd.DataFrame,
    as_of_day: int,
    *,
    coverage: float = 0.85,
    horizon_days: int = 30,
    min_frauds: int = 20,
    fallback_days: int = 28,
) -> Maturity:
    """Choose how many recent days to leave out: the smallest ``M`` by which ``coverage`` of frauds are reported.

    Estimated from ``frame`` (:func:`training_frame`) at ``as_of_day``: the reporting delays of the
    frauds known at ``as_of_day`` whose transactions are at least ``horizon_days`` old (for them,
    any delay up to the horizon has been observed, so recent frauds still unreported do not bias the
    estimate). See the module docstring.
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    old = frame[(frame["tx_time_days"] <= as_of_day - horizon_days) & (frame["tx_fraud"] == 1)]
    delays = ((old["tx_label_seconds"] - old["tx_time_seconds"]) / SECONDS_PER_DAY).to_numpy(dtype=float)
    delays = delays[np.isfinite(delays)]
    checkpoints = (1, 2, 7, 14, 21, 28)
    if delays.size < min_frauds:
        return Maturity(
            days=fallback_days,
            coverage_target=coverage,
            coverage_observed=math.nan,
            frauds_used=int(delays.size),
            source="fallback",
            explanation=(
                f"only {delays.size} frauds at least {horizon_days} days old to estimate reporting delays from "
                f"(need {min_frauds}): leaving out the last {fallback_days} days, the longest delay expected"
            ),
        )
    days = int(min(horizon_days, max(1, math.ceil(float(np.quantile(delays, coverage))))))
    observed = float(np.mean(delays <= days))
    by_day = {d: float(np.mean(delays <= d)) for d in checkpoints}
    return Maturity(
        days=days,
        coverage_target=coverage,
        coverage_observed=observed,
        frauds_used=int(delays.size),
        source="estimated",
        reporting_by_day=by_day,
        explanation=(
            f"of {delays.size} frauds at least {horizon_days} days old, "
            + ", ".join(f"{by_day[d]:.0%} were reported within {d} d" for d in (1, 7, 14))
            + f"; {observed:.0%} within {days} d, the first whole day reaching the {coverage:.0%} target: "
            f"the last {days} days are immature (their unreported frauds would be learnt as genuine) and left out"
        ),
    )


def retraining_split(
    as_of_day: int, maturity_days: int, *, train_days: int = 7, delay_days: int = 7, test_days: int = 7
) -> TimeSplit:
    """The handbook split whose test period is the last ``test_days`` mature days (before ``as_of_day - M``).

    Examples
    --------
    >>> split = retraining_split(70, 19)
    >>> split.train_start_day, split.test_start_day, split.end_day
    (30, 44, 51)
    """
    mature_end = as_of_day - maturity_days
    start = mature_end - test_days - delay_days - train_days
    if start < 0:
        raise ValueError(
            f"as of day {as_of_day}, with {maturity_days} immature days left out, there is no room for "
            f"{train_days}+{delay_days}+{test_days} mature days: wait for more data or lower the coverage target"
        )
    return TimeSplit(train_start_day=start, train_days=train_days, delay_days=delay_days, test_days=test_days)


@dataclass(frozen=True)
class Retraining:
    """A retraining's record (:meth:`record`) and the run it produced."""

    trigger: Trigger
    as_of: dt.datetime
    as_of_day: int
    maturity: Maturity
    split: TimeSplit
    rows_logged: int
    rows_quarantined: int
    quarantine_rules: dict[str, int]
    rows_used: int
    immature_rows_left_out: int
    run: TrainedRun

    @property
    def run_id(self) -> str | None:
        return self.run.run_id

    def record(self) -> dict[str, Any]:
        """Every number and reason of this retraining, JSON-able."""
        return {
            "trigger": asdict(self.trigger),
            "as_of": self.as_of.isoformat(),
            "as_of_day": self.as_of_day,
            "maturity": asdict(self.maturity),
            "immature_days_left_out": [self.as_of_day - self.maturity.days, self.as_of_day - 1],
            "split": {
                "train_start_day": self.split.train_start_day,
                "train_days": self.split.train_days,
                "delay_days": self.split.delay_days,
                "test_days": self.split.test_days,
                "labels_known_at_day": self.split.test_start_day,
            },
            "unseen_days": [self.split.train_start_day + self.split.train_days, self.split.end_day - 1],
            "rows_logged": self.rows_logged,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_rules": self.quarantine_rules,
            "rows_used": self.rows_used,
            "immature_rows_left_out": self.immature_rows_left_out,
            "run_id": self.run.run_id,
            "model": self.run.config.name,
            "threshold": self.run.threshold.threshold,
            "threshold_source": self.run.threshold_source,
            "test_metrics": self.run.test_metrics,
            "data_fingerprint": self.run.fingerprint,
        }


def retrain(
    log: DecisionLog,
    as_of: dt.datetime,
    config: TrainingConfig,
    *,
    trigger: Trigger,
    tracker: RunLogger | None = None,
    coverage: float = 0.85,
    origin: str = DEFAULT_ORIGIN,
    logged: pd.DataFrame | None = None,
) -> Retraining:
    """Retrain ``config`` from the log as of ``as_of`` (family, hyperparameters, seed, folds kept; split replaced).

    See the module docstring for the steps. ``as_of`` is on the transactions' clock; it is rounded
    down to the start of its day, so a retraining at 14:00 and one at 09:00 on the same day agree.
    ``logged`` is ``training_frame(log, <start of that day>)`` when the caller has read it already
    (reading a long log with its features is the slow part); a frame holding a later transaction is
    refused.

    Raises
    ------
    ValueError
        Not enough mature days for the split and its validation folds, or a training window without
        a known fraud; nothing is trained or tracked then.
    """
    start = pd.Timestamp(origin)
    as_of_day = int((pd.Timestamp(as_of) - start) // pd.Timedelta(days=1))
    day_start = (start + pd.Timedelta(days=as_of_day)).to_pydatetime()
    if logged is None:
        frame = training_frame(log, day_start, origin=origin)
    elif len(logged) and logged["tx_datetime"].max() >= pd.Timestamp(day_start):
        raise ValueError(
            f"logged holds transactions up to {logged['tx_datetime'].max()}, after the retraining time {day_start}: "
            "pass training_frame(log, as_of) read as of the same day, or leave logged out"
        )
    else:
        frame = logged
    n_logged = len(frame)
    checked = validate(frame)
    rules: dict[str, int] = {}
    if checked.n_quarantined:
        for joined in checked.quarantined["rules"]:
            for rule in str(joined).split("|"):
                rules[rule] = rules.get(rule, 0) + 1
        logger.warning("retraining: %d logged rows quarantined by validation: %s", checked.n_quarantined, rules)
    frame = checked.accepted[[*FEED_COLUMNS, *(c for c in frame.columns if c not in FEED_COLUMNS)]]
    frame = frame.reset_index(drop=True)
    maturity = choose_maturity(frame, as_of_day, coverage=coverage)
    split = retraining_split(
        as_of_day,
        maturity.days,
        train_days=config.split.train_days,
        delay_days=config.split.delay_days,
        test_days=config.split.test_days,
    )
    mature = frame[frame["tx_time_days"] < as_of_day - maturity.days].reset_index(drop=True)
    run = train(
        replace(config, split=split),
        mature,
        tracker=tracker,
        run_name=f"retrain[{trigger.kind}] as of day {as_of_day}: {config.name}",
    )
    result = Retraining(
        trigger=trigger,
        as_of=day_start,
        as_of_day=as_of_day,
        maturity=maturity,
        split=split,
        rows_logged=n_logged,
        rows_quarantined=checked.n_quarantined,
        quarantine_rules=rules,
        rows_used=len(mature),
        immature_rows_left_out=len(frame) - len(mature),
        run=run,
    )
    if run.run_id is not None and hasattr(tracker, "client"):
        _track(tracker, run.run_id, result)
    logger.info("retrained %s as of day %d (trigger %s): run %s", config.name, as_of_day, trigger.kind, run.run_id)
    return result


def _track(tracker: Any, run_id: str, result: Retraining) -> None:
    """Add the retraining's trigger and window to its MLflow run (tags and metrics), beside the training record."""
    client = tracker.client
    tags = {
        "retrain.trigger": result.trigger.kind,
        "retrain.reason": result.trigger.reason,
        "retrain.as_of": result.as_of.isoformat(),
        "retrain.maturity": result.maturity.explanation,
    }
    for key, value in tags.items():
        client.set_tag(run_id, key, value[:5000])
    tracker.log_metrics(
        run_id,
        {
            "retrain_as_of_day": float(result.as_of_day),
            "retrain_maturity_days": float(result.maturity.days),
            "retrain_rows_quarantined": float(result.rows_quarantined),
            "retrain_immature_rows_left_out": float(result.immature_rows_left_out),
        },
    )
