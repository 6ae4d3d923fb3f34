"""The scoring routes: thin, each one validates, calls :class:`~mlsys_lab.deployment.state.ServingState`
or :class:`~mlsys_lab.deployment.state.ModelSlot`, and shapes the answer.

Endpoints are plain ``def``: scoring is CPU work plus a blocking SQLite commit, so it runs in
Starlette's thread pool, where it cannot stall the event loop; the feature state's lock serialises
what must be serialised (see :mod:`mlsys_lab.deployment.state`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.responses import JSONResponse

from mlsys_lab.deployment import schemas
from mlsys_lab.deployment.deps import AdminDep, ModelDep, ServiceDep, ServingDep, SettingsDep
from mlsys_lab.deployment.state import DuplicateTransaction, Scored

__all__ = ["router"]

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "The transaction id was already scored"},
    422: {"description": "Invalid body: `detail` lists each field, `summary` names them in one line"},
    503: {"description": "No usable model or no decision log: `detail` says why"},
}
_V1_DEPRECATION = {"Deprecation": "true", "Link": '</v2/score>; rel="successor-version"'}


@router.get("/health", response_model=schemas.HealthPublic, tags=["ops"])
def health() -> schemas.HealthPublic:
    """Liveness: the process answers. Says nothing about the model (that is ``/ready``)."""
    return schemas.HealthPublic()


@router.get("/ready", response_model=schemas.ReadyPublic, tags=["ops"], responses={503: _ERRORS[503]})
def ready(service: ServiceDep) -> schemas.ReadyPublic | JSONResponse:
    """Readiness: a model is loaded and the decision log is open; 503 with the reason otherwise."""
    model = service.slot.current
    if model is None or service.serving is None:
        reason = (
            f"no model to serve: {service.slot.unavailable_reason}"
            if model is None
            else f"decision log unavailable: {service.serving_reason}"
        )
        return JSONResponse({"status": "not ready", "detail": reason}, status_code=503)
    return schemas.ReadyPublic(
        model_version=model.info.version,
        model_alias=service.settings.model_alias,
        model_sha256=model.info.sha256,
        transactions_in_state=len(service.serving),
    )


def _decide(serving: ServingDep, model: ModelDep, transactions: Sequence[schemas.Transaction]) -> list[Scored]:
    started = time.perf_counter()
    try:
        return serving.decide(transactions, model, started)
    except DuplicateTransaction as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


def _public(scored: Scored) -> schemas.ScorePublic:
    return schemas.ScorePublic(
        request_id=scored.request_id,  # type: ignore[arg-type]  # pydantic parses the uuid string
        transaction_id=scored.transaction.transaction_id,
        score=scored.score,
        decision=scored.decision,
        threshold=scored.threshold,
        model_version=scored.model_version,
        schema_version=scored.transaction.schema_version,
    )


def _check_batch_size(n: int, settings: SettingsDep) -> None:
    if n > settings.batch_limit:
        # Shaped like FastAPI's own 422, so a client handles every validation error one way.
        detail = [
            {
                "type": "too_long",
                "loc": ["body", "transactions"],
                "msg": f"at most {settings.batch_limit} transactions per batch, got {n}",
                "input": None,
            }
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


@router.post("/v1/score", response_model=schemas.ScorePublic, tags=["score"], responses=_ERRORS)
def score_v1(
    body: schemas.TransactionV1Create, serving: ServingDep, model: ModelDep, response: Response
) -> schemas.ScorePublic:
    """Score one transaction (v1: naive bank-local time, amount in euros). Prefer ``/v2/score``."""
    response.headers.update(_V1_DEPRECATION)
    return _public(_decide(serving, model, [schemas.transaction_from_v1(body)])[0])


@router.post("/v2/score", response_model=schemas.ScorePublic, tags=["score"], responses=_ERRORS)
def score_v2(body: schemas.TransactionV2Create, serving: ServingDep, model: ModelDep) -> schemas.ScorePublic:
    """Score one transaction (v2: timezone-aware time, integer cents and currency)."""
    return _public(_decide(serving, model, [schemas.transaction_from_v2(body)])[0])


@router.post("/v1/score/batch", response_model=schemas.BatchScorePublic, tags=["score"], responses=_ERRORS)
def score_batch_v1(
    body: schemas.TransactionV1Batch, serving: ServingDep, model: ModelDep, settings: SettingsDep, response: Response
) -> schemas.BatchScorePublic:
    """Score up to ``MLSYS_LAB_BATCH_LIMIT`` (256) v1 transactions in order, with one model call."""
    _check_batch_size(len(body.transactions), settings)
    response.headers.update(_V1_DEPRECATION)
    scored = _decide(serving, model, [schemas.transaction_from_v1(tx) for tx in body.transactions])
    return schemas.BatchScorePublic(results=[_public(s) for s in scored], model_version=model.info.version)


@router.post("/v2/score/batch", response_model=schemas.BatchScorePublic, tags=["score"], responses=_ERRORS)
def score_batch_v2(
    body: schemas.TransactionV2Batch, serving: ServingDep, model: ModelDep, settings: SettingsDep
) -> schemas.BatchScorePublic:
    """Score up to ``MLSYS_LAB_BATCH_LIMIT`` (256) v2 transactions in order, with one model call."""
    _check_batch_size(len(body.transactions), settings)
    scored = _decide(serving, model, [schemas.transaction_from_v2(tx) for tx in body.transactions])
    return schemas.BatchScorePublic(results=[_public(s) for s in scored], model_version=model.info.version)


@router.post(
    "/v1/feedback",
    response_model=schemas.FeedbackPublic,
    tags=["feedback"],
    responses={404: {"description": "No decision was logged for this transaction id"}, 422: _ERRORS[422]},
)
def feedback(body: schemas.FeedbackCreate, serving: ServingDep) -> schemas.FeedbackPublic:
    """Record a transaction's label and when it became known; terminal risk, monitoring and retraining read it."""
    from mlsys_lab.deployment.decision_log import UnknownTransaction

    try:
        applied = serving.record_label(body.transaction_id, body.is_fraud, body.label_time)
    except UnknownTransaction:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown transaction_id {body.transaction_id}: no decision was logged for it, "
            "so there is nothing to label",
        ) from None
    except ValueError as exc:  # a label known before its transaction happened
        detail = [{"type": "value_error", "loc": ["body", "label_time"], "msg": str(exc), "input": None}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    return schemas.FeedbackPublic(**body.model_dump(), applied_to_features=applied)


@router.post(
    "/admin/reload",
    response_model=schemas.AdminReloadPublic,
    tags=["admin"],
    dependencies=[AdminDep],
    responses={
        401: {"description": "Missing or wrong admin token"},
        403: {"description": "Admin endpoints are disabled (no token configured)"},
        409: {
            "description": "The alias's model was refused (checksum, load or probe failed); the old one still serves"
        },
    },
)
def reload_model(service: ServiceDep) -> schemas.AdminReloadPublic:
    """Load the alias's current version (checksum first) and swap it in atomically."""
    from mlsys_lab.deployment.service import load_model_for

    try:
        previous, model = service.slot.reload(lambda: load_model_for(service))
    except Exception as exc:  # every refusal is the same answer: not swapped, and why
        serving = service.slot.current
        still = f"version {serving.info.version} keeps serving" if serving else "no model is serving"
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"reload refused ({type(exc).__name__}: {exc}); {still}"
        ) from None
    return schemas.AdminReloadPublic(
        previous_version=None if previous is None else previous.info.version,
        model_version=model.info.version,
        model_sha256=model.info.sha256,
    )
