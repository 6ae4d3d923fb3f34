"""The scoring service's own metrics, served at ``GET /metrics`` in Prometheus' text format.

One :class:`ServiceMetrics` per app, each on a private :class:`prometheus_client.CollectorRegistry`
(never the global one), so several apps in one process (the tests, a notebook) keep separate counts
and never collide on a metric name. What it exposes:

==============================================  ===========  =================================================
metric                                          type         what
==============================================  ===========  =================================================
``mlsys_lab_http_requests_total``               counter      requests by ``route`` template, ``method``, ``status``
``mlsys_lab_http_request_duration_seconds``     histogram    request latency by ``route``; a bucket edge sits
                                                             exactly at the 50 ms SLO, so "share within the
                                                             SLO" is a ratio of two counters, not an estimate
``mlsys_lab_http_requests_in_progress``         gauge        requests being served now
``mlsys_lab_score``                             histogram    the fraud scores of new decisions (no labels needed)
``mlsys_lab_decisions_total``                   counter      new decisions by ``model_version`` and ``decision``
                                                             (``block``/``allow``); a retried request answered
                                                             from the log is not a new decision
``mlsys_lab_invalid_payloads_total``            counter      422s by ``field`` (list positions dropped, at most
                                                             :data:`MAX_FIELD_LABELS` names, then ``other``)
``mlsys_lab_decision_log_errors_total``         counter      writes the decision log refused (each one a 503)
``mlsys_lab_model_info``                        gauge (1)    the served model: ``alias``, ``version``, ``sha256``
``mlsys_lab_model_loaded``                      gauge        1 while a model serves, 0 otherwise
``mlsys_lab_model_age_seconds``                 gauge        seconds since the served version was registered
``mlsys_lab_feature_state_transactions``        gauge        transactions held in the online feature state
``mlsys_lab_worker_info``                       gauge (1)    ``pid`` of the process that answered the scrape
==============================================  ===========  =================================================

Counters and histograms are kept by a pure ASGI middleware (:class:`MetricsMiddleware`: about a
tenth of the CPU cost of ``@app.middleware("http")``) and by the handlers that see decisions and
errors; the model and feature-state gauges are read at scrape time, so a hot swap shows up on the
next scrape without any hook in the reload path.

Several uvicorn workers
    The numbers are **per process**. ``mlsys-lab serve --workers N`` starts N processes, each with
    its own counts, and a scrape reaches whichever worker accepts the connection: with 2 workers
    successive scrapes see about half the requests each (``mlsys_lab_worker_info`` says which
    worker answered). Prometheus' answer is to scrape each worker on its own port, or
    prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a folder wiped before the
    workers start, where every process writes its values to memory-mapped files that one scrape
    sums). This module does not use multiprocess mode: prometheus-client picks its value storage
    from that environment variable when it is first imported, for every registry in the process,
    and scrape-time gauges such as the model version cannot be summed across files. Use one worker
    (the course's measured configuration) when the scrape must be complete.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from mlsys_lab.deployment.deps import Service
    from mlsys_lab.deployment.state import Scored

__all__ = [
    "LATENCY_BUCKETS",
    "MAX_FIELD_LABELS",
    "SCORE_BUCKETS",
    "SLO_SECONDS",
    "MetricsMiddleware",
    "ServiceMetrics",
    "metrics_router",
]

#: Module 04's latency SLO (p99 at most 50 ms): a bucket edge sits exactly on it.
SLO_SECONDS = 0.050
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, SLO_SECONDS, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Fine near zero, where most fraud scores are; coarse above.
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Distinct ``field`` label values before new ones become ``other``: a client chooses the field
#: names of an invalid body, and every label value is a time series kept forever.
MAX_FIELD_LABELS = 64
#: The ``route`` label of a request no route matched (404s): its path is the client's choice.
UNMATCHED_ROUTE = "unmatched"


class _ServiceCollector(Collector):
    """The gauges read from the running service at scrape time (model, feature state, worker)."""

    def __init__(self) -> None:
        self.service: Service | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        worker = GaugeMetricFamily("mlsys_lab_worker_info", "The process that answered this scrape.", labels=["pid"])
        worker.add_metric([str(os.getpid())], 1.0)
        yield worker
        service = self.service
        model = None if service is None else service.slot.current
        loaded = GaugeMetricFamily("mlsys_lab_model_loaded", "1 while a model serves, 0 otherwise.")
        loaded.add_metric([], 0.0 if model is None else 1.0)
        yield loaded
        if service is not None and model is not None:
            info = GaugeMetricFamily(
                "mlsys_lab_model_info", "The served model version (value 1).", labels=["alias", "version", "sha256"]
            )
            info.add_metric([service.settings.model_alias, str(model.info.version), model.info.sha256], 1.0)
            yield info
            age = GaugeMetricFamily("mlsys_lab_model_age_seconds", "Seconds since the served version was registered.")
            age.add_metric([], max(0.0, time.time() - model.info.created_at.timestamp()))
            yield age
        if service is not None and service.serving is not None:
            size = GaugeMetricFamily(
                "mlsys_lab_feature_state_transactions", "Transactions held in the online feature state."
            )
            size.add_metric([], float(len(service.serving)))
            yield size


class ServiceMetrics:
    """Every metric of one scoring app, on a registry of its own.

    Examples
    --------
    >>> metrics = ServiceMetrics()
    >>> metrics.invalid_payload(["body", "transactions", 3, "tx_amount"])
    >>> b'mlsys_lab_invalid_payloads_total{field="transactions.tx_amount"} 1.0' in metrics.exposition()
    True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlsys_lab_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlsys_lab_http_request_duration_seconds",
            "Request latency in seconds, from the first byte received to the last byte sent.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "mlsys_lab_http_requests_in_progress", "Requests being served now.", registry=self.registry
        )
        self.scores = Histogram(
            "mlsys_lab_score", "Fraud scores of new decisions.", buckets=SCORE_BUCKETS, registry=self.registry
        )
        self.decisions = Counter(
            "mlsys_lab_decisions",
            "New decisions by model version and decision (block or allow).",
            ["model_version", "decision"],
            registry=self.registry,
        )
        self.invalid_payloads = Counter(
            "mlsys_lab_invalid_payloads", "Invalid request bodies (422) by field.", ["field"], registry=self.registry
        )
        self.log_errors = Counter(
            "mlsys_lab_decision_log_errors",
            "Decision-log writes refused (each answered 503, nothing decided).",
            registry=self.registry,
        )
        self._collector = _ServiceCollector()
        self.registry.register(self._collector)
        self._fields: set[str] = set()
        self._fields_lock = threading.Lock()

    def watch(self, service: Service) -> None:
        """Read the model and feature-state gauges from ``service`` (the lifespan handler calls this)."""
        self._collector.service = service

    def observe_scored(self, scored: Sequence[Scored]) -> None:
        """Count new decisions and their scores; a retry answered from the log is not counted again."""
        for item in scored:
            if item.replayed:
                continue
            self.scores.observe(item.score)
            self.decisions.labels(str(item.model_version), "block" if item.decision else "allow").inc()

    def invalid_payload(self, loc: Sequence[str | int]) -> None:
        """Count one invalid field at FastAPI's error location ``loc`` (``("body", "tx_amount")``)."""
        name = ".".join(str(part) for part in loc if part != "body" and not isinstance(part, int)) or "body"
        with self._fields_lock:
            if name not in self._fields and len(self._fields) >= MAX_FIELD_LABELS:
                name = "other"
            self._fields.add(name)
        self.invalid_payloads.labels(name[:100]).inc()

    def invalid_payloads_of(self, errors: Iterable[dict[str, Any]]) -> None:
        """Count each distinct field of one 422's errors once."""
        seen: set[tuple[str | int, ...]] = set()
        for error in errors:
            loc = tuple(error.get("loc", ()))
            key = tuple(part for part in loc if not isinstance(part, int))
            if key not in seen:
                seen.add(key)
                self.invalid_payload(loc)

    def exposition(self) -> bytes:
        """The text exposition of every metric, as ``GET /metrics`` serves it."""
        return generate_latest(self.registry)


def metrics_router(metrics: ServiceMetrics) -> APIRouter:
    """``GET /metrics``: a plain route, not ``app.mount`` (a mount answers ``/metrics`` with a 307)."""
    router = APIRouter()

    @router.get("/metrics", tags=["ops"], response_class=Response, include_in_schema=True)
    def scrape() -> Response:
        """Prometheus text exposition of this worker's metrics (per process: see ``mlsys_lab.deployment.metrics``)."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


class MetricsMiddleware:
    """Pure ASGI middleware: count and time every HTTP request by its route template and status.

    Put it outermost, so the 413s of the body-size limit and the 500s of a crash are counted too.
    The route label is the template (``/v1/score``), which FastAPI's router leaves in the scope; a
    request no route matched gets :data:`UNMATCHED_ROUTE`, so clients cannot mint label values.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_progress.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            self.metrics.requests.labels(template, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)
