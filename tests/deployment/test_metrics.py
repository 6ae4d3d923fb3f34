"""``GET /metrics``: what the scoring service counts, in process (TestClient) and on a real uvicorn.

What each test catches if it breaks: a global registry (two apps in one process share counts, or
the second app fails to start on a duplicate metric name); a route label taken from the raw path
(a client mints one time series per URL); a retry counted as a second decision; a 422 or a refused
log write that nobody counts; ``app.mount`` instead of a route (a 307 and an empty body); with
``--workers 2``, a scrape that answers from one worker's memory (about half the requests, as before
multiprocess mode: checked, it fails), a worker killed with ``kill -9`` that stays in the scrape as
if alive, or its counts lost; metric files of a previous run counted again.
"""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mlsys_lab.deployment.deps import get_model, get_serving
from mlsys_lab.deployment.metrics import (
    MULTIPROC_ENV,
    PUBLISH_SECONDS,
    SLO_SECONDS,
    ServiceMetrics,
    multiprocess_folder,
)
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import run_server
from mlsys_lab.deployment.service import HeapFreezer, create_app
from mlsys_lab.training import Tracker, TrackingSettings, train

from .conftest import registrable_configs
from .test_service_contract import fake_model, settings_for, v1_body
from .test_service_live import body

#: Two workers each import the CLI, MLflow and the model: a minute or more on a busy 2-core machine.
START_TIMEOUT = 240.0


