"""The scoring service: :func:`create_app` builds the FastAPI app, the lifespan handler loads its parts.

Start it with ``mlsys-lab serve`` (uvicorn on 127.0.0.1:8000), or from Python::

    uvicorn mlsys_lab.deployment.service:create_app_from_env --factory --host 127.0.0.1

At start-up the lifespan handler

1. limits OpenMP/BLAS to one thread (a one-row prediction is several times slower with more);
2. opens the decision log and rebuilds the online feature state from it (a restart loses nothing);
3. loads the served alias (``champion``) from the registry: lookup, sha256 check, unpickle, a probe row.

A failure in 2 or 3 does not stop the process: it starts, ``/health`` answers, and ``/ready`` and
every scoring route answer 503 with the reason, never 500. Nothing is read or opened at import.

Status codes: 200; 404 feedback for an unknown transaction; 409 transaction already scored, or a
model reload refused (the old model keeps serving); 401/403 admin token wrong or admin disabled; 422
invalid body, with FastAPI's per-field ``detail`` plus a one-line ``summary`` naming the fields; 503
no model or no decision log, or the log refused a write (nothing was decided).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from threadpoolctl import threadpool_limits

from mlsys_lab.deployment.api import router
from mlsys_lab.deployment.deps import Service
from mlsys_lab.deployment.settings import ServiceSettings
from mlsys_lab.deployment.state import ServingState, check_model

if TYPE_CHECKING:
    from mlsys_lab.deployment.registry import LoadedModel

__all__ = ["create_app", "create_app_from_env", "load_model_for"]

logger = logging.getLogger(__name__)


def load_model_for(service: Service) -> LoadedModel:
    """The alias's current model, checksum-verified and probed: the one way the service gets a model."""
    from mlsys_lab.deployment.registry import Registry

    if service.registry is None:
        service.registry = Registry(service.settings.tracking)
    model = service.registry.load(service.settings.model_alias)
    names = service.serving.feature_names if service.serving is not None else None
    if names is None:
        from mlsys_lab.data.online import OnlineFeatureState

        names = OnlineFeatureState().feature_names
    check_model(model, names)
    return model


def start_service(settings: ServiceSettings) -> Service:
    """Open the decision log, rebuild the feature state, load the model; failures become reasons, not crashes."""
    from mlsys_lab.deployment.decision_log import DecisionLog

    service = Service(settings=settings)
    try:
        log = DecisionLog(settings.decision_log_url)
        log.create()
        service.serving = ServingState.rebuild(log)
        logger.info("feature state rebuilt from the decision log: %d transactions", len(service.serving))
    except Exception as exc:
        service.serving_reason = f"{type(exc).__name__}: {exc}"
        logger.error("decision log unavailable; scoring answers 503: %s", service.serving_reason)
    try:
        _, model = service.slot.reload(lambda: load_model_for(service))
        logger.info("serving %s version %d (sha256 %s)", settings.model_alias, model.info.version, model.info.sha256)
    except Exception:
        logger.error("no model to serve; scoring answers 503: %s", service.slot.unavailable_reason)
    return service


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as strings: errors echo the input, and JSON has no NaN.

    Without this, a body such as ``{"tx_amount": NaN}`` (which Python's JSON parser accepts) made
    the 422 itself fail to serialise, and the client got a 500. Found by ``tests/deployment/test_fuzz.py``.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def follow_alias(service: Service) -> bool:
    """Reload when the served alias points at another version than the one serving; True if swapped.

    Each worker process runs this on its own timer (``model_refresh_seconds``): an ``/admin/reload``
    reaches one worker only, and the registry is what all of them agree on.
    """
    from mlsys_lab.deployment.registry import Registry

    if service.registry is None:
        service.registry = Registry(service.settings.tracking)
    target = service.registry.get(service.settings.model_alias).version
    current = service.slot.current
    if current is not None and current.info.version == target:
        return False
    service.slot.reload(lambda: load_model_for(service))
    return True


async def _follow_alias_forever(service: Service, every: float) -> None:
    last_refusal = ""
    while True:
        await asyncio.sleep(every)
        try:
            if await run_in_threadpool(follow_alias, service):
                current = service.slot.current
                logger.info("followed %s to version %s", service.settings.model_alias, current and current.info.version)
            last_refusal = ""
        except Exception as exc:  # keep serving what we have; say so once per refusal, not every tick
            if str(exc) != last_refusal:
                logger.warning("alias not followed, the current model keeps serving: %s", exc)
            last_refusal = str(exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body (``detail``: every error with its location), plus a one-line ``summary``."""
    errors = exc.errors()
    fields: list[str] = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        name = ".".join(loc) or "body"
        if name not in fields:
            fields.append(name)
    first = errors[0].get("msg", "invalid") if errors else "invalid"
    summary = f"invalid {', '.join(fields[:5])}{' ...' if len(fields) > 5 else ''}: {first}"
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": _json_safe(jsonable_encoder(errors)), "summary": summary},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # A log that refuses a write means no decision was made: the client may retry, it is not a bug.
    logger.error("decision log error on %s: %s", request.url.path, exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": f"decision log unavailable, nothing was decided: {type(exc).__name__}"},
        headers={"Retry-After": "1"},
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The scoring app for ``settings`` (from the environment when None); loads nothing until it starts."""
    settings = settings or ServiceSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = threadpool_limits(limits=settings.blas_threads)
        service = start_service(settings)
        app.state.service = service
        follower = (
            asyncio.create_task(_follow_alias_forever(service, settings.model_refresh_seconds))
            if settings.model_refresh_seconds > 0
            else None
        )
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
            if service.serving is not None:
                service.serving.log.close()
            limits.restore_original_limits()

    from sqlalchemy.exc import SQLAlchemyError

    app = FastAPI(
        title="mlsys-lab fraud scoring",
        version="1",
        summary="Scores card transactions for fraud; every decision is logged before it is returned.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.include_router(router)
    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and ``mlsys-lab serve``: settings from ``MLSYS_LAB_*``."""
    return create_app(ServiceSettings.from_env())
