"""Capacity and cost against closed forms, textbook Erlang C values and a seeded queue simulation."""

from __future__ import annotations

import doctest
import heapq
import math

import numpy as np
import pytest

from mlsys_lab.load import capacity
from mlsys_lab.load.capacity import StepRow


def test_docstrings_run() -> None:
    assert doctest.testmod(capacity).failed == 0


def _erlang_c_by_factorials(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(
    ("servers", "load", "expected"),
    [
        (1, 0.7, 0.7),  # M/M/1: an arrival waits with probability ρ
        (2, 1.0, 1 / 3),  # c = 2: A² / (2 + A)
        (2, 1.5, 1.5**2 / 3.5),
        (10, 8.0, 0.4092),  # textbook table values
        (11, 10.0, 0.6821),
    ],
)
def test_erlang_c_known_values(servers: int, load: float, expected: float) -> None:
    assert capacity.erlang_c(servers, load) == pytest.approx(expected, abs=5e-5)
    assert capacity.erlang_c(servers, load) == pytest.approx(_erlang_c_by_factorials(servers, load), rel=1e-12)


def test_erlang_c_is_one_when_overloaded() -> None:
    assert capacity.erlang_c(2, 2.0) == 1.0 and capacity.erlang_c(2, 3.0) == 1.0


def test_mm1_response_quantile_is_the_closed_form() -> None:
    # M/M/1 response time is exponential at μ - λ.
    for rate in (10.0, 200.0, 390.0):
        expected = -math.log(0.01) / (400 - rate)
        assert capacity.mmc_response_quantile(0.99, rate, 0.0025, 1) == pytest.approx(expected, rel=1e-6)
    assert capacity.mmc_wait_quantile(0.99, 0.1, 0.0025, 1) == 0.0  # almost never waits
    assert capacity.mmc_response_quantile(0.99, 400, 0.0025, 1) == math.inf


def _simulate_mmc(rate: float, service_s: float, servers: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    services = rng.exponential(service_s, n)
    free = [0.0] * servers
    response = np.empty(n)
    for i, (t, s) in enumerate(zip(arrivals, services, strict=True)):
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + s)
        response[i] = start + s - t
    return response


def test_mmc_response_quantile_matches_a_simulated_queue() -> None:
    # Two servers at 80% utilisation: the p99 formula against a million simulated customers (seeded).
    rate, service_s, servers = 640.0, 0.0025, 2
    simulated = np.quantile(_simulate_mmc(rate, service_s, servers, 1_000_000, seed=0)[10_000:], 0.99)
    predicted = capacity.mmc_response_quantile(0.99, rate, service_s, servers)
    assert predicted == pytest.approx(simulated, rel=0.04)
    # Ignoring the queue (the service time as the response time) is off by a factor of several.
    assert -math.log(0.01) * service_s < predicted / 2


def test_rate_at_slo_is_where_the_p99_crosses_the_limit() -> None:
    rate = capacity.rate_at_slo(0.0025, 0.050, servers=1)
    assert rate == pytest.approx(400 - math.log(100) / 0.050, rel=1e-6)  # M/M/1: μ - ln(100)/limit
    assert capacity.mmc_response_quantile(0.99, rate * 0.999, 0.0025) <= 0.050
    assert capacity.mmc_response_quantile(0.99, rate * 1.001, 0.0025) > 0.050
    # The utilisation law alone (run until U = 1) would promise 400 req/s: 92 more than the tail allows.
    assert 1 / 0.0025 - rate > 90
    assert capacity.rate_at_slo(0.030, 0.050) == 0.0  # an idle server's own p99 (138 ms) is too long


def test_using_p50_as_the_service_time_underestimates_the_servers() -> None:
    # Service time from CPU: 3 ms. The p50 latency at low load (1.2 ms: part of the work is async I/O
    # the CPU time does count) would plan for fewer servers than the peak needs.
    right = capacity.plan_capacity(900, 0.003, 0.050)
    wrong = capacity.plan_capacity(900, 0.0012, 0.050)
    assert right.servers > wrong.servers
    assert capacity.utilisation(900, 0.003, wrong.servers) > 1  # the wrong plan is overloaded at the peak


def test_plan_capacity_meets_the_slo_with_headroom_and_is_the_fewest() -> None:
    plan = capacity.plan_capacity(278, 0.0025, 0.050, headroom=0.3)
    assert plan.servers == 2 and plan.planned_rate == pytest.approx(361.4)
    assert capacity.mmc_response_quantile(0.99, 361.4, 0.0025, 2) <= 0.050
    assert capacity.mmc_response_quantile(0.99, 361.4, 0.0025, 1) > 0.050
    assert plan.max_rate_at_slo >= plan.planned_rate
    assert "2 server(s)" in str(plan)
    with pytest.raises(ValueError, match="make each request cheaper"):
        capacity.plan_capacity(100, 0.2, 0.05)


def test_cost_per_million_counts_idle_cores() -> None:
    busy = capacity.cost_per_million(0.0025, 0.05, utilisation=1.0)
    assert busy == pytest.approx(1e6 * 0.0025 / 3600 * 0.05)
    assert capacity.cost_per_million(0.0025, 0.05, utilisation=0.25) == pytest.approx(4 * busy)
    with pytest.raises(ValueError, match="utilisation"):
        capacity.cost_per_million(0.0025, 0.05, utilisation=0)


def test_service_time_from_cpu_and_the_utilisation_law() -> None:
    assert capacity.service_time_from_cpu(30.0, 12_000) == 0.0025
    assert capacity.utilisation(278, 0.0025, servers=2) == pytest.approx(0.3475)
    with pytest.raises(ValueError, match="requests"):
        capacity.service_time_from_cpu(1.0, 0)


def test_process_cpu_seconds_grows_with_work() -> None:
    import os

    before = capacity.process_cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert capacity.process_cpu_seconds(os.getpid()) > before


def test_littles_law() -> None:
    # 20 paced users at 10 req/s each, 15 ms answers: the cycle is 100 ms, 200 req/s.
    check = capacity.littles_law(users=20, throughput=200, response_time_s=0.015, think_time_s=0.085)
    assert check.holds() and check.relative_error == pytest.approx(0.0, abs=1e-12)
    # Forgetting the think time predicts 3 users, not 20.
    assert not capacity.littles_law(users=20, throughput=200, response_time_s=0.015).holds()


STEPS = [
    StepRow(users=10, offered_rate=100, achieved_rate=100, p99_ms=8),
    StepRow(users=20, offered_rate=200, achieved_rate=199, p99_ms=12),
    StepRow(users=30, offered_rate=300, achieved_rate=297, p99_ms=35),
    StepRow(users=40, offered_rate=400, achieved_rate=352, p99_ms=240),
    StepRow(users=50, offered_rate=500, achieved_rate=360, p99_ms=610),
]


def test_the_knee_is_the_first_step_that_fails() -> None:
    knee = capacity.find_knee(STEPS, latency_ms=50)
    assert (knee.knee, knee.safe, knee.safe_rate) == (3, 2, 297)
    assert "achieved 352 of 400" in knee.reason and "p99 240 ms" in knee.reason
    # A stricter limit moves the knee down; a test that never saturates has none.
    assert capacity.find_knee(STEPS, latency_ms=10).knee == 1
    assert capacity.find_knee(STEPS[:3], latency_ms=50).knee is None
    assert capacity.find_knee(STEPS, latency_ms=5).safe is None


def test_step_table_sums_each_stage_after_it_settles() -> None:
    from mlsys_lab.load import scenarios
    from mlsys_lab.load.result import LatencyHistogram, LoadResult, SecondStats

    steps = scenarios.step(users=(10, 20), stage_s=5, rate_per_user=10)
    # Stage 1 (seconds 0-4): 100 req/s at 5 ms; stage 2 (5-9): 150 req/s, 2% at 300 ms. Settling seconds are slow.
    history = []
    for second in range(10):
        settling = second in (0, 5)
        counts = {500.0: 100} if settling else ({5.0: 100} if second < 5 else {5.0: 147, 300.0: 3})
        n = sum(counts.values())
        history.append(SecondStats(second, n, LatencyHistogram.from_counts(counts), users=10 if second < 5 else 20))
    result = LoadResult(
        "locust", "http://127.0.0.1:1", 10.0, sum(s.requests for s in history), {},
        sum((s.histogram for s in history), LatencyHistogram()), tuple(history), offered_rate=200,
    )  # fmt: skip
    rows = capacity.step_table(result, steps, settle_s=1)
    assert [(r.users, r.offered_rate, r.achieved_rate, r.p99_ms) for r in rows] == [
        (10, 100, 100, 5.0),
        (20, 200, 150, 300.0),
    ]
    knee = capacity.find_knee(rows, latency_ms=50)
    assert (knee.knee, knee.safe_rate) == (1, 100)
