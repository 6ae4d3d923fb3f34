"""Typed dependencies of the scoring routes (the ``deps.py`` of full-stack-fastapi-template).

The request-path dependencies are ``async def`` although they only read attributes: FastAPI runs
a plain ``def`` dependency in the thread pool, one hop per dependency per request, and the profile of
``/v1/score`` showed those hops (three per request) costing more than the model call. The scoring
endpoints are ``async def`` too; only the decision itself, which blocks on the decision log's commit,
leaves the event loop (for the feature state's one decision thread).

Tests swap any of them with ``app.dependency_overrides[get_model] = ...``. :func:`get_model` is where
a request captures the served model: the one read of :attr:`ModelSlot.current` per request, so a hot
swap during the request does not change the model it uses. :func:`load_model_for` is the one way the
service gets a model (routes and the lifespan both call it), so the imports run one way:
``service -> api -> deps -> state -> decision_log``.

Who may call what (the trust model)
    - Scoring (``/v1``, ``/v2`` score routes): anyone who can reach the socket, which is loopback by
      default. Put an authenticating proxy in front before binding elsewhere.
    - Label feedback (``/v1/feedback`` and ``/v1/feedback/batch``): a bearer token,
      ``MLSYS_LAB_FEEDBACK_TOKEN`` (the case system's), or the admin token. Labels move the
      terminal-risk features of every later decision, so an anonymous caller must not be able to
      send them. With neither token set, feedback is disabled (403). The demo and the notebooks use
      the admin token they already set.
    - Admin (``/admin/reload``): the admin token only, ``MLSYS_LAB_ADMIN_TOKEN``; disabled (403)
      without one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from mlsys_lab.data.online import OnlineFeatureState
from mlsys_lab.deployment.registry import LoadedModel, Registry
from mlsys_lab.deployment.settings import ServiceSettings
from mlsys_lab.deployment.state import ModelSlot, ServingState, check_model

__all__ = [
    "AdminDep",
    "FeedbackDep",
    "ModelDep",
    "Service",
    "ServiceDep",
    "ServingDep",
    "SettingsDep",
    "get_model",
    "get_service",
    "get_serving",
    "get_settings",
    "load_model_for",
    "require_admin",
    "require_feedback",
]


@dataclass
class Service:
    """What the lifespan handler built: the app's resources, on ``app.state.service``."""

    settings: ServiceSettings
    slot: ModelSlot = field(default_factory=ModelSlot)
    serving: ServingState | None = None
    serving_reason: str = "the decision log is not open yet"
    registry: Registry | None = None


def load_model_for(service: Service) -> LoadedModel:
    """The alias's current model, checksum-verified and probed: the one way the service gets a model."""
    if service.registry is None:
        service.registry = Registry(service.settings.tracking)
    model = service.registry.load(service.settings.model_alias)
    names = service.serving.feature_names if service.serving is not None else OnlineFeatureState().feature_names
    check_model(model, names)
    return model


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_settings(service: ServiceDep) -> ServiceSettings:
    return service.settings


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


async def get_model(service: ServiceDep) -> LoadedModel:
    """The served model for this request, read once; 503 with the reason when there is none."""
    model = service.slot.current
    if model is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"no model to serve: {service.slot.unavailable_reason}"
        )
    return model


ModelDep = Annotated[LoadedModel, Depends(get_model)]


async def get_serving(service: ServiceDep) -> ServingState:
    """The feature state and decision log; 503 with the reason when the log could not be opened."""
    if service.serving is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"decision log unavailable: {service.serving_reason}")
    return service.serving


ServingDep = Annotated[ServingState, Depends(get_serving)]

_bearer = HTTPBearer(auto_error=False, description="A bearer token: the admin token, or the feedback token.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _given(credentials: HTTPAuthorizationCredentials | None) -> bytes:
    return b"" if credentials is None else credentials.credentials.encode()


def _matches(given: bytes, token: SecretStr | None) -> bool:
    # Constant time: no timing oracle on the token.
    return token is not None and secrets.compare_digest(given, token.get_secret_value().encode())


def require_admin(settings: SettingsDep, credentials: Credentials) -> None:
    """403 when no admin token is configured (there is no default that works), 401 on a wrong or missing token."""
    if settings.admin_token is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "admin endpoints are disabled: start the service with MLSYS_LAB_ADMIN_TOKEN set"
        )
    if not _matches(_given(credentials), settings.admin_token):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong admin token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_feedback(settings: SettingsDep, credentials: Credentials) -> None:
    """Labels need the feedback token or the admin token: 403 when neither is configured, 401 when not sent."""
    if settings.feedback_token is None and settings.admin_token is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "label feedback is disabled: start the service with MLSYS_LAB_FEEDBACK_TOKEN "
            "(or MLSYS_LAB_ADMIN_TOKEN) set",
        )
    given = _given(credentials)
    if not (_matches(given, settings.feedback_token) or _matches(given, settings.admin_token)):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong feedback token: send 'Authorization: Bearer <MLSYS_LAB_FEEDBACK_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Depends(require_admin)
FeedbackDep = Depends(require_feedback)
