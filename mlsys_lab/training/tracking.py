"""Experiment tracking with MLflow: a local SQLite store, no server, no telemetry, nothing on stderr.

Where runs go
    :class:`TrackingSettings` names one folder, ``root``: the SQLite database is
    ``<root>/mlflow.db`` and artifacts go under ``<root>/artifacts``. ``root`` defaults to
    ``$MLSYS_LAB_TRACKING_DIR`` or ``./runs/mlflow`` (git-ignored), read when the settings are created,
    never at import. Look at the runs with ``mlflow ui --backend-store-uri sqlite:///<root>/mlflow.db``
    (:attr:`TrackingSettings.ui_command` prints it).

Quiet by construction
    MLflow writes INFO lines to stderr when it creates its tables; in a graded notebook cell anything
    on stderr scores zero. :func:`configure_mlflow` runs once per process, before the tracker's first
    MLflow call: it sets MLflow's own switch ``MLFLOW_CONFIGURE_LOGGING=false`` (so MLflow installs no
    stderr handler when it is imported) and routes the loggers MLflow owns (``mlflow``, and
    ``alembic``/``sqlalchemy.engine`` when MLflow configured them) to this module's logger at DEBUG
    level (``logging.getLogger("mlsys_lab.training.tracking")``), so the lines are kept, not lost.
    It swaps nothing: an earlier version redirected ``sys.stderr`` and the warning filters around
    every call, which is process-wide state that two threads could leave swapped. MLflow is imported
    lazily, at first use, never at import. Telemetry is switched off with
    ``MLFLOW_DISABLE_TELEMETRY=true`` and ``DO_NOT_TRACK=1`` in the same step.

What a run holds
    Params: the resolved config, flat (``family``, ``model.*``, ``split.*``, ...). Metrics: validation
    mean and std, test metrics, fit time, artifact size, threshold and alerts per day, and the serving
    measurements that :func:`~mlsys_lab.training.selection.tradeoff_table` adds. Tags: the training
    data fingerprint, the model file's sha256 and library versions. Artifacts: ``model/model.joblib``,
    ``model/model.json``, ``model/run.json`` and ``model/model_card.md``.

The first use of a new store creates its tables (about 2 s); later runs take milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlsys_lab.training import artifact as model_artifact
from mlsys_lab.training.model_card import write_model_card
from mlsys_lab.training.run import TrainedRun

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.tracking import MlflowClient

__all__ = [
    "ENV_TRACKING_DIR",
    "Tracker",
    "TrackingSettings",
    "configure_mlflow",
    "plot_runs",
    "quiet_mlflow",
    "runs_table",
    "save_run",
]

logger = logging.getLogger(__name__)

#: Environment variable that moves the default tracking folder.
ENV_TRACKING_DIR = "MLSYS_LAB_TRACKING_DIR"
DEFAULT_ROOT = Path("runs") / "mlflow"
DEFAULT_EXPERIMENT = "fraud-training"
MODEL_ARTIFACT_DIR = "model"
RUN_RECORD_FILE = "run.json"
MODEL_CARD_FILE = "model_card.md"
# Forced, not defaults: the course runs offline, promises no telemetry and nothing on stderr.
_MLFLOW_ENVIRONMENT = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MLFLOW_CONFIGURE_LOGGING": "false"}
# The loggers MLflow configures for itself when MLFLOW_CONFIGURE_LOGGING is true.
_MLFLOW_OWNED_LOGGERS = ("mlflow", "alembic", "sqlalchemy.engine", "huey")
_configure_lock = threading.Lock()
_configured = False


def _default_root() -> Path:
    return Path(os.environ.get(ENV_TRACKING_DIR) or DEFAULT_ROOT)


@dataclass(frozen=True, kw_only=True)
class TrackingSettings:
    """Where the tracking store lives. Creating settings touches nothing on disk.

    Parameters
    ----------
    root
        The store's folder; ``$MLSYS_LAB_TRACKING_DIR`` or ``./runs/mlflow`` by default. Resolved to an
        absolute path at creation, so a later ``chdir`` does not move the store.
    experiment
        The MLflow experiment runs go to.
    server
        A shared MLflow tracking server (``http://127.0.0.1:5000``, started with ``mlflow server
        --backend-store-uri ... --no-serve-artifacts``) instead of the SQLite file under ``root``:
        runs, metrics and registry entries go to the server; model files still go to
        ``root/artifacts`` (a folder every user of the server can read, e.g. a shared disk), where
        the registry's sha256 check reads them, and the alias history stays in ``root``.

    Examples
    --------
    >>> settings = TrackingSettings(root=Path("/tmp/store"))
    >>> settings.tracking_uri, settings.artifact_location
    ('sqlite:////tmp/store/mlflow.db', '/tmp/store/artifacts')
    """

    root: Path = field(default_factory=_default_root)
    experiment: str = DEFAULT_EXPERIMENT
    server: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())
        if not self.experiment or not isinstance(self.experiment, str):
            raise ValueError(f"experiment must be a non-empty name, got {self.experiment!r}")

    @property
    def tracking_uri(self) -> str:
        if self.server:
            return self.server.rstrip("/")
        return f"sqlite:///{(self.root / 'mlflow.db').as_posix()}"

    @property
    def artifact_location(self) -> str:
        return (self.root / "artifacts").as_posix()

    @property
    def ui_command(self) -> str:
        """The shell command that opens MLflow's UI on this store."""
        return f"mlflow ui --backend-store-uri {self.tracking_uri} --host 127.0.0.1"


