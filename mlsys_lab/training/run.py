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
import json
import logging
import platform
import time
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

import mlsys_lab
from mlsys_lab.data.features import build_features
from mlsys_lab.training import artifact as model_artifact
from mlsys_lab.training.model_card import write_model_card
from mlsys_lab.training.pipeline import (
    TrainingConfig,
    build_pipeline,
    cards_per_day,
    data_fingerprint,
    score_split,
    split_data,
)
from mlsys_lab.training.prequential import FoldScores, prequential_evaluate
from mlsys_lab.training.threshold import ThresholdChoice, choose_threshold, threshold_report

if TYPE_CHECKING:
    from mlsys_lab.training.tracking import Tracker

__all__ = ["TrainedRun", "feature_frame", "library_versions", "train"]

logger = logging.getLogger(__name__)

RUN_RECORD_FILE = "run.json"
MODEL_CARD_FILE = "model_card.md"
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

    def save(self, directory: Path) -> model_artifact.ModelArtifact:
        """Write the model (``model.joblib``, ``model.json``), ``run.json`` and ``model_card.md`` into ``directory``."""
        directory = Path(directory)
        saved = model_artifact.save_model(
            self.pipeline,
            directory,
            {"features": list(self.config.features), "name": self.config.name, "versions": self.versions},
        )
        (directory / RUN_RECORD_FILE).write_text(
            json.dumps(self.record(), indent=2, sort_keys=True, default=str, allow_nan=True) + "\n"
        )
        write_model_card(self, directory / MODEL_CARD_FILE)
        return saved


def _serialized_size(pipeline: Pipeline) -> int:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=0)
    return buffer.getbuffer().nbytes


def train(
    config: TrainingConfig,
    frame: pd.DataFrame,
    *,
    tracker: Tracker | None = None,
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
        chosen_on = validation.newest_test
        threshold = choose_threshold(
            chosen_on["tx_fraud"].to_numpy(),
            validation.newest_scores,
            chosen_on["tx_amount"].to_numpy(),
            chosen_on["tx_time_days"].to_numpy(),
            budget,
            config.cost,
        )
        source = "newest validation fold"
    else:
        threshold = choose_threshold(data.y_test, y_proba, amount_test, days_test, budget, config.cost)
        source = "test period (no validation folds: optimistic)"
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
        test_metrics=score_split(data, y_proba, k),
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
    return run
