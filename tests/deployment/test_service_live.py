"""The scoring service as it runs: a real uvicorn process on a loopback port, real registry and log.

Every test starts ``mlsys-lab serve`` as a subprocess on 127.0.0.1 with its settings in the
environment (a temporary tracking store with two registered versions, a temporary SQLite decision
log), waits for it (bounded), sends bounded traffic to loopback only, and stops it, all with
:mod:`mlsys_lab.deployment.server`, as ``make demo`` does. What each test catches if the guarantee breaks:

- hot swap: a reload that publishes a half-built model, or blocks or drops requests, fails some of
  the 600; an answer whose threshold is not its version's mixes two models. That last check only
  fires if a swap lands inside a request's microseconds-wide window, so the deterministic test of the
  reference capture is in ``test_service_contract.py`` (a swap triggered from inside ``predict_proba``);
- hard kill: a decision committed after the response (checked: a 5 ms write-behind fails it 3 runs
  out of 3) leaves a request id that got a 200 missing from the log;
- corrupt model: loading without the checksum, or swapping before the load finished, serves a
  broken model or answers 500;
- several workers: a worker that does not tail the log computes customer counts from its own
  requests only (checked: fails); a worker that does not follow the alias keeps serving the old
  version after a promotion that ``/admin/reload`` delivered to the other one (checked: fails).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import threading
import time
from dataclasses import dataclass

import httpx
import pandas as pd
import pytest

from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import ServerProcess, run_server
from mlsys_lab.training import Tracker, TrackingSettings, train

from .conftest import registrable_configs

pytestmark = pytest.mark.slow  # each test starts one or two servers (a few seconds each)

TOKEN = "live-test-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
START_TIMEOUT = 60.0


@dataclass
class Store:
    """A tracking store with two registered versions (different thresholds), champion = 1."""

    tracking: TrackingSettings
    thresholds: dict[int, float]

    def registry(self) -> Registry:
        return Registry(self.tracking)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, registrable_frame: pd.DataFrame) -> Store:
    # A store of its own: the server serves the default model name, which these tests move freely.
    tracking = TrackingSettings(root=tmp_path_factory.mktemp("live-registry"), experiment="live")
    tracker = Tracker(tracking)
    registry = Registry(tracking)
    versions = [
        registry.register(train(config, registrable_frame, tracker=tracker)) for config in registrable_configs(2)
    ]
    registry.promote(versions[0].version, who="tests", why="first champion")
    thresholds = {info.version: info.threshold for info in versions}
    assert len(set(thresholds.values())) == 2, f"the two versions need different thresholds, got {thresholds}"
    return Store(tracking, thresholds)


def server_env(store: Store, log_url: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The server's settings: the store's registry, the given decision log, admin enabled."""
    return {
        "MLSYS_LAB_TRACKING_DIR": str(store.tracking.root),
        "MLSYS_LAB_DECISION_LOG_URL": log_url,
        "MLSYS_LAB_ADMIN_TOKEN": TOKEN,
        **(env or {}),
    }


def running(
    store: Store, log_url: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[ServerProcess]:
    # Waits for /health, not /ready: the corrupt-model test needs a server that is up but not ready.
    return run_server(server_env(store, log_url, env), workers=workers, start_timeout=START_TIMEOUT)


def body(transaction_id: int, customer_id: int, *, version: str = "v1", minute: int = 0) -> dict[str, object]:
    when = dt.datetime(2018, 6, 1, 9) + dt.timedelta(minutes=minute)
    common = {"transaction_id": transaction_id, "customer_id": customer_id, "terminal_id": customer_id % 50}
    if version == "v1":
        return {**common, "tx_datetime": when.isoformat(), "tx_amount": 12.5 + customer_id % 7}
    aware = when.replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))  # Brussels in June
    return {
        **common,
        "tx_datetime": aware.isoformat(),
        "amount_minor": 1250 + 100 * (customer_id % 7),
        "currency": "EUR",
    }


class Traffic:
    """``threads`` clients on keep-alive connections, each sending up to ``per_thread`` requests."""

    def __init__(self, url: str, *, threads: int, per_thread: int, first_id: int) -> None:
        self.url = url
        self.responses: list[tuple[int, dict[str, object] | None]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(first_id + i * per_thread, per_thread), daemon=True)
            for i in range(threads)
        ]

    def _run(self, first: int, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for k in range(n):
                tx_id = first + k
                version = "v1" if k % 2 else "v2"  # both request formats, interleaved
                try:
                    r = client.post(f"/{version}/score", json=body(tx_id, tx_id % 97, version=version, minute=k))
                except httpx.TransportError as exc:
                    with self._lock:
                        self.errors.append(type(exc).__name__)
                    return  # the server is gone (the hard-kill test): stop this client
                with self._lock:
                    self.responses.append((r.status_code, r.json() if r.status_code == 200 else None))

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.responses) < n and time.monotonic() < deadline and any(t.is_alive() for t in self._threads):
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        for t in self._threads:
            t.join(timeout=60)


