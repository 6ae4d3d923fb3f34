"""The open-loop generator, and the coordinated-omission lesson on a server that freezes.

The server freezes 0.5 s every 200 requests; both generators offer 200 requests/s for 4 s. Locust's
few users wait out each freeze with one request each and then carry on, so only a handful of
requests see it; the open-loop generator keeps sending on schedule, so everything that arrives
during a freeze waits. The shares are far apart (measured about 3% against 38%), so the asserts
leave a wide margin for a busy machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mlsys_lab.load import openloop, runner, scenarios
from mlsys_lab.load.openloop import OpenLoopConfig


def test_the_schedule_is_poisson_at_the_rate_and_bounded() -> None:
    times = openloop.poisson_schedule(rate=500, duration_s=20, max_requests=100_000, random_state=1)
    assert np.all(np.diff(times) > 0) and times[-1] < 20
    assert len(times) == pytest.approx(10_000, rel=0.05)
    gaps = np.diff(times)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential gaps: coefficient of variation 1
    assert len(openloop.poisson_schedule(500, 20, 123)) == 123


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"OpenLoopConfig\.rate"):
        OpenLoopConfig(rate=0, duration_s=1)
    with pytest.raises(ValueError, match="not on loopback"):
        openloop.run_open_loop("http://192.168.1.1:80", [("/v1/score", b"{}")], OpenLoopConfig(rate=1, duration_s=1))


def test_a_pool_too_small_for_the_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="pool holds 1 requests"):
        openloop.run_open_loop("http://127.0.0.1:9", [("/v1/score", b"{}")], OpenLoopConfig(rate=100, duration_s=2))


def test_every_scheduled_request_is_counted_and_failures_by_kind(
    stall_server: Callable[[int, float], str], pool_file: Path
) -> None:
    url = stall_server(0, 0.0)
    pool = [("/v1/score", b'{"transaction_id": 1000}'), *scenarios.read_request_pool(pool_file)]
    result = openloop.run_open_loop(url, pool, OpenLoopConfig(rate=100, duration_s=2, max_requests=150))
    assert result.generator == "open-loop"
    assert result.requests == result.intended == sum(s.intended or 0 for s in result.history)
    assert result.histogram.total == result.requests
    assert result.failures == {"HTTP 503": 1}  # the first request, id 1000, is refused by the test server
    # Nothing listens on port 9: every request fails, and is still counted.
    refused = openloop.run_open_loop("http://127.0.0.1:9", pool, OpenLoopConfig(rate=50, duration_s=1))
    assert refused.requests == refused.intended and refused.failure_count == refused.requests


@pytest.mark.slow
def test_open_loop_sees_the_stall_that_locust_hides(
    stall_server: Callable[[int, float], str], pool_file: Path, tmp_path: Path
) -> None:
    pool = scenarios.read_request_pool(pool_file)
    open_loop = openloop.run_open_loop(stall_server(200, 0.5), pool, OpenLoopConfig(rate=200, duration_s=4))
    closed = runner.run_locust(
        stall_server(200, 0.5), scenarios.steady(5, 4, rate=200, ramp_up_s=0.5), tmp_path / "locust", pool=pool_file
    )
    open_share, closed_share = open_loop.histogram.share_above(100), closed.histogram.share_above(100)
    assert open_share >= 0.15, f"open loop: only {open_share:.1%} of requests over 100 ms despite the freezes"
    assert closed_share <= 0.10, f"locust: {closed_share:.1%} over 100 ms; expected the stall mostly hidden"
    assert open_share >= 2 * closed_share
    # Its p90 sits in the stall; locust's does not. And locust sent fewer requests than were asked for.
    assert open_loop.histogram.percentile(0.9) > 100 >= closed.histogram.percentile(0.9)
    assert closed.requests < open_loop.intended  # type: ignore[operator]
