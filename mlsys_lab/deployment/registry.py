"""The model registry: versions, the ``champion`` and ``challenger`` aliases, and an integrity check on every load.

A trained run becomes a *version* of the registered model ``fraud-detector`` in MLflow's model
registry, in the same SQLite store the runs live in (:class:`~mlsys_lab.training.TrackingSettings`).
A version records what serving it needs and what auditing it needs: the artifact's sha256, the
feature list in order, the decision threshold, the request-schema version, the training data's
fingerprint and the run's metrics (MLflow model-version tags, written once at registration). The
artifact is not copied: the version's source is the run's own ``model`` folder, and the file
registered is exactly the file whose sha256 training recorded (checked again before registering).

Aliases and their history
    ``champion`` is the version the service serves; ``challenger`` the one being evaluated against it.
    Promotion moves ``champion``; rollback moves it back. MLflow keeps only where an alias points now,
    so every move is also written, with who, when (UTC) and why, to a table of our own
    (``alias_moves``) in a small SQLite file beside MLflow's, ``<root>/alias_history.db``. Why a
    separate file and not MLflow's: a move holds a write lock on the history (``BEGIN IMMEDIATE``)
    while MLflow moves the alias, so two admins promoting at once are serialised and the history
    is in the same order as the moves; with both in one SQLite file, MLflow's write would wait on our
    own lock. Why not JSON in a registered-model tag: a read-modify-write of one tag loses moves
    when two processes write at once, and the history only grows.

    Rollback undoes the newest promotion not undone yet: after ``v1 -> v2 -> v3``, a rollback
    serves v2 and a second one v1 (not v3 again). With nothing left to undo it raises
    :class:`RegistryError`. If ``champion`` was moved behind the registry's back (e.g. in MLflow's
    UI), rollback refuses rather than guess; :meth:`Registry.set_alias` puts it back on the record.

The trust boundary
    joblib files are pickles, and unpickling runs code chosen by whoever wrote the file. So
    :meth:`Registry.load` reads the artifact's bytes once, computes their sha256, compares it with
    the sha256 the registry recorded and, only if they match, unpickles *those same bytes* from
    memory (never the file a second time, which could have changed in between). This is the
    training layer's one verify-then-load path, :func:`mlsys_lab.training.artifact.verified_bytes`,
    and its one :class:`IntegrityError` (re-exported here: the same class). A missing,
    truncated, flipped or replaced file raises :class:`IntegrityError` and nothing is unpickled; a
    service that is already running keeps serving the model it has.

    What is trusted: the registry itself, i.e. the tracking root (``mlflow.db``, which holds the
    recorded sha256s and where each version's file is, and ``alias_history.db``). The checksum
    protects against the artifact changing under a correct record (disk corruption, a half-copied
    file, someone overwriting ``model.joblib``), not against someone who can write the registry
    database: whoever can write ``mlflow.db`` can register any file with its matching sha256 and make
    us load, and so run, anything. Guard the tracking root like code: same owner as the service,
    not writable by others, backed up. The artifacts folder may sit on less trusted storage.

Registration contract
    :meth:`Registry.register` first asks :func:`~mlsys_lab.training.check_registrable_record`
    whether the run may reach production: a threshold chosen on the test period
    (``validation_folds=0``) or not a number in ``[0, 1]`` raises
    :class:`~mlsys_lab.training.NotRegistrable`, saying why and how to fix it, and nothing is written.

Quiet and thread-safe
    MLflow's logging is configured once (:func:`~mlsys_lab.training.tracking.configure_mlflow`,
    which :func:`~mlsys_lab.training.tracking.quiet_mlflow` ensures), so nothing reaches stderr and
    no call swaps ``sys.stderr``: threads need no lock around MLflow calls. Only the first use of the
    client (which creates the store's tables) is serialised. :meth:`Registry.load` changes no shared
    state: an admin endpoint may call it while requests are served, and swap the returned
    :class:`LoadedModel` in when it succeeds.

Examples
--------
>>> registry = Registry(TrackingSettings(root=Path("/tmp/never-created")))  # nothing happens yet
>>> registry.model_name
'fraud-detector'
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import joblib
import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from mlsys_lab.deployment.decision_log import configure_sqlite, write_transaction
from mlsys_lab.deployment.row_scoring import RowScorer, agrees_with, row_scorer
from mlsys_lab.training.artifact import IntegrityError, verified_bytes
from mlsys_lab.training.run import check_registrable_record
from mlsys_lab.training.tracking import Tracker, TrackingSettings, quiet_mlflow

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from mlsys_lab.training.run import TrainedRun

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "HISTORY_FILE",
    "MODEL_NAME",
    "IntegrityError",
    "LoadedModel",
    "ModelVersionInfo",
    "Registry",
    "RegistryError",
]

logger = logging.getLogger(__name__)

MODEL_NAME = "fraud-detector"
CHAMPION = "champion"
CHALLENGER = "challenger"
#: The alias history's SQLite file, under the tracking root.
HISTORY_FILE = "alias_history.db"

# Model-version tags written at registration: the registry's record of a version.
_TAG_SHA256 = "sha256"
_TAG_MODEL_FILE = "model_file"
_TAG_FINGERPRINT = "data_fingerprint"
_TAG_FEATURES = "features"
_TAG_THRESHOLD = "threshold"
_TAG_SCHEMA = "request_schema_version"
_TAG_METRICS = "metrics"
_REQUIRED_TAGS = (_TAG_SHA256, _TAG_MODEL_FILE, _TAG_FINGERPRINT, _TAG_FEATURES, _TAG_THRESHOLD, _TAG_SCHEMA)

_metadata = sa.MetaData()
_alias_moves = sa.Table(
    "alias_moves",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(256), nullable=False, index=True),
    sa.Column("alias", sa.String(256), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # set_alias, promote or rollback
    sa.Column("who", sa.String(256), nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),  # UTC, stored naive
)


class RegistryError(RuntimeError):
    """A registry request that cannot be met: unknown version or alias, no champion, nothing to roll back."""


@dataclass(frozen=True)
class ModelVersionInfo:
    """The registry's record of one version: what serving it needs and where it came from.

    Attributes
    ----------
    version
        MLflow's version number (1, 2, ...).
    run_id
        The MLflow run that trained it.
    sha256
        The artifact's sha256, as recorded by training and checked at registration.
    artifact_path
        The model file (``model.joblib`` inside the run's artifact folder).
    features
        The pipeline's input columns, in order.
    threshold
        Block (alert) when the fraud score is at least this.
    request_schema_version
        The API request schema this version was registered for (``"v1"``).
    data_fingerprint
        sha256 fingerprint of the training data (:func:`~mlsys_lab.training.data_fingerprint`).
    metrics
        The run's metrics at registration (``test_average_precision``, ``threshold``, ...).
    created_at
        When the version was registered, UTC.
    aliases
        Aliases pointing at it when it was read.
    """

    version: int
    run_id: str
    sha256: str
    artifact_path: Path
    features: tuple[str, ...]
    threshold: float
    request_schema_version: str
    data_fingerprint: str
    metrics: Mapping[str, float]
    created_at: dt.datetime
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedModel:
    """A verified, unpickled pipeline and its registry record. Immutable: swap a whole one in to change models."""

    info: ModelVersionInfo
    pipeline: Pipeline
    _fraud_column: int = field(init=False, repr=False, compare=False, default=1)
    #: The numpy row path (:mod:`mlsys_lab.deployment.row_scoring`), when this pipeline has one.
    _row_scorer: RowScorer | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        classes = getattr(self.pipeline, "classes_", None)
        if classes is None or 1 not in list(classes):
            raise IntegrityError(
                f"model version {self.info.version} ({self.info.artifact_path}) is not a fitted binary classifier "
                f"with a fraud class 1 (classes_ = {classes!r}): metadata mismatch; register a run trained by "
                "mlsys_lab.training.train"
            )
        object.__setattr__(self, "_fraud_column", list(classes).index(1))
        scorer = row_scorer(self.pipeline, self._fraud_column)
        width = len(self.info.features)
        if scorer is not None and width == getattr(self.pipeline, "n_features_in_", width):
            # Used only where it agrees with predict_proba: on zeros, and on rows around the model's scale.
            rng = np.random.default_rng(0)
            probes = [np.zeros((1, width)), rng.normal(0.0, 1.0, (64, width)), rng.normal(0.0, 50.0, (64, width))]
            if agrees_with(scorer, self.pipeline, self._fraud_column, probes):
                object.__setattr__(self, "_row_scorer", scorer)

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def threshold(self) -> float:
        return self.info.threshold

    def score(self, rows: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Fraud probabilities for a 2-D float64 array whose columns are ``info.features`` in order.

        Examples
        --------
        >>> model.score(np.zeros((2, len(model.info.features)))).shape  # doctest: +SKIP
        (2,)
        """
        array = np.asarray(rows, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != len(self.info.features):
            raise ValueError(
                f"model version {self.info.version} scores rows of {len(self.info.features)} features "
                f"({', '.join(self.info.features)}), got an array of shape {array.shape}"
            )
        if self._row_scorer is not None:
            return self._row_scorer(array)
        scores: npt.NDArray[np.float64] = self.pipeline.predict_proba(array)[:, self._fraud_column]
        return scores.astype(np.float64, copy=False)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# What to do when a registered artifact fails its check (the message's last sentence).
_LOAD_FIX = (
    "Restore the file from a backup or retrain and register a new version, and point the alias "
    "elsewhere meanwhile (Registry.rollback or Registry.promote). Nothing was unpickled."
)


class Registry:
    """Versions of one registered model in the tracking store, with aliases, their history and safe loading.

    Parameters
    ----------
    settings
        The tracking store (``TrackingSettings()`` by default: ``$MLSYS_LAB_TRACKING_DIR`` or
        ``./runs/mlflow``). Nothing on disk is touched until the first call that needs it.
    model_name
        The registered model's name.
    """

    def __init__(self, settings: TrackingSettings | None = None, model_name: str = MODEL_NAME) -> None:
        self.settings = settings or TrackingSettings()
        self.model_name = model_name
        self._tracker = Tracker(self.settings)
        self._engine: sa.Engine | None = None
        self._init_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def history_path(self) -> Path:
        """The SQLite file holding the alias history."""
        return self.settings.root / HISTORY_FILE

    @contextmanager
    def _mlflow(self) -> Iterator[MlflowClient]:
        with self._init_lock:  # the first use creates the store's tables: once, not by two threads at once
            client = self._tracker.client
        with quiet_mlflow():
            yield client

    def _history_engine(self) -> sa.Engine:
        with self._init_lock:
            if self._engine is None:
                self.settings.root.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(f"sqlite:///{self.history_path.as_posix()}")
                configure_sqlite(engine, synchronous="FULL")  # rare writes, and an audit record
                with write_transaction(engine) as connection:
                    _metadata.create_all(connection)  # under BEGIN IMMEDIATE: safe when processes start at once
                self._engine = engine
            return self._engine

    @staticmethod
    def _not_found(error: Exception) -> bool:
        return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"

    def _model_version(self, ref: str | int) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        version = _as_version(ref)
        what = f"version {version}" if version is not None else f"alias {ref!r}"
        with self._mlflow() as client:
            try:
                if version is None:
                    version = self._aliases(client).get(str(ref))
                if version is not None:
                    return client.get_model_version(self.model_name, str(version))
            except MlflowException as error:
                if not self._not_found(error):
                    raise
        hint = "promote a version first (Registry.promote)" if ref == CHAMPION else "see Registry.versions()"
        raise RegistryError(f"model {self.model_name!r} has no {what}: {hint}")

    def _aliases(self, client: MlflowClient) -> dict[str, int]:
        """Alias -> version now; empty when nothing is registered under this name yet."""
        from mlflow.exceptions import MlflowException

        try:
            return {alias: int(v) for alias, v in client.get_registered_model(self.model_name).aliases.items()}
        except MlflowException as error:
            if self._not_found(error):
                return {}
            raise

    def _info(self, mv: ModelVersion) -> ModelVersionInfo:
        tags = dict(mv.tags or {})
        missing = [name for name in _REQUIRED_TAGS if name not in tags]
        if missing:
            raise IntegrityError(
                f"model version {mv.version} of {self.model_name!r} lacks the registry's metadata {missing}: it was "
                "not registered by mlsys_lab's Registry.register; register its run again"
            )
        source = str(mv.source).removeprefix("file://")
        return ModelVersionInfo(
            version=int(mv.version),
            run_id=str(mv.run_id),
            sha256=tags[_TAG_SHA256],
            artifact_path=Path(source) / Path(tags[_TAG_MODEL_FILE]).name,
            features=tuple(json.loads(tags[_TAG_FEATURES])),
            threshold=float(tags[_TAG_THRESHOLD]),
            request_schema_version=tags[_TAG_SCHEMA],
            data_fingerprint=tags[_TAG_FINGERPRINT],
            metrics=MappingProxyType({k: float(v) for k, v in json.loads(tags.get(_TAG_METRICS, "{}")).items()}),
            created_at=dt.datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, dt.UTC),
            aliases=tuple(mv.aliases or ()),
        )

    def _alias_target(self, alias: str) -> int | None:
        with self._mlflow() as client:
            return self._aliases(client).get(alias)

    # -- registering --------------------------------------------------------------------------------

    def register(self, run: TrainedRun | str, *, request_schema_version: str = "v1") -> ModelVersionInfo:
        """Register a tracked run's model as a new version (or return the version already registered for it).

        The run must have been tracked by :func:`~mlsys_lab.training.train` with a tracker on this
        registry's store: its ``model.joblib`` and the sha256 recorded with it are used in place (no
        copy), after checking that the file still has that sha256.

        Parameters
        ----------
        run
            A :class:`~mlsys_lab.training.TrainedRun` with ``run_id`` set, or an MLflow run id.
        request_schema_version
            The API request schema the model is served under.

        Raises
        ------
        RegistryError
            The run is unknown to this store, or was not tracked with a model.
        NotRegistrable
            The run's threshold was chosen on the test period (``validation_folds=0``) or is not a
            number in ``[0, 1]`` (:func:`~mlsys_lab.training.check_registrable_record`); nothing is written.
        IntegrityError
            The run's model file is missing or no longer has the recorded sha256, or a given
            ``TrainedRun`` does not match the tracked record.
        """
        from mlflow.exceptions import MlflowException

        run_id = run if isinstance(run, str) else run.run_id
        if not run_id:
            raise RegistryError(
                "this run was not tracked: train it with a tracker on the registry's store "
                "(train(config, frame, tracker=Tracker(registry.settings))) and register it then"
            )
        with self._mlflow() as client:
            try:
                tracked = client.get_run(run_id)
            except MlflowException as error:
                raise RegistryError(
                    f"run {run_id!r} is not in the tracking store {self.settings.tracking_uri}: "
                    "register runs from the store the registry uses"
                ) from error
        tags, params, metrics = tracked.data.tags, tracked.data.params, tracked.data.metrics
        needed = {"tag model_sha256": "model_sha256" in tags, "tag model_file": "model_file" in tags}
        needed |= {"tag data_fingerprint": "data_fingerprint" in tags, "param features": "features" in params}
        needed |= {"metric threshold": "threshold" in metrics}
        if not all(needed.values()):
            lacking = [name for name, ok in needed.items() if not ok]
            raise RegistryError(
                f"run {run_id} lacks {lacking}: only runs tracked by mlsys_lab.training.train can be registered"
            )
        # Before anything is written, so a refused run leaves no trace: a test-period or non-finite threshold.
        check_registrable_record(params, metrics, what=f"run {run_id}")
        sha256 = tags["model_sha256"]
        if not isinstance(run, str) and run.fingerprint != tags["data_fingerprint"]:
            raise IntegrityError(
                f"run {run_id}: the TrainedRun's data fingerprint {run.fingerprint} differs from the tracked "
                f"{tags['data_fingerprint']}: metadata mismatch; register the run id you tracked"
            )
        with self._mlflow():
            artifact_dir = self._tracker.artifact_dir(run_id)
        path = artifact_dir / tags["model_file"]
        verified_bytes(path, sha256, what=f"run {run_id} (not registered)", fix=_LOAD_FIX)  # before anything is written

        with self._mlflow() as client:
            for existing in client.search_model_versions(f"name = '{self.model_name}' and run_id = '{run_id}'"):
                existing_tags = existing.tags or {}
                if (
                    existing_tags.get(_TAG_SHA256) == sha256
                    and existing_tags.get(_TAG_SCHEMA) == request_schema_version
                ):
                    logger.info("run %s is already version %s of %s", run_id, existing.version, self.model_name)
                    return self._info(client.get_model_version(self.model_name, existing.version))
            try:
                client.create_registered_model(self.model_name)
            except MlflowException as error:
                if getattr(error, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise
            features = params["features"].split(",")
            version_tags = {
                _TAG_SHA256: sha256,
                _TAG_MODEL_FILE: path.name,
                _TAG_FINGERPRINT: tags["data_fingerprint"],
                _TAG_FEATURES: json.dumps(features),
                _TAG_THRESHOLD: repr(float(metrics["threshold"])),
                _TAG_SCHEMA: request_schema_version,
                _TAG_METRICS: json.dumps({name: float(value) for name, value in sorted(metrics.items())}),
            }
            created = client.create_model_version(
                self.model_name, str(path.parent), run_id=run_id, tags=version_tags, await_creation_for=0
            )
            info = self._info(client.get_model_version(self.model_name, created.version))
        logger.info("registered run %s as version %d of %s", run_id, info.version, self.model_name)
        return info

    # -- reading ------------------------------------------------------------------------------------

    def get(self, ref: str | int) -> ModelVersionInfo:
        """The record of a version, by number (``3`` or ``"3"``) or alias (``"champion"``); no file is read."""
        return self._info(self._model_version(ref))

    def verify(self, ref: str | int) -> ModelVersionInfo:
        """Check a version's file against its recorded sha256 without unpickling; returns its record."""
        info = self.get(ref)
        verified_bytes(info.artifact_path, info.sha256, what=self._what(info), fix=_LOAD_FIX)
        return info

    def load(self, ref: str | int = CHAMPION) -> LoadedModel:
        """Resolve ``ref``, check the artifact's sha256, and only then unpickle it.

        Changes no shared state: safe to call while another thread serves the current model.

        Raises
        ------
        RegistryError
            ``ref`` names no version (e.g. no champion yet).
        IntegrityError
            The file is missing, its sha256 differs from the registered one (nothing is unpickled),
            or the registered sha256 differs from the run's own record, or the unpickled object does
            not fit the recorded features.
        """
        info = self.get(ref)
        with self._mlflow() as client:
            run_sha256 = client.get_run(info.run_id).data.tags.get("model_sha256")
        if run_sha256 != info.sha256:
            raise IntegrityError(
                f"{self._what(info)}: the registry recorded sha256 {info.sha256} but its run {info.run_id} recorded "
                f"{run_sha256}: metadata mismatch, one of the two records was changed; nothing was unpickled. "
                "Register the run again and point the alias at the new version"
            )
        data = verified_bytes(info.artifact_path, info.sha256, what=self._what(info), fix=_LOAD_FIX)
        # The bytes just hashed, not the file again: it could have changed since.
        try:
            pipeline = joblib.load(io.BytesIO(data))
        except Exception as error:  # truncated or garbled bytes that were hashed as they are: one refusal type
            raise IntegrityError(
                f"{self._what(info)}: {info.artifact_path} matches its recorded sha256 but cannot be unpickled "
                f"({type(error).__name__}: {error}): the file was written broken before it was hashed; "
                "train and register the run again"
            ) from error
        n_features = getattr(pipeline, "n_features_in_", len(info.features))
        if not isinstance(pipeline, Pipeline) or n_features != len(info.features):
            raise IntegrityError(
                f"{self._what(info)}: {info.artifact_path} holds a {type(pipeline).__name__} expecting {n_features} "
                f"features, but the registry recorded a Pipeline of {len(info.features)}: metadata mismatch; "
                "register the run again"
            )
        logger.info("loaded %s from %s", self._what(info), info.artifact_path)
        return LoadedModel(info=info, pipeline=pipeline)

    def _what(self, info: ModelVersionInfo) -> str:
        return f"model version {info.version} of {self.model_name!r}"

    def versions(self) -> pd.DataFrame:
        """One row per registered version, oldest first: number, aliases, record and metrics (``metric.*``)."""
        from mlflow.exceptions import MlflowException

        with self._mlflow() as client:
            found: list[ModelVersion] = []
            aliases = self._aliases(client)  # search results carry no aliases
            try:
                found = list(client.search_model_versions(f"name = '{self.model_name}'"))
            except MlflowException as error:
                if not self._not_found(error):
                    raise
        rows = []
        for mv in found:
            info = self._info(mv)
            rows.append(
                {
                    "version": info.version,
                    "aliases": ",".join(sorted(a for a, v in aliases.items() if v == info.version)),
                    "created_at": info.created_at,
                    "run_id": info.run_id,
                    "threshold": info.threshold,
                    "request_schema_version": info.request_schema_version,
                    "n_features": len(info.features),
                    "data_fingerprint": info.data_fingerprint,
                    "sha256": info.sha256,
                    "artifact_path": str(info.artifact_path),
                    **{f"metric.{name}": value for name, value in info.metrics.items()},
                }
            )
        columns = ["version", "aliases", "created_at", "run_id", "threshold", "request_schema_version", "n_features"]
        columns += ["data_fingerprint", "sha256", "artifact_path"]
        table = pd.DataFrame(rows, columns=None if rows else columns)
        return table.sort_values("version", ignore_index=True) if rows else table

    # -- moving aliases -------------------------------------------------------------------------------

    def set_alias(self, alias: str, version: int, *, who: str, why: str) -> None:
        """Point ``alias`` at ``version`` (after checking its file's sha256) and record the move."""
        self._move(alias, version, who=who, why=why, action="set_alias")

    def promote(self, version: int, *, who: str, why: str) -> None:
        """Make ``version`` the champion; the previous champion stays on record for :meth:`rollback`.

        A version that is champion already is left as it is (nothing recorded). The version's file
        must pass the sha256 check: a corrupt artifact is never promoted.
        """
        self._move(CHAMPION, version, who=who, why=why, action="promote")

    def rollback(self, *, who: str, why: str) -> int:
        """Point champion back at the version it had before its newest promotion not yet undone; return it.

        Raises
        ------
        RegistryError
            Nothing to roll back to (no champion, or only its first promotion on record), or the
            champion was moved outside the registry so its history no longer describes it.
        IntegrityError
            The version to return to fails its sha256 check (champion does not move).
        """
        engine = self._history_engine()
        with write_transaction(engine) as connection:  # one writer at a time: the history cannot change under us
            rows = connection.execute(
                sa.select(_alias_moves.c.action, _alias_moves.c.from_version, _alias_moves.c.to_version)
                .where(_alias_moves.c.model_name == self.model_name, _alias_moves.c.alias == CHAMPION)
                .order_by(_alias_moves.c.id)
            ).all()
            current = self._alias_target(CHAMPION)
            if rows and rows[-1].to_version != current:
                raise RegistryError(
                    f"{CHAMPION!r} of {self.model_name!r} points at version {current}, but its last recorded move "
                    f"was to {rows[-1].to_version}: it was moved outside the registry; put it on record with "
                    "Registry.set_alias('champion', version, who=..., why=...) or promote a version explicitly"
                )
            undo: list[int | None] = []
            for row in rows:
                if row.action == "rollback":
                    if undo:
                        undo.pop()
                else:
                    undo.append(row.from_version)
            target = undo[-1] if undo else None
            if current is None or target is None:
                raise RegistryError(
                    f"nothing to roll back to: {CHAMPION!r} of {self.model_name!r} is "
                    + ("not set" if current is None else f"version {current} and no earlier champion remains on record")
                    + "; promote a version explicitly with Registry.promote"
                )
            self.verify(target)
            self._write_move(connection, CHAMPION, current, target, action="rollback", who=who, why=why)
        logger.info("rolled %s back from version %s to %s (%s: %s)", CHAMPION, current, target, who, why)
        return target

    def _move(self, alias: str, version: int, *, who: str, why: str, action: str) -> None:
        if not who or not why:
            raise ValueError("an alias move needs who and why: the history is for the people reading it later")
        if isinstance(version, bool) or not isinstance(version, int | np.integer):
            raise TypeError(f"version must be a version number, got {version!r}")
        version = int(version)
        self.verify(version)  # also fails with RegistryError for an unknown version
        engine = self._history_engine()
        with write_transaction(engine) as connection:  # serialises moves across processes
            current = self._alias_target(alias)
            if current == version:
                logger.info("%s already points at version %d; nothing recorded", alias, version)
                return
            self._write_move(connection, alias, current, version, action=action, who=who, why=why)
        logger.info("%s of %s: version %s -> %d (%s: %s)", alias, self.model_name, current, version, who, why)

    def _write_move(
        self, connection: sa.Connection, alias: str, current: int | None, version: int, **record: str
    ) -> None:
        """Record the move, then move the alias, inside the caller's write transaction.

        If MLflow fails the transaction rolls back and nothing is recorded. A process killed after
        MLflow moved the alias and before the commit leaves a move off the record: rollback notices.
        """
        connection.execute(
            _alias_moves.insert().values(
                model_name=self.model_name,
                alias=alias,
                from_version=current,
                to_version=version,
                at=_utcnow().replace(tzinfo=None),
                **record,
            )
        )
        with self._mlflow() as client:
            client.set_registered_model_alias(self.model_name, alias, str(version))

    def history(self) -> pd.DataFrame:
        """Every alias move of this model, oldest first: ``at`` (UTC), alias, from/to version, action, who, why."""
        engine = self._history_engine()
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    _alias_moves.c.at,
                    _alias_moves.c.alias,
                    _alias_moves.c.from_version,
                    _alias_moves.c.to_version,
                    _alias_moves.c.action,
                    _alias_moves.c.who,
                    _alias_moves.c.why,
                )
                .where(_alias_moves.c.model_name == self.model_name)
                .order_by(_alias_moves.c.id)
            ).all()
        table = pd.DataFrame([row._asdict() for row in rows], columns=list(_HISTORY_COLUMNS))
        table["at"] = pd.to_datetime(table["at"]).dt.tz_localize("UTC")
        for column in ("from_version", "to_version"):
            table[column] = table[column].astype("Int64")
        return table

    def close(self) -> None:
        """Release the history database's connections (MLflow's client needs no closing)."""
        with self._init_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


_HISTORY_COLUMNS = ("at", "alias", "from_version", "to_version", "action", "who", "why")


def _as_version(ref: str | int) -> int | None:
    """The version number ``ref`` names, or None when it is an alias."""
    if isinstance(ref, bool):
        raise TypeError(f"a version number or alias, not {ref!r}")
    if isinstance(ref, int | np.integer):
        return int(ref)
    if isinstance(ref, str) and ref.strip().isdigit():
        return int(ref)
    if isinstance(ref, str) and ref:
        return None
    raise TypeError(f"a version number or alias name, got {ref!r}")
