"""The scoring service: :func:`create_app` builds the FastAPI app, the lifespan handler loads its parts.

Start it with ``mlsys-lab serve`` (uvicorn on 127.0.0.1:8000), or from Python::

    uvicorn mlsys_lab.deployment.service:create_app_from_env --factory --host 127.0.0.1

(``create_worker_app_from_env`` is the factory ``mlsys-lab serve --workers N`` uses: the same app,
following the registry alias every few seconds unless ``MLSYS_LAB_MODEL_REFRESH_SECONDS`` says otherwise.)

At start-up the lifespan handler

1. limits OpenMP/BLAS to one thread (a one-row prediction is several times slower with more);
2. opens the decision log and rebuilds the online feature state from it (a restart loses nothing);
3. loads the served alias (``champion``) from the registry: lookup, sha256 check, unpickle, a probe row.

A failure in 2 or 3 does not stop the process: it starts, ``/health`` answers, and ``/ready`` and
every scoring route answer 503 with the reason, never 500. Nothing is read or opened at import.

Status codes: 200 (also for the same transaction sent again: its stored decision); 404 feedback for
an unknown transaction; 409 a transaction id already decided for a different transaction, or a model
reload refused (the old model keeps serving); 401/403 token wrong or endpoint disabled; 413 a body
over ``MLSYS_LAB_MAX_BODY_BYTES``, refused before it is read; 422 invalid body (JSON that does not
parse included), with FastAPI's per-field ``detail`` (inputs longer than 200 characters are cut)
plus a one-line ``summary`` naming the fields; 503 no model or no decision log, or the log refused
a write (nothing was decided), answered at once.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from mlsys_lab.deployment.api import STAGE_TIMES_KEY, create_router
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.deps import Service, load_model_for
from mlsys_lab.deployment.metrics import MetricsMiddleware, ServiceMetrics, metrics_router, multiprocess_dir_from_env
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.settings import ServiceSettings
from mlsys_lab.deployment.shedding import LoadShedding
from mlsys_lab.deployment.state import ServingState, StageTimes

__all__ = [
    "BodySizeLimit",
    "ServerTiming",
    "create_app",
    "create_app_from_env",
    "create_worker_app_from_env",
    "follow_alias",
    "follow_rollout",
    "load_model_for",
    "start_service",
]

logger = logging.getLogger(__name__)
#: Longest echo of a client's input in a 422: errors say what was wrong, they do not mirror the body.
MAX_ECHO_CHARS = 200


def start_service(settings: ServiceSettings) -> Service:
    """Open the decision log, rebuild the feature state, load the model; failures become reasons, not crashes."""
    service = Service(settings=settings)
    try:
        log = DecisionLog(settings.decision_log_url)
        log.create()
        service.serving = ServingState.rebuild(log, max_ahead_seconds=settings.max_ahead_seconds)
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
    """``value`` with NaN and infinities as strings, and long inputs cut: errors echo the input.

    Without this, a body such as ``{"tx_amount": NaN}`` (which Python's JSON parser accepts) made
    the 422 itself fail to serialise, and the client got a 500 (found by ``tests/deployment/test_fuzz.py``);
    and a 10 MB padded field came back as a 10 MB 422.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _short(value: Any) -> Any:
    """An error's ``input``, cut to :data:`MAX_ECHO_CHARS` characters of JSON when longer."""
    text = json.dumps(_json_safe(jsonable_encoder(value)), default=str)
    if len(text) <= MAX_ECHO_CHARS:
        return _json_safe(jsonable_encoder(value))
    return f"{text[:MAX_ECHO_CHARS]}... ({len(text):,} characters, cut)"


def follow_alias(service: Service) -> bool:
    """Reload when the served alias points at another version than the one serving; True if swapped.

    Each worker process runs this on its own timer (``model_refresh_seconds``): an ``/admin/reload``
    reaches one worker only, and the registry is what all of them agree on.
    """
    if service.registry is None:
        service.registry = Registry(service.settings.tracking)
    target = service.registry.get(service.settings.model_alias).version
    current = service.slot.current
    if current is not None and current.info.version == target:
        return False
    service.slot.reload(lambda: load_model_for(service))
    return True


def follow_rollout(service: Service) -> None:
    """Attach or detach the canary router and shadow scorer that the rollout store names (module 06).

    Runs on the same timer as :func:`follow_alias`; see :mod:`mlsys_lab.maintenance.rollout`.
    """
    from mlsys_lab.maintenance.rollout import attach_rollout  # the maintenance layer, only once a timer runs

    attach_rollout(service)


async def _follow_rollout_once(service: Service, last_refusal: str) -> str:
    try:
        await run_in_threadpool(follow_rollout, service)
        return ""
    except Exception as exc:  # the champion keeps serving alone; say so once per refusal
        if str(exc) != last_refusal:
            logger.warning("rollout not followed, the champion serves alone: %s", exc)
        return str(exc)


async def _follow_alias_forever(service: Service, every: float) -> None:
    last_refusal = rollout_refusal = ""
    while True:
        await asyncio.sleep(every)
        rollout_refusal = await _follow_rollout_once(service, rollout_refusal)
        try:
            if await run_in_threadpool(follow_alias, service):
                current = service.slot.current
                logger.info("followed %s to version %s", service.settings.model_alias, current and current.info.version)
            last_refusal = ""
        except Exception as exc:  # keep serving what we have; say so once per refusal, not every tick
            if str(exc) != last_refusal:
                logger.warning("alias not followed, the current model keeps serving: %s", exc)
            last_refusal = str(exc)


def _unprocessable(errors: list[dict[str, Any]]) -> JSONResponse:
    fields: list[str] = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        name = ".".join(loc) or "body"
        if name not in fields:
            fields.append(name)
    first = errors[0].get("msg", "invalid") if errors else "invalid"
    summary = f"invalid {', '.join(fields[:5])}{' ...' if len(fields) > 5 else ''}: {first}"
    detail = [{**error, "input": _short(error.get("input"))} if "input" in error else error for error in errors]
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": _json_safe(jsonable_encoder(detail)), "summary": summary},
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body (``detail``: every error with its location), plus a one-line ``summary``."""
    request.app.state.metrics.invalid_payloads_of(exc.errors())
    return _unprocessable(list(exc.errors()))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # FastAPI answers a body it cannot decode (not UTF-8, say) with a bare 400 naming nothing:
    # it is an invalid body like any other, so it gets the same 422 naming the body.
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == "There was an error parsing the body":
        request.app.state.metrics.invalid_payload(["body"])
        return _unprocessable(
            [{"type": "json_invalid", "loc": ["body"], "msg": "the body is not valid UTF-8 JSON", "input": None}]
        )
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # A log that refuses a write means no decision was made: the client may retry, it is not a bug.
    logger.error("decision log error on %s: %s", request.url.path, exc)
    request.app.state.metrics.log_errors.inc()
    reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": f"decision log unavailable, nothing was decided: {type(exc).__name__}: {reason}"},
        headers={"Retry-After": "1"},
    )


class BodySizeLimit:
    """Pure ASGI middleware: a 413 for a body over ``max_bytes``, before the app parses a byte of it.

    A declared ``content-length`` over the limit is refused without reading; a chunked (or lying)
    body is counted as it streams and refused as soon as it passes the limit. Bodies within the
    limit are handed on unchanged.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect, as the server would

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int) -> None:
        detail = (
            f"request body of {size:,}+ bytes is over the limit of {self.max_bytes:,} bytes "
            "(MLSYS_LAB_MAX_BODY_BYTES): send fewer transactions per batch"
        )
        payload = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class ServerTiming:
    """Pure ASGI middleware: a ``Server-Timing`` header on every response a scoring route timed.

    The route leaves a :class:`~mlsys_lab.deployment.state.StageTimes` in ``request.state``; when the
    response starts, this adds ``state``, ``features``, ``model`` and ``log`` (the decision log's
    insert and commit) and ``total``: from the request reaching the app to its response starting,
    so it also holds body parsing, validation, the hand-off to the decision thread and JSON serialisation. Durations
    are milliseconds, as the W3C Server-Timing header wants; curl (``-i``), browsers' dev tools and
    locust's response objects show them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_timing(message: Message) -> None:
            times = state.get(STAGE_TIMES_KEY)
            if message["type"] == "http.response.start" and isinstance(times, StageTimes):
                total = time.perf_counter() - started
                value = ", ".join(
                    f"{name};dur={seconds * 1000:.3f}"
                    for name, seconds in (
                        ("state", times.state),
                        ("features", times.features),
                        ("model", times.model),
                        ("log", times.log),
                        ("total", total),
                    )
                )
                message = {**message, "headers": [*message.get("headers", ()), (b"server-timing", value.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_timing)


def create_app(
    settings: ServiceSettings | None = None,
    *,
    workers: int = 1,
    metrics_multiprocess_dir: Path | None = None,
    owns_process: bool = False,
) -> FastAPI:
    """The scoring app for ``settings`` (from the environment when None); loads nothing until it starts.

    ``owns_process`` says the app is its process's only job (the uvicorn factories below, so
    ``mlsys-lab serve``): then, with ``settings.gc_freeze``, the start-up heap is frozen
    (:func:`freeze_start_up_heap`). An app inside a test run or a notebook kernel leaves the
    process's collector as it found it.

    ``workers`` is how many processes share the traffic: with more than one, and no
    ``model_refresh_seconds`` set, each follows the alias every ``MULTI_WORKER_REFRESH_SECONDS``.
    ``metrics_multiprocess_dir`` is prometheus-client's multiprocess folder when this process is one
    of several workers (the factories below read it), so that ``/metrics`` merges all of them.
    """
    settings = settings or ServiceSettings.from_env()
    refresh = settings.refresh_seconds(workers)
    # This app's own registry: apps in one process never share counts (unless several workers merge theirs).
    metrics = ServiceMetrics(metrics_multiprocess_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = threadpool_limits(limits=settings.blas_threads)
        service = start_service(settings)
        app.state.service = service
        freezer = HeapFreezer() if owns_process and settings.gc_freeze else None
        refreezer = None
        if freezer is not None:
            frozen = freezer.freeze_start_up()
            metrics.gc_frozen.set(frozen)
            logger.info("froze %d start-up objects out of the garbage collector's scans", frozen)
            if settings.gc_refreeze:
                refreezer = asyncio.create_task(_refreeze_forever(freezer, metrics))
        metrics.watch(service)
        follower = asyncio.create_task(_follow_alias_forever(service, refresh)) if refresh > 0 else None
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
            if refreezer is not None:
                refreezer.cancel()
            if freezer is not None:
                freezer.uninstall()
            metrics.close()  # this worker's live gauges leave the merged scrape
            if service.serving is not None:
                service.serving.close()  # the decisions in flight are committed first
                service.serving.log.close()
            limits.restore_original_limits()

    app = FastAPI(
        title="mlsys-lab fraud scoring",
        version="1",
        summary="Scores card transactions for fraud; every decision is logged before it is returned.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ServerTiming)  # its total includes reading the body
    if settings.max_in_flight:  # load shedding, off by default; inside the metrics, so 429s are counted
        app.add_middleware(LoadShedding, limit=settings.max_in_flight)
    if settings.metrics:  # off only to measure what counting costs (benchmarks/bench_metrics.py)
        app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: 413s and 500s are counted too
    app.state.metrics = metrics
    app.include_router(create_router(settings, metrics if settings.metrics else None))
    if settings.metrics:
        app.include_router(metrics_router(metrics))
    return app


def freeze_start_up_heap() -> int:
    """Collect once, then freeze what is left: the collector never scans the start-up heap again.

    CPython's full (generation 2) collection walks every tracked object. A started service holds about
    400,000 (the imported modules, sklearn's and MLflow's included, the model and the rebuilt feature
    state), and each full collection stopped the event loop for 100-260 ms: at 278 req/s that is 30-70
    requests answered late, enough alone to break a 99%-within-50 ms objective. Frozen objects are still
    freed by reference counting when nothing refers to them; only a reference cycle among them would
    stay (start-up builds no cycle it later drops). Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class HeapFreezer:
    """Freezes the start-up heap, then, after each full collection, what that collection found alive.

    Freezing once at start-up is not enough for a server that runs for days: the feature state grows
    with every new transaction (one history entry each, kept for the terminal window), and each full
    collection walks everything added since the freeze. Measured on one ``mlsys-lab serve`` taking
    six 30 s runs at 278 req/s back to back (``benchmarks/bench_gc.py --runs 6``): with the start-up
    freeze alone, from the fourth run on 2-3 full collections a run paused 50 ms or more and the share
    within 50 ms fell from 100% to 98.61%; refrozen, no full collection reached 50 ms and every run
    kept 99.90% or more.

    A full collection has just proved that everything it left is reachable, so freezing right after
    it costs nothing later: the next full collection walks only what arrived since. The
    ``gc.callbacks`` hook only counts full collections (it runs inside the collector and must not
    change its lists); :meth:`refreeze` does the work from outside it: one young collection first,
    so that young garbage cycles are freed rather than frozen, then ``gc.freeze()``. Frozen objects
    are still freed by reference counting (history entries leaving the window, a swapped-out model:
    neither holds a reference cycle); only a cycle that formed in the moment between the full
    collection and the refreeze would stay.

    Examples
    --------
    >>> freezer = HeapFreezer()
    >>> freezer.install()
    >>> freezer.refreeze() is None  # no full collection yet: nothing to do
    True
    >>> _ = gc.collect()
    >>> freezer.refreeze() >= 0
    True
    >>> freezer.uninstall(); gc.unfreeze()
    """

    def __init__(self) -> None:
        self._full_collections = 0
        self._handled = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            self._full_collections += 1

    def install(self) -> None:
        """Start counting full collections (idempotent)."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop counting; what is frozen stays frozen."""
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def freeze_start_up(self) -> int:
        """:func:`freeze_start_up_heap`, then count full collections from here on; how many objects are frozen."""
        frozen = freeze_start_up_heap()
        self._handled = self._full_collections
        self.install()
        return frozen

    def refreeze(self) -> int | None:
        """After a full collection since the last call: freeze its survivors; the frozen count, else None."""
        if self._full_collections == self._handled:
            return None
        self._handled = self._full_collections
        gc.collect(1)  # generations 0 and 1: their garbage is freed, their survivors join the old generation
        gc.freeze()
        return gc.get_freeze_count()


