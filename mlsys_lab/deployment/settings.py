"""The scoring service's settings: one frozen, typed object read from ``MLSYS_LAB_*`` variables.

:class:`ServiceSettings` is a pydantic-settings ``BaseSettings`` (prefix ``MLSYS_LAB_``, an empty
variable counts as unset). Nothing is read at import: the environment is read when a shell
(``mlsys-lab serve``, a test, a benchmark, the uvicorn factory in a worker process) builds the
object, and the object is passed explicitly to :func:`~mlsys_lab.deployment.service.create_app`.

=======================================  =============================================  =========================
variable                                 meaning                                        default
=======================================  =============================================  =========================
``MLSYS_LAB_TRACKING_DIR``               tracking store and registry (MLflow on SQLite)  ``./runs/mlflow``
``MLSYS_LAB_TRACKING_SERVER``            a shared MLflow server's URL (model files      unset: the SQLite store
                                         still in the tracking dir's ``artifacts``)
``MLSYS_LAB_DECISION_LOG_URL``           SQLAlchemy URL of the decision log             ``sqlite:///runs/decisions.db``
``MLSYS_LAB_ADMIN_TOKEN``                token of the admin endpoints                   unset: admin answers 403
``MLSYS_LAB_FEEDBACK_TOKEN``             token of ``/v1/feedback`` (the admin token     unset: only the admin
                                         is accepted too)                               token labels
``MLSYS_LAB_MODEL_ALIAS``                the registry alias served                      ``champion``
``MLSYS_LAB_BATCH_LIMIT``                most transactions in one batch request          ``256``
``MLSYS_LAB_MAX_BODY_BYTES``             largest request body (413 above it)            ``1048576`` (1 MiB)
``MLSYS_LAB_MAX_AHEAD_SECONDS``          how far ahead of the stream and of the         ``86400`` (a day)
                                         service's clock a transaction may be dated
``MLSYS_LAB_HOST`` / ``MLSYS_LAB_PORT``  where ``mlsys-lab serve`` binds                 ``127.0.0.1`` / ``8000``
``MLSYS_LAB_WORKERS``                    uvicorn worker processes of ``mlsys-lab serve``  ``1``
``MLSYS_LAB_MODEL_REFRESH_SECONDS``      follow the alias every N s (0: admin only)      unset: 0 with one worker,
                                                                                        5 with several
``MLSYS_LAB_BLAS_THREADS``               OpenMP/BLAS threads while scoring               ``1``
``MLSYS_LAB_METRICS``                    ``GET /metrics`` and the request counting       ``true``
                                         (``false``: neither, to measure their cost)
``MLSYS_LAB_METRICS_DIR``                where ``serve --workers N`` keeps the workers'  ``./runs/metrics``
                                         metric files (``serve-<pid>``, fresh each start)
=======================================  =============================================  =========================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlsys_lab.deployment.decision_log import DEFAULT_URL
from mlsys_lab.training.tracking import TrackingSettings

__all__ = ["DEFAULT_DECISION_LOG_URL", "ENV_PREFIX", "MULTI_WORKER_REFRESH_SECONDS", "ServiceSettings"]

ENV_PREFIX = "MLSYS_LAB_"
DEFAULT_DECISION_LOG_URL = DEFAULT_URL
#: How often each worker follows the alias when several share the traffic and nothing else is set:
#: ``/admin/reload`` reaches only the worker that receives it.
MULTI_WORKER_REFRESH_SECONDS = 5.0


class ServiceSettings(BaseSettings):
    """Everything the scoring service needs to start; frozen, so a running app cannot drift from it.

    Examples
    --------
    >>> settings = ServiceSettings.from_env({"MLSYS_LAB_TRACKING_DIR": "/tmp/store", "MLSYS_LAB_PORT": "9000"})
    >>> settings.port, settings.admin_token is None
    (9000, True)
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", env_ignore_empty=True, arbitrary_types_allowed=True
    )

    tracking_dir: Path | None = Field(
        default=None, description="Tracking store folder; None means TrackingSettings' own default."
    )
    tracking_server: str | None = Field(
        default=None, description="A shared MLflow tracking server (http://host:port); None: the SQLite store."
    )
    decision_log_url: str = Field(default=DEFAULT_DECISION_LOG_URL, min_length=1)
    admin_token: SecretStr | None = Field(
        default=None, description="None disables the admin endpoints (403): there is no default token that works."
    )
    feedback_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /v1/feedback and /v1/feedback/batch. The admin token is accepted too; with "
        "neither set, feedback answers 403.",
    )
    model_alias: str = Field(default="champion", min_length=1)
    batch_limit: int = Field(default=256, ge=1, le=10_000)
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="Larger request bodies get a 413, unread.")
    max_ahead_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="A transaction dated further ahead of the stream and of the service's clock is a 422.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65_535)
    workers: int = Field(default=1, ge=1, le=64)
    blas_threads: int = Field(default=1, ge=1, description="OpenMP/BLAS threads for scoring (one row: one thread).")
    metrics: bool = Field(
        default=True,
        description="Serve GET /metrics and count every request; False drops the middleware and the route "
        "(what the overhead benchmark compares against).",
    )
    metrics_dir: Path = Field(
        default=Path("runs/metrics"),
        description="Parent of the fresh folder (serve-<pid>) where the workers of mlsys-lab serve --workers N "
        "write their metrics for one scrape to merge; removed when the server stops.",
    )
    max_in_flight: int = Field(
        default=0,
        ge=0,
        description="Load shedding: at most this many scoring requests in flight per worker, a 429 with "
        "Retry-After above it (mlsys_lab.deployment.shedding); 0: no limit.",
    )
    gc_freeze: bool = Field(
        default=True,
        description="After start-up, move everything start-up built (modules, model, feature state) out of the "
        "garbage collector's reach (gc.freeze): without it each full collection scanned ~400,000 objects and "
        "paused every request for 100-260 ms (benchmarks/bench_gc.py). false: Python's default collector.",
    )
    gc_refreeze: bool = Field(
        default=True,
        description="With gc_freeze: after each full collection, freeze what it found alive too "
        "(mlsys_lab.deployment.service.HeapFreezer), so that the feature state that grows after start-up "
        "is walked once, not by every later full collection. false: freeze at start-up only.",
    )
    model_refresh_seconds: float | None = Field(
        default=None,
        ge=0.0,
        le=86_400.0,
        description="Every so often, reload when the alias moved (0: only on /admin/reload). Each worker "
        "process follows the alias on its own, so with several workers one reload request is not enough. "
        "None: 0 for one worker, MULTI_WORKER_REFRESH_SECONDS for several.",
    )

    @property
    def tracking(self) -> TrackingSettings:
        """The registry's store, as the training layer names it."""
        if self.tracking_dir is None:
            return TrackingSettings(server=self.tracking_server)
        return TrackingSettings(root=self.tracking_dir, server=self.tracking_server)

    def refresh_seconds(self, workers: int | None = None) -> float:
        """How often to follow the alias: the setting, or the default for ``workers`` (the setting's by default)."""
        if self.model_refresh_seconds is not None:
            return self.model_refresh_seconds
        return MULTI_WORKER_REFRESH_SECONDS if (workers or self.workers) > 1 else 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Settings from ``MLSYS_LAB_*`` variables: ``os.environ``, with ``environ``'s values taking precedence."""
        if environ is None:
            return cls()
        names = {f"{ENV_PREFIX}{name.upper()}": name for name in cls.model_fields}
        # Given values are init values, which pydantic-settings puts above the environment.
        return cls.model_validate({names[key]: value for key, value in environ.items() if key in names and value})
