"""The deployment layer: the model registry, the decision log and the HTTP service.

A plain re-export: importing it defines names and does nothing else (MLflow and the databases are
opened only when first used).

- :mod:`~mlsys_lab.deployment.registry`: versions, ``champion``/``challenger`` aliases with their
  history, and a sha256 check before every load;
- :mod:`~mlsys_lab.deployment.decision_log`: one committed row per decision, and the labels that
  arrive later.
"""

from mlsys_lab.deployment.decision_log import (
    DEFAULT_URL,
    Decision,
    DecisionLog,
    DuplicateRequestId,
    UnknownTransaction,
)
from mlsys_lab.deployment.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    IntegrityError,
    LoadedModel,
    ModelVersionInfo,
    Registry,
    RegistryError,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_URL",
    "MODEL_NAME",
    "Decision",
    "DecisionLog",
    "DuplicateRequestId",
    "IntegrityError",
    "LoadedModel",
    "ModelVersionInfo",
    "Registry",
    "RegistryError",
    "UnknownTransaction",
]
