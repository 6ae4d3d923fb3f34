"""Capacity and cost from measurements: service time from CPU time, queueing predictions, a plan and a price.

Wall-clock latency on a busy laptop measures the laptop. CPU time does not depend (much) on what
else runs: the server's CPU-seconds over a run, divided by the requests it served, is its
**service time** S per request, and everything else follows from it and the arrival rate λ:

- the **utilisation law**: a server of c cores is busy U = λ·S / c of the time; at U -> 1 the queue
  grows without bound, long before which the tail crosses any latency objective;
- **Little's law**: in a closed-loop test, users = throughput x (response time + time between
  requests), a check that the generator measured what it thinks it did;
- **M/M/c** (Poisson arrivals, exponential service, c servers; Erlang C): the probability of waiting,
  the waiting time's tail, the response time's p99, and so the highest rate whose p99 meets an SLO;
  exponential service is pessimistic for a CPU-bound request of nearly constant cost, so the
  prediction errs on the safe side (M/D/c would wait about half as long in the queue);
- a **plan**: the fewest servers (cores or workers) whose predicted p99 meets the SLO at a stated
  peak with headroom;
- **cost** per 1M predictions: CPU-seconds per request divided by the utilisation you can run at,
  times a price per vCPU-hour that you pass in (prices differ by provider, region and year: this
  module states none).

The knee of a measured step test (:func:`find_knee`) is what the prediction is checked against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mlsys_lab.load.result import LoadResult
from mlsys_lab.load.scenarios import Scenario

__all__ = [
    "CapacityPlan",
    "LittleCheck",
    "StepRow",
    "cost_per_million",
    "erlang_b",
    "erlang_c",
    "find_knee",
    "littles_law",
    "mmc_response_quantile",
    "mmc_wait_quantile",
    "plan_capacity",
    "process_cpu_seconds",
    "rate_at_slo",
    "service_time_from_cpu",
    "step_table",
    "utilisation",
]


def service_time_from_cpu(cpu_seconds: float, requests: int) -> float:
    """Service time S (seconds of CPU per request): the server's CPU-seconds over a run / requests it served."""
    if requests <= 0:
        raise ValueError(f"requests must be > 0 to divide CPU time by, got {requests}")
    if cpu_seconds < 0:
        raise ValueError(f"cpu_seconds must be >= 0, got {cpu_seconds}")
    return cpu_seconds / requests


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU-seconds used so far by process ``pid`` and all its descendants (uvicorn's workers too).

    Read it before and after a run; the difference over the requests served is the service time.
    Processes that exited in between are not counted, so measure while the server runs.
    """
    import psutil  # a dependency of the pinned locust

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def utilisation(rate: float, service_time_s: float, servers: int = 1) -> float:
    """The utilisation law: U = λ·S / c, the share of time each of ``servers`` is busy (>= 1: overloaded)."""
    _check_servers(servers)
    return rate * service_time_s / servers


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: the blocking probability of ``servers`` servers offered ``offered_load`` = λ·S erlangs.

    The stable recursion B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1)), no factorials.
    """
    _check_servers(servers)
    if offered_load < 0:
        raise ValueError(f"offered_load must be >= 0, got {offered_load}")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: the probability that an arrival waits, in M/M/c with c = ``servers`` and A = λ·S erlangs.

    1.0 when A >= c (the queue never empties).

    Examples
    --------
    >>> round(erlang_c(1, 0.7), 6), round(erlang_c(2, 1.0), 6)
    (0.7, 0.333333)
    """
    b = erlang_b(servers, offered_load)
    if offered_load >= servers:
        return 1.0
    return servers * b / (servers - offered_load * (1 - b))


def mmc_wait_quantile(q: float, rate: float, service_time_s: float, servers: int = 1) -> float:
    """The ``q``-quantile of the time spent waiting in the queue (seconds), M/M/c.

    P(W > t) = C · exp(-(c·μ - λ)·t), with C the Erlang C probability and μ = 1/S; 0 when C <= 1 - q.
    """
    _check_quantile(q)
    c, mu = servers, 1.0 / service_time_s
    if rate >= c * mu:
        return math.inf
    wait_probability = erlang_c(c, rate * service_time_s)
    if wait_probability <= 1 - q:
        return 0.0
    return math.log(wait_probability / (1 - q)) / (c * mu - rate)


def _response_tail(t: float, rate: float, mu: float, servers: int, wait_probability: float) -> float:
    """P(T > t) for T = wait + service in M/M/c (the wait is 0 or exponential at rate c·μ - λ)."""
    theta = servers * mu - rate
    if math.isclose(theta, mu, rel_tol=1e-9):
        both = (1 + mu * t) * math.exp(-mu * t)  # Erlang(2, μ)
    else:
        both = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1 - wait_probability) * math.exp(-mu * t) + wait_probability * both


def mmc_response_quantile(q: float, rate: float, service_time_s: float, servers: int = 1) -> float:
    """The ``q``-quantile of the response time (waiting + service, seconds) in M/M/c, solved by bisection.

    For c = 1 this is the closed form -ln(1 - q) / (μ - λ).

    Examples
    --------
    >>> round(mmc_response_quantile(0.99, rate=50, service_time_s=0.01), 6)  # M/M/1: ln(100) / 50
    0.092103
    """
    _check_quantile(q)
    _check_servers(servers)
    mu = 1.0 / service_time_s
    if rate >= servers * mu:
        return math.inf
    wait_probability = erlang_c(servers, rate * service_time_s)
    low, high = 0.0, 1.0 / mu
    while _response_tail(high, rate, mu, servers, wait_probability) > 1 - q:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if _response_tail(mid, rate, mu, servers, wait_probability) > 1 - q:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * high:
            break
    return high


def rate_at_slo(service_time_s: float, latency_s: float, *, servers: int = 1, quantile: float = 0.99) -> float:
    """The highest arrival rate (req/s) at which the M/M/c ``quantile`` of the response time is <= ``latency_s``.

    0 when even an idle server cannot meet it (the service time's own tail is too long).
    """
    _check_servers(servers)
    if mmc_response_quantile(quantile, 1e-12, service_time_s, servers) > latency_s:
        return 0.0
    low, high = 0.0, servers / service_time_s
    for _ in range(200):
        mid = (low + high) / 2
        if mmc_response_quantile(quantile, mid, service_time_s, servers) <= latency_s:
            low = mid
        else:
            high = mid
        if high - low <= 1e-9 * high:
            break
    return low


@dataclass(frozen=True)
class CapacityPlan:
    """Servers needed for a peak: the fewest whose predicted p99 meets the SLO at peak x (1 + headroom)."""

    servers: int
    peak_rate: float
    planned_rate: float  # peak x (1 + headroom)
    utilisation_at_peak: float
    p_response_at_peak_s: float  # the predicted quantile at the peak
    max_rate_at_slo: float  # what ``servers`` can take before the quantile crosses the SLO
    quantile: float

    def __str__(self) -> str:
        return (
            f"{self.servers} server(s) for a peak of {self.peak_rate:,.0f} req/s planned at {self.planned_rate:,.0f}: "
            f"utilisation {self.utilisation_at_peak:.0%} at the peak, predicted p{self.quantile * 100:g} "
            f"{self.p_response_at_peak_s * 1000:.1f} ms; the SLO holds up to {self.max_rate_at_slo:,.0f} req/s"
        )


def plan_capacity(
    peak_rate: float,
    service_time_s: float,
    latency_s: float,
    *,
    headroom: float = 0.3,
    quantile: float = 0.99,
    max_servers: int = 1024,
) -> CapacityPlan:
    """The fewest servers (cores or single-threaded workers) whose M/M/c ``quantile`` meets ``latency_s``.

    Parameters
    ----------
    peak_rate
        The busiest rate to expect (req/s).
    service_time_s
        CPU-seconds per request, from :func:`service_time_from_cpu`.
    latency_s
        The SLO's latency limit.
    headroom
        Margin over the peak (0.3: plan for 30% more), for growth, a lost server, and the model's error.
    """
    if peak_rate <= 0 or headroom < 0:
        raise ValueError("peak_rate must be > 0 and headroom >= 0")
    planned = peak_rate * (1 + headroom)
    for servers in range(1, max_servers + 1):
        if mmc_response_quantile(quantile, planned, service_time_s, servers) <= latency_s:
            return CapacityPlan(
                servers=servers,
                peak_rate=peak_rate,
                planned_rate=planned,
                utilisation_at_peak=utilisation(peak_rate, service_time_s, servers),
                p_response_at_peak_s=mmc_response_quantile(quantile, peak_rate, service_time_s, servers),
                max_rate_at_slo=rate_at_slo(service_time_s, latency_s, servers=servers, quantile=quantile),
                quantile=quantile,
            )
    raise ValueError(
        f"no plan up to {max_servers} servers: a service time of {service_time_s * 1000:.2f} ms cannot meet "
        f"{latency_s * 1000:g} ms at p{quantile * 100:g}; make each request cheaper first"
    )


def cost_per_million(cpu_seconds_per_request: float, price_per_vcpu_hour: float, *, utilisation: float) -> float:
    """Cost of 1M predictions: CPU-seconds / utilisation (idle cores are paid for too) x price per vCPU-second.

    Parameters
    ----------
    cpu_seconds_per_request
        Measured CPU-seconds per request (the server's; add the load balancer's if you pay for one).
    price_per_vcpu_hour
        What a vCPU-hour costs you: a parameter, since it depends on the provider, region, and
        contract. Pass your own number.
    utilisation
        The average utilisation the fleet runs at (0 < U <= 1); a plan with headroom runs below 1.

    Examples
    --------
    >>> round(cost_per_million(0.0025, 0.04, utilisation=0.5), 4)  # 2.5 ms, 0.04 a vCPU-hour, half busy
    0.0556
    """
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {utilisation}: it is the busy share of paid cores")
    if cpu_seconds_per_request < 0 or price_per_vcpu_hour < 0:
        raise ValueError("cpu_seconds_per_request and price_per_vcpu_hour must be >= 0")
    return 1e6 * cpu_seconds_per_request / utilisation * price_per_vcpu_hour / 3600


@dataclass(frozen=True)
class LittleCheck:
    """Little's law, L = X · (R + Z), on a closed-loop run: users against throughput x cycle time."""

    users: float  # the users the generator held
    predicted_users: float  # throughput x (response time + time between requests)
    relative_error: float

    def holds(self, tolerance: float = 0.1) -> bool:
        """Whether the two agree within ``tolerance`` (relative)."""
        return self.relative_error <= tolerance


def littles_law(users: float, throughput: float, response_time_s: float, think_time_s: float = 0.0) -> LittleCheck:
    """Check users = throughput x (response time + think time), e.g. on a locust run's window.

    For locust's ``constant_throughput(r)`` pacing, the cycle is max(1/r, R): the think time is
    ``max(0, 1/r - R)``; unpaced users have none (a generator that cannot keep up shows up here:
    its users spend time neither waiting for an answer nor pacing).
    """
    predicted = throughput * (response_time_s + think_time_s)
    error = abs(predicted - users) / users if users else math.inf
    return LittleCheck(users=users, predicted_users=predicted, relative_error=error)


@dataclass(frozen=True)
class StepRow:
    """One step of a step test: offered and achieved rate, and the latency quantile (ms) measured there."""

    users: int
    offered_rate: float | None
    achieved_rate: float
    p99_ms: float
    error_ratio: float = 0.0


def step_table(result: LoadResult, scenario: Scenario, *, settle_s: float = 2.0) -> list[StepRow]:
    """A step test's rows: each stage's window (its first ``settle_s`` seconds left out) from a locust run."""
    rows, start = [], 0.0
    for stage in scenario.stages:
        window = result.window(start + settle_s, stage.until_s)
        start = stage.until_s
        if window.requests == 0:
            continue
        rows.append(
            StepRow(
                users=stage.users,
                offered_rate=None if scenario.rate_per_user is None else scenario.rate_per_user * stage.users,
                achieved_rate=window.rps,
                p99_ms=window.histogram.percentile(0.99),
                error_ratio=window.error_ratio,
            )
        )
    return rows


@dataclass(frozen=True)
class Knee:
    """Where a step test stops scaling: ``knee`` is the first step that fails, ``safe`` the last one that holds."""

    knee: int | None  # index in the table; None: no step failed (the test did not reach the knee)
    safe: int | None  # index; None: even the first step failed
    safe_rate: float  # achieved rate at the safe step (0 when none)
    reason: str


def find_knee(
    rows: Sequence[StepRow], *, latency_ms: float, keep_up: float = 0.95, max_error_ratio: float = 0.001
) -> Knee:
    """The first step where the service stops keeping up (achieved < ``keep_up`` x offered), the p99 crosses
    ``latency_ms``, or errors exceed ``max_error_ratio``; the safe operating rate is the step before it.
    """
    for i, row in enumerate(rows):
        problems = []
        if row.offered_rate is not None and row.achieved_rate < keep_up * row.offered_rate:
            problems.append(f"achieved {row.achieved_rate:,.0f} of {row.offered_rate:,.0f} req/s offered")
        if row.p99_ms > latency_ms:
            problems.append(f"p99 {row.p99_ms:g} ms > {latency_ms:g} ms")
        if row.error_ratio > max_error_ratio:
            problems.append(f"errors {row.error_ratio:.2%}")
        if problems:
            safe = i - 1 if i > 0 else None
            return Knee(
                knee=i,
                safe=safe,
                safe_rate=rows[safe].achieved_rate if safe is not None else 0.0,
                reason=f"step {i} ({row.users} users): " + "; ".join(problems),
            )
    last = len(rows) - 1 if rows else None
    return Knee(
        knee=None,
        safe=last,
        safe_rate=rows[-1].achieved_rate if rows else 0.0,
        reason="no step failed: the test did not reach the knee; add higher steps",
    )


def _check_servers(servers: int) -> None:
    if servers < 1:
        raise ValueError(f"servers must be >= 1, got {servers}")


def _check_quantile(q: float) -> None:
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q} (write 0.99 for p99)")
