"""The scoring routes: thin, each one validates, calls :class:`~mlsys_lab.deployment.state.ServingState`
or :class:`~mlsys_lab.deployment.state.ModelSlot`, and shapes the answer.

The scoring endpoints are ``async def``: parsing, validation and the answer's serialisation run on
the event loop, and only the decision itself (CPU work plus a blocking commit) goes to the feature
state's one decision thread (:meth:`~mlsys_lab.deployment.state.ServingState.decide_async`), which
decides the requests that queued meanwhile together and commits them in one transaction. A plain
``def`` endpoint took two hops into Starlette's thread pool per request (the endpoint, then the
response validation), and with many clients each hop woke a thread that only queued for the lock.
The other endpoints are rare and stay plain ``def``.
"""

import os
import time
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mlsys_lab.deployment import schemas
from mlsys_lab.deployment.decision_log import LabelBeforeTransaction, UnknownTransaction
from mlsys_lab.deployment.deps import (
    AdminDep,
    FeedbackDep,
    ModelDep,
    ServiceDep,
    ServingDep,
    load_model_for,
)
from mlsys_lab.deployment.metrics import ServiceMetrics
from mlsys_lab.deployment.settings import ServiceSettings
from mlsys_lab.deployment.state import ConflictingTransaction, Scored, StageTimes, StateUnavailable, TooFarAhead

__all__ = ["STAGE_TIMES_KEY", "create_router"]

#: Where a scoring route leaves its StageTimes in ``request.state`` (the ServerTiming middleware reads it).
STAGE_TIMES_KEY = "stage_times"

_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": schemas.ErrorPublic,
        "description": "The transaction id was already decided for a different transaction (the same "
        "transaction again gets its stored decision, 200)",
    },
    413: {
        "model": schemas.ErrorPublic,
        "description": "The body is larger than MLSYS_LAB_MAX_BODY_BYTES; it was not read",
    },
    422: {
        "model": schemas.ValidationErrorPublic,
        "description": "Invalid body: `detail` lists each field, `summary` names them in one line; also a "
        "transaction dated too far ahead, or a batch over the limit",
    },
    503: {
        "model": schemas.ErrorPublic,
        "description": "No usable model, or the decision log refused the write: `detail` says why, nothing was decided",
    },
}
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorPublic, "description": "Missing or wrong token"},
    403: {"model": schemas.ErrorPublic, "description": "Disabled: no token configured"},
}
_READY_503: dict[str, Any] = {
    "description": "Not ready: no usable model or no decision log",
    "model": schemas.NotReadyPublic,
}
_V1_DEPRECATION = {"Deprecation": "true", "Link": '</v2/score>; rel="successor-version"'}


def _unprocessable(loc: Sequence[str | int], message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (``detail`` and ``summary``), so a client handles every one the same way."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", *loc), "msg": message, "input": None}])


async def _decide(
    request: Request,
    serving: ServingDep,
    model: ModelDep,
    transactions: Sequence[schemas.Transaction],
    batch: bool,
) -> list[Scored]:
    started = time.perf_counter()
    times = StageTimes()
    # Read by the ServerTiming middleware (mlsys_lab.deployment.service) for the Server-Timing header.
    setattr(request.state, STAGE_TIMES_KEY, times)
    try:
        return await serving.decide_async(transactions, model, started, times)
    except ConflictingTransaction as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except TooFarAhead as exc:
        loc: list[str | int] = ["transactions", exc.index, "tx_datetime"] if batch else ["tx_datetime"]
        raise _unprocessable(loc, str(exc)) from None
    except StateUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "1"}) from None


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