class _ToDebugLog(logging.Handler):
    """Passes MLflow's log records to this module's logger at DEBUG level: kept, and off stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("%s: %s", record.name, record.getMessage())


def configure_mlflow() -> None:
    """Once per process: telemetry off, and MLflow's logging kept off stderr (this module's DEBUG log instead).

    Call it before MLflow's first import where you can (the tracker does, at its first use):
    ``MLFLOW_CONFIGURE_LOGGING=false`` then stops MLflow from installing its stderr handler at all.
    If MLflow was imported earlier and did configure its loggers, their stderr handlers are replaced
    here. Idempotent and thread-safe; it never touches ``sys.stderr`` or the warning filters.
    """
    global _configured
    with _configure_lock:
        if _configured:
            return
        os.environ.update(_MLFLOW_ENVIRONMENT)
        import mlflow  # noqa: F401  (its import reads the switches above)
        from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

        forward = _ToDebugLog()
        for name in _MLFLOW_OWNED_LOGGERS:
            owned = logging.getLogger(name)
            mlflows = [h for h in owned.handlers if getattr(h, "stream", None) is MLFLOW_LOGGING_STREAM]
            if name == "mlflow" or mlflows:
                owned.handlers = [h for h in owned.handlers if h not in mlflows] + [forward]
                owned.propagate = False
                if name == "mlflow":
                    owned.setLevel(logging.INFO)
        _configured = True


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Kept for callers: makes sure :func:`configure_mlflow` has run. Swaps nothing, so it is thread-safe."""
    configure_mlflow()
    yield


def save_run(run: TrainedRun, directory: Path) -> model_artifact.ModelArtifact:
    """Write the model (``model.joblib``, ``model.json``), ``run.json`` and ``model_card.md`` into ``directory``."""
    directory = Path(directory)
    saved = model_artifact.save_model(
        run.pipeline,
        directory,
        {"features": list(run.config.features), "name": run.config.name, "versions": run.versions},
    )
    (directory / RUN_RECORD_FILE).write_text(
        json.dumps(run.record(), indent=2, sort_keys=True, default=str, allow_nan=True) + "\n"
    )
    write_model_card(run, directory / MODEL_CARD_FILE)
    return saved