def test_hot_swap_under_traffic_fails_no_request(store, tmp_path):
    registry = store.registry()
    with (
        running(store, f"sqlite:///{tmp_path / 'log.db'}") as server,
        Traffic(server.url, threads=4, per_thread=150, first_id=1) as traffic,
    ):
        traffic.wait_for(100)
        registry.promote(2, who="tests", why="swap under traffic")
        assert httpx.post(f"{server.url}/admin/reload", headers=ADMIN, timeout=30).json()["model_version"] == 2
        traffic.wait_for(300)
        assert registry.rollback(who="tests", why="swap back under traffic") == 1
        assert httpx.post(f"{server.url}/admin/reload", headers=ADMIN, timeout=30).json()["model_version"] == 1
    statuses = [status for status, _ in traffic.responses]
    assert len(statuses) == 600 and not traffic.errors
    assert statuses.count(200) == 600, f"non-200 answers during the swap: {sorted(set(statuses))}"
    answers = [out for _, out in traffic.responses if out is not None]
    assert {out["model_version"] for out in answers} == {1, 2}, "both versions must have served"
    # Each answer is one model's, start to finish: its threshold is its version's threshold.
    mixed = [out for out in answers if out["threshold"] != store.thresholds[out["model_version"]]]
    assert not mixed, f"{len(mixed)} answers mix two models, e.g. {mixed[0]}"


def test_a_real_uvicorn_sends_server_timing_on_scoring_answers(store, tmp_path):
    # Through uvicorn's own HTTP stack: the middleware's header must reach the wire, not just TestClient.
    with running(store, f"sqlite:///{tmp_path / 'log.db'}") as server, httpx.Client(timeout=30) as client:
        answers = [client.post(f"{server.url}/v1/score", json=body(90_000 + i, 3, minute=i)) for i in range(5)]
        health = client.get(f"{server.url}/health")
    for answer in answers:
        assert answer.status_code == 200, answer.text
        names = [part.strip().split(";")[0] for part in answer.headers["server-timing"].split(",")]
        assert names == ["state", "features", "model", "log", "total"], answer.headers["server-timing"]
    assert "server-timing" not in health.headers


def test_every_request_answered_200_survives_a_kill_9_and_a_restart(store, tmp_path):
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    server = ServerProcess(server_env(store, log_url), start_timeout=START_TIMEOUT)
    try:
        with Traffic(server.url, threads=4, per_thread=500, first_id=10_000) as traffic:
            traffic.wait_for(200)
            server.kill()  # mid-traffic: requests are in flight in every thread
    finally:
        server.stop()
    answered = {out["request_id"] for status, out in traffic.responses if status == 200 and out is not None}
    assert 200 <= len(answered) < 2000, "the kill must land in the middle of the traffic"
    log = DecisionLog(log_url)
    try:
        missing = answered - log.request_ids()
    finally:
        log.close()
    assert not missing, f"{len(missing)} request ids answered 200 are not in the decision log"
    # The restarted service rebuilds its feature state from the log: nothing it decided is forgotten.
    with running(store, log_url) as server:
        ready = httpx.get(f"{server.url}/ready", timeout=5).json()
        assert ready["transactions_in_state"] >= len(answered)


def test_a_corrupt_model_is_refused_at_reload_and_at_start_and_the_service_keeps_serving(store, tmp_path):
    registry = store.registry()
    champion = registry.get("champion")
    path = champion.artifact_path
    backup = tmp_path / "model.joblib.bak"
    shutil.copyfile(path, backup)
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    try:
        with running(store, log_url) as server, httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post("/v1/score", json=body(1, 1)).json()["model_version"] == champion.version
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated on disk
            refused = client.post("/admin/reload", headers=ADMIN)
            assert refused.status_code == 409, refused.text
            assert "IntegrityError" in refused.json()["detail"] and "keeps serving" in refused.json()["detail"]
            still = client.post("/v1/score", json=body(2, 1))
            assert still.status_code == 200 and still.json()["model_version"] == champion.version
        with running(store, log_url) as server, httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/health").status_code == 200
            ready = client.get("/ready")
            assert ready.status_code == 503 and "sha256" in ready.json()["detail"]
            scored = client.post("/v1/score", json=body(3, 1))
            assert scored.status_code == 503 and "IntegrityError" in scored.json()["detail"]
    finally:
        shutil.copyfile(backup, path)


