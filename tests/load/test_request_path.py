"""Reading the service's ``Server-Timing`` header (the request-path profile's parser)."""

from __future__ import annotations

import doctest

import pytest

from mlsys_lab.load import request_path


def test_docstrings_run() -> None:
    assert doctest.testmod(request_path).failed == 0


def test_the_header_the_service_writes_is_read_in_full() -> None:
    header = "state;dur=0.012, features;dur=0.081, model;dur=0.420, log;dur=0.150, total;dur=1.104"
    assert request_path.parse_server_timing(header) == {
        "state": 0.012,
        "features": 0.081,
        "model": 0.42,
        "log": 0.15,
        "total": 1.104,
    }


def test_descriptions_quotes_and_spaces_do_not_break_the_reading() -> None:
    header = 'db;desc="decision log";dur="2.5" ,  cache;desc=miss, app ; dur = 7'
    assert request_path.parse_server_timing(header) == {"db": 2.5, "app": 7.0}


def test_a_pool_shorter_than_the_requests_asked_for_is_refused(tmp_path) -> None:
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"path": "/v1/score", "body": {}}\n')
    with pytest.raises(ValueError, match="fewer than the 5"):
        request_path.stage_times("http://127.0.0.1:9", pool, requests=5)
