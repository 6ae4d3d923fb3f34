"""The training layer: reproducible training, experiment tracking, model selection and the decision threshold.

A plain re-export: importing it defines names and does nothing else (MLflow is imported only when a
:class:`Tracker` first needs it). Modules, in the order a run uses them:

- :mod:`~mlsys_lab.training.pipeline`: :class:`TrainingConfig` and the scikit-learn pipeline it builds;
- :mod:`~mlsys_lab.training.prequential`: validation folds before the test period, mean ± std;
- :mod:`~mlsys_lab.training.threshold`: the threshold from a daily alert budget and a cost model;
- :mod:`~mlsys_lab.training.run`: :func:`train`, the one entry point, and the :class:`TrainedRun` record;
- :mod:`~mlsys_lab.training.artifact`: the model file and its sha256 (the registry's seam);
- :mod:`~mlsys_lab.training.model_card`: a markdown card per run;
- :mod:`~mlsys_lab.training.tracking`: MLflow on SQLite, :func:`runs_table`, :func:`plot_runs`;
- :mod:`~mlsys_lab.training.selection`: the trade-off table and the rule that picks a model.
"""

from mlsys_lab.training.artifact import ChecksumMismatch, ModelArtifact, load_model, save_model
from mlsys_lab.training.model_card import model_card, write_model_card
from mlsys_lab.training.pipeline import (
    CARDS_CHECKED_SHARE,
    DEFAULT_PARAMS,
    FAMILIES,
    TrainingConfig,
    build_pipeline,
    cards_per_day,
    data_fingerprint,
    split_data,
)
from mlsys_lab.training.prequential import FoldScores, prequential_evaluate, validation_splits
from mlsys_lab.training.run import TrainedRun, feature_frame, library_versions, train
from mlsys_lab.training.selection import (
    Constraints,
    Latency,
    Selection,
    candidate_grid,
    measure_fit_memory,
    measure_latency,
    measure_throughput,
    select_model,
    tradeoff_table,
    train_candidates,
)
from mlsys_lab.training.threshold import ThresholdChoice, choose_threshold, threshold_for_budget, threshold_report
from mlsys_lab.training.tracking import Tracker, TrackingSettings, plot_runs, quiet_mlflow, runs_table

__all__ = [
    "CARDS_CHECKED_SHARE",
    "DEFAULT_PARAMS",
    "FAMILIES",
    "ChecksumMismatch",
    "Constraints",
    "FoldScores",
    "Latency",
    "ModelArtifact",
    "Selection",
    "ThresholdChoice",
    "Tracker",
    "TrackingSettings",
    "TrainedRun",
    "TrainingConfig",
    "build_pipeline",
    "candidate_grid",
    "cards_per_day",
    "choose_threshold",
    "data_fingerprint",
    "feature_frame",
    "library_versions",
    "load_model",
    "measure_fit_memory",
    "measure_latency",
    "measure_throughput",
    "model_card",
    "plot_runs",
    "prequential_evaluate",
    "quiet_mlflow",
    "runs_table",
    "save_model",
    "select_model",
    "split_data",
    "threshold_for_budget",
    "threshold_report",
    "tradeoff_table",
    "train",
    "train_candidates",
    "validation_splits",
    "write_model_card",
]
