"""Service level objectives as a typed, frozen object, and the checker that gives a verdict with every reason.

An SLO says what the users of the API were promised, for example the 1M-requests-an-hour budget:
99% of requests answered within 50 ms, at most 0.1% errors, at 278 requests/s or more, held for at
least 60 s, the ramp-up left out. The checker computes every indicator (SLI) from counts, never
from a rounded percentile or a mean:

- latency: the **share** of requests at or under the limit, summed from the exact histogram of the
  seconds after the ramp-up (a mean hides the tail; a percentile rounded to two digits can pass a
  run whose share is below the target);
- errors: failed / completed requests, failures of every kind counted (a fast 503 is not a success);
- throughput: completed requests per second of the window (the offered rate is a wish, not a result);
- duration: the window must be long enough to say anything (a 5 s run cannot hold an hour's promise).

Examples
--------
>>> from mlsys_lab.load.result import LatencyHistogram, LoadResult, SecondStats
>>> second = SecondStats(second=0, requests=300, histogram=LatencyHistogram.from_counts({20.0: 299, 80.0: 1}))
>>> run = LoadResult("open-loop", "http://127.0.0.1:8000", 1.0, 300, {}, second.histogram, (second,))
>>> print(check_slo(run, SLO(min_rps=250, min_duration_s=1)))
PASS
  ok   latency: 99.67% of requests <= 50 ms (objective >= 99.00%)
  ok   errors: 0.000% of 300 requests failed (objective <= 0.100%)
  ok   throughput: 300.0 requests/s (objective >= 250.0)
  ok   duration: 1 s measured after 0 s of ramp-up (objective >= 1 s)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlsys_lab.load.result import LoadResult

__all__ = ["ONE_MILLION_AN_HOUR", "SLO", "Reason", "Verdict", "check_slo"]


@dataclass(frozen=True)
class SLO:
    """What a run must show to pass.

    Parameters
    ----------
    latency_ms
        The latency limit.
    latency_share
        Share of requests that must finish within ``latency_ms`` (0.99: "99% of requests").
    max_error_ratio
        Largest acceptable share of failed requests (0.001: 0.1%).
    min_rps
        Completed requests per second the window must sustain (278 is 1M an hour).
    min_duration_s
        Seconds the window (after the ramp-up) must last.
    ramp_up_s
        Seconds at the start left out of every indicator: users are still being spawned, caches are cold.
    """

    latency_ms: float = 50.0
    latency_share: float = 0.99
    max_error_ratio: float = 0.001
    min_rps: float = 278.0
    min_duration_s: float = 60.0
    ramp_up_s: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "latency_ms": self.latency_ms > 0,
            "latency_share": 0 < self.latency_share <= 1,
            "max_error_ratio": 0 <= self.max_error_ratio < 1,
            "min_rps": self.min_rps >= 0,
            "min_duration_s": self.min_duration_s >= 0,
            "ramp_up_s": self.ramp_up_s >= 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if not ok or not math.isfinite(value):
                raise ValueError(f"SLO.{name} = {value!r} is out of range: see the SLO docstring for its meaning")


#: The course's budget: 1M requests an hour (278/s) with 99% of them within 50 ms and at most 0.1% errors.
ONE_MILLION_AN_HOUR = SLO(latency_ms=50.0, latency_share=0.99, max_error_ratio=0.001, min_rps=278.0, min_duration_s=60)


@dataclass(frozen=True)
class Reason:
    """One indicator against its objective."""

    name: str  # "latency", "errors", "throughput" or "duration"
    passed: bool
    measured: float
    objective: float
    message: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.passed else 'FAIL'} {self.name}: {self.message}"


@dataclass(frozen=True)
class Verdict:
    """Pass only when every indicator meets its objective; ``reasons`` holds all of them, passed or not."""

    passed: bool
    reasons: tuple[Reason, ...]
    slo: SLO

    @property
    def failed(self) -> tuple[Reason, ...]:
        """The reasons that failed."""
        return tuple(r for r in self.reasons if not r.passed)

    def __str__(self) -> str:
        return "\n".join(["PASS" if self.passed else "FAIL", *(f"  {r}" for r in self.reasons)])


def check_slo(result: LoadResult, slo: SLO) -> Verdict:
    """The verdict of ``result`` against ``slo``, from the counts of the seconds after the ramp-up.

    Parameters
    ----------
    result
        A run from :func:`mlsys_lab.load.runner.run_locust` or :func:`mlsys_lab.load.openloop.run_open_loop`
        (or one built by hand): its per-second history is what the window is summed from.
    slo
        The objectives.

    Returns
    -------
    Verdict
        ``passed`` and one :class:`Reason` per indicator, in the order latency, errors, throughput, duration.
        An empty window fails every indicator (nothing measured is not a pass).
    """
    window = result.window(start_s=slo.ramp_up_s)
    n = window.requests
    share = window.histogram.share_at_most(slo.latency_ms)
    errors = window.error_ratio
    latency_ok = n > 0 and share >= slo.latency_share
    errors_ok = n > 0 and errors <= slo.max_error_ratio
    rps = window.rps if window.duration_s > 0 else 0.0
    if n == 0:
        latency_msg = errors_msg = "no request completed after the ramp-up"
    else:
        latency_msg = f"{share:.2%} of requests <= {slo.latency_ms:g} ms (objective >= {slo.latency_share:.2%})" + (
            "" if latency_ok else f"; {round((1 - share) * n):,} of {n:,} were slower"
        )
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(window.failures.items()))
        errors_msg = f"{errors:.3%} of {n:,} requests failed (objective <= {slo.max_error_ratio:.3%})" + (
            f": {kinds}" if kinds else ""
        )
    reasons = (
        Reason("latency", latency_ok, share if n else math.nan, slo.latency_share, latency_msg),
        Reason("errors", errors_ok, errors if n else math.nan, slo.max_error_ratio, errors_msg),
        Reason(
            "throughput",
            rps >= slo.min_rps and n > 0,
            rps,
            slo.min_rps,
            f"{rps:.1f} requests/s (objective >= {slo.min_rps:.1f})",
        ),
        Reason(
            "duration",
            window.duration_s >= slo.min_duration_s and n > 0,
            window.duration_s,
            slo.min_duration_s,
            f"{window.duration_s:g} s measured after {slo.ramp_up_s:g} s of ramp-up "
            f"(objective >= {slo.min_duration_s:g} s)",
        ),
    )
    return Verdict(passed=all(r.passed for r in reasons), reasons=reasons, slo=slo)
