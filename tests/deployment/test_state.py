"""The serving state against its log: concurrency, refused commits, far-dated requests, limits and tokens.

What each test catches if the guarantee breaks:

- concurrent scoring and feedback: a state that reads the log's tables behind the log's lock breaks
  the in-memory log ("cannot start a transaction within a transaction");
- commit before acknowledge: answering although the commit failed (an ``except SQLAlchemyError:``
  around it) gives a 200 for a decision the log does not hold; observing a single transaction before
  its commit, or not marking the state dirty after a refused batch, leaves transactions in memory
  that the log does not have, and the next request's counts include them;
- far-dated requests: pruning driven by the newest time drops every customer's history;
- idempotence: two states on one file (two workers) racing for one transaction both answer, with one
  decision.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mlsys_lab.deployment.decision_log import DecisionLog, LogTail
from mlsys_lab.deployment.deps import get_model
from mlsys_lab.deployment.schemas import Transaction
from mlsys_lab.deployment.service import create_app
from mlsys_lab.deployment.state import ConflictingTransaction, ServingState, TooFarAhead

from .test_service_contract import FEEDBACK_TOKEN, LABELLER, TOKEN, fake_model, settings_for

pytestmark = pytest.mark.slow  # most tests start an app, whose empty MLflow store takes seconds to create

T0 = dt.datetime(2018, 5, 1, 10)
_ids = itertools.count(5_000_000)
COUNT = "customer_id_nb_tx_1day_window"


def tx(customer: int = 1, *, minutes: float = 0, transaction_id: int | None = None) -> Transaction:
    return Transaction(
        transaction_id=next(_ids) if transaction_id is None else transaction_id,
        customer_id=customer,
        terminal_id=customer % 13,
        tx_datetime=T0 + dt.timedelta(minutes=minutes),
        tx_amount=10.0 + customer % 5,
        schema_version="v1",
    )


def body(t: Transaction) -> dict[str, object]:
    return {
        "transaction_id": t.transaction_id,
        "customer_id": t.customer_id,
        "terminal_id": t.terminal_id,
        "tx_datetime": t.tx_datetime.isoformat(),
        "tx_amount": t.tx_amount,
    }


@pytest.fixture(params=["memory", "file"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DecisionLog]:
    url = "sqlite://" if request.param == "memory" else f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(url)
    log.create()
    yield log
    log.close()


def test_concurrent_scoring_and_feedback_all_succeed_on_the_memory_and_the_file_log(log):
    # 4 threads x 300 calls, scoring and labelling interleaved: the shape that failed 43 of 1,200 calls
    # when the state read the log's tables outside the log's lock.
    serving = ServingState.rebuild(log)
    model = fake_model()
    errors: list[str] = []

    def client(k: int) -> None:
        for i in range(150):
            try:
                t = tx(customer=k * 1000 + i % 17, minutes=i)
                serving.decide([t], model, 0.0)
                serving.record_label(t.transaction_id, i % 2 == 0, t.tx_datetime + dt.timedelta(hours=1))
            except Exception as exc:  # every failure counts, whatever its type
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, f"{len(errors)} of 1,200 calls failed, e.g. {errors[0]}"
    assert len(log.decisions()) == 600 and len(log.labels()) == 600


class CountingLog(DecisionLog):
    """A real log that counts the rows its tail hands out."""

    tailed = 0

    def tail(self, *, after_decision_id: int, after_label_id: int) -> LogTail:
        result = super().tail(after_decision_id=after_decision_id, after_label_id=after_label_id)
        self.tailed += len(result.decisions) + len(result.labels)
        return result


def test_the_rebuild_reads_each_row_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    first = ServingState.rebuild(DecisionLog(url))
    model = fake_model()
    for i in range(20):
        first.decide([tx(customer=i % 3, minutes=i)], model, 0.0)
    log = CountingLog(url)
    restarted = ServingState.rebuild(log)
    assert len(restarted) == 20
    restarted.decide([tx(customer=1, minutes=30)], model, 0.0)
    assert log.tailed == 0, f"the rebuild re-read {log.tailed} rows it had already loaded"


# -- commit before acknowledge: a log that refuses writes -------------------------------------------


class RefusingLog(DecisionLog):
    """A real SQLite log whose writes fail at commit while ``refusing`` is set, as on a full disk.

    The rows are inserted for real; just before the commit the write path raises SQLite's own
    "database or disk is full" error, so the transaction rolls back, as it does when the disk fills.
    """

    refusing = False

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with super()._writing() as connection:
            yield connection
            if self.refusing:
                full = sqlite3.OperationalError("database or disk is full")
                raise sa.exc.OperationalError("COMMIT", {}, full)


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[tuple[TestClient, RefusingLog]]:
    settings = settings_for(tmp_path)
    app = create_app(settings)
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as client:
        serving = app.state.service.serving
        faulty = RefusingLog(settings.decision_log_url)
        serving.log = faulty
        yield client, faulty
        faulty.close()


def logged_count(log: DecisionLog, transaction_id: int) -> float:
    row = log.decision_for(transaction_id)
    assert row is not None, f"transaction {transaction_id} is not in the log"
    return float(row["features"][COUNT])


def test_a_refused_single_commit_is_a_fast_503_and_leaves_nothing_behind(refusing):
    client, log = refusing
    serving = client.app.state.service.serving  # type: ignore[attr-defined]
    assert client.post("/v1/score", json=body(tx(customer=7, minutes=0))).status_code == 200
    log.refusing = True
    lost = tx(customer=7, minutes=1)
    answer = client.post("/v1/score", json=body(lost))
    assert answer.status_code == 503, answer.text
    assert "nothing was decided" in answer.json()["detail"] and "full" in answer.json()["detail"]
    assert log.decision_for(lost.transaction_id) is None
    assert serving.dirty is None and serving.rebuilds == 0, "a refused single request needs no rebuild"
    log.refusing = False
    after = tx(customer=7, minutes=2)
    assert client.post("/v1/score", json=body(after)).status_code == 200
    assert logged_count(log, after.transaction_id) == 2.0, "the refused transaction must not count"


def test_a_refused_batch_marks_the_state_dirty_and_one_rebuild_restores_it(refusing):
    client, log = refusing
    serving = client.app.state.service.serving  # type: ignore[attr-defined]
    assert client.post("/v1/score", json=body(tx(customer=8, minutes=0))).status_code == 200
    log.refusing = True
    batch = [tx(customer=8, minutes=1 + i) for i in range(6)]
    answer = client.post("/v1/score/batch", json={"transactions": [body(t) for t in batch]})
    assert answer.status_code == 503, answer.text
    assert all(log.decision_for(t.transaction_id) is None for t in batch), "nothing of the batch is stored"
    assert serving.wait_consistent(timeout=60), serving.dirty
    assert serving.rebuilds == 1
    log.refusing = False
    after = tx(customer=8, minutes=30)
    assert client.post("/v1/score", json=body(after)).status_code == 200
    assert logged_count(log, after.transaction_id) == 2.0, "the refused batch must not count"


def test_a_read_only_log_answers_503_and_acknowledges_nothing(tmp_path):
    path = tmp_path / "decisions.db"
    DecisionLog(f"sqlite:///{path}").create()
    settings = settings_for(tmp_path, decision_log_url=f"sqlite:///file:{path}?mode=ro&uri=true")
    app = create_app(settings)
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as client:
        answers = [client.post("/v1/score", json=body(tx(customer=3, minutes=i))) for i in range(5)]
    assert [a.status_code for a in answers] == [503] * 5, answers[0].text
    assert "readonly" in answers[0].json()["detail"]
    assert DecisionLog(f"sqlite:///{path}").decisions().empty


# -- far-dated requests -------------------------------------------------------------------------------


def test_a_request_far_ahead_of_the_stream_is_refused_and_cannot_prune_the_state(log):
    serving = ServingState.rebuild(log)
    model = fake_model()
    for i in range(150):
        serving.decide([tx(customer=i % 20, minutes=10 * i)], model, 0.0)
    held = len(serving)
    month_ahead = tx(customer=1, minutes=10 * 150 + 30 * 24 * 60)
    with pytest.raises(TooFarAhead, match="after the transactions the service is receiving"):
        serving.decide([month_ahead], model, 0.0)
    # Within the tolerance, transactions half a day ahead are fine, and a few such cannot move the clock.
    for i in range(20):
        serving.decide([tx(customer=50 + i, minutes=10 * 150 + 12 * 60)], model, 0.0)
    assert len(serving) == held + 20, "pruning dropped history that later transactions need"
    with pytest.raises(TooFarAhead, match="after the service's clock"):
        serving.decide(
            [tx(customer=1, minutes=0).model_copy(update={"tx_datetime": dt.datetime(9000, 1, 1)})], model, 0.0
        )


def test_a_far_dated_request_is_a_422_naming_the_field(tmp_path):
    app = create_app(settings_for(tmp_path, max_ahead_seconds=86_400))
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as client:
        assert client.post("/v1/score", json=body(tx(customer=2))).status_code == 200
        far = {**body(tx(customer=2)), "tx_datetime": "2019-05-01T10:00:00"}
        answer = client.post("/v1/score", json=far)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", "tx_datetime"]
        assert "tx_datetime" in answer.json()["summary"] and "MLSYS_LAB_MAX_AHEAD_SECONDS" in answer.text


# -- one decision per transaction, across workers --------------------------------------------------------


def test_two_workers_racing_for_one_transaction_make_one_decision_and_both_answer_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    workers = [ServingState.rebuild(DecisionLog(url)), ServingState.rebuild(DecisionLog(url))]
    model = fake_model()
    same = [tx(customer=i % 9, minutes=i) for i in range(100)]
    answers: list[list[str]] = [[], []]
    errors: list[str] = []

    def run(k: int) -> None:
        for t in same:
            try:
                answers[k].append(workers[k].decide([t], model, 0.0)[0].request_id)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    decisions = DecisionLog(url).decisions()
    assert len(decisions) == 100 and decisions["transaction_id"].is_unique
    assert answers[0] == answers[1] == decisions["request_id"].tolist(), "both answers are the one stored decision"


def test_a_transaction_older_than_every_window_gets_its_stored_decision_or_a_409(log):
    # One new transaction is not looked up before scoring (the unique index is the check): a resent id
    # that the state has pruned must still get the stored decision back, or the usual 409, never a second row.
    serving = ServingState.rebuild(log, max_ahead_seconds=90 * 86_400)
    model = fake_model()
    old = tx(customer=1)
    first = serving.decide([old], model, 0.0)[0]
    for i in range(120):  # 60 days later: the stream clock moves past every window, the state prunes
        serving.decide([tx(customer=2 + i % 7, minutes=60 * 24 * 60 + i)], model, 0.0)
    assert old.transaction_id not in serving._state, "the test needs the old transaction pruned"
    again = serving.decide([old], model, 0.0)[0]
    assert again.replayed and again.request_id == first.request_id, "a retry gets the stored decision"
    with pytest.raises(ConflictingTransaction, match="already decided for a different transaction"):
        serving.decide([old.model_copy(update={"tx_amount": 99.0})], model, 0.0)
    decisions = log.decisions()
    assert len(decisions) == 121 and decisions["transaction_id"].is_unique


# -- body size, echoes, parse errors, tokens ---------------------------------------------------------------


@pytest.fixture
def small_app(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path, max_body_bytes=4096))
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as client:
        yield client


def test_an_oversized_body_is_a_413_before_it_is_parsed(small_app):
    big = b'{"transactions": [' + b"1," * 5000 + b"1]}"
    declared = small_app.post("/v1/score/batch", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "MLSYS_LAB_MAX_BODY_BYTES" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it streams
        yield b'{"transactions": ['
        for _ in range(100):
            yield b"1," * 100
        yield b"1]}"

    streamed = small_app.post("/v1/score/batch", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert small_app.get("/health").status_code == 200


def test_a_422_never_echoes_a_long_input(small_app):
    padded = {**body(tx()), "tx_amount": "x" * 3000}
    answer = small_app.post("/v1/score", json=padded)
    assert answer.status_code == 422 and len(answer.content) < 1500, len(answer.content)
    assert "cut" in str(answer.json()["detail"][0]["input"])


def test_a_body_that_cannot_be_decoded_is_a_422_naming_the_body(small_app):
    answer = small_app.post("/v1/score", content=b"\xff\xfe{", headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["summary"].startswith("invalid body")


def test_a_batch_over_the_limit_is_refused_before_its_rows_are_validated(small_app):
    # 9 garbage rows: one error about the length, none about the rows.
    answer = small_app.post("/v1/score/batch", json={"transactions": [{"nonsense": 1}] * 9})
    assert answer.status_code == 422
    assert [e["type"] for e in answer.json()["detail"]] == ["too_long"]


def test_feedback_needs_the_feedback_or_the_admin_token(tmp_path):
    app = create_app(settings_for(tmp_path))
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app) as client:
        scored = tx(customer=4)
        assert client.post("/v1/score", json=body(scored)).status_code == 200
        label = {"transaction_id": scored.transaction_id, "is_fraud": True, "label_time": "2018-05-02T10:00:00"}
        assert client.post("/v1/feedback", json=label).status_code == 401
        assert client.post("/v1/feedback", json=label, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/v1/feedback", json=label, headers=LABELLER).status_code == 200
        admin = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/v1/feedback", json=label, headers=admin).status_code == 200
        log = app.state.service.serving.log
        assert len(log.labels()) == 2, "only the two authorised labels are stored"
    assert FEEDBACK_TOKEN != TOKEN
    app = create_app(settings_for(tmp_path / "closed", admin_token=None, feedback_token=None))
    with TestClient(app) as client:
        closed = client.post(
            "/v1/feedback", json={"transaction_id": 1, "is_fraud": True, "label_time": "2018-05-02T10:00:00"}
        )
        assert closed.status_code == 403 and "MLSYS_LAB_FEEDBACK_TOKEN" in closed.json()["detail"]


def test_the_openapi_schema_says_what_v1_accepts_and_the_batch_limit(small_app):
    schema = small_app.get("/openapi.json").json()
    v1_time = schema["components"]["schemas"]["TransactionV1Create"]["properties"]["tx_datetime"]
    assert "format" not in v1_time and "pattern" in v1_time, "v1 takes naive times: no date-time format"
    batches = [s for name, s in schema["components"]["schemas"].items() if name.startswith("TransactionV1Batch")]
    assert batches[0]["properties"]["transactions"]["maxItems"] == 8
    score = schema["paths"]["/v1/score"]["post"]["responses"]
    assert {"200", "409", "413", "422", "503"} <= set(score)