class Tracker:
    """Records training runs in the MLflow store that ``settings`` names.

    Uses an explicit ``MlflowClient`` on the settings' URI and an experiment whose artifact location
    is under ``settings.root``: MLflow's global state (``mlflow.set_tracking_uri``, the default
    ``./mlruns``) is never touched, so two trackers on two stores can live in one process.

    Examples
    --------
    >>> tracker = Tracker(TrackingSettings(root=Path("/tmp/never-created")))  # nothing happens yet
    >>> tracker.settings.experiment
    'fraud-training'
    """

    def __init__(self, settings: TrackingSettings | None = None) -> None:
        self.settings = settings or TrackingSettings()
        self._client: MlflowClient | None = None
        self._experiment_ids: dict[str, str] = {}

    @property
    def client(self) -> MlflowClient:
        """The MLflow client; the first access creates the folder and the tables."""
        if self._client is None:
            configure_mlflow()  # before this module's first MLflow import
            from mlflow.tracking import MlflowClient

            self.settings.root.mkdir(parents=True, exist_ok=True)
            client = MlflowClient(tracking_uri=self.settings.tracking_uri)
            client.search_experiments(max_results=1)  # forces the store (and its tables) into existence
            self._client = client
        return self._client

    def experiment_id(self, name: str | None = None) -> str:
        """Id of experiment ``name`` (the settings' by default), created with its artifacts under ``root``."""
        name = name or self.settings.experiment
        if name not in self._experiment_ids:
            client = self.client
            found = client.get_experiment_by_name(name)
            if found is None:
                location = f"{self.settings.artifact_location}/{name}"
                self._experiment_ids[name] = client.create_experiment(name, artifact_location=location)
            else:
                self._experiment_ids[name] = found.experiment_id
        return self._experiment_ids[name]

    def log_run(self, run: TrainedRun, *, run_name: str | None = None, experiment: str | None = None) -> str:
        """Record ``run`` (params, metrics, tags, model file, record, model card); returns the MLflow run id."""
        experiment_id = self.experiment_id(experiment)
        client = self.client
        created = client.create_run(experiment_id, run_name=run_name or run.config.name)
        run_id: str = created.info.run_id
        try:
            with tempfile.TemporaryDirectory() as folder:
                saved = save_run(run, Path(folder) / MODEL_ARTIFACT_DIR)
                tags = {
                    "family": run.config.family,
                    "data_fingerprint": run.fingerprint,
                    "model_sha256": saved.sha256,
                    "model_file": f"{MODEL_ARTIFACT_DIR}/{saved.path.name}",
                    **{f"version.{name}": value for name, value in run.versions.items()},
                }
                self._log_batch(run_id, params=run.params(), metrics=run.metrics(), tags=tags)
                client.log_artifacts(run_id, str(Path(folder) / MODEL_ARTIFACT_DIR), MODEL_ARTIFACT_DIR)
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id)
        logger.info("tracked %s as run %s", run.config.name, run_id)
        return run_id

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        """Add metrics to an existing run (e.g. latency measured after training)."""
        self._log_batch(run_id, metrics=metrics)

    def _log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        client = self.client
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), now, 0) for key, value in (metrics or {}).items()],
            params=[Param(key, value) for key, value in (params or {}).items()],
            tags=[RunTag(key, value) for key, value in (tags or {}).items()],
        )

    def artifact_dir(self, run_id: str) -> Path:
        """The local folder holding a run's artifacts (``model/model.joblib``, ``model/model_card.md``, ...)."""
        client = self.client
        uri = client.get_run(run_id).info.artifact_uri
        return Path(uri.removeprefix("file://"))

    def search(self, experiment: str | None = None) -> list[Any]:
        """All runs of an experiment as MLflow ``Run`` objects, newest first."""
        experiment_id = self.experiment_id(experiment)
        client = self.client
        return list(client.search_runs([experiment_id], max_results=10_000, order_by=["attributes.start_time DESC"]))


def _numeric_where_possible(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce")
    return converted if converted.notna().sum() == column.notna().sum() else column


def runs_table(source: Tracker | TrackingSettings | None = None, experiment: str | None = None) -> pd.DataFrame:
    """One row per run of an experiment: ids, params, metrics, fingerprint and model checksum.

    Columns: ``run_id``, ``run_name``, ``start_time``, ``status``, then the params (numeric ones
    converted to numbers; hyperparameters as ``model.<name>``), then the metrics (``fit_seconds``,
    ``artifact_bytes``, ``val_*_mean``/``_std``, ``test_*``, and serving measurements when present),
    then ``data_fingerprint`` and ``model_sha256``. Newest run first.
    """
    tracker = source if isinstance(source, Tracker) else Tracker(source)
    rows = []
    for run in tracker.search(experiment):
        rows.append(
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "start_time": pd.Timestamp(run.info.start_time, unit="ms"),
                "status": run.info.status,
                **dict(run.data.params),
                **dict(run.data.metrics),
                "data_fingerprint": run.data.tags.get("data_fingerprint"),
                "model_sha256": run.data.tags.get("model_sha256"),
            }
        )
    table = pd.DataFrame(rows)
    fixed = {"run_id", "run_name", "start_time", "status", "data_fingerprint", "model_sha256", "family", "features"}
    for column in table.columns.difference(list(fixed)):
        table[column] = _numeric_where_possible(table[column])
    return table


def plot_runs(
    table: pd.DataFrame,
    *,
    x: str = "p99_cpu_ms",
    y: str = "val_average_precision_mean",
    yerr: str | None = "val_average_precision_std",
    label: str = "run_name",
    logx: bool = True,
) -> Figure:
    """Scatter of runs, ``y`` against ``x`` with error bars, one colour per family; returns the Figure.

    Built on ``matplotlib.figure.Figure`` without pyplot, so it draws on any backend (Agg in CI) and
    leaves no global figure open; a notebook displays the returned figure.
    """
    from matplotlib.figure import Figure

    missing = [c for c in (x, y) if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column(s) {missing}; columns are {list(table.columns)}")
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    groups = table.groupby("family", sort=True) if "family" in table.columns else [("runs", table)]
    for family, rows in groups:
        errors = rows[yerr] if yerr and yerr in rows.columns else None
        ax.errorbar(rows[x], rows[y], yerr=errors, fmt="o", capsize=3, label=str(family))
        if label in rows.columns:
            for _, row in rows.iterrows():
                ax.annotate(str(row[label]), (row[x], row[y]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y if not yerr else f"{y} (± {yerr})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure
