"""Typed dependencies of the scoring routes (the ``deps.py`` of full-stack-fastapi-template).

Tests swap any of them with ``app.dependency_overrides[get_model] = ...``. :func:`get_model` is where
a request captures the served model: the one read of :attr:`ModelSlot.current` per request, so a hot
swap during the request does not change the model it uses.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mlsys_lab.deployment.registry import LoadedModel, Registry
from mlsys_lab.deployment.settings import ServiceSettings
from mlsys_lab.deployment.state import ModelSlot, ServingState

__all__ = [
    "AdminDep",
    "ModelDep",
    "Service",
    "ServiceDep",
    "ServingDep",
    "SettingsDep",
    "get_model",
    "get_service",
    "get_serving",
    "get_settings",
    "require_admin",
]


@dataclass
class Service:
    """What the lifespan handler built: the app's resources, on ``app.state.service``."""

    settings: ServiceSettings
    slot: ModelSlot = field(default_factory=ModelSlot)
    serving: ServingState | None = None
    serving_reason: str = "the decision log is not open yet"
    registry: Registry | None = None


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_settings(service: ServiceDep) -> ServiceSettings:
    return service.settings


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


def get_model(service: ServiceDep) -> LoadedModel:
    """The served model for this request, read once; 503 with the reason when there is none."""
    model = service.slot.current
    if model is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"no model to serve: {service.slot.unavailable_reason}"
        )
    return model


ModelDep = Annotated[LoadedModel, Depends(get_model)]


def get_serving(service: ServiceDep) -> ServingState:
    """The feature state and decision log; 503 with the reason when the log could not be opened."""
    if service.serving is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"decision log unavailable: {service.serving_reason}")
    return service.serving


ServingDep = Annotated[ServingState, Depends(get_serving)]

_bearer = HTTPBearer(auto_error=False, description="The admin token (MLSYS_LAB_ADMIN_TOKEN) as a bearer token.")


def require_admin(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """403 when no admin token is configured (there is no default that works), 401 on a wrong or missing token."""
    if settings.admin_token is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "admin endpoints are disabled: start the service with MLSYS_LAB_ADMIN_TOKEN set"
        )
    expected = settings.admin_token.get_secret_value().encode()
    given = b"" if credentials is None else credentials.credentials.encode()
    if not secrets.compare_digest(given, expected):  # constant time: no timing oracle on the token
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong admin token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Depends(require_admin)
