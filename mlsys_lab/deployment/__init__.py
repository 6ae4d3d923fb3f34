"""The deployment layer: the model registry, the decision log and the HTTP service.

A plain re-export: importing it defines names and does nothing else (MLflow and the databases are
opened only when first used).

One sentence per module (imports run down this list, never up):

- :mod:`~mlsys_lab.deployment.service`: builds the FastAPI app and its lifespan (model, log, state);
- :mod:`~mlsys_lab.deployment.api`: the thin HTTP routes;
- :mod:`~mlsys_lab.deployment.deps`: the routes' typed dependencies, tokens and the one model loader;
- :mod:`~mlsys_lab.deployment.state`: the served model slot and the feature state kept in step with the log;
- :mod:`~mlsys_lab.deployment.schemas`: the request and response bodies, v1 and v2;
- :mod:`~mlsys_lab.deployment.settings`: the service's typed ``MLSYS_LAB_*`` settings;
- :mod:`~mlsys_lab.deployment.registry`: versions, ``champion``/``challenger`` aliases with their
  history, and a sha256 check before every load;
- :mod:`~mlsys_lab.deployment.decision_log`: one committed row per decision (one per transaction),
  and the labels that arrive later; the only door to its tables;
- :mod:`~mlsys_lab.deployment.server`: ``mlsys-lab serve`` as a child process on loopback;
- :mod:`~mlsys_lab.deployment.replay`: serve a registered model and replay simulated traffic over HTTP.
"""

from mlsys_lab.deployment.decision_log import (
    DEFAULT_URL,
    Decision,
    DecisionLog,
    DuplicateRequestId,
    DuplicateTransaction,
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
    "DuplicateTransaction",
    "IntegrityError",
    "LoadedModel",
    "ModelVersionInfo",
    "Registry",
    "RegistryError",
    "UnknownTransaction",
]
