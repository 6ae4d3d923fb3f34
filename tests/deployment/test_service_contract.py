"""The scoring API's contract, in process with FastAPI's TestClient.

The app runs its real lifespan (decision log on a temporary SQLite file, feature state rebuilt from
it) against an empty registry, so no model loads; the tests that need one give it through
``app.dependency_overrides[get_model]``, the seam FastAPI's docs recommend. The model is a small
pipeline fitted on random rows: the contract does not depend on what it learned.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.features import FEATURE_COLUMNS, build_features
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.deps import get_model, get_settings
from mlsys_lab.deployment.registry import LoadedModel, ModelVersionInfo
from mlsys_lab.deployment.schemas import TransactionV1Create, transaction_from_v1, transaction_from_v2, v2_from_v1
from mlsys_lab.deployment.service import create_app
from mlsys_lab.deployment.settings import ServiceSettings

TOKEN = "test-admin-token"
FEEDBACK_TOKEN = "test-feedback-token"
LABELLER = {"Authorization": f"Bearer {FEEDBACK_TOKEN}"}
ORIGIN = pd.Timestamp("2018-04-01")
D = 86_400
_ids = itertools.count(1_000_000)


def fake_model(version: int = 7, threshold: float = 0.5, pipeline_class: type[Pipeline] = Pipeline) -> LoadedModel:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, len(FEATURE_COLUMNS)))
    y = (X[:, 0] > 1).astype(int)
    info = ModelVersionInfo(
        version=version,
        run_id="contract-test",
        sha256="0" * 64,
        artifact_path=Path("/nonexistent/model.joblib"),
        features=FEATURE_COLUMNS,
        threshold=threshold,
        request_schema_version="v1",
        data_fingerprint="test",
        metrics={},
        created_at=dt.datetime.now(dt.UTC),
    )
    pipeline = pipeline_class([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(X, y)
    return LoadedModel(info=info, pipeline=pipeline)


class SwapWhileScoring(Pipeline):
    """A pipeline that runs ``on_predict`` in the middle of a request: a hot swap at the worst moment."""

    on_predict: Callable[[], object] = staticmethod(lambda: None)

    def predict_proba(self, X: np.ndarray, **params: object) -> np.ndarray:
        self.on_predict()
        return super().predict_proba(X, **params)


def settings_for(tmp: Path, **changes: object) -> ServiceSettings:
    values = {
        "tracking_dir": tmp / "empty-registry",
        "decision_log_url": f"sqlite:///{tmp / 'decisions.db'}",
        "admin_token": TOKEN,
        "feedback_token": FEEDBACK_TOKEN,
        "batch_limit": 8,
        # These tests jump weeks between requests on one app; the tolerance has tests of its own.
        "max_ahead_seconds": 400 * D,
    }
    return ServiceSettings.model_validate({**values, **changes})


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> ServiceSettings:
    return settings_for(tmp_path_factory.mktemp("contract"))


@pytest.fixture(scope="module")
def app_client(settings: ServiceSettings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(app_client: TestClient) -> Iterator[TestClient]:
    app_client.app.dependency_overrides[get_model] = fake_model  # type: ignore[attr-defined]
    yield app_client
    app_client.app.dependency_overrides.clear()  # type: ignore[attr-defined]


def v1_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "transaction_id": next(_ids),
        "customer_id": 1,
        "terminal_id": 2,
        "tx_datetime": "2018-05-01T10:00:00",
        "tx_amount": 42.5,
    }
    return {**body, **changes}


def v2_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "transaction_id": next(_ids),
        "customer_id": 1,
        "terminal_id": 2,
        "tx_datetime": "2018-05-01T08:00:00Z",
        "amount_minor": 4250,
        "currency": "EUR",
    }
    return {**body, **changes}


def logged(settings: ServiceSettings, transaction_id: int) -> dict[str, object]:
    log = DecisionLog(settings.decision_log_url)
    try:
        row = log.decision_for(transaction_id)
    finally:
        log.close()
    assert row is not None, f"transaction {transaction_id} is not in the decision log"
    return row


# -- ops --------------------------------------------------------------------------------------------


def test_health_is_alive_and_ready_says_why_there_is_no_model(app_client):
    assert app_client.get("/health").json() == {"status": "alive"}
    ready = app_client.get("/ready")
    assert ready.status_code == 503
    assert "no model to serve" in ready.json()["detail"] and "RegistryError" in ready.json()["detail"]


def test_scoring_without_a_model_is_503_with_the_reason_never_500(app_client):
    response = app_client.post("/v1/score", json=v1_body())
    assert response.status_code == 503, response.text
    assert "no model to serve" in response.json()["detail"]


# -- scoring --------------------------------------------------------------------------------------


def test_v1_score_returns_a_logged_decision_under_the_models_threshold(client, settings):
    body = v1_body()
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert uuid.UUID(out["request_id"]).version == 4
    assert out["model_version"] == 7 and out["threshold"] == 0.5 and out["schema_version"] == "v1"
    assert 0 <= out["score"] <= 1 and out["decision"] == (out["score"] >= 0.5)
    assert response.headers["Deprecation"] == "true"  # v1 works, and says v2 is its successor
    row = logged(settings, body["transaction_id"])
    assert row["request_id"] == out["request_id"] and row["model_version"] == 7


def test_v2_is_the_same_transaction_as_v1_in_the_banks_time_zone(client, settings):
    # 08:00Z on 1 May is 10:00 in Brussels (summer time): both versions must log the same transaction.
    a, b = v1_body(customer_id=50), v2_body(customer_id=51)
    assert client.post("/v1/score", json=a).status_code == 200
    response = client.post("/v2/score", json=b)
    assert response.status_code == 200, response.text
    assert response.json()["schema_version"] == "v2" and "Deprecation" not in response.headers
    for key in ("tx_datetime", "tx_amount"):
        assert (
            pd.Timestamp(logged(settings, a["transaction_id"])[key])
            == pd.Timestamp(logged(settings, b["transaction_id"])[key])
            if key == "tx_datetime"
            else logged(settings, a["transaction_id"])[key] == logged(settings, b["transaction_id"])[key]
        )


def test_migration_v1_to_v2_and_back_is_the_identity():
    v1 = TransactionV1Create.model_validate(v1_body(tx_amount=19.99))
    there_and_back = transaction_from_v2(v2_from_v1(v1))
    assert there_and_back.model_dump(exclude={"schema_version"}) == transaction_from_v1(v1).model_dump(
        exclude={"schema_version"}
    )


def test_the_same_transaction_again_gets_its_stored_decision_and_a_different_one_a_409(client, settings):
    body = v1_body()
    first = client.post("/v1/score", json=body)
    assert first.status_code == 200
    # A client that lost the answer sends the request again: it learns what was decided, once.
    again = client.post("/v1/score", json=body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert logged(settings, body["transaction_id"])["n_decisions"] == 1
    # The same id for another transaction is a conflict that says so.
    other = client.post("/v1/score", json={**body, "tx_amount": 99.0})
    assert other.status_code == 409 and str(body["transaction_id"]) in other.json()["detail"]
    assert "different transaction" in other.json()["detail"]
    # In a batch, the stored decision comes back in its place; new rows are scored.
    fresh = v1_body()
    batch = client.post("/v1/score/batch", json={"transactions": [body, fresh]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["results"][0] == first.json()
    assert batch.json()["results"][1]["transaction_id"] == fresh["transaction_id"]
    twice = v1_body()
    in_one_batch = client.post("/v1/score/batch", json={"transactions": [twice, twice]})
    assert in_one_batch.status_code == 409 and "more than once" in in_one_batch.json()["detail"]


def test_batch_scores_in_order_and_later_rows_see_earlier_ones(client, settings):
    customer = 777
    rows = [v1_body(customer_id=customer, tx_datetime=f"2018-05-02T1{i}:00:00") for i in range(3)]
    response = client.post("/v1/score/batch", json={"transactions": rows})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["transaction_id"] for r in results] == [r["transaction_id"] for r in rows]
    counts = [logged(settings, r["transaction_id"])["features"]["customer_id_nb_tx_1day_window"] for r in rows]
    assert counts == [1.0, 2.0, 3.0]


def test_batch_over_the_limit_is_a_422_naming_the_field(client):
    response = client.post("/v2/score/batch", json={"transactions": [v2_body() for _ in range(9)]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "transactions"]
    assert "at most 8" in response.json()["detail"][0]["msg"]


# -- Server-Timing: where a scoring request's time went ------------------------------------------------

STAGES = ["state", "features", "model", "log", "total"]


def server_timing(response: object) -> dict[str, float]:
    """``Server-Timing: name;dur=ms, ...`` as {name: ms}, in header order."""
    header = response.headers["server-timing"]  # type: ignore[attr-defined]
    metrics = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        metrics[name] = float(duration)
    return metrics


def test_a_scored_request_says_in_server_timing_where_its_time_went(client):
    response = client.post("/v2/score", json=v2_body())
    assert response.status_code == 200, response.text
    timing = server_timing(response)
    assert list(timing) == STAGES, f"expected the stages {STAGES}, got {response.headers['server-timing']!r}"
    # A new decision calls the model and commits to the log: both took time.
    assert timing["model"] > 0 and timing["log"] > 0 and timing["features"] > 0, timing
    # The stages are consecutive parts of the request: together they fit inside its total.
    assert sum(timing[name] for name in STAGES[:-1]) <= timing["total"], timing


def test_server_timing_of_a_retry_shows_no_model_call_and_no_log_write(client):
    body = v1_body()
    assert client.post("/v1/score", json=body).status_code == 200
    again = client.post("/v1/score", json=body)
    assert again.status_code == 200, again.text
    timing = server_timing(again)
    assert timing["model"] == 0 and timing["log"] == 0, f"a retry gets its stored decision, timing {timing}"


def test_a_batch_has_server_timing_and_health_and_errors_have_none(client):
    batch = client.post("/v1/score/batch", json={"transactions": [v1_body() for _ in range(3)]})
    assert batch.status_code == 200 and list(server_timing(batch)) == STAGES
    assert "server-timing" not in client.get("/health").headers
    refused = client.post("/v1/score", json=v1_body(tx_amount=-1))
    assert refused.status_code == 422 and "server-timing" not in refused.headers


# -- bad requests: 422 naming the field -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/score", v1_body(tx_ammount=1.0), "tx_ammount"),  # a typo is refused, not ignored
        ("/v1/score", v1_body(transaction_id="12"), "transaction_id"),  # strict: no string ids
        ("/v1/score", v1_body(customer_id=-1), "customer_id"),
        ("/v1/score", v1_body(tx_amount=-3.0), "tx_amount"),
        ("/v1/score", v1_body(tx_datetime="2018-05-01T10:00:00+02:00"), "tx_datetime"),  # v1 is naive
        ("/v2/score", v2_body(tx_datetime="2018-05-01T10:00:00"), "tx_datetime"),  # v2 needs an offset
        ("/v2/score", v2_body(currency="USD"), "currency"),
        ("/v2/score", v2_body(amount_minor=12.5), "amount_minor"),
        ("/v2/score", {k: v for k, v in v2_body().items() if k != "terminal_id"}, "terminal_id"),
        ("/v1/feedback", {"transaction_id": 1, "is_fraud": "yes", "label_time": "2018-05-03T00:00:00"}, "is_fraud"),
    ],
)
def test_every_bad_request_is_a_422_that_names_the_field(client, path, body, field):
    response = client.post(path, json=body, headers=LABELLER)
    assert response.status_code == 422, response.text
    out = response.json()
    assert field in [e["loc"][-1] for e in out["detail"]]
    assert field in out["summary"]


def test_a_body_that_is_not_json_is_a_422(client):
    response = client.post("/v1/score", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "summary" in response.json()


# -- feedback ---------------------------------------------------------------------------------------


def test_feedback_for_an_unknown_transaction_is_a_clear_404(client):
    body = {"transaction_id": 99, "is_fraud": True, "label_time": "2018-05-03T00:00:00"}
    response = client.post("/v1/feedback", json=body, headers=LABELLER)
    assert response.status_code == 404 and "unknown transaction_id 99" in response.json()["detail"]


def test_a_fraud_label_raises_the_terminal_risk_a_week_after_it_became_known(client, settings):
    terminal = 4242
    first = v1_body(customer_id=900, terminal_id=terminal, tx_datetime="2018-06-01T12:00:00")
    assert client.post("/v1/score", json=first).status_code == 200
    label = {"transaction_id": first["transaction_id"], "is_fraud": True, "label_time": "2018-06-02T12:00:00"}
    response = client.post("/v1/feedback", json=label, headers=LABELLER)
    assert response.status_code == 200 and response.json()["applied_to_features"] is True
    assert response.json()["label_time"] == "2018-06-02T12:00:00+02:00", "the schema promises an offset"
    before = v1_body(customer_id=901, terminal_id=terminal, tx_datetime="2018-06-09T11:59:59")
    after = v1_body(customer_id=902, terminal_id=terminal, tx_datetime="2018-06-09T12:00:00")
    for body in (before, after):
        assert client.post("/v1/score", json=body).status_code == 200
    risk = "terminal_id_risk_7day_window"
    assert logged(settings, before["transaction_id"])["features"][risk] == 0.0  # known 6.99 days before
    assert logged(settings, after["transaction_id"])["features"][risk] == 1.0  # known 7 days before


def labels_of(settings: ServiceSettings, transaction_ids: list[object]) -> list[tuple[int, bool]]:
    log = DecisionLog(settings.decision_log_url)
    try:
        rows = log.labels()
    finally:
        log.close()
    rows = rows[rows["transaction_id"].isin(transaction_ids)]
    return list(zip(rows["transaction_id"].tolist(), rows["is_fraud"].tolist(), strict=True))


def test_a_feedback_batch_records_its_labels_in_order_or_none_and_names_the_bad_row(client, settings):
    terminal = 4343
    first, second = (
        v1_body(customer_id=910 + i, terminal_id=terminal, tx_datetime=f"2018-07-0{i + 1}T12:00:00") for i in range(2)
    )
    assert client.post("/v1/score/batch", json={"transactions": [first, second]}).status_code == 200
    ids = [first["transaction_id"], second["transaction_id"]]
    good = [
        {"transaction_id": ids[1], "is_fraud": True, "label_time": "2018-07-03T12:00:00"},
        {"transaction_id": ids[0], "is_fraud": True, "label_time": "2018-07-03T12:00:00"},
    ]
    unknown = client.post(
        "/v1/feedback/batch", json={"labels": [good[0], {**good[1], "transaction_id": 99}]}, headers=LABELLER
    )
    assert unknown.status_code == 404 and "[99]" in unknown.json()["detail"]
    early = client.post(
        "/v1/feedback/batch",
        json={"labels": [good[0], {**good[1], "label_time": "2018-07-01T11:00:00"}]},
        headers=LABELLER,
    )
    assert early.status_code == 422, early.text
    assert early.json()["detail"][0]["loc"] == ["body", "labels", 1, "label_time"] and "cannot be known" in early.text
    invalid = client.post(
        "/v1/feedback/batch", json={"labels": [good[0], {**good[1], "is_fraud": "yes"}]}, headers=LABELLER
    )
    assert invalid.status_code == 422 and "labels.1.is_fraud" in invalid.json()["summary"]
    assert labels_of(settings, ids) == [], "a refused batch records none of its labels"
    answer = client.post("/v1/feedback/batch", json={"labels": good}, headers=LABELLER)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["transaction_id"] for r in results] == [ids[1], ids[0]] and all(r["applied_to_features"] for r in results)
    assert results[0]["label_time"] == "2018-07-03T12:00:00+02:00", "the schema promises an offset"
    assert labels_of(settings, ids) == [(ids[1], True), (ids[0], True)]
    # Applied to the features as /v1/feedback's are: both frauds count a week after they became known.
    later = v1_body(customer_id=919, terminal_id=terminal, tx_datetime="2018-07-10T12:00:00")
    assert client.post("/v1/score", json=later).status_code == 200
    assert logged(settings, later["transaction_id"])["features"]["terminal_id_risk_7day_window"] == 1.0


def test_a_feedback_batch_needs_the_token_and_at_most_the_batch_limit(client, settings):
    label = {"transaction_id": 1, "is_fraud": True, "label_time": "2018-07-03T12:00:00"}
    assert client.post("/v1/feedback/batch", json={"labels": [label]}).status_code == 401
    over = client.post("/v1/feedback/batch", json={"labels": [label] * (settings.batch_limit + 1)}, headers=LABELLER)
    assert over.status_code == 422 and "labels" in over.json()["summary"]
    assert client.post("/v1/feedback/batch", json={"labels": []}, headers=LABELLER).status_code == 422


def test_a_request_finishes_on_the_model_it_started_with_when_a_swap_lands_mid_request(app_client, settings):
    # Version 1 swaps version 2 in while it is scoring: the request must still answer as version 1,
    # with version 1's threshold; the next request gets version 2. A service that reads the model
    # again after scoring (for the threshold, the version) answers with a mix of the two.
    slot = app_client.app.state.service.slot
    old, new = fake_model(1, 0.3, SwapWhileScoring), fake_model(2, 0.9)
    old.pipeline.on_predict = lambda: slot.reload(lambda: new)
    reason = slot.unavailable_reason
    slot.reload(lambda: old)
    try:
        first = app_client.post("/v1/score", json=v1_body()).json()
        second = app_client.post("/v1/score", json=v1_body()).json()
    finally:
        slot.current, slot.unavailable_reason = None, reason
    assert (first["model_version"], first["threshold"]) == (1, 0.3), first
    assert (second["model_version"], second["threshold"]) == (2, 0.9), second


# -- admin ----------------------------------------------------------------------------------------


def test_admin_is_disabled_without_a_token_and_refuses_a_wrong_one(client, settings):
    client.app.dependency_overrides[get_settings] = lambda: settings.model_copy(update={"admin_token": None})
    disabled = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert disabled.status_code == 403 and "MLSYS_LAB_ADMIN_TOKEN" in disabled.json()["detail"]
    del client.app.dependency_overrides[get_settings]
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_refused_reload_is_a_409_with_the_reason(client):
    response = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 409
    assert "reload refused" in response.json()["detail"] and "RegistryError" in response.json()["detail"]
    assert client.post("/v1/score", json=v1_body()).status_code == 200


# -- online features: parity with the offline features after a restart ---------------------------------


@pytest.mark.slow  # replays ~16,000 transactions through the API (about 10 s)
def test_the_api_replays_a_day_after_a_restart_with_the_offline_features(tmp_path):
    stream = simulate(preset("tiny", n_days=40)).transactions
    offline = build_features(stream)
    day = 39
    history = stream[stream["tx_time_days"] < day]
    today = stream[stream["tx_time_days"] == day]
    settings = settings_for(tmp_path, batch_limit=512)

    def v1(row: dict[str, object]) -> dict[str, object]:
        return {
            "transaction_id": int(row["transaction_id"]),
            "customer_id": int(row["customer_id"]),
            "terminal_id": int(row["terminal_id"]),
            "tx_datetime": pd.Timestamp(row["tx_datetime"]).isoformat(),
            "tx_amount": float(row["tx_amount"]),
        }

    def label(row: dict[str, object]) -> dict[str, object]:
        when = ORIGIN + pd.Timedelta(seconds=int(row["tx_label_seconds"]))
        return {"transaction_id": int(row["transaction_id"]), "is_fraud": True, "label_time": when.isoformat()}

    frauds = stream[stream["tx_fraud"] == 1].sort_values("tx_label_seconds")
    # Day 1 of the service: the history arrives through the batch endpoint, the labels known by the
    # end of it through feedback. (Only fraud labels change features.)
    app = create_app(settings)
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as client:
        records = history.to_dict("records")
        for start in range(0, len(records), 512):
            batch = [v1(r) for r in records[start : start + 512]]
            assert client.post("/v1/score/batch", json={"transactions": batch}).status_code == 200
        for row in frauds[frauds["tx_label_seconds"] < day * D].to_dict("records"):
            assert client.post("/v1/feedback", json=label(row), headers=LABELLER).status_code == 200
    # A restart: the new app rebuilds its state from the decision log, then serves the day with
    # labels arriving as they become known.
    pending = frauds[frauds["tx_label_seconds"] >= day * D].to_dict("records")
    app = create_app(settings)
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as client:
        for row in today.to_dict("records"):
            while pending and pending[0]["tx_label_seconds"] < row["tx_time_seconds"]:
                assert client.post("/v1/feedback", json=label(pending.pop(0)), headers=LABELLER).status_code == 200
            assert client.post("/v1/score", json=v1(row)).status_code == 200
    log = DecisionLog(settings.decision_log_url)
    decisions = log.decisions(with_features=True).set_index("transaction_id")
    log.close()
    online = pd.DataFrame(
        [dict(decisions.loc[tx_id, "features"]) for tx_id in today["transaction_id"]], index=today.index
    )
    means = [c for c in FEATURE_COLUMNS if "_avg_amount_" in c]
    exact = [c for c in FEATURE_COLUMNS if c not in means]
    pd.testing.assert_frame_equal(online[exact], offline.loc[today.index, exact], check_exact=True)
    np.testing.assert_allclose(online[means].to_numpy(), offline.loc[today.index, means].to_numpy(), rtol=1e-9)