def scrape(client: TestClient | httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, keyed by ``(name, sorted labels)``."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """A fresh app (fresh counts) with the contract tests' fake model, version 7, threshold 0.5."""
    app = create_app(settings_for(tmp_path))
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as test_client:
        yield test_client


def test_requests_are_counted_by_route_template_and_status(client):
    for _ in range(2):
        assert client.post("/v1/score", json=v1_body()).status_code == 200
    assert client.get("/no/such/path/123").status_code == 404
    samples = scrape(client)
    score_200 = value(samples, "mlsys_lab_http_requests_total", route="/v1/score", method="POST", status="200")
    assert score_200 == 2, f"expected 2 scored requests counted under the route template, got {score_200}"
    unmatched = value(samples, "mlsys_lab_http_requests_total", route="unmatched", method="GET", status="404")
    assert unmatched == 1, f"a 404 must be counted under route='unmatched', not its raw path; got {unmatched}"
    assert not any("/no/such" in str(labels) for _, labels in samples), "a client-chosen path became a label value"
    within = value(samples, "mlsys_lab_http_request_duration_seconds_bucket", route="/v1/score", le=str(SLO_SECONDS))
    count = value(samples, "mlsys_lab_http_request_duration_seconds_count", route="/v1/score")
    assert count == 2 and 0 <= within <= count, f"the latency histogram needs a bucket at the SLO: {within}/{count}"


def test_decisions_and_scores_are_counted_once_and_a_retry_is_not_a_new_decision(client):
    body = v1_body()
    first = client.post("/v1/score", json=body).json()
    assert client.post("/v1/score", json=body).status_code == 200  # the same transaction again: its stored decision
    samples = scrape(client)
    decision = "block" if first["decision"] else "allow"
    counted = value(samples, "mlsys_lab_decisions_total", model_version="7", decision=decision)
    assert counted == 1, f"one new decision by model version 7 ({decision}) expected, got {counted}"
    assert value(samples, "mlsys_lab_score_count") == 1, "the score histogram counted the retry as a new score"
    assert value(samples, "mlsys_lab_score_sum") == pytest.approx(first["score"])


def test_invalid_payloads_are_counted_by_field_without_list_positions(client):
    assert client.post("/v1/score", json=v1_body(tx_amount="lots")).status_code == 422
    bad_batch = {"transactions": [v1_body(), v1_body(tx_amount=-1.0)]}
    assert client.post("/v1/score/batch", json=bad_batch).status_code == 422
    samples = scrape(client)
    assert value(samples, "mlsys_lab_invalid_payloads_total", field="tx_amount") == 1
    assert value(samples, "mlsys_lab_invalid_payloads_total", field="transactions.tx_amount") == 1, (
        f"batch errors must be labelled without their row index: "
        f"{[k for k in samples if k[0] == 'mlsys_lab_invalid_payloads_total']}"
    )


def test_a_refused_decision_log_write_is_a_503_and_counted(client):
    class RefusingState:
        async def decide_async(self, *args: object) -> None:
            raise sa.exc.OperationalError("COMMIT", {}, sqlite3.OperationalError("database or disk is full"))

    client.app.dependency_overrides[get_serving] = RefusingState  # type: ignore[attr-defined]
    assert client.post("/v1/score", json=v1_body()).status_code == 503
    del client.app.dependency_overrides[get_serving]  # type: ignore[attr-defined]
    assert value(scrape(client), "mlsys_lab_decision_log_errors_total") == 1


def test_two_apps_in_one_process_keep_their_own_counts(tmp_path):
    first, second = create_app(settings_for(tmp_path / "a")), create_app(settings_for(tmp_path / "b"))
    with TestClient(first) as a, TestClient(second) as b:
        for _ in range(3):
            a.get("/health")
        b.get("/health")
        counted = [
            value(scrape(c), "mlsys_lab_http_requests_total", route="/health", method="GET", status="200")
            for c in (a, b)
        ]
    assert counted == [3, 1], f"each app must count only its own requests, got {counted}"


def test_model_and_feature_state_gauges_are_read_at_scrape_time(client):
    samples = scrape(client)
    # The fake model is a dependency override: the slot itself holds no model (empty registry).
    assert value(samples, "mlsys_lab_model_loaded") == 0
    assert value(samples, "mlsys_lab_feature_state_transactions") == 0
    client.post("/v1/score", json=v1_body())
    assert value(scrape(client), "mlsys_lab_feature_state_transactions") == 1


def test_garbage_collector_pauses_are_counted_by_generation(client):
    before = scrape(client)
    gc.collect()  # a full collection
    gc.collect(0)  # a young one
    after = scrape(client)
    for generation in ("0", "2"):
        counted = value(after, "mlsys_lab_gc_pause_seconds_count", generation=generation) - value(
            before, "mlsys_lab_gc_pause_seconds_count", generation=generation
        )
        assert counted >= 1, f"a generation-{generation} collection was not counted"
    assert value(after, "mlsys_lab_gc_pause_seconds_sum", generation="2") > 0


def test_garbage_collector_pauses_are_handed_over_without_a_scrape(client):
    # A service nobody scrapes must not keep a growing list of pauses: they reach the histogram every
    # PUBLISH_SECONDS. Read the registry directly (exposition() would hand them over itself).
    registry = client.app.state.metrics.registry
    before = registry.get_sample_value("mlsys_lab_gc_pause_seconds_count", {"generation": "2"}) or 0.0
    gc.collect()
    deadline = time.monotonic() + 10 * PUBLISH_SECONDS
    while time.monotonic() < deadline:
        after = registry.get_sample_value("mlsys_lab_gc_pause_seconds_count", {"generation": "2"}) or 0.0
        if after > before:
            break
        time.sleep(0.1)
    assert after > before, "a full collection never reached the histogram without a scrape"


def test_only_an_app_that_owns_its_process_freezes_the_start_up_heap_and_the_setting_turns_it_off(tmp_path):
    # gc.freeze() is process-wide: start from an unfrozen heap, and leave it so for the other tests.
    gc.unfreeze()
    try:
        cases = [({"gc_freeze": True}, False), ({"gc_freeze": False}, True), ({"gc_freeze": True}, True)]
        frozen = []
        for n, (changes, owns_process) in enumerate(cases):
            app = create_app(settings_for(tmp_path / str(n), **changes), owns_process=owns_process)
            with TestClient(app) as test_client:
                frozen.append((gc.get_freeze_count(), value(scrape(test_client), "mlsys_lab_gc_frozen_objects")))
            gc.unfreeze()
        # A test run or a notebook kernel keeps its collector; MLSYS_LAB_GC_FREEZE=false keeps the server's.
        assert frozen[0] == (0, 0) and frozen[1] == (0, 0), frozen
        # The server: everything start-up built (this test process's modules included) is frozen and reported
        # (frozen objects freed by reference counting since then leave the count, none join it).
        assert frozen[2][1] >= frozen[2][0] > 10_000, frozen
    finally:
        gc.unfreeze()


class _Entry:
    """A tracked object that can be watched with a weak reference."""

    __slots__ = ("__weakref__", "value")

    def __init__(self, value: int) -> None:
        self.value = value


def test_what_a_full_collection_leaves_is_refrozen_and_still_freed_by_reference_counting():
    # The feature state grows after start-up; without a refreeze every full collection walks it again.
    gc.unfreeze()
    gc.disable()  # no automatic collection in between: only the ones this test makes
    freezer = HeapFreezer()
    try:
        start = freezer.freeze_start_up()
        grown = [_Entry(n) for n in range(50_000)]  # what the server keeps after start-up
        watched = weakref.ref(grown[0])
        gc.collect(0)
        assert freezer.refreeze() is None, "refroze without a full collection"
        assert gc.get_freeze_count() == start
        gc.collect()
        frozen = freezer.refreeze()
        assert frozen is not None and frozen >= start + 50_000, (start, frozen)
        assert gc.get_freeze_count() == frozen
        assert freezer.refreeze() is None, "refroze twice for one full collection"
        del grown  # frozen, but nothing refers to it: reference counting frees it without the collector
        assert watched() is None
    finally:
        freezer.uninstall()
        gc.unfreeze()
        gc.enable()


@pytest.mark.parametrize("refreeze", [True, False])
def test_the_server_refreezes_after_a_full_collection_unless_told_not_to(tmp_path, refreeze):
    gc.unfreeze()
    kept: list[_Entry] = []
    try:
        app = create_app(settings_for(tmp_path, gc_refreeze=refreeze), owns_process=True)
        with TestClient(app) as test_client:
            before = value(scrape(test_client), "mlsys_lab_gc_frozen_objects")
            kept.extend(_Entry(n) for n in range(50_000))
            gc.collect()
            deadline, after = time.monotonic() + 5, before
            while time.monotonic() < deadline and after < before + 50_000:
                time.sleep(0.1)
                after = value(scrape(test_client), "mlsys_lab_gc_frozen_objects")
        if refreeze:
            assert after >= before + 50_000, f"the heap grew by 50,000 objects; frozen {before:.0f} -> {after:.0f}"
        else:
            assert after <= before, f"MLSYS_LAB_GC_REFREEZE=false still refroze: {before:.0f} -> {after:.0f}"
    finally:
        gc.unfreeze()


@pytest.mark.slow
def test_a_real_uvicorn_server_serves_metrics_from_a_route_not_a_redirect(tmp_path):
    env = {
        "MLSYS_LAB_TRACKING_DIR": str(tmp_path / "empty-registry"),
        "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{tmp_path / 'decisions.db'}",
    }
    with run_server(env) as server, httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as http:
        for _ in range(5):
            http.get("/health")
        assert http.post("/v1/score", json=v1_body()).status_code == 503  # no model in an empty registry
        samples = scrape(http)
    assert value(samples, "mlsys_lab_http_requests_total", route="/health", method="GET", status="200") >= 5
    assert value(samples, "mlsys_lab_http_requests_total", route="/v1/score", method="POST", status="503") == 1
    assert value(samples, "mlsys_lab_model_loaded") == 0
    assert any(name == "mlsys_lab_worker_info" for name, _ in samples)
    # mlsys-lab serve froze its start-up heap (the imports alone are over 100,000 objects).
    assert value(samples, "mlsys_lab_gc_frozen_objects") > 100_000


def test_metrics_off_serves_no_route_and_the_service_still_scores(tmp_path):
    app = create_app(settings_for(tmp_path, metrics=False))
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as client:
        assert client.post("/v1/score", json=v1_body()).status_code == 200
        assert client.get("/metrics").status_code == 404, "MLSYS_LAB_METRICS=false must drop the route"
    assert b"mlsys_lab_http_requests_total{" not in app.state.metrics.exposition(), "the middleware still counted"


def test_multiprocess_metrics_refuse_a_prometheus_client_imported_before_the_folder_was_set(tmp_path):
    # This pytest process imported prometheus-client without PROMETHEUS_MULTIPROC_DIR: its values
    # are in memory, and a worker built like this would merge nothing from the others.
    with pytest.raises(RuntimeError, match=MULTIPROC_ENV):
        ServiceMetrics(multiprocess_dir=tmp_path)


def test_the_multiprocess_folder_is_fresh_for_several_workers_wiped_when_given_and_unset_for_one(tmp_path):
    environ: dict[str, str] = {}
    with multiprocess_folder(1, tmp_path / "metrics", environ) as folder:
        assert folder is None and environ == {}, "one worker keeps its in-memory registry"
    with multiprocess_folder(2, tmp_path / "metrics", environ) as folder:
        assert folder is not None and folder.parent == (tmp_path / "metrics").resolve()
        assert environ == {MULTIPROC_ENV: str(folder)} and not any(folder.iterdir()), "not fresh"
        (folder / "counter_123.db").write_bytes(b"written by a worker")
    assert not folder.exists() and environ == {}, "the folder outlived the server, or the variable stayed set"
    # A folder the shell chose: a previous run's files are wiped before the workers start, and
    # nothing else in it is touched.
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    (chosen / "counter_999.db").write_bytes(b"a previous run's 1,000 requests")
    (chosen / "notes.txt").write_text("mine")
    environ = {MULTIPROC_ENV: str(chosen)}
    with multiprocess_folder(2, tmp_path / "metrics", environ) as folder:
        assert folder == chosen and sorted(p.name for p in chosen.iterdir()) == ["notes.txt"]
    assert chosen.exists() and environ == {MULTIPROC_ENV: str(chosen)}


@pytest.fixture(scope="module")
def one_model_store(tmp_path_factory: pytest.TempPathFactory, registrable_frame) -> TrackingSettings:
    tracking = TrackingSettings(root=tmp_path_factory.mktemp("metrics-registry"), experiment="metrics")
    registry = Registry(tracking)
    info = registry.register(train(registrable_configs(1)[0], registrable_frame, tracker=Tracker(tracking)))
    registry.promote(info.version, who="tests", why="metrics across workers")
    registry.close()
    return tracking


def scrape_until(url: str, done: Callable[[dict], bool], timeout: float = 30.0) -> dict:
    """Scrape on a new connection (any worker may answer) until ``done`` holds or ``timeout`` s pass; the last one."""
    deadline = time.monotonic() + timeout
    while True:
        with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as http:
            samples = scrape(http)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def score_route_200(samples: dict) -> float:
    return value(samples, "mlsys_lab_http_requests_total", route="/v1/score", method="POST", status="200")


def live_workers(samples: dict) -> set[str]:
    """The pids the scrape shows serving (a worker still starting shows 0 until its model is loaded)."""
    return {dict(labels)["pid"] for (name, labels), v in samples.items() if name == "mlsys_lab_worker_info" and v == 1}


def process_state(pid: str) -> str:
    status = Path(f"/proc/{pid}/status")
    return (
        next((line for line in status.read_text().splitlines() if line.startswith("State")), "?")
        if status.exists()
        else "gone"
    )


@pytest.mark.slow
def test_two_workers_every_scrape_counts_every_request_and_a_killed_worker_leaves_the_live_gauges(
    one_model_store, tmp_path
):
    metrics_root = tmp_path / "metrics"
    env = {
        "MLSYS_LAB_TRACKING_DIR": str(one_model_store.root),
        "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{tmp_path / 'decisions.db'}",
        "MLSYS_LAB_METRICS_DIR": str(metrics_root),
    }
    n = 200
    output = tmp_path / "serve.log"
    with run_server(env, output=output, workers=2, wait_path="/ready", start_timeout=START_TIMEOUT) as server:
        (folder,) = metrics_root.iterdir()  # serve-<pid of mlsys-lab serve>, the one fresh folder
        assert folder.name == f"serve-{server.process.pid}", folder

        def send(k: int) -> int:
            # A connection per request, from 4 threads: the kernel spreads them over both workers
            # (a keep-alive client would stay on one worker and prove nothing).
            return httpx.post(f"{server.url}/v1/score", json=body(5_000 + k, k % 37, minute=k), timeout=30).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, range(n)))
        assert statuses == [200] * n, f"not every request was scored: {sorted(set(statuses))}"

        # A worker counts a request just after its last byte is sent, so the client can see every
        # answer a moment before the last count lands: wait (bounded) for one scrape to see them all.
        first = scrape_until(server.url, lambda samples: score_route_200(samples) >= n)
        assert score_route_200(first) == n, f"no scrape counted all {n} scored requests within 30 s: {first}"
        scrapes = [scrape_until(server.url, lambda samples: True) for _ in range(6)]
        counted = [score_route_200(s) for s in scrapes]
        assert counted == [n] * 6, f"each scrape must count all {n} scored requests of both workers, got {counted}"
        for samples in scrapes:
            decisions = sum(v for (name, _), v in samples.items() if name == "mlsys_lab_decisions_total")
            assert decisions == n and value(samples, "mlsys_lab_score_count") == n, "decisions or scores missing"
            latency = value(samples, "mlsys_lab_http_request_duration_seconds_count", route="/v1/score")
            assert latency == n, f"the latency histogram must merge both workers: {latency}"
        workers = live_workers(scrapes[-1])
        assert len(workers) == 2, f"the scrape must show both live workers (liveall gauges), got {workers}"
        served = {dict(labels)["pid"]: v for (name, labels), v in scrapes[-1].items() if name == "mlsys_lab_model_info"}
        assert served == dict.fromkeys(workers, 1.0), f"each worker reports the version it serves: {served}"

        # kill -9 one worker: uvicorn starts another; its counts stay, its live gauges go.
        dead = sorted(workers)[0]
        os.kill(int(dead), signal.SIGKILL)
        samples = scrape_until(server.url, lambda samples: dead not in live_workers(samples), timeout=60)
        assert dead not in live_workers(samples), (
            f"worker {dead} was killed (process: {process_state(dead)}) but the scrape still shows it alive"
        )
        assert score_route_200(samples) == n, "the killed worker's counts must stay in the totals"
        assert any(folder.glob("*.db")), "the workers write their values to the fresh folder"
    # Not checked here that the folder goes at the end: the replacement worker may still be starting,
    # uvicorn's supervisor then waits for it before it stops, and the helper's SIGKILL after 15 s
    # skips the clean-up (the removal itself is tested above, without a server).