def create_router(settings: ServiceSettings, metrics: ServiceMetrics | None = None) -> APIRouter:
    """The service's routes for ``settings`` (the batch limit is part of the request schema).

    ``metrics``, when given, counts every new decision and its score (``GET /metrics``).

    This module does not use ``from __future__ import annotations``: the batch bodies are classes
    made here, and FastAPI must see them as objects, not as names to look up in the module.
    """
    router = APIRouter()
    V1Batch, V2Batch = schemas.batch_models(settings.batch_limit)
    FeedbackBatch = schemas.feedback_batch_model(settings.batch_limit)

    async def decide(
        request: Request,
        serving: ServingDep,
        model: ModelDep,
        transactions: Sequence[schemas.Transaction],
        batch: bool,
    ) -> list[Scored]:
        scored = await _decide(request, serving, model, transactions, batch)
        if metrics is not None:
            metrics.observe_scored(scored)
        return scored

    @router.get("/health", response_model=schemas.HealthPublic, tags=["ops"])
    def health() -> schemas.HealthPublic:
        """Liveness: the process answers. Says nothing about the model (that is ``/ready``)."""
        return schemas.HealthPublic()

    @router.get("/ready", response_model=schemas.ReadyPublic, tags=["ops"], responses={503: _READY_503})
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
            worker_pid=os.getpid(),
            reload_refused=service.slot.refused_reason or None,
        )

    @router.post("/v1/score", response_model=schemas.ScorePublic, tags=["score"], responses=_ERRORS)
    async def score_v1(
        body: schemas.TransactionV1Create, serving: ServingDep, model: ModelDep, request: Request, response: Response
    ) -> schemas.ScorePublic:
        """Score one transaction (v1: naive bank-local time, amount in euros). Prefer ``/v2/score``."""
        response.headers.update(_V1_DEPRECATION)
        return _public((await decide(request, serving, model, [schemas.transaction_from_v1(body)], batch=False))[0])

    @router.post("/v2/score", response_model=schemas.ScorePublic, tags=["score"], responses=_ERRORS)
    async def score_v2(
        body: schemas.TransactionV2Create, serving: ServingDep, model: ModelDep, request: Request
    ) -> schemas.ScorePublic:
        """Score one transaction (v2: timezone-aware time, integer cents and currency)."""
        return _public((await decide(request, serving, model, [schemas.transaction_from_v2(body)], batch=False))[0])

    @router.post("/v1/score/batch", response_model=schemas.BatchScorePublic, tags=["score"], responses=_ERRORS)
    async def score_batch_v1(
        body: Annotated[V1Batch, Body()],  # type: ignore[valid-type]  # a class made above, for its maxItems
        serving: ServingDep,
        model: ModelDep,
        request: Request,
        response: Response,
    ) -> schemas.BatchScorePublic:
        """Score up to ``MLSYS_LAB_BATCH_LIMIT`` (256) v1 transactions in order, with one model call."""
        response.headers.update(_V1_DEPRECATION)
        rows: list[schemas.TransactionV1Create] = body.transactions  # type: ignore[attr-defined]
        scored = await decide(request, serving, model, [schemas.transaction_from_v1(tx) for tx in rows], batch=True)
        return schemas.BatchScorePublic(results=[_public(s) for s in scored], model_version=model.info.version)

    @router.post("/v2/score/batch", response_model=schemas.BatchScorePublic, tags=["score"], responses=_ERRORS)
    async def score_batch_v2(
        body: Annotated[V2Batch, Body()],  # type: ignore[valid-type]  # a class made above, for its maxItems
        serving: ServingDep,
        model: ModelDep,
        request: Request,
    ) -> schemas.BatchScorePublic:
        """Score up to ``MLSYS_LAB_BATCH_LIMIT`` (256) v2 transactions in order, with one model call."""
        rows: list[schemas.TransactionV2Create] = body.transactions  # type: ignore[attr-defined]
        scored = await decide(request, serving, model, [schemas.transaction_from_v2(tx) for tx in rows], batch=True)
        return schemas.BatchScorePublic(results=[_public(s) for s in scored], model_version=model.info.version)

    @router.post(
        "/v1/feedback",
        response_model=schemas.FeedbackPublic,
        tags=["feedback"],
        dependencies=[FeedbackDep],
        responses={
            **_AUTH_ERRORS,
            404: {"model": schemas.ErrorPublic, "description": "No decision was logged for this transaction id"},
            413: _ERRORS[413],
            422: _ERRORS[422],
            503: _ERRORS[503],
        },
    )
    def feedback(body: schemas.FeedbackCreate, serving: ServingDep) -> schemas.FeedbackPublic:
        """Record a transaction's label and when it became known; terminal risk, monitoring and retraining read it.

        Needs ``Authorization: Bearer <token>``: the feedback token (``MLSYS_LAB_FEEDBACK_TOKEN``) or the admin token.
        """
        try:
            applied = serving.record_label(body.transaction_id, body.is_fraud, body.label_time)
        except UnknownTransaction:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"unknown transaction_id {body.transaction_id}: no decision was logged for it, "
                "so there is nothing to label",
            ) from None
        except ValueError as exc:  # a label known before its transaction happened
            raise _unprocessable(["label_time"], str(exc)) from None
        # Said with its offset, as the schema promises (fold 0 for the repeated hour in autumn).
        known = body.label_time.replace(tzinfo=schemas.BANK_TIMEZONE)
        return schemas.FeedbackPublic(
            transaction_id=body.transaction_id, is_fraud=body.is_fraud, label_time=known, applied_to_features=applied
        )

    @router.post(
        "/v1/feedback/batch",
        response_model=schemas.FeedbackBatchPublic,
        tags=["feedback"],
        dependencies=[FeedbackDep],
        responses={
            **_AUTH_ERRORS,
            404: {
                "model": schemas.ErrorPublic,
                "description": "A transaction id has no logged decision: `detail` names it, no label was recorded",
            },
            413: _ERRORS[413],
            422: {
                "model": schemas.ValidationErrorPublic,
                "description": "Invalid body, a batch over the limit, or a label known before its transaction: "
                "`detail` gives each row's index (`labels.<i>.<field>`); no label was recorded",
            },
            503: _ERRORS[503],
        },
    )
    def feedback_batch(
        body: Annotated[FeedbackBatch, Body()],  # type: ignore[valid-type]  # a class made above, for its maxItems
        serving: ServingDep,
    ) -> schemas.FeedbackBatchPublic:
        """Record up to ``MLSYS_LAB_BATCH_LIMIT`` (256) labels in order, in one transaction: all of them or none.

        The same labels as that many ``/v1/feedback`` calls, for a labeller that sends what became known
        since its last call (a day of chargebacks) in one request. Same token as ``/v1/feedback``.
        """
        rows: list[schemas.FeedbackCreate] = body.labels  # type: ignore[attr-defined]
        try:
            applied = serving.record_labels([(row.transaction_id, row.is_fraud, row.label_time) for row in rows])
        except UnknownTransaction as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except LabelBeforeTransaction as exc:  # name the row, as a 422 of the schema would
            index = next(i for i, row in enumerate(rows) if row.transaction_id == exc.transaction_id)
            raise _unprocessable(["labels", index, "label_time"], str(exc)) from None
        return schemas.FeedbackBatchPublic(
            results=[
                schemas.FeedbackPublic(
                    transaction_id=row.transaction_id,
                    is_fraud=row.is_fraud,
                    label_time=row.label_time.replace(tzinfo=schemas.BANK_TIMEZONE),
                    applied_to_features=used,
                )
                for row, used in zip(rows, applied, strict=True)
            ]
        )

    @router.post(
        "/admin/reload",
        response_model=schemas.AdminReloadPublic,
        tags=["admin"],
        dependencies=[AdminDep],
        responses={
            **_AUTH_ERRORS,
            409: {
                "model": schemas.ErrorPublic,
                "description": "The alias's model was refused (checksum, load or probe failed); the old one serves on",
            },
        },
    )
    def reload_model(service: ServiceDep) -> schemas.AdminReloadPublic:
        """Load the alias's current version (checksum first) and swap it in atomically."""
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

    return router
