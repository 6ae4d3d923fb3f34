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
``mlsys_lab_decision_log_commit_decisions``     histogram    decisions per commit to the log (group commit):
                                                             ``_count`` is commits, ``_sum`` decisions committed
``mlsys_lab_gc_pause_seconds``                  histogram    pauses of Python's garbage collector by ``generation``
                                                             (every request in flight waits for them: see
                                                             ``ServiceSettings.gc_freeze``)
``mlsys_lab_gc_frozen_objects``                 gauge        objects ``mlsys-lab serve`` froze out of the
                                                             collector's scans, at start-up and after each
                                                             full collection (0: none)
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

Several worker processes
    ``mlsys-lab serve --workers N`` runs prometheus-client's multiprocess mode: the command gives the
    workers a folder (``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's own switch, which it reads
    when it is first imported, so it must be set before the workers start and never at our import)
    that :func:`multiprocess_folder` creates fresh and wipes; every worker writes its values to
    memory-mapped files there, and a scrape, whichever worker answers it, merges all the files with a
    :class:`~prometheus_client.multiprocess.MultiProcessCollector`. Counters and histograms are summed
    over workers, the dead ones included (a total never goes backwards when a worker is replaced).
    Gauges need a rule for combining workers, its ``multiprocess_mode``:

    - requests in flight: ``livesum``, the sum over the workers alive now (a dead worker's requests
      are not in flight any more);
    - the model, its age, the feature state's size, the worker itself: ``liveall``, one sample per
      live worker with a ``pid`` label. Each worker loads and follows the alias on its own, so during
      a promotion they legitimately serve different versions for a few seconds: a sum of versions
      or ages means nothing, and ``max`` would hide the worker that lags (the one to alert on). With
      ``liveall`` the scrape says which worker serves what, and a rule can take ``max`` by itself.
      In ``mlsys_lab_model_info`` a version a worker served before shows 0, the one it serves 1
      (prometheus-client cannot delete a sample from its files).

    These gauges cannot be read at scrape time (the worker answering cannot see the others' memory),
    so every worker writes them to its file every :data:`PUBLISH_SECONDS` and just before it answers
    a scrape. A worker that stops cleanly removes its ``live*`` files (``mark_process_dead``); the
    files of one that was killed are removed by the next scrape that finds its pid gone.

    One process without the variable (one worker, TestClient, a notebook) keeps the private
    per-app registry and the scrape-time gauges described above. Separate ``mlsys-lab serve``
    processes on different ports (replicas behind a load balancer) are separate scrape targets, as
    Prometheus expects: each one's ``/metrics`` covers its own workers, and sums go in the query.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from mlsys_lab.deployment.deps import Service
    from mlsys_lab.deployment.state import Scored

__all__ = [
    "LATENCY_BUCKETS",
    "MAX_FIELD_LABELS",
    "MULTIPROC_ENV",
    "PUBLISH_SECONDS",
    "SCORE_BUCKETS",
    "SLO_SECONDS",
    "MetricsMiddleware",
    "ServiceMetrics",
    "metrics_router",
    "multiprocess_dir_from_env",
    "multiprocess_folder",
]

logger = logging.getLogger(__name__)

#: Module 04's latency SLO (p99 at most 50 ms): a bucket edge sits exactly on it.
SLO_SECONDS = 0.050
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, SLO_SECONDS, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Fine near zero, where most fraud scores are; coarse above.
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Decisions per commit: 1 is a request alone; a group holds at most 64 requests, a batch up to 256 rows.
COMMIT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Garbage-collector pauses: a young collection takes well under a millisecond, a full one over a large
#: heap a tenth of a second or more (and the whole process waits).
GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, SLO_SECONDS, 0.1, 0.25, 0.5, 1.0)
#: Distinct ``field`` label values before new ones become ``other``: a client chooses the field
#: names of an invalid body, and every label value is a time series kept forever. Counted per
#: process: with N workers, at most N times this many.
MAX_FIELD_LABELS = 64
#: The ``route`` label of a request no route matched (404s): its path is the client's choice.
UNMATCHED_ROUTE = "unmatched"
#: prometheus-client's switch for multiprocess mode, read when prometheus-client is first imported.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How often each worker writes its model and feature-state gauges in multiprocess mode (seconds).
PUBLISH_SECONDS = 1.0


