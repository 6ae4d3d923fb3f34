"""Group commit: concurrent requests' decisions committed together, each answered only after its commit.

The decision thread decides what queued while it was busy as one group. To make "these requests
queued together" certain rather than likely, the tests hold the thread inside a first request (a
*plug*, a resent transaction answered from the log) with a gate in the log's ``tail`` until every
request of the group is waiting in its inbox; nothing here depends on timing. What each test catches
if the guarantee breaks:

- every acknowledged decision in the log, in one commit: answering before the commit, or losing a
  group member, leaves a 200 whose request id the log does not hold; no grouping at all (a group
  size of 1) makes one commit per request;
- a refused commit (a read-only log): a group answered 200 although its commit failed, or a failure
  that leaks into the next group, or a state that observed the group before its commit (the next
  request for the same card counts the refused transactions);
- dependent requests: a group that holds two requests for one card computes both counts from the
  same history (1 and 1 instead of 1 and 2); a transaction id sent twice in one group is decided twice
  (the second insert fails: a 409 instead of the stored decision) or answered with two request ids;
- another worker deciding a group member's transaction between the group's tail and its commit: the
  whole group fails, or the other members are lost, instead of only that request getting the stored decision.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from mlsys_lab.deployment.decision_log import DecisionLog, LogTail
from mlsys_lab.deployment.deps import get_model
from mlsys_lab.deployment.schemas import Transaction
from mlsys_lab.deployment.service import create_app
from mlsys_lab.deployment.state import ServingState

from .test_service_contract import fake_model, settings_for

pytestmark = pytest.mark.slow  # the app's lifespan creates an empty MLflow store (seconds)

T0 = dt.datetime(2018, 5, 1, 10)
COUNT = "customer_id_nb_tx_1day_window"
_ids = itertools.count(7_000_000)
_customers = itertools.count(10_000)


class Gate:
    """Armed, it stops the first thread that reaches it until the test opens it (then it is spent)."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.opened = threading.Event()

    def arm(self) -> None:
        self.entered.clear()
        self.opened.clear()
        self.armed = True

    def passing(self) -> None:
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self.opened.wait(60), "the test never opened the gate"


class GatedLog(DecisionLog):
    """A real SQLite log with a gate in ``tail`` (the start of a group) and one before a multi-row write."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.tail_gate = Gate()
        self.write_gate = Gate()

    def tail(self, *, after_decision_id: int, after_label_id: int) -> LogTail:
        self.tail_gate.passing()
        return super().tail(after_decision_id=after_decision_id, after_label_id=after_label_id)

    def record_many(self, decisions: Any) -> int:
        decisions = list(decisions)
        if len(decisions) > 1:
            self.write_gate.passing()
        return super().record_many(decisions)


def tx(customer: int | None = None, *, minutes: float = 0, transaction_id: int | None = None) -> Transaction:
    customer = next(_customers) if customer is None else customer
    return Transaction(
        transaction_id=next(_ids) if transaction_id is None else transaction_id,
        customer_id=customer,
        terminal_id=customer,  # a terminal per customer: requests of different customers are independent
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


def queued(serving: ServingState) -> int:
    decider = serving._decider  # the decision thread's inbox: what waits for the next group
    return 0 if decider is None else decider[1].qsize()


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.002)


@contextmanager
def uvicorn_on_loopback(app: FastAPI) -> Iterator[str]:
    """The app on a real uvicorn in a thread, on a port the OS picked on 127.0.0.1."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@dataclass
class Live:
    post: Any  # (list of bodies) -> list of httpx-like responses, all sent at once
    serving: ServingState
    log: GatedLog
    url: str


