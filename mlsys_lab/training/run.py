"""One training run, end to end and on the record: :func:`train` is the single entry point.

``train(config, frame)`` does, in order:

1. prequential validation on ``config.validation_folds`` folds before the test period (mean ± std);
2. the decision threshold, chosen on the newest validation fold's scores from the daily alert budget
   and the cost model (:mod:`mlsys_lab.training.threshold`);
3. the final fit on the training rows of ``config.split``, with the labels known at the test start;
4. test metrics, and what the threshold does on the test days (alerts per day, expected daily cost);
5. the record: resolved config, sha256 fingerprint of the training data, library versions, fit time,
   artifact size; and, when a :class:`~mlsys_lab.training.tracking.Tracker` is given, an MLflow run
   with the model file, its sha256, the record as JSON and a model card.

Steps 1-3 use only the labels known at ``config.split.test_start_seconds``, the moment the model goes
live (see :mod:`mlsys_lab.training.prequential`); only step 4 reads the test period's truth.

May this run be registered?
    Only if its threshold was chosen on validation data and is a usable number.
    ``threshold_source`` records where it came from: ``"validation"`` (the newest fold, labels known
    at the decision time) or ``"test"`` (``validation_folds=0``: chosen on the test period, so the
    test numbers flatter it and it must not serve). :func:`check_registrable` (a :class:`TrainedRun`)
    and :func:`check_registrable_record` (a tracked run's MLflow params and metrics) raise
    :class:`NotRegistrable` saying why and how to fix it; the registry calls one of them before it
    writes anything. The threshold contract: finite and in ``[0, 1]`` (scores are probabilities; an
    infinite threshold means "never alert", which the service rightly refuses to serve).

The same config on the same frame gives byte-identical ``predict_proba`` output: every source of
randomness is the config's ``random_state`` (see ``tests/training/test_reproducibility.py``).

Examples
--------
>>> from mlsys_lab.data import preset, simulate
>>> from mlsys_lab.data.split import TimeSplit
>>> frame = feature_frame(simulate(preset("tiny")).transactions)
>>> config = TrainingConfig(family="logistic_regression", split=TimeSplit(train_start_day=9), validation_folds=0)
>>> run = train(config, frame)
>>> run.pipeline.predict_proba(frame[list(config.features)].to_numpy()[:1]).shape
(1, 2)
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, Protocol

import joblib
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

import mlsys_lab
from mlsys_lab.data.features import build_features
from mlsys_lab.training.config import TrainingConfig, build_pipeline
from mlsys_lab.training.datasets import data_fingerprint, split_data
from mlsys_lab.training.prequential import FoldScores, prequential_evaluate
from mlsys_lab.training.scoring import cards_per_day, score_rows
from mlsys_lab.training.threshold import ThresholdChoice, choose_threshold, threshold_report

__all__ = [
    "THRESHOLD_FROM_TEST",
    "THRESHOLD_FROM_VALIDATION",
    "NotRegistrable",
    "RunLogger",
    "TrainedRun",
    "check_registrable",
    "check_registrable_record",
    "feature_frame",
    "library_versions",
    "train",
]

logger = logging.getLogger(__name__)

#: ``TrainedRun.threshold_source`` when the threshold was chosen on the newest validation fold.
THRESHOLD_FROM_VALIDATION = "validation"
#: ``TrainedRun.threshold_source`` when it was chosen on the test period (``validation_folds=0``).
THRESHOLD_FROM_TEST = "test"
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "joblib", "mlflow")


def library_versions() -> dict[str, str]:
    """Versions of Python, the libraries a model depends on, and ``mlsys_lab``; read without importing them."""
    versions = {"python": platform.python_version(), "mlsys_lab": mlsys_lab.__version__}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def feature_frame(transactions: pd.DataFrame) -> pd.DataFrame:
    """Transactions joined with their point-in-time features: the frame :func:`train` expects."""
    features = build_features(transactions)
    return transactions.join(features.drop(columns=features.columns.intersection(transactions.columns)))


def _window(rows: pd.DataFrame, first_day: int, n_days: int) -> dict[str, Any]:
    dates = rows["tx_datetime"] if "tx_datetime" in rows and len(rows) else None
    return {
        "first_day": first_day,
        "last_day": first_day + n_days - 1,
        "first_date": str(dates.min().date()) if dates is not None else "",
        "last_date": str(dates.max().date()) if dates is not None else "",
        "rows": len(rows),
    }


@dataclass(frozen=True)
class TrainedRun:
    """A fitted pipeline and everything measured about it. Frozen: a run is a record, not a workspace.

    Attributes
    ----------
    config
        The config that produced it (``config.as_dict()`` is the resolved version).
    pipeline
        The fitted pipeline; input is a float64 array of ``config.features`` in order.
    k
        Cards per day used for card precision@k.
    validation
        Prequential fold scores, or ``None`` with ``validation_folds=0``.
    test_metrics
        ``roc_auc``, ``average_precision``, ``card_precision_at_k`` on the test period.
    threshold
        The threshold chosen (on the newest validation fold when there is one; see ``threshold_source``).
    test_threshold
        What that threshold does on the test period.
    threshold_source
        ``THRESHOLD_FROM_VALIDATION`` or ``THRESHOLD_FROM_TEST`` (then the run is not registrable).
    fit_seconds
        Wall time of the final fit.
    artifact_bytes
        Size of the serialized pipeline (``joblib.dump``, uncompressed).
    fingerprint
        :func:`~mlsys_lab.training.pipeline.data_fingerprint` of the final training data.
    window
        Training and test periods: days, dates, rows.
    versions
        :func:`library_versions` at training time.
    test_scores
        ``predict_proba[:, 1]`` on the test rows, for plots and further metrics.
    run_id
        The MLflow run id once tracked, else ``None``.
    """

    config: TrainingConfig
    pipeline: Pipeline
    k: int
    validation: FoldScores | None
    test_metrics: dict[str, float]
    threshold: ThresholdChoice
    test_threshold: ThresholdChoice
    threshold_source: str
    fit_seconds: float
    artifact_bytes: int
    fingerprint: str
    train_frauds: int
    window: dict[str, dict[str, Any]]
    versions: dict[str, str]
    test_scores: npt.NDArray[np.float64]
    run_id: str | None = None

    def metrics(self) -> dict[str, float]:
        """Every number of the run, flat, as logged to the tracker (``val_*`` mean and std, ``test_*``, ...)."""
        out: dict[str, float] = {}
        if self.validation is not None:
            for name, value in self.validation.mean.items():
                out[f"val_{name}_mean"] = float(value)
            for name, value in self.validation.std.items():
                out[f"val_{name}_std"] = float(value)
        out.update({f"test_{name}": value for name, value in self.test_metrics.items()})
        out.update(
            {
                "threshold": self.threshold.threshold,
                "test_alerts_per_day_mean": self.test_threshold.alerts_per_day_mean,
                "test_alerts_per_day_max": float(self.test_threshold.alerts_per_day_max),
                "test_daily_cost": self.test_threshold.expected_daily_cost,
                "test_precision_at_threshold": self.test_threshold.precision,
                "test_recall_at_threshold": self.test_threshold.recall,
                "fit_seconds": self.fit_seconds,
                "artifact_bytes": float(self.artifact_bytes),
                "train_rows": float(self.window["train"]["rows"]),
                "train_frauds": float(self.train_frauds),
            }
        )
        return out

    def params(self) -> dict[str, str]:
        """The resolved config, flat, as strings (MLflow params are strings)."""
        c = self.config
        flat: dict[str, Any] = {
            "family": c.family,
            "random_state": c.random_state,
            **{f"model.{name}": value for name, value in c.model_params.items() if name != "random_state"},
            **{f"split.{name}": value for name, value in c.as_dict()["split"].items()},
            "features": ",".join(c.features),
            "validation_folds": c.validation_folds,
            "unknown_labels": c.unknown_labels,
            "cards_per_day": self.k,
            "alerts_per_day": self.threshold.alerts_per_day_budget,
            "threshold_source": self.threshold_source,
            "labels_known_at_day": c.split.test_start_day,
            **{f"cost.{name}": value for name, value in c.as_dict()["cost"].items()},
        }
        return {name: str(value) for name, value in flat.items()}

    def record(self) -> dict[str, Any]:
        """The run as one JSON-able dict: config, metrics, fingerprint, window, versions."""
        return {
            "name": self.config.name,
            "config": self.config.as_dict(),
            "metrics": self.metrics(),
            "validation_folds": [] if self.validation is None else self.validation.folds.to_dict("records"),
            "threshold": self.threshold.as_dict(),
            "test_threshold": self.test_threshold.as_dict(),
            "threshold_source": self.threshold_source,
            "data_fingerprint": self.fingerprint,
            "window": self.window,
            "versions": self.versions,
        }


class NotRegistrable(ValueError):
    """A trained run whose decision threshold must not reach production; the message says why and the fix."""


def _threshold_problems(threshold: float, source: str, *, budget: object) -> list[str]:
    problems = []
    if source != THRESHOLD_FROM_VALIDATION:
        problems.append(
            f"its threshold was chosen on {'the test period' if source == THRESHOLD_FROM_TEST else repr(source)}, "
            "not on validation data, so the test numbers flatter it: retrain with validation_folds >= 1 "
            "(simulate more days if the folds do not fit)"
        )
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        problems.append(
            f"its threshold {threshold!r} is not a number in [0, 1] (inf means 'never alert': on validation no "
            f"threshold kept every day within the budget of {budget} alerts, or alerting never paid off under "
            "the cost model): raise alerts_per_day, change the cost model or train on more data"
        )
    return problems


def check_registrable(run: TrainedRun) -> None:
    """Raise :class:`NotRegistrable` unless ``run``'s threshold was chosen on validation data and is in ``[0, 1]``.

    See :func:`check_registrable_record` for the same check on a tracked run's record.
    """
    name = run.config.name
    problems = _threshold_problems(
        run.threshold.threshold, run.threshold_source, budget=run.threshold.alerts_per_day_budget
    )
    if problems:
        raise NotRegistrable(f"{name} cannot be registered: " + "; and ".join(problems))


def check_registrable_record(params: Mapping[str, str], metrics: Mapping[str, float], *, what: str = "run") -> None:
    """The same check on a tracked run's MLflow ``params`` and ``metrics`` (``run.data.params``, ``run.data.metrics``).

    For the registry, which registers by run id: ``params["threshold_source"]`` and
    ``metrics["threshold"]`` are what :class:`~mlsys_lab.training.tracking.Tracker` logged. A record
    without them was not made by :func:`train` and is refused too.

    Examples
    --------
    >>> check_registrable_record({"threshold_source": "validation"}, {"threshold": 0.4})  # fine: no error
    >>> try:
    ...     check_registrable_record({"threshold_source": "validation"}, {"threshold": float("inf")})
    ... except NotRegistrable as refused:
    ...     print(str(refused)[:59])
    run cannot be registered: its threshold inf is not a number
    """
    if "threshold_source" not in params or "threshold" not in metrics:
        raise NotRegistrable(
            f"{what} cannot be registered: its record lacks param 'threshold_source' or metric 'threshold'; "
            "only runs tracked by mlsys_lab.training.train can be registered: retrain it"
        )
    problems = _threshold_problems(
        float(metrics["threshold"]), str(params["threshold_source"]), budget=params.get("alerts_per_day")
    )
    if problems:
        raise NotRegistrable(f"{what} cannot be registered: " + "; and ".join(problems))


class RunLogger(Protocol):
    """What :func:`train` needs from a tracker (:class:`~mlsys_lab.training.tracking.Tracker` is one).

    A protocol, so this module does not import the tracking layer: imports run one way, tracking
    depends on runs, not the reverse.
    """

    def log_run(self, run: TrainedRun, *, run_name: str | None = None) -> str: ...


def _serialized_size(pipeline: Pipeline) -> int:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=0)
    return buffer.getbuffer().nbytes


def train(
    config: TrainingConfig,
    frame: pd.DataFrame,
    *,
    tracker: RunLogger | None = None,
    run_name: str | None = None,
    pipeline: Pipeline | None = None,
    threads: int | None = 1,
) -> TrainedRun:
    """Validate, fit, score and record ``config`` on ``frame``; the one way the package trains a model.

    Parameters
    ----------
    config
        What to train (see :class:`~mlsys_lab.training.pipeline.TrainingConfig`).
    frame
        Transactions joined with their features (:func:`feature_frame`), covering the validation
        folds and the split.
    tracker
        Where to record the run (an MLflow store); ``None`` keeps it in memory only.
    run_name
        MLflow run name; ``config.name`` by default.
    pipeline
        An unfitted pipeline to use instead of ``build_pipeline(config)``: for experiments and tests
        (e.g. with seeding removed). The record still shows ``config``, so prefer the default.
    threads
        OpenMP and BLAS threads while fitting and scoring (``threadpoolctl``); ``None`` keeps the
        process defaults. One is faster on small data and keeps results independent of the machine's
        core count (see :mod:`mlsys_lab.training.pipeline`).

    Returns
    -------
    TrainedRun
        With ``run_id`` set when tracked.
    """
    with threadpool_limits(limits=threads) if threads is not None else contextlib.nullcontext():
        run = _train(config, frame, pipeline if pipeline is not None else build_pipeline(config))
    if tracker is not None:
        run = replace(run, run_id=tracker.log_run(run, run_name=run_name))
    return run


def _train(config: TrainingConfig, frame: pd.DataFrame, template: Pipeline) -> TrainedRun:
    k = config.cards_per_day or cards_per_day(int(frame["customer_id"].nunique()))
    budget = config.alerts_per_day or k

    validation = prequential_evaluate(config, frame, k=k, pipeline=template) if config.validation_folds else None

    data = split_data(config, frame)
    if data.y_train.min(initial=0) == data.y_train.max(initial=0):
        raise ValueError(
            f"the {config.split.train_days} training days from day {config.split.train_start_day} hold only one "
            "class of known labels: train on more days or a larger preset"
        )
    model = clone(template)  # never fit the caller's object in place
    clock = time.perf_counter()
    model.fit(data.X_train, data.y_train)
    fit_seconds = time.perf_counter() - clock
    y_proba = model.predict_proba(data.X_test)[:, 1].astype(np.float64)

    amount_test, days_test = data.test["tx_amount"].to_numpy(), data.test["tx_time_days"].to_numpy()
    if validation is not None and validation.newest_test is not None and validation.newest_scores is not None:
        chosen_on = validation.newest_test  # tx_fraud here is the label known at the decision time
        threshold = choose_threshold(
            chosen_on["tx_fraud"].to_numpy(),
            validation.newest_scores,
            chosen_on["tx_amount"].to_numpy(),
            chosen_on["tx_time_days"].to_numpy(),
            budget,
            config.cost,
        )
        source = THRESHOLD_FROM_VALIDATION
    else:
        # No validation data: the threshold is chosen on the test period, reported as such, and refused by
        # check_registrable. Useful for exploring on short data; never for serving.
        threshold = choose_threshold(data.y_test, y_proba, amount_test, days_test, budget, config.cost)
        source = THRESHOLD_FROM_TEST
    on_test = threshold_report(
        threshold.threshold,
        data.y_test,
        y_proba,
        amount_test,
        days_test,
        budget,
        config.cost,
        budget_threshold=threshold.budget_threshold,
    )

    split = config.split
    run = TrainedRun(
        config=config,
        pipeline=model,
        k=k,
        validation=validation,
        test_metrics=score_rows(data.test, y_proba, k),
        threshold=threshold,
        test_threshold=on_test,
        threshold_source=source,
        fit_seconds=fit_seconds,
        artifact_bytes=_serialized_size(model),
        fingerprint=data_fingerprint(data.X_train, data.y_train, config.features),
        train_frauds=int(data.y_train.sum()),
        window={
            "train": _window(data.train, split.train_start_day, split.train_days),
            "test": _window(data.test, split.test_start_day, split.test_days),
        },
        versions=library_versions(),
        test_scores=y_proba,
    )
    logger.info("trained %s in %.2f s: test AP %.3f", config.name, fit_seconds, run.test_metrics["average_precision"])
    if source == THRESHOLD_FROM_TEST:
        logger.info("%s: threshold chosen on the test period (validation_folds=0): not registrable", config.name)
    return run