def multiprocess_dir_from_env(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """The folder of prometheus-client's multiprocess mode named by ``PROMETHEUS_MULTIPROC_DIR``, or None.

    Read by the app factories in each worker process (the shell set the variable before the
    workers started; see :func:`multiprocess_folder`).

    Raises
    ------
    ValueError
        The variable names something that is not a folder.
    """
    value = (os.environ if environ is None else environ).get(MULTIPROC_ENV)
    if not value:
        return None
    folder = Path(value)
    if not folder.is_dir():
        raise ValueError(
            f"{MULTIPROC_ENV}={value!r} is not a folder: create it (empty) before the server starts, "
            "or unset it to keep per-process metrics"
        )
    return folder


def _wipe(folder: Path) -> None:
    # Only prometheus-client's own files: the folder may be one a user named, holding other things.
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


@contextlib.contextmanager
def multiprocess_folder(workers: int, root: Path, environ: MutableMapping[str, str]) -> Iterator[Path | None]:
    """The multiprocess folder for a server of ``workers`` processes, set in ``environ`` for them.

    - ``PROMETHEUS_MULTIPROC_DIR`` already in ``environ`` (the shell chose a folder): that folder,
      created if missing, its ``*.db`` files wiped at start (files of a previous run would be
      counted again), kept afterwards;
    - otherwise, with several workers: a fresh ``root/serve-<pid>`` (wiped if a previous process of
      the same pid left it), set in ``environ``, and removed when the block ends;
    - otherwise (one worker): None, nothing set; the app keeps its per-process registry.

    ``mlsys-lab serve`` passes ``os.environ``: the worker processes it starts inherit the variable,
    and prometheus-client reads it when each of them imports it.

    Examples
    --------
    >>> import tempfile
    >>> environ: dict[str, str] = {}
    >>> with multiprocess_folder(2, Path(tempfile.mkdtemp()), environ) as folder:
    ...     environ[MULTIPROC_ENV] == str(folder) and folder.is_dir()
    True
    >>> folder.exists(), MULTIPROC_ENV in environ
    (False, False)
    """
    given = environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        _wipe(folder)
        yield folder
        return
    if workers <= 1:
        yield None
        return
    folder = (root / f"serve-{os.getpid()}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    _wipe(folder)
    environ[MULTIPROC_ENV] = str(folder)
    try:
        yield folder
    finally:
        environ.pop(MULTIPROC_ENV, None)
        _wipe(folder)
        with contextlib.suppress(OSError):  # something else was put there: leave it
            folder.rmdir()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    # A killed worker stays a zombie until uvicorn's supervisor reaps it, which can take a minute
    # (it waits up to its healthcheck timeout on each worker in turn): it serves nothing any more.
    with contextlib.suppress(OSError, IndexError):  # no /proc (not Linux): trust kill(pid, 0)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1] not in ("Z", "X")
    return True


class GcPauseTimer:
    """Times every garbage collection of this process with a ``gc.callbacks`` hook.

    The hook only appends ``(generation, seconds)`` to a list: it runs inside the collector, possibly
    while another thread (or this one) holds a metric's lock, so it must never call into
    prometheus-client. :meth:`drain` hands the pauses over from outside the collector (at each scrape,
    and every :data:`PUBLISH_SECONDS` in multiprocess mode). Several timers in one process (tests,
    notebooks) each see every collection of the process.

    Examples
    --------
    >>> import gc
    >>> timer = GcPauseTimer()
    >>> timer.install()
    >>> _ = gc.collect()
    >>> timer.uninstall()
    >>> [generation for generation, seconds in timer.drain() if seconds >= 0]
    [2]
    """

    def __init__(self) -> None:
        self._pending: list[tuple[int, float]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._pending.append((info["generation"], time.perf_counter() - self._started))

    def install(self) -> None:
        """Start timing (idempotent)."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop timing; what was timed stays until :meth:`drain`."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def drain(self) -> list[tuple[int, float]]:
        """The pauses timed since the last drain, oldest first."""
        # Swap, then read: a collection during the read appends to the list being read, and is returned.
        pending, self._pending = self._pending, []
        return pending


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


class _WorkerGauges:
    """The same gauges as :class:`_ServiceCollector`, written to this worker's files (multiprocess mode).

    ``liveall``: one sample per live worker, labelled with its ``pid`` by the merging collector.
    """

    def __init__(self) -> None:
        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=None, multiprocess_mode="liveall")

        self.worker = gauge("mlsys_lab_worker_info", "The live worker processes (value 1, label pid).")
        self.loaded = gauge("mlsys_lab_model_loaded", "1 while a model serves in this worker, 0 otherwise.")
        self.info = gauge(
            "mlsys_lab_model_info",
            "The version each worker serves (1), or served before (0).",
            ["alias", "version", "sha256"],
        )
        self.age = gauge("mlsys_lab_model_age_seconds", "Seconds since the version each worker serves was registered.")
        self.size = gauge("mlsys_lab_feature_state_transactions", "Transactions held in each worker's feature state.")
        self._shown: tuple[str, str, str] | None = None
        self._lock = threading.Lock()  # the publisher task and a scrape's thread both publish

    def publish(self, service: Service | None) -> None:
        model = None if service is None else service.slot.current
        with self._lock:
            self.worker.set(1.0)
            self.loaded.set(0.0 if model is None else 1.0)
            labels = None
            if service is not None and model is not None:
                labels = (service.settings.model_alias, str(model.info.version), model.info.sha256)
                self.age.set(max(0.0, time.time() - model.info.created_at.timestamp()))
            if labels != self._shown:
                if self._shown is not None:
                    self.info.labels(*self._shown).set(0.0)
                if labels is not None:
                    self.info.labels(*labels).set(1.0)
                self._shown = labels
            if service is not None and service.serving is not None:
                self.size.set(float(len(service.serving)))


class ServiceMetrics:
    """Every metric of one scoring app, on a registry of its own.

    Parameters
    ----------
    multiprocess_dir
        prometheus-client's multiprocess folder when this process is one of several workers
        (:func:`multiprocess_dir_from_env`); None keeps every value in this process's memory.

    Raises
    ------
    RuntimeError
        ``multiprocess_dir`` is given but prometheus-client keeps its values in memory: it was
        imported before ``PROMETHEUS_MULTIPROC_DIR`` was set, so the other workers would never see them.

    Examples
    --------
    >>> metrics = ServiceMetrics()
    >>> metrics.invalid_payload(["body", "transactions", 3, "tx_amount"])
    >>> b'mlsys_lab_invalid_payloads_total{field="transactions.tx_amount"} 1.0' in metrics.exposition()
    True
    """

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        if multiprocess_dir is not None and not getattr(prometheus_values.ValueClass, "_multiprocess", False):
            raise RuntimeError(
                f"prometheus-client was imported before {MULTIPROC_ENV} was set, so its values live in this "
                "process only: set the variable in the shell that starts the workers "
                "(mlsys-lab serve --workers N does), not in the program"
            )
        self.multiprocess_dir = multiprocess_dir
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
            "mlsys_lab_http_requests_in_progress",
            "Requests being served now.",
            registry=self.registry,
            multiprocess_mode="livesum",  # the workers alive now; a dead worker serves nothing
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
        self.commit_sizes = Histogram(
            "mlsys_lab_decision_log_commit_decisions",
            "Decisions per successful decision-log commit (group commit): _count is commits, _sum decisions.",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.log_errors = Counter(
            "mlsys_lab_decision_log_errors",
            "Decision-log writes refused (each answered 503, nothing decided).",
            registry=self.registry,
        )
        self.gc_pauses = Histogram(
            "mlsys_lab_gc_pause_seconds",
            "Pauses of the Python garbage collector by generation (2: a full collection), in seconds.",
            ["generation"],
            buckets=GC_PAUSE_BUCKETS,
            registry=self.registry,
        )
        self.gc_frozen = Gauge(
            "mlsys_lab_gc_frozen_objects",
            "Objects frozen out of the garbage collector's scans, at start-up and after each full collection "
            "(0: not frozen).",
            registry=self.registry,
            multiprocess_mode="liveall",  # each worker freezes its own heap
        )
        self._gc_timer = GcPauseTimer()
        self._collector = _ServiceCollector()
        self._worker_gauges: _WorkerGauges | None = None
        if multiprocess_dir is None:
            self.registry.register(self._collector)
        else:
            self._worker_gauges = _WorkerGauges()
        self._publisher: asyncio.Task[None] | None = None
        self._fields: set[str] = set()
        self._fields_lock = threading.Lock()

    def watch(self, service: Service) -> None:
        """Follow ``service``'s model and feature state in the gauges (the lifespan handler calls this).

        It also starts the task that, every :data:`PUBLISH_SECONDS`, hands the timed GC pauses to their
        histogram and, in multiprocess mode, writes the gauges to this worker's file, so it must be
        called from the running event loop.
        """
        self._collector.service = service
        self._gc_timer.install()
        if service.serving is not None:  # called from the decision thread after each commit
            service.serving.on_commit = self.commit_sizes.observe
        if self._worker_gauges is not None:
            self._worker_gauges.publish(service)
        # In both modes: the GC pauses are drained every PUBLISH_SECONDS, so that a service nobody
        # scrapes does not keep a growing list of them (a young collection is tens a second under load).
        self._publisher = asyncio.get_running_loop().create_task(self._publish_forever())

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_SECONDS)
            self._record_gc_pauses()
            if self._worker_gauges is not None:
                self._worker_gauges.publish(self._collector.service)

    def close(self) -> None:
        """Stop publishing and, in multiprocess mode, drop this worker's live gauges (``mark_process_dead``).

        Its counters and histograms stay in the folder: totals never go backwards.
        """
        if self._publisher is not None:
            self._publisher.cancel()
            self._publisher = None
        self._gc_timer.uninstall()
        self._record_gc_pauses()
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))

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
        """The text exposition of every metric, as ``GET /metrics`` serves it (every worker's, merged)."""
        self._record_gc_pauses()
        if self.multiprocess_dir is None or self._worker_gauges is None:
            return generate_latest(self.registry)
        self._forget_dead_workers()
        self._worker_gauges.publish(self._collector.service)
        # A fresh registry per scrape, holding only the merging collector (prometheus-client's recipe).
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.multiprocess_dir))
        return generate_latest(merged)

    def _record_gc_pauses(self) -> None:
        for generation, seconds in self._gc_timer.drain():
            self.gc_pauses.labels(str(generation)).observe(seconds)

    def _forget_dead_workers(self) -> None:
        """``mark_process_dead`` for every worker whose files remain but whose process is gone (killed)."""
        assert self.multiprocess_dir is not None
        dead: set[int] = set()
        for path in self.multiprocess_dir.glob("gauge_live*_*.db"):
            name = path.stem.rsplit("_", 1)[-1]
            if name.isdigit() and not _pid_alive(int(name)):
                dead.add(int(name))
        for pid in dead:
            logger.info("worker %d is gone: dropping its live gauges from the metrics folder", pid)
            mark_process_dead(pid, str(self.multiprocess_dir))


def metrics_router(metrics: ServiceMetrics) -> APIRouter:
    """``GET /metrics``: a plain route, not ``app.mount`` (a mount answers ``/metrics`` with a 307)."""
    router = APIRouter()

    @router.get("/metrics", tags=["ops"], response_class=Response, include_in_schema=True)
    def scrape() -> Response:
        """Prometheus text exposition, every worker's with ``--workers N`` (see ``mlsys_lab.deployment.metrics``)."""
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