async def _refreeze_forever(freezer: HeapFreezer, metrics: ServiceMetrics, every: float = 1.0) -> None:
    while True:
        await asyncio.sleep(every)
        frozen = freezer.refreeze()
        if frozen is not None:
            metrics.gc_frozen.set(frozen)


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and ``mlsys-lab serve``: settings from ``MLSYS_LAB_*``.

    Also reads ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's own switch), so that
    ``uvicorn --factory --workers N`` from a shell that set it gets merged metrics too.
    """
    return create_app(
        ServiceSettings.from_env(), metrics_multiprocess_dir=multiprocess_dir_from_env(), owns_process=True
    )


def create_worker_app_from_env() -> FastAPI:
    """The factory of ``mlsys-lab serve --workers N`` (N > 1): each worker also follows the alias.

    The CLI says "several workers" by choosing this factory, not through the environment; the
    settings themselves are read here, in the worker process. The metrics folder is the exception:
    prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` when it is imported, so the CLI sets it
    for the workers (see :func:`mlsys_lab.deployment.metrics.multiprocess_folder`).
    """
    settings = ServiceSettings.from_env()
    return create_app(
        settings,
        workers=max(2, settings.workers),
        metrics_multiprocess_dir=multiprocess_dir_from_env(),
        owns_process=True,
    )
