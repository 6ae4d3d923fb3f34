"""``GET /metrics``: what the scoring service counts, in process (TestClient) and on a real uvicorn.

What each test catches if it breaks: a global registry (two apps in one process share counts, or
the second app fails to start on a duplicate metric name); a route label taken from the raw path
(a client mints one time series per URL); a retry counted as a second decision; a 422 or a refused
log write that nobody counts; ``app.mount`` instead of a route (a 307 and an empty body).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mlsys_lab.deployment.deps import get_model, get_serving
from mlsys_lab.deployment.metrics import SLO_SECONDS
from mlsys_lab.deployment.server import run_server
from mlsys_lab.deployment.service import create_app

from .test_service_contract import fake_model, settings_for, v1_body


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
        def decide(self, *args: object) -> None:
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
