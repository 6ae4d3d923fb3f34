"""Scenarios: the request pool is valid for the real service's schemas, unique, in time order; shapes add up."""

from __future__ import annotations

import datetime as dt
import doctest
import json
from pathlib import Path

import pandas as pd
import pytest

from mlsys_lab.deployment import schemas
from mlsys_lab.load import scenarios
from mlsys_lab.load.scenarios import Stage


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return scenarios.simulated_transactions("tiny", last_days=3)


def test_docstrings_run() -> None:
    assert doctest.testmod(scenarios).failed == 0


@pytest.mark.parametrize(
    ("endpoint", "model"),
    [("/v1/score", schemas.TransactionV1Create), ("/v2/score", schemas.TransactionV2Create)],
)
def test_bodies_pass_the_service_schemas_and_repeat_with_new_ids_in_time_order(
    transactions: pd.DataFrame, endpoint: scenarios.Endpoint, model: type
) -> None:
    n = 2 * len(transactions) + 5  # forces the days to be played again twice
    bodies = [model.model_validate(b) for b in scenarios.request_bodies(transactions, n, endpoint=endpoint)]
    assert len(bodies) == n
    assert len({b.transaction_id for b in bodies}) == n  # the service scores each id once
    # Aware (v2) times compared in UTC, so a change of summer time cannot reorder them.
    times = [b.tx_datetime if b.tx_datetime.tzinfo is None else b.tx_datetime.astimezone(dt.UTC) for b in bodies]
    assert times == sorted(times)


def test_v1_and_v2_bodies_are_the_same_transaction(transactions: pd.DataFrame) -> None:
    v1 = [schemas.TransactionV1Create.model_validate(b) for b in scenarios.request_bodies(transactions, 200)]
    v2 = [
        schemas.TransactionV2Create.model_validate(b)
        for b in scenarios.request_bodies(transactions, 200, endpoint="/v2/score")
    ]
    assert [schemas.v2_from_v1(a) for a in v1] == v2


def test_the_pool_file_holds_batches_the_service_accepts(tmp_path: Path, transactions: pd.DataFrame) -> None:
    path = scenarios.write_request_pool(
        tmp_path / "p.jsonl", transactions, 5, endpoint="/v2/score/batch", batch_size=16
    )
    pool = scenarios.read_request_pool(path)
    assert [p for p, _ in pool] == ["/v2/score/batch"] * 5
    batches = [schemas.TransactionV2Batch.model_validate(json.loads(body)) for _, body in pool]
    ids = [tx.transaction_id for b in batches for tx in b.transactions]
    assert len(ids) == len(set(ids)) == 80
    with pytest.raises(ValueError, match="needs a /batch endpoint"):
        scenarios.write_request_pool(tmp_path / "q.jsonl", transactions, 5, batch_size=16)


def test_a_bad_pool_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"path": "/v1/score", "body": {}}\n{"oops": 1}\n')
    with pytest.raises(ValueError, match=r"p\.jsonl:2: not a request pool line"):
        scenarios.read_request_pool(path)


def test_shapes() -> None:
    million = scenarios.one_million_an_hour()
    assert million.offered_rate == 278 and million.ramp_up_s == 10 and million.duration_s == 70
    assert million.max_requests() >= 278 * 70
    steps = scenarios.step(users=(5, 10, 20), stage_s=10, rate_per_user=10)
    assert [s.users for s in steps.stages] == [5, 10, 20] and steps.offered_rate == 200
    spike = scenarios.spike(base_users=10, spike_users=60)
    assert [s.users for s in spike.stages] == [10, 60, 10]
    assert scenarios.soak().duration_s >= 1800
    with pytest.raises(ValueError, match="stage end times must increase"):
        scenarios.Scenario("x", (Stage(10, 1, 1), Stage(5, 2, 1)), None)
    with pytest.raises(ValueError, match="unpaced"):
        scenarios.steady(5, 10).max_requests()
