"""Fuzzing the request bodies: whatever a client sends, the answer is never a 5xx.

Hypothesis generates two kinds of bodies for each endpoint: arbitrary JSON (wrong types, nesting,
unicode, huge numbers, NaN) and bodies shaped like the schema where each field is either valid or
garbage, with fields dropped or added. 1,200 requests in all go through the real app (real decision
log, real feature state; the model given through ``dependency_overrides``). A 422 must come with a
summary naming the fields; a valid body is scored (200), or refused as a duplicate (409) or an
unknown transaction (404).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlsys_lab.deployment.deps import get_model
from mlsys_lab.deployment.schemas import (
    BANK_TIMEZONE,
    TransactionV1Create,
    transaction_from_v1,
    transaction_from_v2,
    v2_from_v1,
)
from mlsys_lab.deployment.service import create_app

from .test_service_contract import LABELLER, fake_model, settings_for

pytestmark = pytest.mark.slow  # 1,200 requests through the app, about 10 s
EXAMPLES = 300  # per endpoint: 4 x 300 = 1,200 bodies
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
ALLOWED = {200, 404, 409, 422}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
ids = st.integers(0, 2**63 - 1)
moments = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(9998, 12, 31))
offsets = st.integers(-23 * 60, 23 * 60).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
naive_times = moments.map(dt.datetime.isoformat)
aware_times = st.builds(lambda t, tz: t.replace(tzinfo=tz).isoformat(), moments, offsets)
odd_times = st.sampled_from(["", "2018-13-01T00:00:00", "yesterday", "2018-04-01", "0001-01-01T00:00:00+14:00"])
odd_numbers = st.integers(-(2**80), 2**80) | st.floats(allow_nan=True, allow_infinity=True)


def shaped(valid: dict[str, st.SearchStrategy[object]]) -> st.SearchStrategy[dict[str, object]]:
    """A valid body, then 0-2 fields garbled, maybe a field dropped, maybe an unknown one added."""
    garbage = json_values | odd_numbers | odd_times | naive_times | aware_times

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, object]:
        body = {name: draw(strategy) for name, strategy in valid.items()}
        for name in draw(st.lists(st.sampled_from(sorted(valid)), max_size=2, unique=True)):
            body[name] = draw(garbage)
        if draw(st.integers(0, 7)) == 7:  # not 0: Hypothesis favours 0, and most bodies should stay whole
            body.pop(draw(st.sampled_from(sorted(valid))))
        if draw(st.integers(0, 7)) == 7:  # not 0: Hypothesis favours 0, and most bodies should stay whole
            body[draw(st.text(max_size=12))] = draw(json_values)
        return body

    return build()


v1_bodies = shaped(
    {
        "transaction_id": ids,
        "customer_id": ids,
        "terminal_id": ids,
        "tx_datetime": naive_times,
        "tx_amount": st.floats(0, 1e6) | st.integers(0, 10**6),
    }
)
v2_bodies = shaped(
    {
        "transaction_id": ids,
        "customer_id": ids,
        "terminal_id": ids,
        "tx_datetime": aware_times,
        "amount_minor": st.integers(0, 10**11),
        "currency": st.sampled_from(["EUR", "EUR", "EUR", "USD", "eur"]),
    }
)
feedback_bodies = shaped(
    {"transaction_id": st.integers(0, 2**20), "is_fraud": st.booleans(), "label_time": naive_times}
)
batch_requests = (
    st.tuples(st.just("v1"), st.fixed_dictionaries({"transactions": st.lists(v1_bodies, max_size=3)}))
    | st.tuples(st.just("v2"), st.fixed_dictionaries({"transactions": st.lists(v2_bodies, max_size=3)}))
    | st.tuples(st.just("v2"), st.fixed_dictionaries({"transactions": st.lists(v1_bodies, max_size=10)}))
    | st.tuples(st.sampled_from(["v1", "v2"]), json_values)
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path_factory.mktemp("fuzz")))
    app.dependency_overrides[get_model] = fake_model
    with TestClient(app, raise_server_exceptions=False) as client:  # a crash must show as a 500, not raise
        yield client


def check(client: TestClient, path: str, body: object) -> int:
    # Encoded here, not by httpx: NaN and Infinity go over the wire too (Python's JSON parser accepts them).
    content = json.dumps(body, allow_nan=True).encode()
    response = client.post(path, content=content, headers={"content-type": "application/json", **LABELLER})
    assert response.status_code in ALLOWED, f"{path} answered {response.status_code} to {body!r}: {response.text}"
    if response.status_code == 422:
        assert "detail" in response.json() and "summary" in response.json()
    return response.status_code


def fuzz(client: TestClient, path: str, bodies: st.SearchStrategy[object]) -> Counter[int]:
    """Send ``EXAMPLES`` generated bodies to ``path``; the statuses seen, for the caller to check."""
    seen: Counter[int] = Counter()

    @FUZZ
    @given(body=bodies)
    def run(body: object) -> None:
        seen[check(client, path, body)] += 1

    run()
    return seen


# Each test checks its own statuses, so it cannot pass vacuously under -k, -x or another order:
# valid bodies got past validation (200) and invalid ones were refused (422).


def test_v1_score_never_answers_5xx(client):
    seen = fuzz(client, "/v1/score", v1_bodies | json_values)
    assert sum(seen.values()) >= EXAMPLES // 2 and seen[200] > 0 and seen[422] > 0, seen


def test_v2_score_never_answers_5xx(client):
    seen = fuzz(client, "/v2/score", v2_bodies | json_values)
    assert sum(seen.values()) >= EXAMPLES // 2 and seen[200] > 0 and seen[422] > 0, seen


def test_batch_never_answers_5xx(client):
    seen: Counter[int] = Counter()

    @FUZZ
    @given(request=batch_requests)
    def run(request: tuple[str, object]) -> None:
        version, body = request
        seen[check(client, f"/{version}/score/batch", body)] += 1

    run()
    assert sum(seen.values()) >= EXAMPLES // 2 and seen[200] > 0 and seen[422] > 0, seen


def test_feedback_never_answers_5xx(client):
    seen = fuzz(client, "/v1/feedback", feedback_bodies | json_values)
    assert sum(seen.values()) >= EXAMPLES // 2 and seen[404] > 0 and seen[422] > 0, seen


def test_a_feedback_batch_never_answers_5xx(client):
    batches = st.fixed_dictionaries({"labels": st.lists(feedback_bodies, max_size=3)}) | json_values
    seen = fuzz(client, "/v1/feedback/batch", batches)
    assert sum(seen.values()) >= EXAMPLES // 2 and seen[404] > 0 and seen[422] > 0, seen


@settings(max_examples=200, deadline=None)
@given(
    when=st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(9998, 1, 1)),
    cents=st.integers(0, 10**11),
)
def test_migrating_a_v1_body_to_v2_keeps_the_transaction(when, cents):
    # Except in the hour that does not exist when clocks go forward: v1 cannot even say such a time.
    assume(when.replace(tzinfo=BANK_TIMEZONE).astimezone(dt.UTC).astimezone(BANK_TIMEZONE).replace(tzinfo=None) == when)
    v1 = TransactionV1Create(transaction_id=1, customer_id=2, terminal_id=3, tx_datetime=when, tx_amount=cents / 100)
    v2 = v2_from_v1(v1)
    assert v2.amount_minor == cents
    assert transaction_from_v2(v2).model_dump(exclude={"schema_version"}) == transaction_from_v1(v1).model_dump(
        exclude={"schema_version"}
    )