@pytest.fixture(params=["uvicorn", "testclient"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    settings = settings_for(tmp_path)
    app = create_app(settings)
    app.dependency_overrides[get_model] = fake_model
    if request.param == "uvicorn":
        with uvicorn_on_loopback(app) as url, httpx.Client(base_url=url, timeout=60) as probe:
            assert probe.get("/health").status_code == 200

            def post(bodies: Sequence[dict[str, object]]) -> list[Any]:
                def one(b: dict[str, object]) -> Any:
                    with httpx.Client(base_url=url, timeout=60) as client:
                        return client.post("/v1/score", json=b)

                with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
                    return list(pool.map(one, bodies))

            yield from _live(app, post, settings.decision_log_url)
    else:
        from fastapi.testclient import TestClient

        with TestClient(app) as client:

            def post(bodies: Sequence[dict[str, object]]) -> list[Any]:
                with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
                    return list(pool.map(lambda b: client.post("/v1/score", json=b), bodies))

            yield from _live(app, post, settings.decision_log_url)


def _live(app: FastAPI, post: Any, url: str) -> Iterator[Live]:
    serving: ServingState = app.state.service.serving
    gated = GatedLog(url)
    serving.log = gated
    try:
        yield Live(post=post, serving=serving, log=gated, url=url)
    finally:
        gated.close()


def held(
    live: Live,
    log: GatedLog,
    bodies: Sequence[dict[str, object]],
    while_held: Any = None,
    ahead: Sequence[dict[str, object]] = (),
) -> list[Any]:
    """Send ``bodies`` at once while the decision thread is held in a plug, so that they queue for one group.

    ``while_held`` runs once the plug holds the thread (e.g. to swap the log); ``ahead`` is queued before
    the others. Returns the answers to ``ahead`` (first, if given) and ``bodies``.
    """
    plug = tx()
    assert live.post([body(plug)])[0].status_code == 200
    log.tail_gate.arm()
    plug_answer: list[Any] = []
    answers: list[Any] = []
    sender = threading.Thread(target=lambda: plug_answer.extend(live.post([body(plug)])))  # a resend: no commit
    sender.start()
    assert log.tail_gate.entered.wait(60), "the plug never reached the decision thread"
    if while_held is not None:
        while_held()
    first: list[list[Any]] = [[] for _ in ahead]
    senders = []
    for k, one in enumerate(ahead):  # these queue first, one by one in this order: their places are certain
        senders.append(threading.Thread(target=lambda k=k, one=one: first[k].extend(live.post([one]))))
        senders[-1].start()
        wait_until(lambda k=k: queued(live.serving) == k + 1, f"request {k + 1} queued")
    senders.append(threading.Thread(target=lambda: answers.extend(live.post(bodies))))
    senders[-1].start()
    wait_until(lambda: queued(live.serving) == len(bodies) + len(ahead), "every request queued")
    log.tail_gate.opened.set()
    for thread in [sender, *senders]:
        thread.join(timeout=60)
    assert plug_answer[0].status_code == 200, "the plug, decided before the group, is answered"
    assert len(answers) == len(bodies)
    return [*(a for got in first for a in got), *answers]


def in_one_group(live: Live, bodies: Sequence[dict[str, object]], ahead: Sequence[dict[str, object]] = ()) -> list[Any]:
    return held(live, live.log, bodies, ahead=ahead)


def logged(url: str) -> Any:
    log = DecisionLog(url)
    try:
        return log.decisions(with_features=True)
    finally:
        log.close()


def test_requests_queued_together_are_one_commit_and_every_answer_is_in_the_log(live):
    group = [tx() for _ in range(24)]
    commits = live.serving.commits
    answers = in_one_group(live, [body(t) for t in group])
    assert [a.status_code for a in answers] == [200] * 24, answers[0].text
    # One commit for the plug's first decision (see held), then one for the whole group.
    assert live.serving.commits - commits == 2, f"24 queued requests took {live.serving.commits - commits - 1} commits"
    decisions = logged(live.url)
    acknowledged = {a.json()["request_id"] for a in answers}
    assert acknowledged <= set(decisions["request_id"]), "an answered request is missing from the log"
    mine = decisions[decisions["transaction_id"].isin([t.transaction_id for t in group])]
    assert len(mine) == 24 and mine["decided_at"].nunique() == 1, "one group, one commit, one decision time"
    assert (mine["features"].map(lambda f: f[COUNT]) == 1.0).all(), "independent customers each count 1"


def test_the_metrics_count_commits_and_decisions_per_commit(tmp_path):
    app = create_app(settings_for(tmp_path))
    app.dependency_overrides[get_model] = fake_model
    with uvicorn_on_loopback(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        for t in [tx() for _ in range(3)]:
            assert client.post("/v1/score", json=body(t)).status_code == 200
        text = client.get("/metrics").text
    assert "mlsys_lab_decision_log_commit_decisions_count 3.0" in text, text
    assert "mlsys_lab_decision_log_commit_decisions_sum 3.0" in text


def test_a_refused_group_commit_fails_exactly_its_requests_with_503_and_needs_no_rebuild(live):
    customers = [next(_customers) for _ in range(8)]
    before = [tx(c, minutes=0) for c in customers]
    assert [a.status_code for a in live.post([body(t) for t in before])] == [200] * 8
    writable = live.log
    readonly = DecisionLog(f"sqlite:///file:{writable.url.database}?mode=ro&uri=true")

    def swap_in_readonly() -> None:  # the same file, opened read-only: SQLite itself refuses the commit
        live.serving.log = readonly

    refused = [tx(c, minutes=1) for c in customers]
    try:
        answers = held(live, writable, [body(t) for t in refused], while_held=swap_in_readonly)
    finally:
        live.serving.log = writable
        readonly.close()
    statuses = [a.status_code for a in answers]
    assert statuses == [503] * 8, f"every request of the refused group gets a 503, got {statuses}"
    assert all("readonly" in a.json()["detail"] and "nothing was decided" in a.json()["detail"] for a in answers)
    assert live.serving.dirty is None and live.serving.rebuilds == 0, "nothing was observed before the commit"
    after = [tx(c, minutes=2) for c in customers]
    assert [a.status_code for a in live.post([body(t) for t in after])] == [200] * 8, "the next group commits"
    decisions = logged(live.url)
    assert not decisions["transaction_id"].isin([t.transaction_id for t in refused]).any(), "nothing refused is stored"
    counts = decisions[decisions["transaction_id"].isin([t.transaction_id for t in after])]["features"]
    assert [f[COUNT] for f in counts] == [2.0] * 8, "the refused transactions must not count"


def test_requests_for_one_card_or_one_transaction_in_a_group_see_each_other(live):
    card = next(_customers)
    first, second = tx(card, minutes=0), tx(card, minutes=1)
    resent = tx()
    conflicted = tx()
    different = conflicted.model_copy(update={"tx_amount": 999.0})
    others = [tx() for _ in range(4)]
    # The card's first transaction queues first: the second, a minute later in time, must count it.
    bodies = [body(resent), body(resent), body(conflicted), body(different)]
    answers = in_one_group(live, [*bodies, *(body(t) for t in others)], ahead=[body(first), body(second)])
    statuses = [a.status_code for a in answers]
    assert statuses[:4] == [200] * 4 and statuses[6:] == [200] * 4, statuses
    assert sorted(statuses[4:6]) == [200, 409], f"one id, two contents: one decision and a 409, got {statuses[4:6]}"
    assert answers[2].json()["request_id"] == answers[3].json()["request_id"], "a resend gets the stored decision"
    decisions = logged(live.url).set_index("transaction_id")
    assert decisions.index.is_unique, "one decision per transaction id"
    counts = sorted(decisions.loc[[first.transaction_id, second.transaction_id], "features"].map(lambda f: f[COUNT]))
    assert counts == [1.0, 2.0], f"the card's second request must count the first, got {counts}"
    kept = answers[4] if statuses[4] == 200 else answers[5]
    assert decisions.loc[conflicted.transaction_id, "request_id"] == kept.json()["request_id"]


def test_a_transaction_another_worker_decides_mid_group_fails_only_that_request(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    log = GatedLog(url)
    mine, theirs = ServingState.rebuild(log), ServingState.rebuild(DecisionLog(url))
    model = fake_model()
    group = [tx() for _ in range(6)]
    raced = group[2]

    async def scenario() -> list[Any]:
        plug = tx()
        await mine.decide_async([plug], model, 0.0)
        log.tail_gate.arm()
        plug_again = asyncio.ensure_future(mine.decide_async([plug], model, 0.0))
        await asyncio.to_thread(log.tail_gate.entered.wait, 60)
        tasks = [asyncio.ensure_future(mine.decide_async([t], model, 0.0)) for t in group]
        while queued(mine) < len(group):
            await asyncio.sleep(0.002)
        log.write_gate.arm()  # stop the group just before its insert, after its tail and features
        log.tail_gate.opened.set()
        await asyncio.to_thread(log.write_gate.entered.wait, 60)
        winner = theirs.decide([raced], model, 0.0)[0]  # the other worker commits one of the group's ids
        log.write_gate.opened.set()
        await plug_again
        return [winner, *await asyncio.gather(*tasks, return_exceptions=True)]

    try:
        winner, *answers = asyncio.run(scenario())
    finally:
        mine.close()
    failures = [a for a in answers if isinstance(a, BaseException)]
    assert not failures, f"the other requests of the group must be decided, got {failures}"
    assert answers[2][0].replayed and answers[2][0].request_id == winner.request_id, "the race's loser gets the winner"
    decisions = DecisionLog(url).decisions()
    assert decisions["transaction_id"].is_unique
    others = {a[0].request_id for i, a in enumerate(answers) if i != 2}
    assert others <= set(decisions["request_id"]), "every other request of the group is committed"


def test_a_group_of_one_is_the_old_single_request_path(tmp_path):
    # decide() (no decision thread) is a group of one: a resend of a committed transaction is a replay.
    serving = ServingState.rebuild(DecisionLog(f"sqlite:///{tmp_path / 'log.db'}"))
    model = fake_model()
    t = tx()
    first = serving.decide([t], model, 0.0)[0]
    again = serving.decide([t], model, 0.0)[0]
    assert again.replayed and again.request_id == first.request_id
    assert serving.commits == 1 and serving.committed_decisions == 1


def test_a_worker_computes_from_the_tail_the_features_a_single_worker_computes(tmp_path):
    # What another worker wrote (decisions and a fraud label) comes back through the one-statement tail
    # into this worker's features: the same values as one worker that saw everything itself.
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    ahead = 30 * 86_400  # the last transaction comes nine days after the others
    writer, reader, alone = (
        ServingState.rebuild(DecisionLog(url), max_ahead_seconds=ahead)
        for url in (shared, shared, f"sqlite:///{tmp_path / 'alone.db'}")
    )
    model = fake_model()
    card = next(_customers)
    history = [tx(card, minutes=60 * i) for i in range(4)]
    later = tx(card, minutes=60 * 24 * 9)  # nine days on: past the terminal windows' seven-day delay
    label_time = T0 + dt.timedelta(hours=5)
    for state in (writer, alone):
        for t in history:
            state.decide([t], model, 0.0)
        state.record_label(history[1].transaction_id, True, label_time)
    reader.decide([later], model, 0.0)
    alone.decide([later], model, 0.0)
    read_back = DecisionLog(shared).decision_for(later.transaction_id)
    expected = DecisionLog(f"sqlite:///{tmp_path / 'alone.db'}").decision_for(later.transaction_id)
    assert read_back is not None and expected is not None
    assert read_back["features"] == expected["features"]
    assert read_back["features"]["customer_id_nb_tx_30day_window"] == 5.0, "the card's 4 earlier transactions count"
    assert read_back["features"]["terminal_id_risk_30day_window"] > 0, "the fraud label reached the terminal risk"
