"""The training layer: reproducible training, experiment tracking, model selection and the decision threshold.

A plain re-export: importing it defines names and does nothing else (MLflow is imported only when a
:class:`Tracker` first needs it). Modules, in the order a run uses them, each importing only the ones
above it:

- :mod:`~mlsys_lab.training.config`: :class:`TrainingConfig`, what decides a model, and the pipeline it builds;
- :mod:`~mlsys_lab.training.datasets`: a split's matrices, labelled as known at the decision, and a fingerprint;
- :mod:`~mlsys_lab.training.scoring`: threshold-free metrics of a scored period and the cards checked per day;
- :mod:`~mlsys_lab.training.threshold`: the threshold from a daily alert budget and a cost model;
- :mod:`~mlsys_lab.training.prequential`: validation folds before the test period, scored on known labels;
- :mod:`~mlsys_lab.training.run`: :func:`train`, the one entry point, the :class:`TrainedRun` record and
  :func:`check_registrable`;
- :mod:`~mlsys_lab.training.artifact`: the model file and its sha256, verified and loaded in one read;
- :mod:`~mlsys_lab.training.model_card`: a markdown card per run;
- :mod:`~mlsys_lab.training.tracking`: MLflow on SQLite, quiet, :func:`runs_table`, :func:`plot_runs`;
- :mod:`~mlsys_lab.training.selection`: the trade-off table and the rule that picks a model.

Every public name of those modules that a notebook, the demo or the deployment layer uses is here.
"""

from mlsys_lab.training.artifact import (
    ChecksumMismatch,
    IntegrityError,
    ModelArtifact,
    file_sha256,
    load_model,
    save_model,
    verified_bytes,
)
from mlsys_lab.training.config import DEFAULT_PARAMS, FAMILIES, TrainingConfig, build_pipeline
from mlsys_lab.training.datasets import SplitData, data_fingerprint, split_data
from mlsys_lab.training.model_card import model_card, write_model_card
from mlsys_lab.training.prequential import FoldScores, prequential_evaluate, validation_splits
from mlsys_lab.training.run import (
    THRESHOLD_FROM_TEST,
    THRESHOLD_FROM_VALIDATION,
    NotRegistrable,
    TrainedRun,
    check_registrable,
    check_registrable_record,
    feature_frame,
    library_versions,
    train,
)
from mlsys_lab.training.scoring import CARDS_CHECKED_SHARE, cards_per_day, score_rows
from mlsys_lab.training.selection import (
    Constraints,
    Latency,
    Selection,
    candidate_grid,
    measure_fit_memory,
    measure_latency,
    measure_memory_of,
    measure_throughput,
    select_model,
    tradeoff_table,
    train_candidates,
)
from mlsys_lab.training.threshold import ThresholdChoice, choose_threshold, threshold_for_budget, threshold_report
from mlsys_lab.training.tracking import (
    Tracker,
    TrackingSettings,
    configure_mlflow,
    plot_runs,
    quiet_mlflow,
    runs_table,
    save_run,
)

__all__ = [
    "CARDS_CHECKED_SHARE",
    "DEFAULT_PARAMS",
    "FAMILIES",
    "THRESHOLD_FROM_TEST",
    "THRESHOLD_FROM_VALIDATION",
    "ChecksumMismatch",
    "Constraints",
    "FoldScores",
    "IntegrityError",
    "Latency",
    "ModelArtifact",
    "NotRegistrable",
    "Selection",
    "SplitData",
    "ThresholdChoice",
    "Tracker",
    "TrackingSettings",
    "TrainedRun",
    "TrainingConfig",
    "build_pipeline",
    "candidate_grid",
    "cards_per_day",
    "check_registrable",
    "check_registrable_record",
    "choose_threshold",
    "configure_mlflow",
    "data_fingerprint",
    "feature_frame",
    "file_sha256",
    "library_versions",
    "load_model",
    "measure_fit_memory",
    "measure_latency",
    "measure_memory_of",
    "measure_throughput",
    "model_card",
    "plot_runs",
    "prequential_evaluate",
    "quiet_mlflow",
    "runs_table",
    "save_model",
    "save_run",
    "score_rows",
    "select_model",
    "split_data",
    "threshold_for_budget",
    "threshold_report",
    "tradeoff_table",
    "train",
    "train_candidates",
    "validation_splits",
    "verified_bytes",
    "write_model_card",
]
