"""The scoring service's settings: one frozen object, read from ``MLSYS_LAB_*`` variables on request.

Nothing is read at import. :meth:`ServiceSettings.from_env` reads the environment once, when the
shell (``mlsys-lab serve``, a test, a benchmark) asks for it, and the result is passed explicitly to
:func:`~mlsys_lab.deployment.service.create_app`. ``pydantic-settings`` is not a dependency of the
course, so this is a plain frozen pydantic model with one classmethod doing the reading.

========================================  =============================================  =========================
variable                                  meaning                                        default
========================================  =============================================  =========================
``MLSYS_LAB_TRACKING_DIR``                tracking store and registry (MLflow on SQLite)  ``./runs/mlflow``
``MLSYS_LAB_DECISION_LOG_URL``            SQLAlchemy URL of the decision log             ``sqlite:///runs/decisions.db``
``MLSYS_LAB_ADMIN_TOKEN``                 token of the admin endpoints                   unset: admin answers 403
``MLSYS_LAB_MODEL_ALIAS``                 the registry alias served                      ``champion``
``MLSYS_LAB_BATCH_LIMIT``                 most transactions in one batch request          ``256``
``MLSYS_LAB_HOST`` / ``MLSYS_LAB_PORT``   where ``mlsys-lab serve`` binds                 ``127.0.0.1`` / ``8000``
``MLSYS_LAB_MODEL_REFRESH_SECONDS``       follow the alias every N s (0: admin only)      ``0`` (5 with workers > 1)
``MLSYS_LAB_BLAS_THREADS``                OpenMP/BLAS threads while scoring               ``1``
========================================  =============================================  =========================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mlsys_lab.deployment.decision_log import DEFAULT_URL
from mlsys_lab.training.tracking import ENV_TRACKING_DIR, TrackingSettings

__all__ = ["DEFAULT_DECISION_LOG_URL", "ENV_PREFIX", "ServiceSettings"]

ENV_PREFIX = "MLSYS_LAB_"
DEFAULT_DECISION_LOG_URL = DEFAULT_URL


class ServiceSettings(BaseModel):
    """Everything the scoring service needs to start; frozen, so a running app cannot drift from it.

    Examples
    --------
    >>> settings = ServiceSettings.from_env({"MLSYS_LAB_TRACKING_DIR": "/tmp/store", "MLSYS_LAB_PORT": "9000"})
    >>> settings.host, settings.port, settings.admin_token is None
    ('127.0.0.1', 9000, True)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    tracking_dir: Path | None = Field(
        default=None, description="Tracking store folder; None means TrackingSettings' own default."
    )
    decision_log_url: str = Field(default=DEFAULT_DECISION_LOG_URL, min_length=1)
    admin_token: SecretStr | None = Field(
        default=None, description="None disables the admin endpoints (403): there is no default token that works."
    )
    model_alias: str = Field(default="champion", min_length=1)
    batch_limit: int = Field(default=256, ge=1, le=10_000)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65_535)
    blas_threads: int = Field(default=1, ge=1, description="OpenMP/BLAS threads for scoring (one row: one thread).")
    model_refresh_seconds: float = Field(
        default=0.0,
        ge=0.0,
        le=86_400.0,
        description="Every so often, reload when the alias moved (0: only on /admin/reload). Each worker "
        "process follows the alias on its own, so with several workers one reload request is not enough.",
    )

    @property
    def tracking(self) -> TrackingSettings:
        """The registry's store, as the training layer names it."""
        return TrackingSettings() if self.tracking_dir is None else TrackingSettings(root=self.tracking_dir)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Settings from ``MLSYS_LAB_*`` variables (``os.environ`` unless ``environ`` is given)."""
        env = os.environ if environ is None else environ
        names = {
            "tracking_dir": ENV_TRACKING_DIR,
            "decision_log_url": f"{ENV_PREFIX}DECISION_LOG_URL",
            "admin_token": f"{ENV_PREFIX}ADMIN_TOKEN",
            "model_alias": f"{ENV_PREFIX}MODEL_ALIAS",
            "batch_limit": f"{ENV_PREFIX}BATCH_LIMIT",
            "host": f"{ENV_PREFIX}HOST",
            "port": f"{ENV_PREFIX}PORT",
            "blas_threads": f"{ENV_PREFIX}BLAS_THREADS",
            "model_refresh_seconds": f"{ENV_PREFIX}MODEL_REFRESH_SECONDS",
        }
        # An empty variable counts as unset, so `MLSYS_LAB_ADMIN_TOKEN=` cannot enable a blank token.
        values = {field: env[name] for field, name in names.items() if env.get(name)}
        return cls.model_validate(values)