def test_two_workers_share_the_feature_state_and_both_follow_a_promotion(store, tmp_path):
    # One customer's transactions, one after the other, each on a new connection: the kernel hands
    # them to either worker. The customer's 1-day count must still go 1, 2, 3, ... as offline.
    n = 30
    fast_follow = {"MLSYS_LAB_MODEL_REFRESH_SECONDS": "0.2"}
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    with running(store, log_url, workers=2, env=fast_follow) as server:
        for k in range(n):
            r = httpx.post(f"{server.url}/v1/score", json=body(500 + k, 42, minute=k), timeout=10)
            assert r.status_code == 200, r.text
        log = DecisionLog(log_url)
        try:
            counts = [log.decision_for(500 + k)["features"]["customer_id_nb_tx_1day_window"] for k in range(n)]
        finally:
            log.close()
        assert counts == [float(k + 1) for k in range(n)]
        # A promotion reaches both workers: one through /admin/reload, the other by following the alias.
        registry = store.registry()
        registry.promote(2, who="tests", why="two workers follow")
        try:
            assert httpx.post(f"{server.url}/admin/reload", headers=ADMIN, timeout=30).status_code == 200
            # Each worker says who it is: keep asking on new connections (the kernel spreads them)
            # until both workers have answered with version 2, within a bounded number of requests.
            served: dict[int, int] = {}
            for _ in range(400):
                ready = httpx.get(f"{server.url}/ready", timeout=10).json()
                served[ready["worker_pid"]] = ready["model_version"]
                if len(served) == 2 and set(served.values()) == {2}:
                    break
                time.sleep(0.02)
            assert len(served) == 2, f"only worker(s) {sorted(served)} answered 400 requests: both must serve"
            assert set(served.values()) == {2}, f"after the promotion the workers serve {served}"
        finally:
            assert registry.rollback(who="tests", why="back to the first champion") == 1


def test_a_request_dated_a_month_ahead_is_refused_and_later_decisions_keep_their_features(store, tmp_path):
    # Against a control: the same traffic without the far-dated request must give the same features.
    logs = [f"sqlite:///{tmp_path / name}" for name in ("control.db", "probed.db")]
    features = []
    for log_url in logs:
        with running(store, log_url) as server, httpx.Client(base_url=server.url, timeout=10) as client:
            for k in range(120):
                assert client.post("/v1/score", json=body(20_000 + k, k % 9, minute=k)).status_code == 200
            if log_url.endswith("probed.db"):
                ahead = {**body(99_999, 3, minute=0), "tx_datetime": "2018-07-15T09:00:00"}
                refused = client.post("/v1/score", json=ahead)
                assert refused.status_code == 422, refused.text
                assert refused.json()["detail"][0]["loc"] == ["body", "tx_datetime"]
                assert "MLSYS_LAB_MAX_AHEAD_SECONDS" in refused.json()["summary"]
            held = client.get("/ready").json()["transactions_in_state"]
            assert held == 120, f"the state holds {held} transactions after the far-dated request, not 120"
            for k in range(20):
                assert client.post("/v1/score", json=body(30_000 + k, k % 9, minute=130 + k)).status_code == 200
        log = DecisionLog(log_url)
        try:
            features.append([log.decision_for(30_000 + k)["features"] for k in range(20)])
        finally:
            log.close()
    assert features[0] == features[1], "a refused request changed the features of later decisions"


def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_schema(store, tmp_path):
    # The OpenAPI schema is the truth: cases generated from it (valid and invalid) must never get a
    # 5xx, and every answer must match its documented status and body. Bounded: 40 cases per operation.
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    with running(store, f"sqlite:///{tmp_path / 'log.db'}") as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/v1/score", "/v2/score", "/v1/feedback", "/v1/score/batch"}
        for operation in operations:

            @settings(
                max_examples=40,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=operation.as_strategy())
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=server.url, headers=ADMIN, checks=checks, timeout=10)

            check()


def test_a_server_that_fails_to_start_says_why_from_its_log_file(tmp_path):
    # The log file is read back while the server writes it: opened write-only, reading it failed (EBADF).
    with pytest.raises(RuntimeError, match=r"MLSYS_LAB_BATCH_LIMIT|batch_limit"):
        ServerProcess({"MLSYS_LAB_BATCH_LIMIT": "0"}, output=tmp_path / "server.log", start_timeout=START_TIMEOUT)
